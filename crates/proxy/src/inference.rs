//! Token-aware limits for LLM traffic (a route's `inference` block).
//!
//! A request passes three gates: before its body is read, its key must have a request and a
//! token left this minute, and budget left in every enforced period ([`store::Store::admit`]);
//! once the body is complete, its prompt is counted ([`prompt`]) and that many tokens are
//! charged, or the request is answered 429 without being forwarded. The answer streams to the
//! client unchanged while its usage is read ([`usage`]); when the exchange ends, the real
//! usage is settled against the estimate and added to the budgets.
//!
//! Keys are hashed like rate-limit keys (SipHash with a key drawn when the route's store is
//! created); neither an API key nor a tenant header is ever kept or logged.

pub(crate) mod period;
pub(crate) mod prompt;
pub(crate) mod scrape;
pub(crate) mod store;
pub(crate) mod tokens;
pub(crate) mod usage;

use std::collections::hash_map::RandomState;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use http::{HeaderName, HeaderValue};
use zentinel_config::model::{BudgetPeriod, Inference, Route};

use crate::metrics::{Registry, bump, get};
use crate::ratelimit::KeyInput;
use prompt::Prompt;
use store::{Exceeded, Left, Store};
use tokens::Counter;
use usage::{Scanner, Source};

/// A route's usage store, shared by the runtimes whose settings for it are unchanged.
#[derive(Debug)]
pub(crate) struct Keyed {
    /// Per-key usage.
    pub store: Store,
    hasher: RandomState,
}

/// What one route's `inference` block needs at request time.
#[derive(Debug)]
pub(crate) struct RouteInference {
    /// Usage per key; carried over a reload when the block is unchanged.
    pub keyed: Arc<Keyed>,
    /// What it did, across reloads.
    pub counters: Arc<InferenceCounters>,
    /// What the key is made of, for audit lines: `header:x-api-key+client-ip`.
    pub key_kinds: String,
}

impl RouteInference {
    /// The block of `route`, if it has one; its tokenizers are loaded now.
    pub(crate) fn new(registry: &Registry, route: &Route) -> Option<Self> {
        let settings = route.inference.as_ref()?;
        let p = settings.provider;
        tokens::warm([
            Counter::choose(settings.tokenizer, p, None),
            Counter::choose(settings.tokenizer, p, Some("gpt-4o")),
        ]);
        Some(Self {
            keyed: Arc::new(Keyed {
                store: Store::new(settings),
                hasher: RandomState::new(),
            }),
            counters: registry.inference(&route.id),
            key_kinds: crate::ratelimit::key_kinds(&settings.key),
        })
    }

    /// Takes over `old`'s usage when the settings are the same.
    pub(crate) fn inherit(&mut self, old: &RouteInference) {
        if old.keyed.store.settings() == self.keyed.store.settings() {
            self.keyed = old.keyed.clone();
        }
    }

    /// The settings.
    pub(crate) fn settings(&self) -> &Inference {
        self.keyed.store.settings()
    }

    /// The keyed hash of a request's key.
    pub(crate) fn key(&self, input: &KeyInput<'_>) -> u64 {
        crate::ratelimit::keyed_hash(&self.keyed.hasher, &self.settings().key, input)
    }
}

/// Seconds since the Unix epoch, for budget periods.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One request's progress through its route's `inference` block.
#[derive(Debug)]
pub(crate) struct Exchange {
    /// The hashed key.
    pub key: u64,
    /// What the key had left after the last gate, for the response headers.
    pub left: Left,
    /// The request body, held until it is complete.
    pub body: BytesMut,
    /// The prompt, once the body was complete.
    pub prompt: Option<Prompt>,
    /// Tokens charged before forwarding.
    pub charged: u64,
    /// When they were charged (Unix seconds): the budget periods they were reserved in.
    pub charged_at: u64,
    /// Whether the complete body passed every request filter and was handed to the
    /// upstream connection: from then on the prompt may have reached the model.
    pub forwarded: bool,
    /// Reads the answer's usage, once its headers arrived.
    pub scanner: Option<Scanner>,
    /// The upstream's status.
    pub status: u16,
    /// Whether the prompt's charge was refused (the request was answered 429).
    pub refused: bool,
}

impl Exchange {
    pub(crate) fn new(key: u64, left: Left) -> Self {
        Self {
            key,
            left,
            body: BytesMut::new(),
            prompt: None,
            charged: 0,
            charged_at: 0,
            forwarded: false,
            scanner: None,
            status: 0,
            refused: false,
        }
    }

    /// The counter used for the prompt (and streamed deltas).
    pub(crate) fn counter(&self, settings: &Inference) -> Counter {
        self.prompt.as_ref().map_or_else(
            || Counter::choose(settings.tokenizer, settings.provider, None),
            |p| p.counter,
        )
    }

    /// (prompt, completion, source) to charge when the exchange ends: the usage the answer
    /// reported (or its streamed deltas) when it did; otherwise the prompt's estimate once
    /// the prompt was forwarded — whether the upstream then answered, failed, or the client
    /// left first, the model may have run — except after a 4xx answer (the provider refused
    /// the request); and nothing for a prompt that never left the proxy.
    pub(crate) fn used(self) -> (u64, u64, Source) {
        let estimate = self.prompt.as_ref().map_or(0, |p| p.tokens);
        let read = self.scanner.map(|s| s.finish().settle(estimate));
        match read {
            Some(used @ (_, _, Source::Usage | Source::Deltas)) => used,
            // A 4xx answer is the provider refusing the request (bad request, authentication,
            // its own rate limit): the model did not run.
            _ if self.forwarded && !(400..500).contains(&self.status) => {
                (estimate, 0, Source::Estimate)
            }
            _ => (0, 0, Source::Estimate),
        }
    }
}

/// Adds to a counter that upstreams can push anywhere (reported usage): it stops at
/// `u64::MAX` instead of wrapping to a small number.
fn add_saturating(c: &AtomicU64, n: u64) {
    let _ = c.fetch_update(
        std::sync::atomic::Ordering::Relaxed,
        std::sync::atomic::Ordering::Relaxed,
        |v| Some(v.saturating_add(n)),
    );
}

/// The `X-Inference-*` headers of an answer: what the key has left.
pub(crate) fn headers(left: &Left) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::with_capacity(4);
    if let Some(t) = left.tokens {
        out.push((
            HeaderName::from_static("x-inference-tokens-remaining"),
            HeaderValue::from(t),
        ));
        out.push((
            HeaderName::from_static("x-inference-tokens-reset"),
            HeaderValue::from(
                left.tokens_reset.as_secs() + u64::from(left.tokens_reset.subsec_nanos() > 0),
            ),
        ));
    }
    if let Some(r) = left.requests {
        out.push((
            HeaderName::from_static("x-inference-requests-remaining"),
            HeaderValue::from(r),
        ));
    }
    if let Some(b) = left.budget {
        out.push((
            HeaderName::from_static("x-inference-budget-remaining"),
            HeaderValue::from(b),
        ));
    }
    out
}

/// `Retry-After` for a refusal, in whole seconds rounded up (none when the request alone is
/// over the limit and waiting cannot help).
pub(crate) fn retry_after(wait: Option<Duration>) -> Option<(HeaderName, HeaderValue)> {
    wait.map(|d| {
        let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        (http::header::RETRY_AFTER, HeaderValue::from(secs.max(1)))
    })
}

/// What one route's `inference` block did, across reloads.
#[derive(Debug, Default)]
pub(crate) struct InferenceCounters {
    allowed: AtomicU64,
    refused: [AtomicU64; 5],
    /// Prompt tokens charged, by source (usage, deltas, estimate).
    prompt: [AtomicU64; 3],
    /// Completion tokens charged, by source.
    completion: [AtomicU64; 3],
    /// Prompt tokens estimated before forwarding.
    estimated: AtomicU64,
    /// `alert-only` budgets crossed, by period.
    alerts: [AtomicU64; 3],
    /// Tokens charged against budgets, by period (counted only for configured periods).
    budget_tokens: [AtomicU64; 3],
}

const REFUSALS: [Exceeded; 5] = [
    Exceeded::Requests,
    Exceeded::Tokens,
    Exceeded::Budget(BudgetPeriod::Hourly),
    Exceeded::Budget(BudgetPeriod::Daily),
    Exceeded::Budget(BudgetPeriod::Monthly),
];
const SOURCES: [Source; 3] = [Source::Usage, Source::Deltas, Source::Estimate];
const PERIODS: [BudgetPeriod; 3] = [
    BudgetPeriod::Hourly,
    BudgetPeriod::Daily,
    BudgetPeriod::Monthly,
];

fn index<T: PartialEq>(all: &[T], x: &T) -> usize {
    all.iter().position(|y| y == x).unwrap_or(0)
}

impl InferenceCounters {
    pub(crate) fn allowed(&self) {
        bump(&self.allowed);
    }

    pub(crate) fn refused(&self, why: Exceeded) {
        bump(&self.refused[index(&REFUSALS, &why)]);
    }

    pub(crate) fn estimated(&self, tokens: u64) {
        add_saturating(&self.estimated, tokens);
    }

    pub(crate) fn used(&self, prompt: u64, completion: u64, source: Source) {
        let i = index(&SOURCES, &source);
        add_saturating(&self.prompt[i], prompt);
        add_saturating(&self.completion[i], completion);
    }

    /// `tokens` charged against the budget of `period`.
    pub(crate) fn budget_charged(&self, period: BudgetPeriod, tokens: u64) {
        add_saturating(&self.budget_tokens[index(&PERIODS, &period)], tokens);
    }

    /// Tokens charged against the budget of `period`.
    pub(crate) fn budget_tokens(&self, period: BudgetPeriod) -> u64 {
        get(&self.budget_tokens[index(&PERIODS, &period)])
    }

    pub(crate) fn alert(&self, period: BudgetPeriod) {
        bump(&self.alerts[index(&PERIODS, &period)]);
    }

    /// `(outcome, requests)`: allowed, then each refusal.
    pub(crate) fn outcomes(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        std::iter::once(("allowed", get(&self.allowed))).chain(
            REFUSALS
                .iter()
                .zip(&self.refused)
                .map(|(w, c)| (w.label(), get(c))),
        )
    }

    /// `(kind, source, tokens)`.
    pub(crate) fn tokens(&self) -> impl Iterator<Item = (&'static str, &'static str, u64)> + '_ {
        let prompt = SOURCES
            .iter()
            .zip(&self.prompt)
            .map(|(s, c)| ("prompt", s.label(), get(c)));
        let completion = SOURCES
            .iter()
            .zip(&self.completion)
            .map(|(s, c)| ("completion", s.label(), get(c)));
        prompt.chain(completion)
    }

    pub(crate) fn estimated_total(&self) -> u64 {
        get(&self.estimated)
    }

    /// `(period, alerts)`.
    pub(crate) fn alerts(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        PERIODS
            .iter()
            .zip(&self.alerts)
            .map(|(p, c)| (p.as_str(), get(c)))
    }
}

#[cfg(test)]
mod tests {
    use zentinel_config::model::{Provider, Tokenizer};

    use super::*;

    /// An exchange whose prompt was counted at 8 and charged; `answer` is the upstream's
    /// answer, if one arrived (content type, body).
    fn exchange(forwarded: bool, answer: Option<(&str, &str)>) -> Exchange {
        let mut ex = Exchange::new(1, Left::default());
        ex.prompt = Some(prompt::count(
            Provider::OpenAi,
            Tokenizer::Cl100kBase,
            br#"{"messages":[{"role":"user","content":"hello world"}]}"#,
        ));
        ex.charged = 8;
        ex.forwarded = forwarded;
        if let Some((ty, body)) = answer {
            let mut s = Scanner::new(Some(ty), None, Counter::Cl100k);
            s.feed(body.as_bytes());
            ex.scanner = Some(s);
            ex.status = 502;
        }
        ex
    }

    #[test]
    fn the_estimate_stays_charged_once_the_prompt_was_forwarded() {
        // Connect failure, refusal before forwarding: given back.
        assert_eq!(exchange(false, None).used(), (0, 0, Source::Estimate));
        // The client left, or the upstream failed, after the prompt went out.
        assert_eq!(exchange(true, None).used(), (8, 0, Source::Estimate));
        let error = ("application/json", r#"{"error":"bad gateway"}"#);
        assert_eq!(exchange(true, Some(error)).used(), (8, 0, Source::Estimate));
        // A real usage always wins.
        let usage = (
            "application/json",
            r#"{"usage":{"prompt_tokens":3,"completion_tokens":4}}"#,
        );
        assert_eq!(exchange(true, Some(usage)).used(), (3, 4, Source::Usage));
        assert_eq!(exchange(false, Some(usage)).used(), (3, 4, Source::Usage));
        // A 4xx is the provider refusing the request before the model ran: given back.
        for status in [400, 401, 429] {
            let mut ex = exchange(true, Some(error));
            ex.status = status;
            assert_eq!(ex.used(), (0, 0, Source::Estimate), "{status}");
        }
    }

    #[test]
    fn counters_stop_at_the_maximum() {
        let c = AtomicU64::new(u64::MAX - 1);
        add_saturating(&c, 5);
        assert_eq!(c.load(std::sync::atomic::Ordering::Relaxed), u64::MAX);
    }
}
