//! The validated configuration: typed values, defaults filled in, references resolved.
//!
//! This is the only form the proxy ever sees. Every value here was checked against the schema
//! and every ID a route, listener or filter list names is known to exist.

mod agent;
mod inference;
mod listener;
mod route;
mod server;
mod upstream;

use std::collections::HashMap;

use serde::Serialize;

pub use agent::{
    Agent, AgentEvent, AgentTransport, BackendKind, BodyMode, CircuitBreaker, Filter, FilterKind,
    FilterType, OnBackendFailure, OnLimit, RateLimit, RateLimitBackend, RateLimitKey, RedisBackend,
    RedisEndpoint, Secret,
};
pub use inference::{Budget, BudgetMode, BudgetPeriod, Inference, Provider, Tokenizer};
pub use listener::{
    ClientAuth, ClientAuthMode, Listener, ListenerProtocol, ListenerTls, PathParameters, SniCert,
    TlsVersion,
};
pub use route::{
    FailureMode, FilterRef, HeaderMatch, HeaderPolicy, HostPattern, Matches, PathMatch, QueryMatch,
    RetryOn, RetryPolicy, Route, RouteLimits,
};
pub use server::{
    Admin, Limits, LogDestination, LogDestinationKind, LogFormat, LogLevel, LogSink, Metrics,
    Observability, Server,
};
pub use upstream::{
    ConnectionPool, HashKey, HashSource, HealthCheck, HealthProbe, LoadBalancing, MAX_TARGETS,
    PassiveHealth, Target, TargetAddr, Upstream, UpstreamTimeouts, UpstreamTls,
};

/// Declares a newtype ID: a string that names one item of a kind, end to end.
macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an ID as written in the configuration.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The ID as written.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

/// Declares an enum whose values are written as kebab-case strings in the configuration.
/// `NAMES` feeds the schema (and so the docs and "did you mean" hints).
macro_rules! config_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $variant),+
        }

        impl $name {
            /// Every value as written in the configuration.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The value called `name`.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }

            /// The value as written in the configuration.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl crate::reader::ConfigEnum for $name {
            const NAMES: &'static [&'static str] = $name::NAMES;
            fn from_name(name: &str) -> Option<Self> {
                $name::from_name(name)
            }
        }
    };
}

pub(crate) use config_enum;

id_type!(
    /// Names a listener.
    ListenerId
);
id_type!(
    /// Names a route.
    RouteId
);
id_type!(
    /// Names an upstream pool.
    UpstreamId
);
id_type!(
    /// Names an agent.
    AgentId
);
id_type!(
    /// Names a built-in filter.
    FilterId
);

/// A complete, validated configuration.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Config {
    /// Process-wide settings.
    pub server: Server,
    /// Traffic listeners, in definition order.
    pub listeners: Vec<Listener>,
    /// Routes, in definition order (the matcher ranks them by priority).
    pub routes: Vec<Route>,
    /// Upstream pools, in definition order.
    pub upstreams: Vec<Upstream>,
    /// External agents, in definition order.
    pub agents: Vec<Agent>,
    /// Built-in filters, in definition order.
    pub filters: Vec<Filter>,
    /// Global hard limits.
    pub limits: Limits,
    /// Logs and metrics.
    pub observability: Observability,
    /// The admin listener; `None` when the `admin` block is absent (no admin listener).
    pub admin: Option<Admin>,
    #[serde(skip)]
    index: Index,
}

/// Lookup tables from ID to position.
#[derive(Clone, Debug, Default)]
struct Index {
    routes: HashMap<RouteId, usize>,
    upstreams: HashMap<UpstreamId, usize>,
    agents: HashMap<AgentId, usize>,
    filters: HashMap<FilterId, usize>,
}

impl Config {
    #[expect(clippy::too_many_arguments, reason = "assembled once, by the decoder")]
    pub(crate) fn new(
        server: Server,
        listeners: Vec<Listener>,
        routes: Vec<Route>,
        upstreams: Vec<Upstream>,
        agents: Vec<Agent>,
        filters: Vec<Filter>,
        limits: Limits,
        observability: Observability,
        admin: Option<Admin>,
    ) -> Self {
        fn index<K: Clone + Eq + std::hash::Hash, T>(
            items: &[T],
            id: impl Fn(&T) -> &K,
        ) -> HashMap<K, usize> {
            items
                .iter()
                .enumerate()
                .map(|(i, t)| (id(t).clone(), i))
                .collect()
        }
        let index = Index {
            routes: index(&routes, |r| &r.id),
            upstreams: index(&upstreams, |u| &u.id),
            agents: index(&agents, |a| &a.id),
            filters: index(&filters, |f| &f.id),
        };
        Self {
            server,
            listeners,
            routes,
            upstreams,
            agents,
            filters,
            limits,
            observability,
            admin,
            index,
        }
    }

    /// The route with this ID.
    pub fn route(&self, id: &str) -> Option<&Route> {
        self.index.routes.get(id).map(|&i| &self.routes[i])
    }

    /// The upstream pool with this ID.
    pub fn upstream(&self, id: &str) -> Option<&Upstream> {
        self.index.upstreams.get(id).map(|&i| &self.upstreams[i])
    }

    /// The agent with this ID.
    pub fn agent(&self, id: &str) -> Option<&Agent> {
        self.index.agents.get(id).map(|&i| &self.agents[i])
    }

    /// The built-in filter with this ID.
    pub fn filter(&self, id: &str) -> Option<&Filter> {
        self.index.filters.get(id).map(|&i| &self.filters[i])
    }

    /// The validated configuration as JSON, every default filled in.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// Serializes a duration as whole milliseconds.
pub(crate) fn ser_ms<S: serde::Serializer>(
    d: &std::time::Duration,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Serializes an optional duration as whole milliseconds or null.
pub(crate) fn ser_opt_ms<S: serde::Serializer>(
    d: &Option<std::time::Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => ser_ms(d, s),
        None => s.serialize_none(),
    }
}
