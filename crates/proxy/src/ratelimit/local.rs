//! The local store of one rate-limit filter: a token bucket per key, held as one number (the
//! GCRA "theoretical arrival time", in nanoseconds since the limiter's epoch), in shards each
//! with its own least-recently-used order. A request costs one hash lookup and a few list
//! updates under one short lock of one shard; it allocates only when a new key is tracked and
//! the shard has not yet grown to its share of `max-keys`.
//!
//! It never waits: a delayed request is given its slot and sleeps elsewhere, holding no lock.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Shards of a store with at least [`SHARD_FROM`] keys; smaller stores have one shard, so
/// their least-recently-used order is exact.
const SHARDS: usize = 16;
/// `max-keys` from which a store is sharded.
const SHARD_FROM: usize = 1024;
const NIL: u32 = u32::MAX;

/// What a bucket holds after a decision, for the `RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quota {
    /// The bucket size (`burst`).
    pub limit: u32,
    /// Requests that would pass at once now.
    pub remaining: u32,
    /// Until the bucket is full again.
    pub reset: Duration,
}

/// What one request gets from a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Take {
    /// It passes now.
    Allowed(Quota),
    /// It passes after waiting this long (its token is reserved).
    Delayed(Duration, Quota),
    /// It does not pass; a request would after this long.
    Rejected(Duration, Quota),
}

/// The rate of one filter, in nanoseconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rate {
    /// Between two tokens.
    interval: u64,
    /// What a full bucket holds: `burst` intervals.
    capacity: u64,
    burst: u32,
    /// Longest wait granted, `None` when over-limit requests are rejected.
    max_delay: Option<u64>,
}

impl Rate {
    /// `per_second` tokens a second into a bucket of `burst`; over the limit, a request may
    /// wait up to `max_delay` when given.
    pub(crate) fn new(per_second: u32, burst: u32, max_delay: Option<Duration>) -> Self {
        let interval = (1_000_000_000 / u64::from(per_second.max(1))).max(1);
        Self {
            interval,
            capacity: interval * u64::from(burst.max(1)),
            burst: burst.max(1),
            max_delay: max_delay.map(nanos),
        }
    }

    /// The decision for a bucket at `tat` (`None`: a new, full bucket) at `now`; the new
    /// `tat` when a token is taken.
    fn take(&self, tat: Option<u64>, now: u64) -> (Take, Option<u64>) {
        let base = tat.map_or(now, |t| t.max(now));
        let ahead = base - now;
        let limit = self.capacity - self.interval;
        if ahead <= limit {
            let next = base + self.interval;
            return (Take::Allowed(self.quota(next - now)), Some(next));
        }
        let wait = ahead - limit;
        if self.max_delay.is_some_and(|max| wait <= max) {
            let next = base + self.interval;
            let q = self.quota(next - now);
            return (Take::Delayed(Duration::from_nanos(wait), q), Some(next));
        }
        (
            Take::Rejected(Duration::from_nanos(wait), self.quota(ahead)),
            None,
        )
    }

    /// The quota of a bucket that is full again in `ahead` nanoseconds.
    fn quota(&self, ahead: u64) -> Quota {
        let free = self.capacity.saturating_sub(ahead) / self.interval;
        Quota {
            limit: self.burst,
            remaining: u32::try_from(free).unwrap_or(u32::MAX),
            reset: Duration::from_nanos(ahead),
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Keys arrive already hashed (keyed SipHash): the map uses them as they are.
#[derive(Debug, Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[derive(Debug)]
struct Node {
    key: u64,
    tat: u64,
    /// Towards the most recently used.
    newer: u32,
    /// Towards the least recently used.
    older: u32,
}

/// One shard: a map from key to slot, and the slots in a doubly-linked recency list.
#[derive(Debug)]
struct Shard {
    index: HashMap<u64, u32, BuildHasherDefault<Prehashed>>,
    nodes: Vec<Node>,
    newest: u32,
    oldest: u32,
    cap: usize,
}

impl Shard {
    fn new(cap: usize) -> Self {
        Self {
            index: HashMap::default(),
            nodes: Vec::new(),
            newest: NIL,
            oldest: NIL,
            cap: cap.max(1),
        }
    }

    fn unlink(&mut self, i: u32) {
        let (newer, older) = {
            let n = &self.nodes[i as usize];
            (n.newer, n.older)
        };
        match newer {
            NIL => self.newest = older,
            j => self.nodes[j as usize].older = older,
        }
        match older {
            NIL => self.oldest = newer,
            j => self.nodes[j as usize].newer = newer,
        }
    }

    fn push_newest(&mut self, i: u32) {
        let old_newest = self.newest;
        {
            let n = &mut self.nodes[i as usize];
            n.newer = NIL;
            n.older = old_newest;
        }
        match old_newest {
            NIL => self.oldest = i,
            j => self.nodes[j as usize].newer = i,
        }
        self.newest = i;
    }

    /// The slot of `key`, made the most recently used; a new key takes a fresh slot or the
    /// least recently used one. `true` when the store grew.
    fn slot(&mut self, key: u64, now: u64) -> (u32, bool) {
        if let Some(&i) = self.index.get(&key) {
            self.unlink(i);
            self.push_newest(i);
            return (i, false);
        }
        let (i, grew) = if self.nodes.len() < self.cap {
            self.nodes.push(Node {
                key,
                tat: now,
                newer: NIL,
                older: NIL,
            });
            (u32::try_from(self.nodes.len() - 1).unwrap_or(NIL), true)
        } else {
            // Evicted: the bucket, and any debt it held, is forgotten.
            let i = self.oldest;
            self.unlink(i);
            let n = &mut self.nodes[i as usize];
            self.index.remove(&n.key);
            n.key = key;
            n.tat = now;
            (i, false)
        };
        self.index.insert(key, i);
        self.push_newest(i);
        (i, grew)
    }
}

/// Every bucket of one filter.
#[derive(Debug)]
pub(crate) struct Store {
    shards: Box<[Mutex<Shard>]>,
    epoch: Instant,
    keys: AtomicUsize,
}

impl Store {
    /// A store of at most `max_keys` buckets.
    pub(crate) fn new(max_keys: usize) -> Self {
        let n = if max_keys >= SHARD_FROM { SHARDS } else { 1 };
        let per = max_keys.div_ceil(n);
        Self {
            shards: (0..n).map(|_| Mutex::new(Shard::new(per))).collect(),
            epoch: Instant::now(),
            keys: AtomicUsize::new(0),
        }
    }

    /// Buckets held now.
    pub(crate) fn keys(&self) -> usize {
        self.keys.load(Ordering::Relaxed)
    }

    /// Takes a token for `key` (a keyed hash) at `rate`.
    pub(crate) fn take(&self, key: u64, rate: &Rate) -> Take {
        let now = nanos(Instant::now().saturating_duration_since(self.epoch));
        let shard = &self.shards[(key >> 32) as usize % self.shards.len()];
        let mut s = shard.lock().unwrap_or_else(PoisonError::into_inner);
        let (i, grew) = s.slot(key, now);
        if grew {
            self.keys.fetch_add(1, Ordering::Relaxed);
        }
        let node = &mut s.nodes[i as usize];
        let (take, next) = rate.take(Some(node.tat), now);
        if let Some(t) = next {
            node.tat = t;
        }
        take
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn allowed(t: Take) -> bool {
        matches!(t, Take::Allowed(_))
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_the_steady_rate() {
        let store = Store::new(10);
        let rate = Rate::new(5, 10, None);
        let passed = (0..12).filter(|_| allowed(store.take(1, &rate))).count();
        assert_eq!(passed, 10);
        tokio::time::advance(199 * MS).await;
        assert!(!allowed(store.take(1, &rate)));
        tokio::time::advance(MS).await;
        assert!(allowed(store.take(1, &rate)));
        assert!(!allowed(store.take(1, &rate)));
        // One token per 200 ms from now on.
        let mut passed = 0;
        for _ in 0..50 {
            tokio::time::advance(20 * MS).await;
            passed += usize::from(allowed(store.take(1, &rate)));
        }
        assert_eq!(passed, 5);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_bucket_refills_to_burst_and_no_further() {
        let store = Store::new(10);
        let rate = Rate::new(10, 3, None);
        for _ in 0..3 {
            assert!(allowed(store.take(7, &rate)));
        }
        assert!(!allowed(store.take(7, &rate)));
        tokio::time::advance(Duration::from_secs(60)).await;
        let passed = (0..5).filter(|_| allowed(store.take(7, &rate))).count();
        assert_eq!(passed, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn keys_are_independent() {
        let store = Store::new(100);
        let rate = Rate::new(1, 2, None);
        for key in 0..50 {
            assert!(allowed(store.take(key, &rate)));
            assert!(allowed(store.take(key, &rate)));
            assert!(!allowed(store.take(key, &rate)), "key {key}");
        }
        assert_eq!(store.keys(), 50);
    }

    #[tokio::test(start_paused = true)]
    async fn the_least_recently_used_bucket_is_evicted_and_its_debt_forgotten() {
        let store = Store::new(2);
        let rate = Rate::new(1, 1, None);
        assert!(allowed(store.take(1, &rate)));
        assert!(allowed(store.take(2, &rate)));
        assert!(!allowed(store.take(1, &rate)), "1 is now the most recent");
        assert!(allowed(store.take(3, &rate)), "evicts 2, the least recent");
        assert_eq!(store.keys(), 2);
        assert!(!allowed(store.take(1, &rate)), "1 was kept");
        assert!(allowed(store.take(2, &rate)), "2 starts again full");
        assert!(!allowed(store.take(2, &rate)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_sharded_store_keeps_at_most_max_keys() {
        let store = Store::new(2048);
        let rate = Rate::new(1, 1, None);
        for key in 0..10_000u64 {
            store.take(key.wrapping_mul(0x9e37_79b9_7f4a_7c15), &rate);
        }
        assert!(store.keys() <= 2048, "{}", store.keys());
    }

    #[tokio::test(start_paused = true)]
    async fn delays_are_reserved_up_to_the_bound_then_rejected() {
        let store = Store::new(10);
        let rate = Rate::new(10, 1, Some(Duration::from_millis(250)));
        assert!(allowed(store.take(1, &rate)));
        let waits: Vec<_> = (0..2)
            .map(|_| match store.take(1, &rate) {
                Take::Delayed(d, _) => d,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(waits, [100 * MS, 200 * MS]);
        let Take::Rejected(retry, _) = store.take(1, &rate) else {
            panic!("a wait of 300 ms is beyond max-delay")
        };
        assert_eq!(retry, 300 * MS);
        // The reserved slots are used up as time passes; then a delay is granted again.
        tokio::time::advance(200 * MS).await;
        assert!(matches!(store.take(1, &rate), Take::Delayed(d, _) if d == 100 * MS));
    }

    #[tokio::test(start_paused = true)]
    async fn quota_values_after_allow_and_reject() {
        let rate = Rate::new(5, 10, None);
        let (t, tat) = rate.take(None, 0);
        let Take::Allowed(q) = t else { panic!("{t:?}") };
        assert_eq!((q.limit, q.remaining, q.reset), (10, 9, 200 * MS));
        let (t, _) = rate.take(Some(2_000_000_000), 0);
        let Take::Rejected(retry, q) = t else {
            panic!("{t:?}")
        };
        assert_eq!((retry, q.remaining, q.reset), (200 * MS, 0, 2000 * MS));
        assert_eq!(tat, Some(200_000_000));
    }
}
