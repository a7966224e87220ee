//! Token-aware limits for LLM traffic: a route's `inference` block.

use serde::Serialize;

use super::{RateLimitKey, config_enum};

config_enum!(
    /// The API a route speaks, which decides where prompts and usage are read.
    Provider {
        /// OpenAI and compatible APIs: `messages`, `prompt` or `input`; `usage.prompt_tokens`
        /// and `usage.completion_tokens`.
        OpenAi = "openai",
        /// Anthropic's Messages API: `system` and `messages`; `usage.input_tokens` and
        /// `usage.output_tokens`.
        Anthropic = "anthropic",
        /// Either shape, whichever the request and response carry.
        Generic = "generic",
    }
);

config_enum!(
    /// How a prompt's tokens are counted before the request is forwarded.
    Tokenizer {
        /// For OpenAI, the encoding of the request's `model`; `cl100k-base` otherwise.
        Auto = "auto",
        /// OpenAI's `o200k_base` (GPT-4o, GPT-4.1, o-series and later).
        O200kBase = "o200k-base",
        /// OpenAI's `cl100k_base` (GPT-4, GPT-3.5).
        Cl100kBase = "cl100k-base",
        /// No tokenizer: a quarter of the prompt's bytes, rounded up.
        Estimate = "estimate",
    }
);

config_enum!(
    /// The period of a token budget, on UTC calendar boundaries.
    BudgetPeriod {
        /// From the start of each hour.
        Hourly = "hourly",
        /// From midnight UTC.
        Daily = "daily",
        /// From the first day of each month, midnight UTC.
        Monthly = "monthly",
    }
);

config_enum!(
    /// What an exhausted budget does.
    BudgetMode {
        /// Requests are answered 429 until the period ends.
        Enforce = "enforce",
        /// Requests pass; crossing the limit is logged and counted once per key and period.
        AlertOnly = "alert-only",
    }
);

/// A token budget for one period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Budget {
    /// The period.
    pub period: BudgetPeriod,
    /// Tokens (prompt and completion) a key may use in one period.
    pub limit: u64,
    /// What happens beyond the limit.
    pub mode: BudgetMode,
}

/// A route's `inference` block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Inference {
    /// The API's shape.
    pub provider: Provider,
    /// What the limits are kept per (all parts combined).
    pub key: Vec<RateLimitKey>,
    /// Tokens a key may use per minute; `None`: no token rate limit.
    pub tokens_per_minute: Option<u32>,
    /// Requests a key may send per minute; `None`: no request rate limit.
    pub requests_per_minute: Option<u32>,
    /// Budgets, at most one per period.
    pub budgets: Vec<Budget>,
    /// How prompts are counted.
    pub tokenizer: Tokenizer,
    /// Keys tracked at once; the least recently used is evicted beyond it.
    pub max_keys: u32,
}
