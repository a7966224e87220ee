//! Active health checks: probes that take failing targets out of selection and bring them back.
//!
//! Semantics (the `health-check` block of the configuration reference promises these):
//!
//! - **One probe loop per target** of every upstream that has a `health-check` block. The loops
//!   run in one Pingora background service ([`HealthChecks`]), on tokio, never on a request
//!   worker; they only use `tokio::net`, and every wait is bounded.
//! - **Schedule.** The first probe of a target starts when the service starts, then one starts
//!   every `interval-ms`, measured from the start of the previous one. A probe has a deadline
//!   of `timeout-ms` (validated to be shorter than the interval), so probes of one target never
//!   overlap. If the process stalls, missed probes are not made up in a burst: the schedule
//!   shifts instead.
//! - **HTTP probe** (`http "<path>"`): connect to the target's address, send
//!   `GET <path> HTTP/1.1` with `Host: <host>` (the `host` setting, or the target address as
//!   configured, e.g. `10.0.0.1:8080` or `backend.internal:8080`), `Connection: close` and
//!   `User-Agent: zentinel-health-check`, and read the response head. Healthy if and only if a
//!   status line arrives within the deadline and its status equals `expect-status`. Interim
//!   `1xx` responses (other than `101`) are skipped unless `expect-status` is that status. At
//!   most 8 KiB of the response is read; the body is never read. A connect error, a timeout, a
//!   connection closed before the status line, a malformed status line or more than 8 KiB
//!   before the final status line are failures. Bytes of the path outside visible ASCII are
//!   percent-encoded; a `host` holding control characters or spaces cannot be sent, and every
//!   probe of that check fails (logged at error level when the loop starts).
//! - **HTTP probe over TLS.** When the upstream has a `tls` block, the HTTP probe performs a
//!   TLS handshake after the TCP connect, within the same deadline, and sends the request over
//!   it. Trust, server name (SNI and verified name), `verify` and the client certificate are
//!   exactly those of requests to the upstream ([`crate::upstream_tls`]); the rustls client
//!   configuration is built once per upstream when the service starts. A handshake that fails
//!   (untrusted chain, wrong name, refused client certificate) is a failed probe, with the
//!   TLS error as its reason. (With TLS 1.3 a refused client certificate surfaces as an i/o
//!   error while reading the response: a failure all the same.)
//! - **TCP probe** (`tcp`): healthy if and only if the TCP connect completes within the
//!   deadline. The connection is closed at once. No TLS, even with a `tls` block.
//! - **Thresholds.** Targets start in service (healthy). `unhealthy-threshold` consecutive
//!   failed probes take a healthy target out of selection; `healthy-threshold` consecutive
//!   successful probes bring a down target back. A success resets the failure count and a
//!   failure resets the success count. Transitions are logged: `warn` when a target goes down
//!   (with the last failure), `info` when it comes back, both naming upstream and target;
//!   single failed probes are logged at `debug`.
//! - **Selection.** A target marked down is skipped by every load-balancing algorithm
//!   ([`crate::pool::Pool::available`]), in addition to (and independently of) passive
//!   ejection: a target receives traffic only when neither holds it out. When every target
//!   of a pool is out, requests get `503 no healthy upstream target`.
//! - **Shutdown.** The loops stop as soon as Pingora signals shutdown, abandoning a probe in
//!   progress.
//!
//! - **Readiness.** A target counts as checked (for the admin API's `/ready`) once its first
//!   probe has a result, success or failure.
//!
//! The loops probe the current runtime's pools; a reload stops them and starts the new
//! runtime's (whose pools inherited what the old ones learned).

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use pingora::tls::{ClientConfig, ServerName, TlsConnector};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use zentinel_config::model::{HealthCheck, HealthProbe};

use crate::pool::Pool;
use crate::runtime::{Runtime, Shared};

/// Most bytes of a probe's response that are read before giving up on finding the status.
const MAX_RESPONSE_BYTES: usize = 8 * 1024;
/// The `User-Agent` of HTTP probes.
const USER_AGENT: &str = "zentinel-health-check";

/// A change of a target's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    /// Out of selection.
    Down,
    /// Back in service.
    Up,
}

/// The threshold state machine of one target, apart from any networking.
#[derive(Debug, Clone)]
pub(crate) struct Thresholds {
    healthy: bool,
    /// Consecutive results against the current state (failures while healthy, successes
    /// while down).
    streak: u32,
    healthy_threshold: u32,
    unhealthy_threshold: u32,
}

impl Thresholds {
    /// A target in service, with these thresholds (a threshold of 0 acts as 1).
    pub(crate) fn new(healthy_threshold: u32, unhealthy_threshold: u32) -> Self {
        Self {
            healthy: true,
            streak: 0,
            healthy_threshold: healthy_threshold.max(1),
            unhealthy_threshold: unhealthy_threshold.max(1),
        }
    }

    /// Whether the target is in service.
    #[cfg(test)]
    pub(crate) fn healthy(&self) -> bool {
        self.healthy
    }

    /// Counts one probe result; returns the transition it causes, if any.
    pub(crate) fn record(&mut self, success: bool) -> Option<Transition> {
        if success == self.healthy {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let needed = if self.healthy {
            self.unhealthy_threshold
        } else {
            self.healthy_threshold
        };
        if self.streak < needed {
            return None;
        }
        self.streak = 0;
        self.healthy = success;
        Some(if success {
            Transition::Up
        } else {
            Transition::Down
        })
    }
}

/// Why a probe failed.
#[derive(Debug)]
pub(crate) enum ProbeFailure {
    /// The deadline passed.
    Timeout(Duration),
    /// The TCP connect failed.
    Connect(io::Error),
    /// The TLS handshake failed (including certificate verification).
    Tls(io::Error),
    /// The TLS settings of the upstream could not be prepared for probes.
    TlsSetup(Arc<str>),
    /// Writing the request or reading the response failed.
    Io(io::Error),
    /// The target closed the connection before a status line.
    Closed,
    /// What came back does not start with an HTTP/1 status line.
    Malformed,
    /// No final status line within [`MAX_RESPONSE_BYTES`].
    TooLarge,
    /// A status other than the expected one.
    Status {
        /// Received.
        got: u16,
        /// Expected.
        expected: u16,
    },
    /// The configured `host` cannot be sent as a header.
    InvalidHost,
}

impl fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(d) => write!(f, "no answer within {} ms", d.as_millis()),
            Self::Connect(e) => write!(f, "connect failed: {e}"),
            Self::Tls(e) => write!(f, "TLS handshake failed: {e}"),
            Self::TlsSetup(why) => write!(f, "TLS for health probes unavailable: {why}"),
            Self::Io(e) => write!(f, "i/o error: {e}"),
            Self::Closed => f.write_str("connection closed before a status line"),
            Self::Malformed => f.write_str("malformed status line"),
            Self::TooLarge => write!(f, "no status line in the first {MAX_RESPONSE_BYTES} bytes"),
            Self::Status { got, expected } => write!(f, "status {got}, expected {expected}"),
            Self::InvalidHost => f.write_str("the configured host is not a valid Host header"),
        }
    }
}

/// TLS for the HTTP probes of one target.
#[derive(Clone)]
pub(crate) enum ProbeTls {
    /// The upstream's client configuration and the target's server name.
    Ready {
        /// Built once per upstream.
        connector: TlsConnector,
        /// Sent as SNI and verified.
        name: ServerName<'static>,
    },
    /// The configuration could not be built: every probe fails with this reason.
    Unusable(Arc<str>),
}

impl ProbeTls {
    /// TLS with `config` (`Err`: why it could not be built) to the server `name`.
    pub(crate) fn new(
        config: &Result<Arc<ClientConfig>, Arc<str>>,
        name: Option<ServerName<'static>>,
    ) -> Self {
        match (config, name) {
            (Ok(c), Some(name)) => Self::Ready {
                connector: TlsConnector::from(c.clone()),
                name,
            },
            (Err(why), _) => Self::Unusable(why.clone()),
            (Ok(_), None) => Self::Unusable(Arc::from("no server name for this target")),
        }
    }
}

impl fmt::Debug for ProbeTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ready { name, .. } => f.debug_struct("Ready").field("name", name).finish(),
            Self::Unusable(why) => f.debug_tuple("Unusable").field(why).finish(),
        }
    }
}

/// A probe ready to send to one target.
#[derive(Debug, Clone)]
pub(crate) enum Probe {
    /// A TCP connect.
    Tcp,
    /// An HTTP request (the exact bytes) and the status that counts as healthy.
    Http {
        /// The request head; `None` when the host cannot be sent.
        request: Option<Arc<[u8]>>,
        /// Healthy status.
        expect: u16,
        /// TLS to the target, when the upstream has a `tls` block.
        tls: Option<ProbeTls>,
    },
}

impl Probe {
    /// The probe of `probe` for the target configured as `target` (its `Host` by default),
    /// over `tls` if given (HTTP probes only: a TCP probe stays a plain connect).
    pub(crate) fn new(probe: &HealthProbe, target: &str, tls: Option<ProbeTls>) -> Self {
        match probe {
            HealthProbe::Http {
                path,
                expect_status,
                host,
            } => Self::Http {
                request: http_request(path, host.as_deref().unwrap_or(target)).map(Arc::from),
                expect: *expect_status,
                tls,
            },
            HealthProbe::Tcp => Self::Tcp,
            // `HealthProbe` is non-exhaustive; a kind added later must be handled above.
            _ => Self::Tcp,
        }
    }
}

/// `GET <path> HTTP/1.1` with the probe's headers; `None` when `host` is not a valid header
/// value. Path bytes outside visible ASCII are percent-encoded.
fn http_request(path: &str, host: &str) -> Option<Vec<u8>> {
    if host.is_empty() || !host.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let mut out = Vec::with_capacity(path.len() + host.len() + 96);
    out.extend_from_slice(b"GET ");
    for b in path.bytes() {
        if b.is_ascii_graphic() {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\nConnection: close\r\nUser-Agent: ");
    out.extend_from_slice(USER_AGENT.as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    Some(out)
}

/// Runs `probe` with a deadline; a probe that does not finish in time failed.
pub(crate) async fn within<F>(deadline: Duration, probe: F) -> Result<(), ProbeFailure>
where
    F: Future<Output = Result<(), ProbeFailure>>,
{
    tokio::time::timeout(deadline, probe)
        .await
        .unwrap_or(Err(ProbeFailure::Timeout(deadline)))
}

/// Probes `addr` once, without a deadline (see [`within`]): the TCP connect, then for an
/// HTTP probe the TLS handshake (if any) and the request.
pub(crate) async fn probe(addr: SocketAddr, probe: &Probe) -> Result<(), ProbeFailure> {
    let (request, expect, tls) = match probe {
        Probe::Tcp => {
            TcpStream::connect(addr)
                .await
                .map_err(ProbeFailure::Connect)?;
            return Ok(());
        }
        Probe::Http { request: None, .. } => return Err(ProbeFailure::InvalidHost),
        Probe::Http {
            request: Some(r),
            expect,
            tls,
        } => (r, *expect, tls),
    };
    let tls = match tls {
        None => None,
        Some(ProbeTls::Ready { connector, name }) => Some((connector, name)),
        Some(ProbeTls::Unusable(why)) => return Err(ProbeFailure::TlsSetup(why.clone())),
    };
    let stream = TcpStream::connect(addr)
        .await
        .map_err(ProbeFailure::Connect)?;
    match tls {
        None => exchange(stream, request, expect).await,
        Some((connector, name)) => {
            let stream = connector
                .connect(name.clone(), stream)
                .await
                .map_err(ProbeFailure::Tls)?;
            exchange(stream, request, expect).await
        }
    }
}

/// Sends `request` on `stream` and checks the status of the answer against `expect`.
async fn exchange<S>(mut stream: S, request: &[u8], expect: u16) -> Result<(), ProbeFailure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    stream.write_all(request).await.map_err(ProbeFailure::Io)?;
    // A TLS stream may hold the last record until flushed; a TCP flush does nothing.
    stream.flush().await.map_err(ProbeFailure::Io)?;
    let got = read_status(&mut stream, expect).await?;
    if got == expect {
        Ok(())
    } else {
        Err(ProbeFailure::Status {
            got,
            expected: expect,
        })
    }
}

/// Reads until the final status line (or `expect`, if an interim response has it), reading at
/// most [`MAX_RESPONSE_BYTES`].
async fn read_status<R: AsyncRead + Unpin>(r: &mut R, expect: u16) -> Result<u16, ProbeFailure> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let mut total = 0;
    loop {
        match parse_head(&buf) {
            Parsed::Final(status) => return Ok(status),
            Parsed::Interim { status, .. } if status == expect => return Ok(status),
            Parsed::Interim { len: Some(n), .. } => {
                buf.drain(..n);
                continue;
            }
            Parsed::Malformed => return Err(ProbeFailure::Malformed),
            Parsed::Interim { len: None, .. } | Parsed::Incomplete => {}
        }
        let room = MAX_RESPONSE_BYTES - total;
        if room == 0 {
            return Err(ProbeFailure::TooLarge);
        }
        let n = r
            .read(&mut chunk[..room.min(1024)])
            .await
            .map_err(ProbeFailure::Io)?;
        if n == 0 {
            return Err(ProbeFailure::Closed);
        }
        total += n;
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// What the start of a response buffer holds.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    /// No complete status line yet.
    Incomplete,
    /// Not an HTTP/1 status line.
    Malformed,
    /// A final status (2xx–5xx, or 101).
    Final(u16),
    /// A 1xx interim response; `len` is the length of its head when complete.
    Interim { status: u16, len: Option<usize> },
}

fn parse_head(buf: &[u8]) -> Parsed {
    let Some(eol) = buf.iter().position(|&b| b == b'\n') else {
        // A status line can be refused before its end: it must start with "HTTP/".
        let n = buf.len().min(5);
        return if buf[..n] == b"HTTP/"[..n] {
            Parsed::Incomplete
        } else {
            Parsed::Malformed
        };
    };
    let line = buf[..eol].strip_suffix(b"\r").unwrap_or(&buf[..eol]);
    let Some(status) = status_of(line) else {
        return Parsed::Malformed;
    };
    if !(100..200).contains(&status) || status == 101 {
        return Parsed::Final(status);
    }
    let len = [&b"\r\n\r\n"[..], &b"\n\n"[..]]
        .iter()
        .filter_map(|end| {
            buf.windows(end.len())
                .position(|w| w == *end)
                .map(|p| p + end.len())
        })
        .min();
    Parsed::Interim { status, len }
}

/// The status of `HTTP/<version> <3 digits>[ <reason>]`.
fn status_of(line: &[u8]) -> Option<u16> {
    let rest = line.strip_prefix(b"HTTP/")?;
    let sp = rest.iter().position(|&b| b == b' ')?;
    let (version, rest) = (&rest[..sp], &rest[sp + 1..]);
    if version.is_empty() || !version.iter().all(|b| b.is_ascii_digit() || *b == b'.') {
        return None;
    }
    let (code, after) = rest.split_at_checked(3)?;
    if !code.iter().all(u8::is_ascii_digit) || !(after.is_empty() || after[0] == b' ') {
        return None;
    }
    code.iter()
        .try_fold(0u16, |n, d| Some(n * 10 + u16::from(d - b'0')))
        .filter(|s| (100..=599).contains(s))
}

/// The probe loop of target `i` of `pool`: one `probe()` every interval, each within the
/// check's timeout, until `shutdown` changes. Marks the target down and up on transitions.
pub(crate) async fn watch<F, Fut>(
    pool: &Pool,
    i: usize,
    check: &HealthCheck,
    mut probe: F,
    mut shutdown: ShutdownWatch,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), ProbeFailure>>,
{
    let mut state = Thresholds::new(check.healthy_threshold, check.unhealthy_threshold);
    let mut ticks = tokio::time::interval(check.interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    while !*shutdown.borrow() {
        let outcome = tokio::select! {
            _ = shutdown.changed() => return,
            outcome = async {
                ticks.tick().await;
                within(check.timeout, probe()).await
            } => outcome,
        };
        pool.mark_probed(i);
        let target = &pool.targets[i].name;
        if let Err(e) = &outcome {
            tracing::debug!(upstream = %pool.id, target = %target, reason = %e, "health probe failed");
        }
        match state.record(outcome.is_ok()) {
            Some(Transition::Down) => {
                pool.set_down(i, true);
                let reason = outcome.err().map(|e| e.to_string()).unwrap_or_default();
                tracing::warn!(
                    upstream = %pool.id,
                    target = %target,
                    failures = state.unhealthy_threshold,
                    reason = %reason,
                    "target marked down by active health check"
                );
            }
            Some(Transition::Up) => {
                pool.set_down(i, false);
                tracing::info!(
                    upstream = %pool.id,
                    target = %target,
                    successes = state.healthy_threshold,
                    "target back in service after active health check"
                );
            }
            None => {}
        }
    }
}

/// The probe loop of target `i` of pool `p` of `rt`, with the configured probe (over `tls`
/// when given).
async fn watch_target(
    rt: Arc<Runtime>,
    p: usize,
    i: usize,
    tls: Option<ProbeTls>,
    shutdown: ShutdownWatch,
) {
    let (Some(pool), Some(upstream)) = (rt.pools.get(p), rt.config.upstreams.get(p)) else {
        return;
    };
    let (Some(check), Some(target)) = (&upstream.health_check, pool.targets.get(i)) else {
        return;
    };
    let p = Probe::new(&check.probe, &target.name, tls);
    if let Probe::Http { request: None, .. } = p {
        tracing::error!(
            upstream = %pool.id,
            target = %target.name,
            "health-check host is not a valid Host header; every probe fails"
        );
    }
    // The address is read for every probe: a host name may resolve to a new one.
    watch(pool, i, check, || probe(target.addr(), &p), shutdown).await;
}

/// The rustls client configuration of the HTTP probes of upstream `p`: `None` when the
/// upstream has no `tls` block or probes with TCP; `Err` (logged here) when it cannot be built.
fn probe_tls_config(rt: &Runtime, p: usize) -> Option<Result<Arc<ClientConfig>, Arc<str>>> {
    let upstream = rt.config.upstreams.get(p)?;
    let check = upstream.health_check.as_ref()?;
    if !matches!(check.probe, HealthProbe::Http { .. }) {
        return None;
    }
    let tls = rt.upstream_tls.get(p)?.as_ref()?;
    let config = tls.probe_config().map_err(Arc::<str>::from);
    if let Err(why) = &config {
        tracing::error!(
            upstream = %upstream.id,
            reason = %why,
            "cannot prepare TLS for health probes; every probe fails"
        );
    }
    Some(config)
}

/// The Pingora background service that runs every probe loop.
#[derive(Debug)]
pub(crate) struct HealthChecks {
    shared: Arc<Shared>,
}

impl HealthChecks {
    /// Checks the targets of the runtime `shared` holds, following reloads.
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

/// Starts a probe loop for every checked target of `rt`; each ends when `stop` changes.
fn spawn_loops(rt: &Arc<Runtime>, stop: &ShutdownWatch) -> JoinSet<()> {
    let mut loops = JoinSet::new();
    for (p, (u, pool)) in rt.config.upstreams.iter().zip(&rt.pools).enumerate() {
        if u.health_check.is_none() {
            continue;
        }
        let config = probe_tls_config(rt, p);
        for i in 0..pool.targets.len() {
            let tls = config.as_ref().map(|c| {
                let name = rt
                    .upstream_tls
                    .get(p)
                    .and_then(|t| t.as_ref()?.probe_name(i));
                ProbeTls::new(c, name)
            });
            loops.spawn(watch_target(rt.clone(), p, i, tls, stop.clone()));
        }
    }
    loops
}

#[async_trait]
impl BackgroundService for HealthChecks {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut reloads = self.shared.changes();
        loop {
            // The probes of one runtime; a reload stops them and starts the new runtime's.
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let mut loops = spawn_loops(&self.shared.load(), &stopped);
            tracing::info!(targets = loops.len(), "active health checks started");
            let reloaded = tokio::select! {
                _ = shutdown.changed() => false,
                r = reloads.changed() => r.is_ok(),
            };
            let _ = stop.send(true);
            // Every loop returns once `stop` changes.
            while loops.join_next().await.is_some() {}
            if !reloaded {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;
