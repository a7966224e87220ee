//! The shared store of a rate-limit filter on one Redis server: the same GCRA bucket as
//! [`super::local`], computed atomically by one Lua script that reads the server's clock
//! (`TIME`), so proxies whose clocks differ still agree. A key expires (`PX`) when its bucket
//! is full again, so the server holds only keys in debt.
//!
//! Connections are `pool-size` multiplexed connections whose tasks run on a small runtime of
//! their own, never on the request workers. A lost connection is made again in the
//! background with jittered backoff; while none is up a call fails at once (nothing connects
//! on the request path). Every call is bounded by `timeout-ms`; what a failure turns into is
//! the caller's business (`on-backend-failure`). Failures are logged at most once a second
//! per filter, with the count since the last line, so an outage does not flood the log.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use rand::Rng;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ConnectionAddr, IntoConnectionInfo, RedisError};
use tokio::sync::Notify;
use zentinel_config::model::{FilterId, RedisBackend};

use super::local::{Quota, Take};
use crate::BuildError;
use crate::io_runtime::IoRuntime;

/// The bucket of `KEYS[1]`: `ARGV` = interval, capacity and longest delay (-1: none), in
/// microseconds. Returns `{0, 0, ahead}` (allowed), `{1, wait, ahead}` (delayed, slot
/// reserved) or `{2, wait, ahead}` (rejected), `ahead` being the time until the bucket is
/// full again. Integers are written with `%d`: Lua's default number format keeps 14 digits.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local max_delay = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local ahead = tat - now
local over = ahead - (capacity - interval)
if over > 0 and (max_delay < 0 or over > max_delay) then
  return {2, over, ahead}
end
local next = tat + interval
redis.call('SET', KEYS[1], string.format('%d', next), 'PX', math.ceil((next - now) / 1000))
if over > 0 then return {1, over, next - now} end
return {0, 0, next - now}
";

/// Longest wait for a connection (connect, handshake, `AUTH`, `SELECT`), off the request path.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How often an idle connection is checked.
const PING_EVERY: Duration = Duration::from_secs(1);
/// First and longest pause between two connection attempts (before jitter).
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Failures are logged at most this often per filter.
const LOG_EVERY: Duration = Duration::from_secs(1);
/// Calls that time out in a row before the filter stops calling a server that stopped
/// answering (see [`Breaker`]).
const TRIP_AFTER: u32 = 3;

/// Why a call to the server did not give an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No answer within `timeout-ms`.
    Timeout,
    /// No connection is up.
    Unavailable,
    /// The server or the connection answered with an error.
    Error,
}

impl Failure {
    /// Every failure, in the order of [`Failure::index`].
    pub(crate) const ALL: [Self; 3] = [Self::Timeout, Self::Unavailable, Self::Error];

    /// As written in metrics and logs.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Unavailable => "unavailable",
            Self::Error => "error",
        }
    }

    /// Position in [`Failure::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// The rate of one filter in the script's unit, microseconds.
#[derive(Debug, Clone, Copy)]
struct Micros {
    interval: u64,
    capacity: u64,
    burst: u32,
    max_delay: i64,
}

impl Micros {
    fn new(per_second: u32, burst: u32, max_delay: Option<Duration>) -> Self {
        let interval = (1_000_000 / u64::from(per_second.max(1))).max(1);
        Self {
            interval,
            capacity: interval * u64::from(burst.max(1)),
            burst: burst.max(1),
            max_delay: max_delay.map_or(-1, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
        }
    }

    fn quota(&self, ahead: u64) -> Quota {
        Quota {
            limit: self.burst,
            remaining: u32::try_from(self.capacity.saturating_sub(ahead) / self.interval)
                .unwrap_or(u32::MAX),
            reset: Duration::from_micros(ahead),
        }
    }

    /// The script's answer as a decision.
    fn decide(&self, (code, wait, ahead): (i64, i64, i64)) -> Take {
        let wait = Duration::from_micros(u64::try_from(wait).unwrap_or(0));
        let q = self.quota(u64::try_from(ahead).unwrap_or(0));
        match code {
            0 => Take::Allowed(q),
            1 => Take::Delayed(wait, q),
            _ => Take::Rejected(wait, q),
        }
    }
}

/// One pooled connection: the live one, if any, and a signal that it was found dead.
#[derive(Debug, Default)]
struct Slot {
    conn: ArcSwapOption<MultiplexedConnection>,
    lost: Notify,
}

impl Slot {
    /// Forgets `dead` if it is still the slot's connection, and wakes its supervisor.
    fn lost(&self, dead: &Arc<MultiplexedConnection>) {
        let prev = self.conn.compare_and_swap(dead, None);
        if prev.as_ref().is_some_and(|p| Arc::ptr_eq(p, dead)) {
            self.lost.notify_one();
        }
    }
}

/// Stops calling a server that stopped answering: after [`TRIP_AFTER`] calls in a row time
/// out, calls fail at once (as `unavailable`) instead of each waiting `timeout-ms`, until the
/// server answers again — a ping (once a second, off the request path), a new connection,
/// or a call. One per filter: a hung server hangs every connection to it.
#[derive(Debug, Default)]
struct Breaker {
    in_row: AtomicU32,
    open: AtomicBool,
}

impl Breaker {
    fn is_open(&self) -> bool {
        self.open.load(Ordering::Relaxed)
    }

    /// A call timed out; `true` when this one tripped the breaker.
    fn timed_out(&self) -> bool {
        self.in_row.fetch_add(1, Ordering::Relaxed) + 1 >= TRIP_AFTER
            && !self.open.swap(true, Ordering::Relaxed)
    }

    /// The server answered; `true` when this closed the breaker.
    fn answered(&self) -> bool {
        self.in_row.store(0, Ordering::Relaxed);
        self.open.swap(false, Ordering::Relaxed)
    }
}

/// Whether `e` means the connection is gone (rather than one command failing, or a hung
/// server not answering in time: that connection may well answer again).
fn is_dead(e: &RedisError) -> bool {
    !e.is_timeout() && (e.is_connection_dropped() || e.is_io_error() || e.is_unrecoverable_error())
}

/// The shared store of one filter.
#[derive(Debug)]
pub(crate) struct Shared {
    slots: Arc<[Arc<Slot>]>,
    next: AtomicUsize,
    script: redis::Script,
    /// `key-prefix` + filter ID + `:`.
    prefix: String,
    rate: Micros,
    timeout: Duration,
    log: FailureLog,
    breaker: Arc<Breaker>,
    /// The filter's ID, for logs.
    filter: String,
    /// Where the server is, for logs: `host:port/db`, never the credentials.
    pub server: String,
    /// Keeps the connection tasks, which run on it.
    _io: IoRuntime,
}

impl Shared {
    /// Connects, in the background, to the server of `backend`.
    pub(crate) fn start(
        filter: &FilterId,
        backend: &RedisBackend,
        per_second: u32,
        burst: u32,
        max_delay: Option<Duration>,
    ) -> Result<Self, BuildError> {
        let e = &backend.endpoint;
        let mut redis = redis::RedisConnectionInfo::default().set_db(i64::from(e.db));
        if let Some(user) = &e.username {
            redis = redis.set_username(user);
        }
        if let Some(password) = &e.password {
            redis = redis.set_password(password.expose());
        }
        let info = ConnectionAddr::Tcp(e.host.clone(), e.port)
            .into_connection_info()
            .map(|i| i.set_redis_settings(redis))
            .and_then(Client::open)
            .map_err(|err| BuildError::Internal(format!("filter \"{filter}\": {err}")))?;
        let io = IoRuntime::new("zentinel-ratelimit-redis", "rate-limit")?;
        let slots: Arc<[Arc<Slot>]> = (0..backend.pool_size.max(1))
            .map(|_| Arc::new(Slot::default()))
            .collect();
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(backend.timeout));
        let server = e.to_string();
        let breaker = Arc::new(Breaker::default());
        if let Some(rt) = io.get() {
            for slot in slots.iter() {
                let s = Supervisor {
                    slot: slot.clone(),
                    breaker: breaker.clone(),
                    client: info.clone(),
                    config: config.clone(),
                    filter: filter.to_string(),
                    server: server.clone(),
                };
                rt.spawn(s.run());
            }
        }
        Ok(Self {
            slots,
            next: AtomicUsize::new(0),
            script: redis::Script::new(GCRA),
            prefix: format!("{}{filter}:", backend.key_prefix),
            rate: Micros::new(per_second, burst, max_delay),
            timeout: backend.timeout,
            log: FailureLog::new(),
            breaker,
            filter: filter.to_string(),
            server,
            _io: io,
        })
    }

    /// A live connection, taken in turn; `None` when none is up.
    fn connection(&self) -> Option<(&Slot, Arc<MultiplexedConnection>)> {
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n).find_map(|i| {
            let slot = &self.slots[(start + i) % n];
            slot.conn.load_full().map(|c| (&**slot, c))
        })
    }

    /// Connections up now.
    pub(crate) fn connected(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.conn.load().is_some())
            .count()
    }

    /// Takes a token for the key hashed to `hash`, within `timeout-ms`.
    pub(crate) async fn take(&self, hash: u128) -> Result<Take, Failure> {
        if self.breaker.is_open() {
            return Err(Failure::Unavailable);
        }
        let Some((slot, conn)) = self.connection() else {
            return Err(Failure::Unavailable);
        };
        let mut c = (*conn).clone();
        let mut call = self.script.key(format!("{}{hash:032x}", self.prefix));
        call.arg(self.rate.interval)
            .arg(self.rate.capacity)
            .arg(self.rate.max_delay);
        match tokio::time::timeout(self.timeout, call.invoke_async::<(i64, i64, i64)>(&mut c)).await
        {
            Ok(Ok(answer)) => {
                self.breaker.answered();
                Ok(self.rate.decide(answer))
            }
            Ok(Err(e)) if e.is_timeout() => Err(self.timed_out()),
            Ok(Err(e)) => {
                if is_dead(&e) {
                    slot.lost(&conn);
                }
                Err(Failure::Error)
            }
            Err(_) => Err(self.timed_out()),
        }
    }

    /// Counts a timed-out call towards the breaker.
    fn timed_out(&self) -> Failure {
        if self.breaker.timed_out() {
            tracing::warn!(
                filter = %self.filter,
                server = %self.server,
                "rate-limit backend stopped answering; calls fail at once until it answers a ping"
            );
        }
        Failure::Timeout
    }

    /// Logs `failure`, at most once a second, with the failures since the last line.
    pub(crate) fn log_failure(&self, filter: &FilterId, failure: Failure, fallback: &str) {
        if let Some(count) = self.log.due() {
            tracing::warn!(
                filter = %filter,
                server = %self.server,
                reason = failure.as_str(),
                fallback,
                failures = count,
                "rate-limit backend failed; applying on-backend-failure"
            );
        }
    }
}

/// Counts failures and tells when the next log line is due.
#[derive(Debug)]
struct FailureLog {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last line, plus one (0: none yet).
    last: AtomicU64,
    pending: AtomicU64,
}

impl FailureLog {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            last: AtomicU64::new(0),
            pending: AtomicU64::new(0),
        }
    }

    /// Counts one failure; `Some(failures since the last line)` when a line is due.
    fn due(&self) -> Option<u64> {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1;
        self.due_at(now)
    }

    fn due_at(&self, now: u64) -> Option<u64> {
        self.pending.fetch_add(1, Ordering::Relaxed);
        let last = self.last.load(Ordering::Relaxed);
        let every = u64::try_from(LOG_EVERY.as_millis()).unwrap_or(u64::MAX);
        if last != 0 && now.saturating_sub(last) < every {
            return None;
        }
        self.last
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .ok()
            .map(|_| self.pending.swap(0, Ordering::Relaxed))
    }
}

/// Keeps one slot connected: connects, watches, and connects again after a loss.
struct Supervisor {
    slot: Arc<Slot>,
    breaker: Arc<Breaker>,
    client: Client,
    config: AsyncConnectionConfig,
    filter: String,
    server: String,
}

impl Supervisor {
    async fn run(self) {
        let mut backoff = BACKOFF_MIN;
        let log = FailureLog::new();
        loop {
            let attempt = self
                .client
                .get_multiplexed_async_connection_with_config(&self.config);
            match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
                Ok(Ok(conn)) => {
                    self.answered();
                    tracing::info!(filter = %self.filter, server = %self.server, "rate-limit backend connected");
                    self.slot.conn.store(Some(Arc::new(conn)));
                    backoff = BACKOFF_MIN;
                    self.watch().await;
                    tracing::warn!(filter = %self.filter, server = %self.server, "rate-limit backend connection lost; reconnecting");
                }
                Ok(Err(e)) => {
                    if let Some(n) = log.due() {
                        tracing::warn!(filter = %self.filter, server = %self.server, error = %e, attempts = n, "rate-limit backend: connection failed");
                    }
                }
                Err(_) => {
                    if let Some(n) = log.due() {
                        tracing::warn!(filter = %self.filter, server = %self.server, attempts = n, "rate-limit backend: connection timed out");
                    }
                }
            }
            // Full jitter in [backoff / 2, backoff], so proxies do not reconnect in step.
            let half = backoff / 2;
            let pause = half + half.mul_f64(rand::rng().random::<f64>());
            tokio::time::sleep(pause).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// The server answered: calls go to it again.
    fn answered(&self) {
        if self.breaker.answered() {
            tracing::info!(filter = %self.filter, server = %self.server, "rate-limit backend answers again");
        }
    }

    /// Returns when the connection is found dead, by a call or by a ping; a ping that times
    /// out (a hung server) keeps it: calls time out on their own until it answers again.
    async fn watch(&self) {
        loop {
            tokio::select! {
                () = self.slot.lost.notified() => return,
                () = tokio::time::sleep(PING_EVERY) => {
                    let Some(conn) = self.slot.conn.load_full() else { return };
                    let mut c = (*conn).clone();
                    let cmd = redis::cmd("PING");
                    let ping = cmd.query_async::<()>(&mut c);
                    match tokio::time::timeout(CONNECT_TIMEOUT, ping).await {
                        Ok(Ok(())) => self.answered(),
                        Ok(Err(e)) if is_dead(&e) => {
                            self.slot.lost(&conn);
                            return;
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn script_answers_become_the_local_store_s_decisions() {
        let r = Micros::new(5, 10, None);
        assert_eq!(
            (r.interval, r.capacity, r.max_delay),
            (200_000, 2_000_000, -1)
        );
        let Take::Allowed(q) = r.decide((0, 0, 200_000)) else {
            panic!()
        };
        assert_eq!((q.limit, q.remaining, q.reset), (10, 9, 200 * MS));
        let Take::Rejected(retry, q) = r.decide((2, 200_000, 2_000_000)) else {
            panic!()
        };
        assert_eq!((retry, q.remaining, q.reset), (200 * MS, 0, 2000 * MS));
        let d = Micros::new(10, 1, Some(Duration::from_millis(250)));
        assert_eq!(d.max_delay, 250_000);
        assert!(matches!(d.decide((1, 100_000, 200_000)), Take::Delayed(w, _) if w == 100 * MS));
    }

    #[test]
    fn the_breaker_trips_after_timeouts_in_a_row_and_closes_on_an_answer() {
        let b = Breaker::default();
        assert!(!b.timed_out() && !b.timed_out());
        assert!(!b.is_open());
        assert!(!b.answered(), "an answer resets the count");
        assert!(!b.timed_out() && !b.timed_out());
        assert!(b.timed_out(), "the third in a row trips it");
        assert!(b.is_open());
        assert!(!b.timed_out(), "tripped once");
        assert!(b.answered(), "an answer closes it");
        assert!(!b.is_open());
    }

    #[test]
    fn failures_are_logged_once_then_at_most_once_a_second() {
        let log = FailureLog::new();
        assert_eq!(log.due_at(1), Some(1));
        assert_eq!(log.due_at(2), None);
        assert_eq!(log.due_at(1000), None);
        assert_eq!(log.due_at(1001), Some(3), "the two held back and this one");
        assert_eq!(log.due_at(1500), None);
    }
}
