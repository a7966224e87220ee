//! Counting tokens: OpenAI's BPE encodings (vocabularies compiled into the binary, loaded
//! once per process on first use), or a documented estimate of a quarter of the bytes.

use std::sync::OnceLock;

use tiktoken_rs::CoreBPE;
use tiktoken_rs::tokenizer::{Tokenizer as Encoding, get_tokenizer};
use zentinel_config::model::{Provider, Tokenizer};

/// How a text is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counter {
    /// `o200k_base`.
    O200k,
    /// `cl100k_base`.
    Cl100k,
    /// A quarter of the bytes, rounded up.
    Estimate,
}

impl Counter {
    /// The counter for a request to `model` under the configured `tokenizer`.
    pub(crate) fn choose(tokenizer: Tokenizer, provider: Provider, model: Option<&str>) -> Self {
        match tokenizer {
            Tokenizer::O200kBase => Self::O200k,
            Tokenizer::Cl100kBase => Self::Cl100k,
            Tokenizer::Estimate => Self::Estimate,
            Tokenizer::Auto => match (provider, model.and_then(get_tokenizer)) {
                (Provider::OpenAi, Some(Encoding::O200kBase | Encoding::O200kHarmony)) => {
                    Self::O200k
                }
                _ => Self::Cl100k,
            },
        }
    }

    /// The tokens of `text`; the estimate when no encoding applies, or when the encoder
    /// panicked on it.
    pub(crate) fn count(self, text: &str) -> u64 {
        let b = match self {
            Self::O200k => bpe(&O200K, tiktoken_rs::o200k_base),
            Self::Cl100k => bpe(&CL100K, tiktoken_rs::cl100k_base),
            Self::Estimate => None,
        };
        b.and_then(|b| guarded(text, |t| b.encode_ordinary(t).len()))
            .map_or_else(|| estimate(text.len()), |n| n as u64)
    }
}

/// `encode(text)`, or `None` if it panicked. `tiktoken-rs` unwraps the result of its
/// splitting regex, which gives up (a `fancy-regex` stack or backtrack limit) on
/// pathological text such as a long run of one punctuation character: such a prompt, or
/// streamed answer, is then counted by the estimate instead of failing the request. The
/// encoder holds no state a panic could leave half-updated (its regex and vocabulary are
/// read-only), so catching the unwind is sound.
fn guarded(text: &str, encode: impl FnOnce(&str) -> usize) -> Option<usize> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| encode(text))) {
        Ok(n) => Some(n),
        Err(_) => {
            tracing::warn!(
                bytes = text.len(),
                "the tokenizer failed on a text; counted by the estimate (a quarter of its bytes)"
            );
            None
        }
    }
}

/// A quarter of `bytes`, rounded up: the estimate when no tokenizer applies.
pub(crate) fn estimate(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4)
}

static O200K: OnceLock<Option<CoreBPE>> = OnceLock::new();
static CL100K: OnceLock<Option<CoreBPE>> = OnceLock::new();

/// The encoding, built once (a vocabulary of the binary; `None` only if it failed to load,
/// after which counts fall back to the estimate).
fn bpe<E: std::fmt::Display>(
    cell: &'static OnceLock<Option<CoreBPE>>,
    load: fn() -> Result<CoreBPE, E>,
) -> Option<&'static CoreBPE> {
    cell.get_or_init(|| match load() {
        Ok(b) => Some(b),
        Err(e) => {
            tracing::error!(error = %e, "a tokenizer vocabulary did not load; counting by estimate");
            None
        }
    })
    .as_ref()
}

/// Loads the encodings a configuration may use, so the first request does not pay for it.
pub(crate) fn warm(counters: impl IntoIterator<Item = Counter>) {
    for c in counters {
        c.count("");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_count_like_tiktoken() {
        // Reference counts from OpenAI's tiktoken.
        assert_eq!(Counter::Cl100k.count("hello world"), 2);
        assert_eq!(Counter::O200k.count("hello world"), 2);
        assert_eq!(
            Counter::Cl100k.count("The quick brown fox jumps over the lazy dog."),
            10
        );
        assert_eq!(Counter::Estimate.count("hello world"), 3);
        assert_eq!(Counter::Cl100k.count(""), 0);
    }

    #[test]
    fn a_panicking_encoder_falls_back_to_the_estimate() {
        let text = "x".repeat(10);
        #[allow(clippy::panic, reason = "the panic is the point")]
        let n = guarded(&text, |_| panic!("the regex gave up"));
        assert_eq!(n, None);
        assert_eq!(guarded(&text, str::len), Some(10));
    }

    #[test]
    fn pathological_text_is_counted_by_the_estimate_not_a_panic() {
        // A million spaces before a word: the splitting regex (`\s+(?!\S)`) exceeds
        // fancy-regex's backtrack limit, and tiktoken-rs unwraps that error. An answer's
        // streamed delta can be this long (event lines are read up to 1 MiB).
        let text = format!("{}x", " ".repeat(1_000_000));
        for c in [Counter::Cl100k, Counter::O200k] {
            c.count("");
            let cell = if c == Counter::Cl100k {
                &CL100K
            } else {
                &O200K
            };
            let b = cell.get().and_then(Option::as_ref);
            let raw = b.map(|b| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.encode_ordinary(&text)))
            });
            assert!(
                raw.is_some_and(|r| r.is_err()),
                "{c:?}: the raw encoder panics on this text"
            );
            assert_eq!(c.count(&text), estimate(text.len()), "{c:?}");
        }
    }

    #[test]
    fn auto_follows_the_model_for_openai_only() {
        let c = |p, m| Counter::choose(Tokenizer::Auto, p, m);
        assert_eq!(c(Provider::OpenAi, Some("gpt-4o-mini")), Counter::O200k);
        assert_eq!(c(Provider::OpenAi, Some("gpt-4")), Counter::Cl100k);
        assert_eq!(c(Provider::OpenAi, Some("not-a-model")), Counter::Cl100k);
        assert_eq!(c(Provider::OpenAi, None), Counter::Cl100k);
        assert_eq!(c(Provider::Anthropic, Some("gpt-4o")), Counter::Cl100k);
        let fixed = Counter::choose(Tokenizer::Estimate, Provider::OpenAi, Some("gpt-4o"));
        assert_eq!(fixed, Counter::Estimate);
        assert_eq!(
            Counter::choose(Tokenizer::O200kBase, Provider::Generic, None),
            Counter::O200k
        );
    }
}
