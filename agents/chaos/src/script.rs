//! What the chaos agent does: one [`Mode`] for the whole process, optionally overridden per
//! request by the `x-chaos-mode` header, with the parameters some modes need.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use zentinel_agent_protocol::{Event, RequestHeaders};

/// The request header that overrides the mode of one call when [`Script::per_request`] is set.
pub const MODE_HEADER: &str = "x-chaos-mode";

/// One scripted behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Answer every event with allow.
    #[default]
    Allow,
    /// Answer with a 403 block.
    Block,
    /// Wait [`Script::delay`], then allow.
    Delay,
    /// Never answer; keep the connection open (pings are still answered).
    Hang,
    /// Allow [`Script::calls`] calls, then stop the whole agent ([`run`](crate::run) returns
    /// an error; the binary exits with status 1).
    CrashAfter,
    /// Write random bytes that are not a frame instead of an answer.
    Garbage,
    /// Write a frame header announcing a 64 MiB frame.
    Oversize,
    /// Write a frame with the unknown type byte 0x7f.
    UnknownType,
    /// Answer with a correlation ID that was never sent.
    WrongCorrelation,
    /// Wait [`Script::delay`] before answering the handshake, then allow.
    SlowHandshake,
}

impl Mode {
    /// Every mode, in the order of the documentation.
    pub const ALL: [Mode; 10] = [
        Self::Allow,
        Self::Block,
        Self::Delay,
        Self::Hang,
        Self::CrashAfter,
        Self::Garbage,
        Self::Oversize,
        Self::UnknownType,
        Self::WrongCorrelation,
        Self::SlowHandshake,
    ];

    /// The name used by `--mode` and `x-chaos-mode` (`"crash-after"`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Block => "block",
            Self::Delay => "delay",
            Self::Hang => "hang",
            Self::CrashAfter => "crash-after",
            Self::Garbage => "garbage",
            Self::Oversize => "oversize",
            Self::UnknownType => "unknown-type",
            Self::WrongCorrelation => "wrong-correlation",
            Self::SlowHandshake => "slow-handshake",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A mode name that is not one of [`Mode::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown chaos mode {0:?} (expected one of: {names})", names = mode_names())]
pub struct UnknownMode(pub String);

fn mode_names() -> String {
    Mode::ALL.map(Mode::name).join(", ")
}

impl FromStr for Mode {
    type Err = UnknownMode;

    /// Parses a mode name, ignoring surrounding whitespace and ASCII case.
    fn from_str(s: &str) -> Result<Self, UnknownMode> {
        let s = s.trim();
        Self::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownMode(s.to_owned()))
    }
}

/// The chaos agent's behaviour.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script {
    /// What to do with every call (and with the handshake, for [`Mode::SlowHandshake`]).
    pub mode: Mode,
    /// The wait of [`Mode::Delay`] and [`Mode::SlowHandshake`].
    pub delay: Duration,
    /// How many calls [`Mode::CrashAfter`] answers before stopping.
    pub calls: u64,
    /// Let a request's `x-chaos-mode` header choose the mode of its request-headers call.
    pub per_request: bool,
}

impl Script {
    /// A script running `mode` with no delay, zero calls and no per-request override.
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            ..Self::default()
        }
    }

    /// Sets [`Script::delay`].
    #[must_use]
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Sets [`Script::calls`].
    #[must_use]
    pub fn with_calls(mut self, calls: u64) -> Self {
        self.calls = calls;
        self
    }

    /// Sets [`Script::per_request`].
    #[must_use]
    pub fn with_per_request(mut self, per_request: bool) -> Self {
        self.per_request = per_request;
        self
    }

    /// The mode for `event`: the `x-chaos-mode` header of a request-headers event when
    /// per-request overrides are on and the header names a mode, the script's mode otherwise.
    /// A header naming no mode is reported as `Err` along with the fallback.
    pub fn mode_for(&self, event: &Event) -> Result<Mode, (Mode, UnknownMode)> {
        match event {
            Event::RequestHeaders(req) if self.per_request => match requested_mode(req) {
                None => Ok(self.mode),
                Some(Ok(mode)) => Ok(mode),
                Some(Err(e)) => Err((self.mode, e)),
            },
            _ => Ok(self.mode),
        }
    }
}

/// The mode named by the request's (first) `x-chaos-mode` header, if it has one.
fn requested_mode(req: &RequestHeaders) -> Option<Result<Mode, UnknownMode>> {
    let value = req.headers.get(MODE_HEADER)?.first()?;
    Some(value.parse())
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::panic,
        clippy::unwrap_used,
        clippy::expect_used,
        reason = "test code fails loudly"
    )]

    use zentinel_agent_protocol::ResponseHeaders;

    use super::*;

    fn headers_event(mode: Option<&str>) -> Event {
        let mut req = RequestHeaders::default();
        if let Some(m) = mode {
            req.headers
                .insert(MODE_HEADER.to_owned(), vec![m.to_owned()]);
        }
        Event::RequestHeaders(req)
    }

    #[test]
    fn every_mode_parses_from_its_name() {
        for mode in Mode::ALL {
            assert_eq!(mode.name().parse::<Mode>(), Ok(mode));
            assert_eq!(mode.to_string(), mode.name());
        }
        assert_eq!(" Crash-After ".parse::<Mode>(), Ok(Mode::CrashAfter));
        assert_eq!(
            "WRONG-CORRELATION".parse::<Mode>(),
            Ok(Mode::WrongCorrelation)
        );
    }

    #[test]
    fn an_unknown_mode_lists_the_known_ones() {
        let e = "explode".parse::<Mode>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown chaos mode \"explode\" (expected one of: allow, block, delay, hang, \
             crash-after, garbage, oversize, unknown-type, wrong-correlation, slow-handshake)"
        );
        assert!("".parse::<Mode>().is_err());
        assert!("crash_after".parse::<Mode>().is_err());
    }

    #[test]
    fn the_header_overrides_only_when_per_request_is_on() {
        let fixed = Script::new(Mode::Block);
        assert_eq!(
            fixed.mode_for(&headers_event(Some("hang"))),
            Ok(Mode::Block)
        );
        let per = Script::new(Mode::Block).with_per_request(true);
        assert_eq!(per.mode_for(&headers_event(Some("hang"))), Ok(Mode::Hang));
        assert_eq!(per.mode_for(&headers_event(None)), Ok(Mode::Block));
        let Err((fallback, e)) = per.mode_for(&headers_event(Some("nope"))) else {
            panic!("an unknown mode is reported");
        };
        assert_eq!(fallback, Mode::Block);
        assert_eq!(e.0, "nope");
        // Only request-headers events carry the header.
        let response = Event::ResponseHeaders(ResponseHeaders::default());
        assert_eq!(per.mode_for(&response), Ok(Mode::Block));
    }

    #[test]
    fn builders_set_each_field() {
        let s = Script::new(Mode::Delay)
            .with_delay(Duration::from_millis(250))
            .with_calls(3)
            .with_per_request(true);
        assert_eq!(
            s,
            Script {
                mode: Mode::Delay,
                delay: Duration::from_millis(250),
                calls: 3,
                per_request: true,
            }
        );
        assert_eq!(Script::default().mode, Mode::Allow);
    }
}
