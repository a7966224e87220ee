//! What each key of an `inference` block has used: a token bucket, a request bucket and its
//! budgets, in a bounded map that forgets the least recently used key (budgets included:
//! they live in the key's entry).
//!
//! A prompt's estimate is charged to the token bucket and reserved on every budget before
//! the request is forwarded; when the exchange ends, the reservation is replaced by what
//! was really used (or given back, for a prompt that never reached the upstream).
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
    /// Tokens used by settled exchanges.
    used: u64,
    /// Estimates reserved by exchanges not yet settled.
    reserved: u64,
    /// Whether settled use reached the limit this period (an `alert-only` crossing is
    /// reported then, once). Reservations do not count: an exchange that will be refunded
    /// must not raise an alert.
    reached: bool,
}

impl BudgetUse {
    /// What the budget has to count against its limit before a new exchange: settled use and
    /// the reservations of exchanges in flight.
    fn committed(&self) -> u64 {
        self.used.saturating_add(self.reserved)
    }

    /// Forgets a past period's use; `Some(start of that period)` when it had reached its
    /// limit.
    fn roll(&mut self, p: BudgetPeriod, unix: u64) -> Option<u64> {
        let start = period::start(p, unix);
        if self.period == start {
            return None;
        }
        let was = self.reached.then_some(self.period);
        *self = Self {
            period: start,
            ..Self::default()
        };
        was
    }
}

/// Keys whose use reached a budget's limit, per period slot: `(period start, keys)`. Only
/// the current period counts; a new period starts from none.
#[derive(Debug, Default)]
struct Reached(Mutex<[(u64, u64); 3]>);

impl Reached {
    fn add(&self, i: usize, start: u64) {
        let mut r = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if r[i].0 != start {
            r[i] = (start, 0);
        }
        r[i].1 += 1;
    }

    fn remove(&self, i: usize, start: u64) {
        let mut r = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if r[i].0 == start {
            r[i].1 = r[i].1.saturating_sub(1);
        }
    }

    fn get(&self, p: BudgetPeriod, unix: u64) -> u64 {
        let r = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (start, n) = r[slot(p)];
        if start == period::start(p, unix) {
            n
        } else {
            0
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
    reached: Reached,
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
            reached: Reached::default(),
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

    /// Keys whose use this period reached the limit of the budget of period `p` (enforced:
    /// refused until the period ends; `alert-only`: alerted), as of `unix`.
    pub(crate) fn reached(&self, p: BudgetPeriod, unix: u64) -> u64 {
        self.reached.get(p, unix)
    }

    /// Forgets, in the reached counts, the budgets of `e` that reached their limit.
    fn forget_reached(&self, e: &Entry) {
        for b in &self.settings.budgets {
            let u = &e.budgets[slot(b.period)];
            if u.reached {
                self.reached.remove(slot(b.period), u.period);
            }
        }
    }

    fn with<T>(&self, key: u64, now: Instant, unix: u64, f: impl FnOnce(&mut Entry) -> T) -> T {
        let shard = &self.shards[(key as usize) % self.shards.len()];
        let mut map = shard.lock().unwrap_or_else(PoisonError::into_inner);
        let s = &self.settings;
        if !map.contains(&key)
            && map.len() >= map.cap().get()
            && let Some((_, evicted)) = map.pop_lru()
        {
            self.forget_reached(&evicted);
        }
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
            if let Some(past) = entry.budgets[slot(b.period)].roll(b.period, unix) {
                self.reached.remove(slot(b.period), past);
            }
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
                .map(|b| {
                    b.limit
                        .saturating_sub(e.budgets[slot(b.period)].committed())
                })
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

    /// Charges a prompt's estimated `tokens` to the token bucket and reserves them on every
    /// budget, if the bucket holds that many and no enforced budget has less left.
    pub(crate) fn charge(
        &self,
        key: u64,
        tokens: u64,
        now: Instant,
        unix: u64,
    ) -> Result<Left, Refused> {
        let s = &self.settings;
        self.with(key, now, unix, |e| {
            let refuse = |why, retry_after, e: &Entry| {
                Err(Refused {
                    why,
                    retry_after,
                    left: self.left(e),
                })
            };
            let want = i128::from(tokens) * MICRO;
            if let Some(tpm) = s.tokens_per_minute {
                if tokens > u64::from(tpm) {
                    return refuse(Exceeded::Tokens, None, e);
                }
                if e.tokens.level < want {
                    return refuse(Exceeded::Tokens, Some(e.tokens.wait_for(tokens, tpm)), e);
                }
            }
            for b in s.budgets.iter().filter(|b| b.mode == BudgetMode::Enforce) {
                let left = b
                    .limit
                    .saturating_sub(e.budgets[slot(b.period)].committed());
                if tokens > left {
                    // Waiting for the next period helps only a prompt within the limit.
                    let wait = (tokens <= b.limit).then(|| {
                        Duration::from_secs(period::end(b.period, unix).saturating_sub(unix))
                    });
                    return refuse(Exceeded::Budget(b.period), wait, e);
                }
            }
            if s.tokens_per_minute.is_some() {
                e.tokens.level -= want;
            }
            for b in &s.budgets {
                let u = &mut e.budgets[slot(b.period)];
                u.reserved = u.reserved.saturating_add(tokens);
            }
            Ok(self.left(e))
        })
    }

    /// Settles a finished request that was charged `charged` tokens at `charged_at` (Unix
    /// seconds) and used `used`: the difference goes to the token bucket; on every budget
    /// the reservation is replaced by the use (a reservation made in a period that has
    /// ended since is left to that period). Returns the budgets whose `alert-only` limit this
    /// request crossed.
    pub(crate) fn settle(
        &self,
        key: u64,
        (charged, charged_at): (u64, u64),
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
                let i = slot(b.period);
                let u = &mut e.budgets[i];
                if period::start(b.period, charged_at) == u.period {
                    u.reserved = u.reserved.saturating_sub(charged);
                }
                u.used = u.used.saturating_add(used);
                if u.used >= b.limit && !u.reached {
                    u.reached = true;
                    self.reached.add(i, u.period);
                    if b.mode == BudgetMode::AlertOnly {
                        crossed.push(b.clone());
                    }
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
        .find(|b| b.mode == BudgetMode::Enforce && e.budgets[slot(b.period)].committed() >= b.limit)
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
        s.settle(1, (500, UNIX), 900, now(), UNIX);
        let r = s.admit(1, now(), UNIX).unwrap_err();
        assert_eq!((r.why, r.left.tokens), (Exceeded::Tokens, Some(0)));
        // 301 missing (300 of debt, 1 to pass).
        assert_eq!(r.retry_after, Some(Duration::from_millis(30_100)));
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(s.admit(1, now(), UNIX).is_ok());
        // Debt never exceeds one minute's worth.
        s.settle(1, (0, UNIX), 1_000_000, now(), UNIX);
        tokio::time::advance(Duration::from_secs(60)).await;
        let r = s.admit(1, now(), UNIX).unwrap_err();
        assert_eq!(r.left.tokens, Some(0), "a minute later, the debt is paid");
        // An answer that used less than charged gives the rest back, never above full.
        s.settle(1, (10_000, UNIX), 0, now(), UNIX);
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
        assert!(s.settle(1, (0, UNIX), 99, now(), UNIX).is_empty());
        assert!(s.admit(1, now(), UNIX).is_ok());
        assert!(s.settle(1, (0, UNIX), 1, now(), UNIX).is_empty());
        let r = s.admit(1, now(), UNIX).unwrap_err();
        assert_eq!(r.why, Exceeded::Budget(BudgetPeriod::Hourly));
        // 2026-12-04T20:30:15Z: the hour ends in 29 min 45 s.
        assert_eq!(r.retry_after, Some(Duration::from_secs(29 * 60 + 45)));
        let next_hour = period::end(BudgetPeriod::Hourly, UNIX);
        assert!(s.admit(1, now(), next_hour).is_ok(), "a new hour");
        let crossed = s.settle(1, (0, UNIX), 60, now(), next_hour);
        assert_eq!(crossed.len(), 1, "daily: 160 of 150");
        assert_eq!(crossed[0].period, BudgetPeriod::Daily);
        assert!(
            s.settle(1, (0, UNIX), 10, now(), next_hour).is_empty(),
            "once"
        );
        assert!(
            s.admit(1, now(), next_hour).is_ok(),
            "alert-only never refuses"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_prompt_over_what_is_left_of_an_enforced_budget_is_refused() {
        let s = Store::new(&settings(
            r#"tokens-per-minute 1000; budget "hourly" { limit 100; }; budget "daily" { limit 10; mode "alert-only"; }"#,
        ));
        let now = Instant::now;
        // 60 reserved on both budgets; alert-only never refuses.
        assert_eq!(s.charge(1, 60, now(), UNIX).map(|l| l.budget), Ok(Some(0)));
        s.settle(1, (60, UNIX), 70, now(), UNIX);
        // 30 left: a prompt of 31 is refused until the hour ends, and costs nothing.
        let r = s.charge(1, 31, now(), UNIX).unwrap_err();
        assert_eq!(r.why, Exceeded::Budget(BudgetPeriod::Hourly));
        assert_eq!(r.retry_after, Some(Duration::from_secs(29 * 60 + 45)));
        assert_eq!(
            r.left.tokens,
            Some(1000 - 70),
            "the token bucket was not charged"
        );
        // Over the whole budget: waiting cannot help.
        let r = s.charge(1, 101, now(), UNIX).unwrap_err();
        assert_eq!(
            (r.why, r.retry_after),
            (Exceeded::Budget(BudgetPeriod::Hourly), None)
        );
        // 30 fit; the reservation counts at once, so a concurrent prompt finds none left.
        assert!(s.charge(1, 30, now(), UNIX).is_ok());
        assert!(s.charge(2, 100, now(), UNIX).is_ok(), "another key");
        let r = s.admit(1, now(), UNIX).unwrap_err();
        assert_eq!(r.why, Exceeded::Budget(BudgetPeriod::Hourly));
        // The exchange never reached the upstream: its reservation is given back.
        s.settle(1, (30, UNIX), 0, now(), UNIX);
        assert_eq!(s.admit(1, now(), UNIX).map(|l| l.budget), Ok(Some(0)));
        assert!(s.charge(1, 30, now(), UNIX).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn reservations_in_flight_never_raise_an_alert() {
        let s = Store::new(&settings(
            r#"budget "daily" { limit 100; mode "alert-only"; }"#,
        ));
        let now = Instant::now;
        // Two exchanges in flight, each reserving 60: 120 committed against 100.
        assert!(s.charge(1, 60, now(), UNIX).is_ok());
        assert!(s.charge(1, 60, now(), UNIX).is_ok());
        // The first used 50: settled use is 50, under the limit, whatever is reserved.
        assert!(s.settle(1, (60, UNIX), 50, now(), UNIX).is_empty());
        assert_eq!(s.reached(BudgetPeriod::Daily, UNIX), 0);
        // The second is refused upstream (a 4xx without usage): nothing was used.
        assert!(s.settle(1, (60, UNIX), 0, now(), UNIX).is_empty());
        // Settled use crossing the limit alerts, once.
        assert!(s.charge(1, 60, now(), UNIX).is_ok());
        let crossed = s.settle(1, (60, UNIX), 55, now(), UNIX);
        assert_eq!(crossed.len(), 1, "{crossed:?}");
        assert_eq!(s.reached(BudgetPeriod::Daily, UNIX), 1);
        assert!(s.settle(1, (0, UNIX), 10, now(), UNIX).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_reservation_from_a_past_period_is_not_taken_from_the_new_one() {
        let s = Store::new(&settings(r#"budget "hourly" { limit 100; }"#));
        let now = Instant::now;
        assert!(s.charge(1, 50, now(), UNIX).is_ok());
        let next_hour = period::end(BudgetPeriod::Hourly, UNIX);
        assert!(s.charge(1, 40, now(), next_hour).is_ok());
        // The first exchange ends in the new hour, having used 10: the new hour's 40 stay.
        s.settle(1, (50, UNIX), 10, now(), next_hour);
        assert_eq!(s.admit(1, now(), next_hour).map(|l| l.budget), Ok(Some(50)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_monthly_budget_holds_until_the_first_of_the_next_month() {
        let s = Store::new(&settings(r#"budget "monthly" { limit 1000; }"#));
        let now = Instant::now;
        // 2026-12-04T20:30:15Z: the month ends on 2027-01-01T00:00:00Z.
        let new_year = period::end(BudgetPeriod::Monthly, UNIX);
        assert_eq!(new_year, 1_798_761_600);
        assert!(s.charge(1, 600, now(), UNIX).is_ok());
        s.settle(1, (600, UNIX), 1000, now(), UNIX);
        let r = s.admit(1, now(), UNIX).unwrap_err();
        assert_eq!(r.why, Exceeded::Budget(BudgetPeriod::Monthly));
        assert_eq!(r.retry_after, Some(Duration::from_secs(new_year - UNIX)));
        assert_eq!(s.reached(BudgetPeriod::Monthly, UNIX), 1);
        // Days later, still December: still refused.
        let dec_31 = new_year - 1;
        let r = s.admit(1, now(), dec_31).unwrap_err();
        assert_eq!(r.retry_after, Some(Duration::from_secs(1)));
        // January: a new budget, and no key has reached it.
        assert_eq!(s.reached(BudgetPeriod::Monthly, new_year), 0);
        assert_eq!(
            s.admit(1, now(), new_year).map(|l| l.budget),
            Ok(Some(1000))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn keys_that_reached_a_budget_are_counted_until_evicted_or_the_period_ends() {
        let s = Store::new(&settings(
            r#"max-keys 2; budget "hourly" { limit 10; }; budget "daily" { limit 15; mode "alert-only"; }"#,
        ));
        let now = Instant::now;
        let (h, d) = (BudgetPeriod::Hourly, BudgetPeriod::Daily);
        s.settle(1, (0, UNIX), 9, now(), UNIX);
        assert_eq!((s.reached(h, UNIX), s.reached(d, UNIX)), (0, 0));
        s.settle(1, (0, UNIX), 1, now(), UNIX);
        s.settle(2, (0, UNIX), 20, now(), UNIX);
        assert_eq!((s.reached(h, UNIX), s.reached(d, UNIX)), (2, 1));
        s.settle(2, (0, UNIX), 20, now(), UNIX);
        assert_eq!(s.reached(h, UNIX), 2, "once per key");
        // A third key evicts key 1, the least recently used, and its count with it.
        assert!(s.admit(3, now(), UNIX).is_ok());
        assert_eq!((s.reached(h, UNIX), s.reached(d, UNIX)), (1, 1));
        // The next hour starts from none; the day goes on.
        let next_hour = period::end(h, UNIX);
        assert_eq!((s.reached(h, next_hour), s.reached(d, next_hour)), (0, 1));
        // Key 2 seen in the new hour: its hourly use rolls over, its daily use stays.
        assert!(
            s.admit(2, now(), next_hour)
                .is_ok_and(|l| l.budget == Some(0))
        );
        assert_eq!((s.reached(h, next_hour), s.reached(d, next_hour)), (0, 1));
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
