//! Control messages: health, metrics, configuration requests, flow control, cancellation and
//! liveness. Enumerations travel as small integers; the codes are part of the contract.

use std::fmt;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

/// Defines an enum carried on the wire as a `u8` code, refusing unknown codes.
macro_rules! coded_enum {
    (
        $(#[$m:meta])*
        pub enum $name:ident ($what:literal) {
            $( $(#[$vm:meta])* $v:ident = $c:literal, )*
        }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vm])* $v, )*
        }

        impl $name {
            /// The integer on the wire.
            pub const fn code(self) -> u8 {
                match self {
                    $( Self::$v => $c, )*
                }
            }

            /// The value whose wire integer is `code`, if any.
            pub const fn from_code(code: u8) -> Option<Self> {
                match code {
                    $( $c => Some(Self::$v), )*
                    _ => None,
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_u8(self.code())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let code = u8::deserialize(d)?;
                Self::from_code(code).ok_or_else(|| {
                    de::Error::invalid_value(de::Unexpected::Unsigned(code.into()), &$what)
                })
            }
        }
    };
}

coded_enum! {
    /// An agent's own view of its health.
    pub enum HealthState ("a health state 1..=4") {
        /// Serving normally.
        Healthy = 1,
        /// Serving, but slower or with reduced function.
        Degraded = 2,
        /// Finishing in-flight work; send nothing new.
        Draining = 3,
        /// Not able to serve; send nothing.
        Unhealthy = 4,
    }
}

impl HealthState {
    /// Whether new calls may be sent to an agent in this state.
    pub const fn accepts_new_calls(self) -> bool {
        matches!(self, Self::Healthy | Self::Degraded)
    }
}

coded_enum! {
    /// A flow-control request from the agent.
    pub enum FlowAction ("a flow action 1 or 2") {
        /// Stop sending new events on this connection.
        Pause = 1,
        /// Start sending events again.
        Resume = 2,
    }
}

/// The agent's health (0x30), agent → proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthStatus {
    /// The state.
    pub state: HealthState,
}

/// Free-form counters (0x31), agent → proxy: the payload is the report itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MetricsReport(pub serde_json::Value);

/// The agent asks for its configuration again (0x32). Any object is accepted; it carries
/// nothing. An empty payload is also accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigUpdateRequest {}

/// Pause or resume (0x33), agent → proxy, for the connection it arrives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowControl {
    /// Pause or resume.
    pub action: FlowAction,
}

/// The proxy no longer needs an answer for `correlation_id` (0x40).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancel {
    /// The abandoned call.
    pub correlation_id: String,
    /// Why.
    pub reason: CancelReason,
}

/// Why a call was cancelled. Codes a reader does not know are kept as [`CancelReason::Other`]
/// (an agent treats them like any other cancel), so a newer proxy never breaks an older agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CancelReason {
    /// 1: the client went away.
    ClientDisconnected,
    /// 2: the proxy's per-call timeout expired.
    Timeout,
    /// 3: the proxy stopped waiting for another reason (the request finished or failed
    /// elsewhere, another filter decided first).
    Abandoned,
    /// 4: the proxy is shutting down or reloading and drops its calls.
    Shutdown,
    /// Any other code.
    Other(u8),
}

impl CancelReason {
    /// The integer on the wire.
    pub const fn code(self) -> u8 {
        match self {
            Self::ClientDisconnected => 1,
            Self::Timeout => 2,
            Self::Abandoned => 3,
            Self::Shutdown => 4,
            Self::Other(c) => c,
        }
    }

    /// The reason for `code`; unknown codes become [`CancelReason::Other`].
    pub const fn from_code(code: u8) -> Self {
        match code {
            1 => Self::ClientDisconnected,
            2 => Self::Timeout,
            3 => Self::Abandoned,
            4 => Self::Shutdown,
            c => Self::Other(c),
        }
    }
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClientDisconnected => f.write_str("client disconnected"),
            Self::Timeout => f.write_str("timeout"),
            Self::Abandoned => f.write_str("abandoned"),
            Self::Shutdown => f.write_str("shutdown"),
            Self::Other(c) => write!(f, "reason {c}"),
        }
    }
}

impl Serialize for CancelReason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.code())
    }
}

impl<'de> Deserialize<'de> for CancelReason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        u8::deserialize(d).map(Self::from_code)
    }
}

/// Liveness probe (0x41); a [`Pong`](crate::Message::Pong) (0x42) echoes it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Ping {
    /// Chosen by the sender, echoed by the answer.
    pub sequence: u64,
    /// Sender's clock, milliseconds since the Unix epoch; echoed by the answer.
    pub timestamp_ms: u64,
}
