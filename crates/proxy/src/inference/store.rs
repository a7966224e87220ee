//! What each key of an `inference` block has used: a token bucket, a request bucket and its
//! budgets, in a bounded map that forgets the least recently used key.
//!
//! Buckets refill continuously: a full minute's worth at most, gained over a minute. The
//! token bucket may go into debt when an answer used more than its prompt's estimate (at
//! most one minute's worth), so the next requests wait for it. Levels are kept in
//! millionths of a token, so a slow rate still refills between two requests.

use std::num::NonZeroUsize;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use lru::LruCache;
use tokio::time::Instant;
use zentinel_config::model::{Budget, BudgetMode, BudgetPeriod, Inference};

use super::period;

/// Millionths of a token.
const MICRO: i128 = 1_000_000;
const MINUTE_NANOS: i128 = 60_000_000_000;
/// Shards of a store tracking at least [`SHARD_FROM`] keys.
const SHARDS: usize = 16;
const SHARD_FROM: u32 = 1024;

/// A continuously refilled bucket of `per_minute` with at most that much in it.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Micro-units held at `at` (negative: debt).
    level: i128,
    at: Instant,
}

impl Bucket {
    fn full(per_minute: u32, now: Instant) -> Self {
        Self {
            level: i128::from(per_minute) * MICRO,
            at: now,
        }
    }

    /// Brings the level up to `now`.
    fn refill(&mut self, per_minute: u32, now: Instant) {
        let cap = i128::from(per_minute) * MICRO;
        let nanos = i128::try_from(now.saturating_duration_since(self.at).as_nanos())
            .unwrap_or(i128::MAX / 2);
        let gained = nanos.saturating_mul(cap) / MINUTE_NANOS;
        self.level = self.level.saturating_add(gained).min(cap);
        self.at = now;
    }

    /// Whole units held now.
    fn whole(&self) -> u64 {
        u64::try_from(self.level.max(0) / MICRO).unwrap_or(u64::MAX)
    }

    /// Until `units` are held.
    fn wait_for(&self, units: u64, per_minute: u32) -> Duration {
        let missing = (i128::from(units) * MICRO - self.level).max(0);
        let rate = i128::from(per_minute.max(1)) * MICRO;
        let nanos = (missing * MINUTE_NANOS + rate - 1) / rate;
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Until the bucket is full.
    fn until_full(&self, per_minute: u32) -> Duration {
        self.wait_for(u64::from(per_minute), per_minute)
    }
}

/// Use of one budget in its current period.
#[derive(Debug, Clone, Copy, Default)]
struct BudgetUse {
    /// Start of the period counted (Unix seconds).
    period: u64,
    used: u64,
    /// Whether the crossing of an `alert-only` limit was reported this period.
    alerted: bool,
}

impl BudgetUse {
    /// Forgets a past period's use.
    fn roll(&mut self, p: BudgetPeriod, unix: u64) {
        let start = period::start(p, unix);
        if self.period != start {
            *self = Self {
                period: start,
                ..Self::default()
            };
        }
    }
}

/// Everything kept for one key.
#[derive(Debug, Clone)]
struct Entry {
    tokens: Bucket,
    requests: Bucket,
    budgets: [BudgetUse; 3],
}

fn slot(p: BudgetPeriod) -> usize {
    match p {
        BudgetPeriod::Hourly => 0,
        BudgetPeriod::Daily => 1,
        BudgetPeriod::Monthly => 2,
    }
}

/// What a key has left, for the response headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Left {
    /// Tokens left this minute (`None`: no token limit).
    pub tokens: Option<u64>,
    /// Until the token bucket is full again.
    pub tokens_reset: Duration,
    /// Requests left this minute (`None`: no request limit).
    pub requests: Option<u64>,
    /// Tokens left in the tightest budget (`None`: no budget).
    pub budget: Option<u64>,
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exceeded {
    /// `requests-per-minute`.
    Requests,
    /// `tokens-per-minute`.
    Tokens,
    /// An enforced budget of this period.
    Budget(BudgetPeriod),
}

impl Exceeded {
    /// The audit and metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Requests => "requests-per-minute",
            Self::Tokens => "tokens-per-minute",
            Self::Budget(BudgetPeriod::Hourly) => "budget-hourly",
            Self::Budget(BudgetPeriod::Daily) => "budget-daily",
            Self::Budget(BudgetPeriod::Monthly) => "budget-monthly",
        }
    }
}

/// A refusal: what was exceeded, and when a request could pass (`None`: never, the
/// request alone is over the limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refused {
    pub why: Exceeded,
    pub retry_after: Option<Duration>,
    pub left: Left,
}

/// The usage of every key of one route's `inference` block.
#[derive(Debug)]
pub(crate) struct Store {
    settings: Inference,
    shards: Vec<Mutex<LruCache<u64, Entry>>>,
}

impl Store {
    pub(crate) fn new(settings: &Inference) -> Self {
        let (n, per) = if settings.max_keys >= SHARD_FROM {
            (SHARDS, (settings.max_keys as usize).div_ceil(SHARDS))
        } else {
            (1, settings.max_keys as usize)
        };
        let cap = NonZeroUsize::new(per.max(1)).unwrap_or(NonZeroUsize::MIN);
        Self {
            settings: settings.clone(),
            shards: (0..n).map(|_| Mutex::new(LruCache::new(cap))).collect(),
        }
    }

    /// The settings it counts for.
    pub(crate) fn settings(&self) -> &Inference {
        &self.settings
    }

    /// Keys held now.
    pub(crate) fn keys(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    fn with<T>(&self, key: u64, now: Instant, unix: u64, f: impl FnOnce(&mut Entry) -> T) -> T {
        let shard = &self.shards[(key as usize) % self.shards.len()];
        let mut map = shard.lock().unwrap_or_else(PoisonError::into_inner);
        let s = &self.settings;
        let entry = map.get_or_insert_mut(key, || Entry {
            tokens: Bucket::full(s.tokens_per_minute.unwrap_or(0), now),
            requests: Bucket::full(s.requests_per_minute.unwrap_or(0), now),
            budgets: [BudgetUse::default(); 3],
        });
        if let Some(tpm) = s.tokens_per_minute {
            entry.tokens.refill(tpm, now);
        }
        if let Some(rpm) = s.requests_per_minute {
            entry.requests.refill(rpm, now);
        }
        for b in &s.budgets {
            entry.budgets[slot(b.period)].roll(b.period, unix);
        }
        f(entry)
    }

    fn left(&self, e: &Entry) -> Left {
        let s = &self.settings;
        Left {
            tokens: s.tokens_per_minute.map(|_| e.tokens.whole()),
            tokens_reset: s
                .tokens_per_minute
                .map_or(Duration::ZERO, |t| e.tokens.until_full(t)),
            requests: s.requests_per_minute.map(|_| e.requests.whole()),
            budget: s
                .budgets
                .iter()
                .map(|b| b.limit.saturating_sub(e.budgets[slot(b.period)].used))
                .min(),
        }
    }

    /// Admits a request before its body is read: a request token is taken, and the key
    /// must have tokens and enforced budgets left.
    pub(crate) fn admit(&self, key: u64, now: Instant, unix: u64) -> Result<Left, Refused> {
        let s = &self.settings;
        self.with(key, now, unix, |e| {
            let refuse = |why, retry_after, e: &Entry| Refused {
                why,
                retry_after,
                left: self.left(e),
            };
            if let Some(b) = exhausted(&s.budgets, e) {
                let wait = Duration::from_secs(period::end(b.period, unix).saturating_sub(unix));
                return Err(refuse(Exceeded::Budget(b.period), Some(wait), e));
            }
            if let Some(tpm) = s.tokens_per_minute
                && e.tokens.level < MICRO
            {
                let wait = e.tokens.wait_for(1, tpm);
                return Err(refuse(Exceeded::Tokens, Some(wait), e));
            }
            if let Some(rpm) = s.requests_per_minute {
                if e.requests.level < MICRO {
                    let wait = e.requests.wait_for(1, rpm);
                    return Err(refuse(Exceeded::Requests, Some(wait), e));
                }
                e.requests.level -= MICRO;
            }
            Ok(self.left(e))
        })
    }

    /// Charges a prompt's estimated `tokens`, if that many are left.
    pub(crate) fn charge(
        &self,
        key: u64,
        tokens: u64,
        now: Instant,
        unix: u64,
    ) -> Result<Left, Refused> {
        self.with(key, now, unix, |e| {
            if let Some(tpm) = self.settings.tokens_per_minute {
                if tokens > u64::from(tpm) {
                    return Err(Refused {
                        why: Exceeded::Tokens,
                        retry_after: None,
                        left: self.left(e),
                    });
                }
                let want = i128::from(tokens) * MICRO;
                if e.tokens.level < want {
                    return Err(Refused {
                        why: Exceeded::Tokens,
                        retry_after: Some(e.tokens.wait_for(tokens, tpm)),
                        left: self.left(e),
                    });
                }
                e.tokens.level -= want;
            }
            Ok(self.left(e))
        })
    }

    /// Settles a finished request that was charged `charged` tokens and used `used`: the
    /// difference goes to the token bucket, the use to every budget. Returns the budgets
    /// whose `alert-only` limit this request crossed.
    pub(crate) fn settle(
        &self,
        key: u64,
        charged: u64,
        used: u64,
        now: Instant,
        unix: u64,
    ) -> Vec<Budget> {
        let s = &self.settings;
        self.with(key, now, unix, |e| {
            if let Some(tpm) = s.tokens_per_minute {
                let cap = i128::from(tpm) * MICRO;
                let delta = (i128::from(used) - i128::from(charged)) * MICRO;
                e.tokens.level = (e.tokens.level - delta).clamp(-cap, cap);
            }
            let mut crossed = Vec::new();
            for b in &s.budgets {
                let u = &mut e.budgets[slot(b.period)];
                u.used = u.used.saturating_add(used);
                if b.mode == BudgetMode::AlertOnly && u.used >= b.limit && !u.alerted {
                    u.alerted = true;
                    crossed.push(b.clone());
                }
            }
            crossed
        })
    }
}

/// The first enforced budget used up.
fn exhausted<'a>(budgets: &'a [Budget], e: &Entry) -> Option<&'a Budget> {
    budgets
        .iter()
        .find(|b| b.mode == BudgetMode::Enforce && e.budgets[slot(b.period)].used >= b.limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zentinel_config::model::Inference;

    const UNIX: u64 = 1_796_416_215;

    fn settings(block: &str) -> Inference {
        let text = format!(
            r#"listeners {{ listener "w" {{ address "127.0.0.1:1"; }} }}
upstreams {{ upstream "u" {{ target "127.0.0.1:2"; }} }}
routes {{ route "r" {{ upstream "u"; inference {{ provider "openai"; {block} }} }} }}"#
        );
        let c = zentinel_config::load_str("t.kdl", &text).unwrap_or_else(|d| panic!("{d}"));
        c.routes[0]
            .inference
            .clone()
            .unwrap_or_else(|| panic!("inference"))
    }

    #[tokio::test(start_paused = true)]
    async fn a_minute_of_requests_at_once_then_the_rate() {
        let s = Store::new(&settings("requests-per-minute 60;"));
        for i in 0..60 {
            let left = s
                .admit(1, Instant::now(), UNIX)
                .unwrap_or_else(|e| panic!("{i}: {e:?}"));
            assert_eq!(left.requests, Some(59 - i));
        }
        let r = s.admit(1, Instant::now(), UNIX).unwrap_err();
        assert_eq!(r.why, Exceeded::Requests);
        assert_eq!(r.retry_after, Some(Duration::from_secs(1)));
        assert!(s.admit(2, Instant::now(), UNIX).is_ok(), "another key");
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(s.admit(1, Instant::now(), UNIX).is_err());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(s.admit(1, Instant::now(), UNIX).is_ok(), "one a second");
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_are_charged_then_settled_with_debt() {
        let s = Store::new(&settings("tokens-per-minute 600;"));
        let now = Instant::now;
        assert_eq!(s.admit(1, now(), UNIX).map(|l| l.tokens), Ok(Some(600)));
        assert_eq!(
            s.charge(1, 500, now(), UNIX).map(|l| l.tokens),
            Ok(Some(100))
        );
        let r = s.charge(1, 200, now(), UNIX).unwrap_err();
        assert_eq!(r.why, Exceeded::Tokens);
        // 100 missing at 10 a second.
        assert_eq!(r.retry_after, Some(Duration::from_secs(10)));
        // The answer used 900 where 500 were charged: 400 more, 300 into debt.
        s.settle(1, 500, 900, now(), UNIX);
        let r = s.admit(1, now(), UNIX).unwrap_err();
        assert_eq!((r.why, r.left.tokens), (Exceeded::Tokens, Some(0)));
        // 301 missing (300 of debt, 1 to pass).
        assert_eq!(r.retry_after, Some(Duration::from_millis(30_100)));
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(s.admit(1, now(), UNIX).is_ok());
        // Debt never exceeds one minute's worth.
        s.settle(1, 0, 1_000_000, now(), UNIX);
        tokio::time::advance(Duration::from_secs(60)).await;
        let r = s.admit(1, now(), UNIX).unwrap_err();
        assert_eq!(r.left.tokens, Some(0), "a minute later, the debt is paid");
        // An answer that used less than charged gives the rest back, never above full.
        s.settle(1, 10_000, 0, now(), UNIX);
        assert_eq!(s.admit(1, now(), UNIX).map(|l| l.tokens), Ok(Some(600)));
        let whole = s.charge(1, 601, now(), UNIX).unwrap_err();
        assert_eq!((whole.why, whole.retry_after), (Exceeded::Tokens, None));
    }

    #[tokio::test(start_paused = true)]
    async fn budgets_enforce_or_alert_once_per_period() {
        let s = Store::new(&settings(
            r#"budget "hourly" { limit 100; }; budget "daily" { limit 150; mode "alert-only"; }"#,
        ));
        let now = Instant::now;
        assert_eq!(s.admit(1, now(), UNIX).map(|l| l.budget), Ok(Some(100)));
        assert!(s.settle(1, 0, 99, now(), UNIX).is_empty());
        assert!(s.admit(1, now(), UNIX).is_ok());
        assert!(s.settle(1, 0, 1, now(), UNIX).is_empty());
        let r = s.admit(1, now(), UNIX).unwrap_err();
        assert_eq!(r.why, Exceeded::Budget(BudgetPeriod::Hourly));
        // 2026-12-04T20:30:15Z: the hour ends in 29 min 45 s.
        assert_eq!(r.retry_after, Some(Duration::from_secs(29 * 60 + 45)));
        let next_hour = period::end(BudgetPeriod::Hourly, UNIX);
        assert!(s.admit(1, now(), next_hour).is_ok(), "a new hour");
        let crossed = s.settle(1, 0, 60, now(), next_hour);
        assert_eq!(crossed.len(), 1, "daily: 160 of 150");
        assert_eq!(crossed[0].period, BudgetPeriod::Daily);
        assert!(s.settle(1, 0, 10, now(), next_hour).is_empty(), "once");
        assert!(
            s.admit(1, now(), next_hour).is_ok(),
            "alert-only never refuses"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn keys_are_bounded_by_max_keys() {
        let s = Store::new(&settings("requests-per-minute 1; max-keys 3;"));
        for k in 0..10 {
            assert!(s.admit(k, Instant::now(), UNIX).is_ok());
        }
        assert_eq!(s.keys(), 3);
        assert!(
            s.admit(0, Instant::now(), UNIX).is_ok(),
            "evicted, so full again"
        );
        assert!(s.admit(9, Instant::now(), UNIX).is_err(), "kept");
        let big = Store::new(&settings("requests-per-minute 1; max-keys 2000;"));
        for k in 0..5000 {
            let _ = big.admit(k, Instant::now(), UNIX);
        }
        assert!(big.keys() <= 2000 + SHARDS, "{}", big.keys());
    }
}
