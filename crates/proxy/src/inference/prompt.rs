//! The prompt of a request body, counted before the request is forwarded.
//!
//! Read from the request JSON: OpenAI's `messages` (chat), `prompt` (completions), `input` and
//! `instructions` (responses, embeddings); Anthropic's `system` and `messages`; `generic` reads
//! whichever is there. Text parts, tool calls and tool results are counted; images and other
//! binary parts are not. A chat message adds OpenAI's framing of 3 tokens, and a reply 3 more.
//! A body that is not JSON, or holds none of these fields, is estimated at a quarter of its
//! bytes.

use serde_json::Value;
use zentinel_config::model::{Provider, Tokenizer};

use super::tokens::{Counter, estimate};

/// Framing tokens of one chat message, and of the reply's start (OpenAI's cookbook figures).
const PER_MESSAGE: u64 = 3;
const PER_REPLY: u64 = 3;

/// What was learnt from a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Prompt {
    /// Tokens of the prompt.
    pub tokens: u64,
    /// How they were counted.
    pub counter: Counter,
    /// The `model` asked for, when given.
    pub model: Option<String>,
    /// Whether the answer is asked to stream (`"stream": true`).
    pub stream: bool,
}

/// Counts the prompt of `body`.
pub(crate) fn count(provider: Provider, tokenizer: Tokenizer, body: &[u8]) -> Prompt {
    let Ok(json) = serde_json::from_slice::<Value>(body) else {
        return by_size(body.len(), None, false);
    };
    let model = json.get("model").and_then(Value::as_str).map(str::to_owned);
    let stream = json.get("stream").and_then(Value::as_bool) == Some(true);
    let counter = Counter::choose(tokenizer, provider, model.as_deref());
    let mut texts = Texts::default();
    let openai = matches!(provider, Provider::OpenAi | Provider::Generic);
    let anthropic = matches!(provider, Provider::Anthropic | Provider::Generic);
    if let Some(Value::Array(messages)) = json.get("messages") {
        for m in messages {
            texts.framing += PER_MESSAGE;
            texts.content(m.get("content"));
            texts.content(m.get("name"));
            if let Some(Value::Array(calls)) = m.get("tool_calls") {
                for c in calls {
                    texts.content(c.pointer("/function/name"));
                    texts.content(c.pointer("/function/arguments"));
                }
            }
        }
        texts.framing += PER_REPLY;
    }
    if openai {
        for field in ["prompt", "input", "instructions"] {
            texts.content(json.get(field));
        }
    }
    if anthropic {
        texts.content(json.get("system"));
    }
    if !texts.found {
        return by_size(body.len(), model, stream);
    }
    Prompt {
        tokens: texts.framing + texts.parts.iter().map(|t| counter.count(t)).sum::<u64>(),
        counter,
        model,
        stream,
    }
}

fn by_size(bytes: usize, model: Option<String>, stream: bool) -> Prompt {
    Prompt {
        tokens: estimate(bytes),
        counter: Counter::Estimate,
        model,
        stream,
    }
}

/// The text parts of a prompt.
#[derive(Debug, Default)]
struct Texts<'a> {
    parts: Vec<&'a str>,
    framing: u64,
    /// Whether any prompt field was present.
    found: bool,
}

impl<'a> Texts<'a> {
    /// A content value: a string, a list of parts or strings, or a part object (`text`,
    /// `input` of a tool call, `content` of a tool result).
    fn content(&mut self, v: Option<&'a Value>) {
        let Some(v) = v else { return };
        self.found = true;
        self.value(v, 0);
    }

    fn value(&mut self, v: &'a Value, depth: u8) {
        // Prompts are shallow; a deeper value is not a prompt shape worth walking.
        if depth > 8 {
            return;
        }
        match v {
            Value::String(s) => self.parts.push(s),
            Value::Array(items) => {
                for item in items {
                    self.value(item, depth + 1);
                }
            }
            Value::Object(part) => {
                for key in ["text", "content", "arguments", "input"] {
                    if let Some(inner) = part.get(key) {
                        match (key, inner) {
                            // A tool call's input is JSON the model reads as text.
                            ("input" | "arguments", Value::Object(_)) => {
                                self.framing += estimate(inner.to_string().len());
                            }
                            _ => self.value(inner, depth + 1),
                        }
                    }
                }
            }
            // Numbers and booleans (token ID prompts, flags) are not text.
            Value::Number(_) | Value::Bool(_) | Value::Null => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn openai(body: &str) -> Prompt {
        count(Provider::OpenAi, Tokenizer::Auto, body.as_bytes())
    }

    #[test]
    fn chat_messages_count_text_and_framing() {
        let p = openai(
            r#"{"model":"gpt-4o","stream":true,"messages":[
                {"role":"system","content":"hello world"},
                {"role":"user","content":[{"type":"text","text":"hello world"},{"type":"image_url","image_url":{"url":"data:"}}]}
            ]}"#,
        );
        assert_eq!(p.counter, Counter::O200k);
        assert_eq!(p.model.as_deref(), Some("gpt-4o"));
        assert!(p.stream);
        // 2 + 2 tokens of text, 2 × 3 of message framing, 3 for the reply.
        assert_eq!(p.tokens, 13);
    }

    #[test]
    fn completions_and_responses_fields() {
        assert_eq!(
            openai(r#"{"model":"gpt-4","prompt":"hello world"}"#).tokens,
            2
        );
        assert_eq!(
            openai(r#"{"model":"gpt-4","prompt":["hello world","hello world"]}"#).tokens,
            4
        );
        let p = openai(r#"{"model":"gpt-4.1","instructions":"hello world","input":"hello world"}"#);
        assert_eq!((p.tokens, p.counter), (4, Counter::O200k));
        assert!(!p.stream);
    }

    #[test]
    fn anthropic_reads_system_and_content_blocks() {
        let body = r#"{"model":"claude-sonnet-4","system":[{"type":"text","text":"hello world"}],
            "messages":[{"role":"user","content":"hello world"},
                {"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{"q":"abcdefgh"}}]}]}"#;
        let p = count(Provider::Anthropic, Tokenizer::Auto, body.as_bytes());
        assert_eq!(p.counter, Counter::Cl100k);
        // 2 + 2 text, the tool input's 16 bytes of JSON as 4, framing 2 × 3 + 3.
        assert_eq!(p.tokens, 2 + 2 + 4 + 9);
        // OpenAI has no `system` field: only the messages count.
        let o = count(Provider::OpenAi, Tokenizer::Cl100kBase, body.as_bytes());
        assert_eq!(o.tokens, 2 + 4 + 9);
    }

    #[test]
    fn anything_else_is_a_quarter_of_its_bytes() {
        let p = openai("not json at all");
        assert_eq!((p.tokens, p.counter), (4, Counter::Estimate));
        let p = openai(r#"{"model":"gpt-4o","stream":true,"other":"x"}"#);
        assert_eq!(p.counter, Counter::Estimate);
        assert_eq!(p.model.as_deref(), Some("gpt-4o"));
        assert!(p.stream);
        assert_eq!(openai("").tokens, 0);
        let e = count(
            Provider::OpenAi,
            Tokenizer::Estimate,
            br#"{"prompt":"hello world"}"#,
        );
        assert_eq!((e.tokens, e.counter), (3, Counter::Estimate));
    }

    #[test]
    fn deep_or_odd_values_are_bounded() {
        let deep = format!("{{\"prompt\":{}\"x\"{}}}", "[".repeat(50), "]".repeat(50));
        assert_eq!(openai(&deep).tokens, 0, "beyond 8 levels nothing is walked");
        assert_eq!(openai(r#"{"prompt":[1,2,3]}"#).tokens, 0);
    }
}
