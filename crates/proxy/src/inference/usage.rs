//! The real usage of an answer, read as it streams past (the body is never changed or held).
//!
//! - A JSON answer is kept up to [`MAX_JSON`] bytes and its `usage` read at the end:
//!   `prompt_tokens`/`completion_tokens` (OpenAI chat and completions),
//!   `input_tokens`/`output_tokens` (OpenAI responses, Anthropic; Anthropic's cache reads and
//!   writes count as input).
//! - Server-sent events are read line by line (a line is kept up to [`MAX_LINE`] bytes):
//!   a `usage` object in any event (OpenAI's last chunk with `stream_options.include_usage`,
//!   `response.completed`, Anthropic's `message_start` and `message_delta`) wins; failing
//!   that, the text of the streamed deltas is counted with the request's counter.

use serde_json::Value;

use super::tokens::Counter;

/// Longest JSON answer whose usage is read.
pub(crate) const MAX_JSON: usize = 4 << 20;
/// Longest event line read.
pub(crate) const MAX_LINE: usize = 1 << 20;

/// Tokens an answer reports or was counted at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    /// Prompt tokens as the provider counted them, when it said.
    pub input: Option<u64>,
    /// Completion tokens as the provider counted them, when it said.
    pub output: Option<u64>,
    /// Completion tokens counted from streamed deltas.
    pub deltas: u64,
}

/// Where the completion tokens charged came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The answer's own `usage`.
    Usage,
    /// The streamed deltas, counted.
    Deltas,
    /// Neither: the prompt's estimate alone.
    Estimate,
}

impl Source {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Usage => "usage",
            Self::Deltas => "deltas",
            Self::Estimate => "estimate",
        }
    }
}

impl Usage {
    /// (prompt, completion, source) given the prompt's estimate.
    pub(crate) fn settle(&self, estimate: u64) -> (u64, u64, Source) {
        match (self.input, self.output) {
            (input, Some(output)) => (input.unwrap_or(estimate), output, Source::Usage),
            (input, None) if self.deltas > 0 => {
                (input.unwrap_or(estimate), self.deltas, Source::Deltas)
            }
            (Some(input), None) => (input, 0, Source::Usage),
            (None, None) => (estimate, 0, Source::Estimate),
        }
    }

    /// Takes what a `usage` object says; later reports of the same field replace earlier
    /// ones (Anthropic's `output_tokens` is cumulative).
    fn read(&mut self, u: &Value) {
        let n = |k: &str| u.get(k).and_then(Value::as_u64);
        let input = n("prompt_tokens").or_else(|| {
            let base = n("input_tokens")?;
            // The upstream's numbers: added without overflow.
            Some(
                base.saturating_add(n("cache_creation_input_tokens").unwrap_or(0))
                    .saturating_add(n("cache_read_input_tokens").unwrap_or(0)),
            )
        });
        if let Some(i) = input.filter(|i| *i > 0 || self.input.is_none()) {
            self.input = Some(i);
        }
        if let Some(o) = n("completion_tokens").or_else(|| n("output_tokens")) {
            self.output = Some(o);
        }
    }
}

/// Reads one answer's usage.
#[derive(Debug)]
pub(crate) enum Scanner {
    /// A JSON answer, kept until it ends.
    Json { body: Vec<u8>, over: bool },
    /// An event stream, read line by line.
    Events {
        line: Vec<u8>,
        over: bool,
        usage: Usage,
        counter: Counter,
    },
    /// An answer that is not read (compressed, or neither JSON nor events).
    Skip,
}

impl Scanner {
    /// The scanner for an answer of `content_type` and `content_encoding`.
    pub(crate) fn new(
        content_type: Option<&str>,
        content_encoding: Option<&str>,
        counter: Counter,
    ) -> Self {
        if content_encoding.is_some_and(|e| !e.eq_ignore_ascii_case("identity")) {
            return Self::Skip;
        }
        let ty = content_type
            .and_then(|t| t.split(';').next())
            .map(|t| t.trim().to_ascii_lowercase());
        match ty.as_deref() {
            Some("text/event-stream") => Self::Events {
                line: Vec::new(),
                over: false,
                usage: Usage::default(),
                counter,
            },
            Some(t) if t == "application/json" || t.ends_with("+json") => Self::Json {
                body: Vec::new(),
                over: false,
            },
            _ => Self::Skip,
        }
    }

    /// Reads a chunk of the answer.
    pub(crate) fn feed(&mut self, chunk: &[u8]) {
        match self {
            Self::Json { body, over } => {
                if !*over && body.len() + chunk.len() <= MAX_JSON {
                    body.extend_from_slice(chunk);
                } else {
                    *over = true;
                    *body = Vec::new();
                }
            }
            Self::Events {
                line,
                over,
                usage,
                counter,
            } => {
                for piece in chunk.split_inclusive(|b| *b == b'\n') {
                    let complete = piece.last() == Some(&b'\n');
                    if !*over && line.len() + piece.len() <= MAX_LINE {
                        line.extend_from_slice(piece);
                    } else {
                        *over = true;
                    }
                    if complete {
                        if !*over {
                            event_line(line, usage, *counter);
                        }
                        line.clear();
                        *over = false;
                    }
                }
            }
            Self::Skip => {}
        }
    }

    /// The usage read, once the answer has ended (or stopped early).
    pub(crate) fn finish(self) -> Usage {
        match self {
            Self::Json { body, over: false } => {
                let mut usage = Usage::default();
                if let Ok(v) = serde_json::from_slice::<Value>(&body)
                    && let Some(u) = v.get("usage").or_else(|| v.pointer("/response/usage"))
                {
                    usage.read(u);
                }
                usage
            }
            Self::Events {
                line,
                over,
                mut usage,
                counter,
            } => {
                // A last line without its newline still counts.
                if !over && !line.is_empty() {
                    event_line(&line, &mut usage, counter);
                }
                usage
            }
            Self::Json { over: true, .. } | Self::Skip => Usage::default(),
        }
    }
}

/// One line of an event stream: a `data:` line's JSON is read; other lines are ignored.
fn event_line(line: &[u8], usage: &mut Usage, counter: Counter) {
    let text = line.trim_ascii();
    let Some(data) = text.strip_prefix(b"data:") else {
        return;
    };
    let Ok(v) = serde_json::from_slice::<Value>(data.trim_ascii()) else {
        return; // `[DONE]`, or not JSON
    };
    for u in [
        v.get("usage"),
        v.pointer("/message/usage"),
        v.pointer("/response/usage"),
    ]
    .into_iter()
    .flatten()
    {
        if u.is_object() {
            usage.read(u);
        }
    }
    let mut text = |t: Option<&Value>| {
        if let Some(s) = t.and_then(Value::as_str) {
            usage.deltas += counter.count(s);
        }
    };
    if let Some(Value::Array(choices)) = v.get("choices") {
        for c in choices {
            text(c.pointer("/delta/content"));
            text(c.get("text"));
        }
    }
    match v.get("type").and_then(Value::as_str) {
        Some("content_block_delta") => {
            text(v.pointer("/delta/text"));
            text(v.pointer("/delta/partial_json"));
        }
        Some("response.output_text.delta") => text(v.get("delta")),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(ty: &str, chunks: &[&str]) -> Usage {
        let mut s = Scanner::new(Some(ty), None, Counter::Cl100k);
        for c in chunks {
            s.feed(c.as_bytes());
        }
        s.finish()
    }

    #[test]
    fn json_usage_of_each_provider() {
        let openai = scan(
            "application/json; charset=utf-8",
            &[
                r#"{"id":"x","choices":[{"message":{"content":"hi"}}],"#,
                r#""usage":{"prompt_tokens":12,"completion_tokens":30,"total_tokens":42}}"#,
            ],
        );
        assert_eq!(openai.settle(99), (12, 30, Source::Usage));
        let anthropic = scan(
            "application/json",
            &[
                r#"{"type":"message","usage":{"input_tokens":5,"cache_read_input_tokens":100,"output_tokens":7}}"#,
            ],
        );
        assert_eq!(anthropic.settle(99), (105, 7, Source::Usage));
        let none = scan("application/json", &[r#"{"error":{"message":"bad"}}"#]);
        assert_eq!(none.settle(99), (99, 0, Source::Estimate));
        let broken = scan("application/json", &[r#"{"usage":{"prompt_tokens":1"#]);
        assert_eq!(broken.settle(9), (9, 0, Source::Estimate));
    }

    #[test]
    fn openai_stream_final_usage_wins_over_deltas() {
        let chunks = [
            "data: {\"choices\":[{\"delta\":{\"content\":\"hello\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\" world\"}}]}\n",
            "\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":8,\"completion_tokens\":2}}\n\n",
            "data: [DONE]\n\n",
        ];
        let u = scan("text/event-stream", &chunks);
        assert_eq!(u.deltas, 2);
        assert_eq!(u.settle(99), (8, 2, Source::Usage));
        // Without the usage chunk the deltas count, split anywhere.
        let joined: String = chunks[..2].concat();
        let bytes: Vec<String> = joined.chars().map(String::from).collect();
        let refs: Vec<&str> = bytes.iter().map(String::as_str).collect();
        let u = scan("text/event-stream", &refs);
        assert_eq!(u.settle(99), (99, 2, Source::Deltas));
    }

    #[test]
    fn anthropic_stream_reports_input_first_and_output_last() {
        let u = scan(
            "text/event-stream",
            &[
                "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n",
                "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"hello world\"}}\n\n",
                "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\n\n",
            ],
        );
        assert_eq!(u.settle(99), (25, 15, Source::Usage));
        assert_eq!(u.deltas, 2);
        // Cut after the first delta: the input is known, the output is the deltas.
        let cut = scan(
            "text/event-stream",
            &[
                "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25}}}\n",
                "data: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"hello world\"}}",
            ],
        );
        assert_eq!(cut.settle(99), (25, 2, Source::Deltas));
    }

    #[test]
    fn huge_reported_numbers_saturate_instead_of_overflowing() {
        let max = u64::MAX;
        let u = scan(
            "application/json",
            &[&format!(
                r#"{{"usage":{{"input_tokens":{max},"cache_creation_input_tokens":{max},"cache_read_input_tokens":7,"output_tokens":{max}}}}}"#
            )],
        );
        assert_eq!(u.settle(1), (max, max, Source::Usage));
        let u = scan(
            "text/event-stream",
            &[&format!(
                "data: {{\"message\":{{\"usage\":{{\"input_tokens\":{},\"cache_read_input_tokens\":2}}}}}}\n",
                max - 1
            )],
        );
        assert_eq!(u.input, Some(max));
    }

    #[test]
    fn bounds_and_what_is_not_read() {
        let mut s = Scanner::new(Some("application/json"), None, Counter::Cl100k);
        s.feed(&vec![b' '; MAX_JSON]);
        s.feed(br#"{"usage":{"prompt_tokens":1,"completion_tokens":1}}"#);
        assert_eq!(s.finish(), Usage::default(), "over the bound, not read");
        let mut s = Scanner::new(Some("text/event-stream"), None, Counter::Cl100k);
        s.feed(&vec![b'x'; MAX_LINE + 1]);
        s.feed(b"\ndata: {\"usage\":{\"completion_tokens\":3}}\n");
        assert_eq!(
            s.finish().output,
            Some(3),
            "an overlong line is skipped, not the next"
        );
        let gz = Scanner::new(Some("application/json"), Some("gzip"), Counter::Cl100k);
        assert!(matches!(gz, Scanner::Skip));
        assert!(matches!(
            Scanner::new(Some("text/html"), None, Counter::Cl100k),
            Scanner::Skip
        ));
        assert!(matches!(
            Scanner::new(
                Some("application/problem+json"),
                Some("identity"),
                Counter::Cl100k
            ),
            Scanner::Json { .. }
        ));
    }
}
