//! Built-in rate limiting (`filters { filter "…" { type "rate-limit"; … } }`): one
//! [`Limiter`] per filter, with its token buckets in a bounded [`local::Store`], and each
//! route's list of the limiters it applies, prepared when the runtime is built.
//!
//! A key is never kept or logged as it was sent: its parts are hashed with a key chosen at
//! random when the limiter is created (SipHash), and only that hash is stored. A filter with
//! a shared backend hashes instead with a key derived from its ID (SipHash-1-3, 128 bits,
//! over an explicit encoding of the parts), so every proxy stores a client under the same
//! name. A request without a header or cookie the key names gets an explicit "absent"
//! part, so all such requests share one bucket per remaining parts.
//!
//! Nothing here waits, except a shared limiter's call to its server (bounded by its
//! `timeout-ms`): a delayed request sleeps in the proxy phase, holding no lock.

pub(crate) mod local;
pub(crate) mod redis;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};
use siphasher::sip128::{Hasher128, SipHasher13};
use zentinel_config::model::{
    Config, FilterId, FilterKind, FilterRef, OnBackendFailure, OnLimit, RateLimit,
    RateLimitBackend, RateLimitKey, Route,
};

use crate::BuildError;
use crate::limits;
use crate::metrics::{BackendFailures, RateLimitCounters, Registry};
pub(crate) use local::{Quota, Take};
use local::{Rate, Store};
pub(crate) use redis::Failure;

/// One `rate-limit` filter, ready to count.
#[derive(Debug)]
pub(crate) struct Limiter {
    /// Its ID.
    pub id: FilterId,
    /// Its settings, as configured.
    pub settings: RateLimit,
    /// The parts of its key, for audit lines: `client-ip+header:x-api-key`.
    pub key_kinds: String,
    rate: Rate,
    /// The buckets of a local filter, or a shared filter's fallback (`on-backend-failure
    /// "local"`).
    store: Store,
    hasher: RandomState,
    shared: Option<SharedLimit>,
}

/// The shared part of a filter with a `backend`.
#[derive(Debug)]
struct SharedLimit {
    store: redis::Shared,
    on_failure: OnBackendFailure,
    /// The SipHash key derived from the filter's ID: the same in every proxy.
    sip: (u64, u64),
    failures: Arc<BackendFailures>,
}

/// What a shared limiter decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shared {
    /// Counted, by the server or by the local fallback.
    Counted(Take),
    /// The server failed and `on-backend-failure "open"`: the request passes, uncounted.
    Uncounted,
    /// The server failed and `on-backend-failure "closed"`: the request is refused (503).
    Refused(Failure),
}

/// What a request's key is made of.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyInput<'a> {
    /// The trusted client address (never a raw `X-Forwarded-For`).
    pub client_ip: Option<IpAddr>,
    /// The route's ID.
    pub route: &'a str,
    /// The request headers.
    pub headers: &'a HeaderMap,
}

/// The SipHash key of a shared filter: a fixed function of its ID.
fn sip_key(id: &FilterId) -> (u64, u64) {
    let mut h = SipHasher13::new();
    h.write(b"zentinel rate-limit key\0");
    h.write(id.as_str().as_bytes());
    let v = h.finish128().as_u128();
    ((v >> 64) as u64, v as u64)
}

/// Writes `value` length-prefixed, or the absent marker.
fn write_part(h: &mut SipHasher13, value: Option<&[u8]>) {
    match value {
        Some(v) => {
            h.write(&[1]);
            h.write(&(v.len() as u64).to_le_bytes());
            h.write(v);
        }
        None => h.write(&[0]),
    }
}

impl Limiter {
    fn new(id: FilterId, settings: &RateLimit, registry: &Registry) -> Result<Self, BuildError> {
        let max_delay = (settings.on_limit == OnLimit::Delay).then_some(settings.max_delay);
        let key_kinds = key_kinds(&settings.key);
        let (rps, burst) = (settings.requests_per_second, settings.burst);
        let shared = match &settings.backend {
            None => None,
            Some(RateLimitBackend::Redis(b)) => Some(SharedLimit {
                store: redis::Shared::start(&id, b, rps, burst, max_delay)?,
                on_failure: b.on_backend_failure,
                sip: sip_key(&id),
                failures: registry.rate_limit_backend(&id),
            }),
            Some(other) => {
                return Err(BuildError::Internal(format!(
                    "filter \"{id}\": backend {other:?} is not supported"
                )));
            }
        };
        Ok(Self {
            id,
            rate: Rate::new(rps, burst, max_delay),
            store: Store::new(settings.max_keys as usize),
            settings: settings.clone(),
            key_kinds,
            hasher: RandomState::new(),
            shared,
        })
    }

    /// Whether `settings` are exactly this limiter's (then its buckets carry over a reload).
    fn same_settings(&self, settings: &RateLimit) -> bool {
        let s = &self.settings;
        s.requests_per_second == settings.requests_per_second
            && s.burst == settings.burst
            && s.key == settings.key
            && s.on_limit == settings.on_limit
            && s.max_delay == settings.max_delay
            && s.max_keys == settings.max_keys
            && s.backend == settings.backend
    }

    /// The keyed hash of the request's key.
    fn key(&self, input: &KeyInput<'_>) -> u64 {
        keyed_hash(&self.hasher, &self.settings.key, input)
    }

    /// The stable hash of the request's key, for a shared filter.
    fn stable_key(&self, sip: (u64, u64), input: &KeyInput<'_>) -> u128 {
        let mut h = SipHasher13::new_with_keys(sip.0, sip.1);
        for part in &self.settings.key {
            match part {
                RateLimitKey::ClientIp => match input.client_ip {
                    Some(IpAddr::V4(ip)) => write_part(&mut h, Some(&ip.octets())),
                    Some(IpAddr::V6(ip)) => write_part(&mut h, Some(&ip.octets())),
                    None => write_part(&mut h, None),
                },
                RateLimitKey::Route => write_part(&mut h, Some(input.route.as_bytes())),
                RateLimitKey::Header(name) => write_part(
                    &mut h,
                    input.headers.get(name.as_str()).map(HeaderValue::as_bytes),
                ),
                RateLimitKey::Cookie(name) => write_part(
                    &mut h,
                    limits::cookie(input.headers, name).map(str::as_bytes),
                ),
                other => write_part(&mut h, Some(format!("{other:?}").as_bytes())),
            }
        }
        h.finish128().as_u128()
    }

    /// Whether the filter counts on a shared backend (then [`Limiter::take_shared`] applies).
    pub(crate) fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Takes a token for the request described by `input` from the local store: no
    /// allocation, no waiting.
    pub(crate) fn take(&self, input: &KeyInput<'_>) -> Take {
        self.store.take(self.key(input), &self.rate)
    }

    /// Takes a token on the shared backend, within its `timeout-ms`; a failure is counted,
    /// logged (at most once a second) and turned into what `on-backend-failure` says.
    pub(crate) async fn take_shared(&self, input: &KeyInput<'_>) -> Shared {
        let Some(s) = &self.shared else {
            return Shared::Counted(self.take(input));
        };
        let hash = self.stable_key(s.sip, input);
        let failure = match s.store.take(hash).await {
            Ok(take) => return Shared::Counted(take),
            Err(f) => f,
        };
        s.failures.count(failure, s.on_failure);
        s.store
            .log_failure(&self.id, failure, s.on_failure.as_str());
        match s.on_failure {
            OnBackendFailure::Open => Shared::Uncounted,
            OnBackendFailure::Closed => Shared::Refused(failure),
            // The low half of the stable hash is as good a store key as the random one.
            _ => Shared::Counted(self.store.take(hash as u64, &self.rate)),
        }
    }

    /// Live connections to the shared backend, `None` for a local filter.
    pub(crate) fn backend_connections(&self) -> Option<usize> {
        self.shared.as_ref().map(|s| s.store.connected())
    }

    /// Buckets held now.
    pub(crate) fn keys(&self) -> usize {
        self.store.keys()
    }
}

/// The hash of the request's key made of `parts`, under the process-local `hasher`: what a
/// local store keeps instead of the key (also used by `inference` blocks).
pub(crate) fn keyed_hash(
    hasher: &RandomState,
    parts: &[RateLimitKey],
    input: &KeyInput<'_>,
) -> u64 {
    let mut h = hasher.build_hasher();
    for part in parts {
        match part {
            RateLimitKey::ClientIp => input.client_ip.hash(&mut h),
            RateLimitKey::Route => input.route.hash(&mut h),
            RateLimitKey::Header(name) => input
                .headers
                .get(name.as_str())
                .map(HeaderValue::as_bytes)
                .hash(&mut h),
            RateLimitKey::Cookie(name) => limits::cookie(input.headers, name).hash(&mut h),
            other => std::mem::discriminant(other).hash(&mut h),
        }
    }
    h.finish()
}

/// What a key is made of, for audit lines: `client-ip+header:x-api-key`.
pub(crate) fn key_kinds(parts: &[RateLimitKey]) -> String {
    parts
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("+")
}

/// Every limiter of one configuration, in `config.filters` order.
#[derive(Debug, Default)]
pub(crate) struct Limiters {
    /// The limiters.
    pub list: Vec<Arc<Limiter>>,
}

impl Limiters {
    /// A limiter for each `rate-limit` filter of `config`: the one of `previous` (the
    /// runtime being replaced) when its ID and settings are unchanged, so it keeps its
    /// buckets and its connections; otherwise a fresh one (full buckets; a shared filter
    /// starts connecting to its server in the background).
    pub(crate) fn new(
        config: &Config,
        registry: &Registry,
        previous: Option<&Limiters>,
    ) -> Result<Self, BuildError> {
        let list = config
            .filters
            .iter()
            .map(|f| match &f.kind {
                FilterKind::RateLimit(r) => {
                    let kept = previous.and_then(|p| {
                        p.list
                            .iter()
                            .find(|o| o.id == f.id && o.same_settings(r))
                            .cloned()
                    });
                    match kept {
                        Some(l) => Ok(l),
                        None => Limiter::new(f.id.clone(), r, registry).map(Arc::new),
                    }
                }
                other => Err(BuildError::Internal(format!(
                    "filter \"{}\": {other:?} is not supported",
                    f.id
                ))),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { list })
    }
}

/// A limiter a route applies.
#[derive(Debug)]
pub(crate) struct RouteLimit {
    /// Index in [`Limiters::list`].
    pub limiter: usize,
    /// What it did on this route, across reloads.
    pub counters: Arc<RateLimitCounters>,
}

/// The built-in filters of `route`, in its `filters` order.
pub(crate) fn route_plan(
    limiters: &Limiters,
    registry: &Registry,
    route: &Route,
) -> Vec<RouteLimit> {
    route
        .filters
        .iter()
        .filter_map(|f| match f {
            FilterRef::Builtin(id) => limiters.list.iter().position(|l| l.id == *id),
            _ => None,
        })
        .map(|limiter| RouteLimit {
            counters: registry.rate_limit(&route.id, &limiters.list[limiter].id),
            limiter,
        })
        .collect()
}

/// Whole seconds, rounded up.
fn ceil_secs(d: std::time::Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` headers
/// (draft-ietf-httpapi-ratelimit-headers-07), without allocating.
pub(crate) fn headers(q: &Quota) -> [(HeaderName, HeaderValue); 3] {
    [
        (
            HeaderName::from_static("ratelimit-limit"),
            HeaderValue::from(q.limit),
        ),
        (
            HeaderName::from_static("ratelimit-remaining"),
            HeaderValue::from(q.remaining),
        ),
        (
            HeaderName::from_static("ratelimit-reset"),
            HeaderValue::from(ceil_secs(q.reset)),
        ),
    ]
}

/// `Retry-After` in whole seconds, rounded up.
pub(crate) fn retry_after(d: std::time::Duration) -> (HeaderName, HeaderValue) {
    (http::header::RETRY_AFTER, HeaderValue::from(ceil_secs(d)))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn config(filters: &str) -> Config {
        let text = format!(
            r#"listeners {{ listener "w" {{ address "127.0.0.1:1"; }} }}
upstreams {{ upstream "u" {{ target "127.0.0.1:2"; }} }}
filters {{ {filters} }}
routes {{ route "r" {{ upstream "u"; filters "f"; }} }}"#
        );
        zentinel_config::load_str("t.kdl", &text).unwrap_or_else(|d| panic!("{d}"))
    }

    #[test]
    fn header_values_round_up_and_name_the_draft_fields() {
        let q = Quota {
            limit: 10,
            remaining: 3,
            reset: Duration::from_millis(1200),
        };
        let [a, b, c] = headers(&q);
        let h = [retry_after(Duration::from_millis(200)), a, b, c];
        let text: Vec<_> = h
            .iter()
            .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap_or("?")))
            .collect();
        assert_eq!(
            text,
            [
                "retry-after: 1",
                "ratelimit-limit: 10",
                "ratelimit-remaining: 3",
                "ratelimit-reset: 2"
            ]
        );
        assert_eq!(ceil_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after(Duration::from_nanos(1)).1, "1");
    }

    #[tokio::test(start_paused = true)]
    async fn header_and_cookie_keys_with_an_explicit_absent_part() {
        let c = config(
            r#"filter "f" { type "rate-limit"; requests-per-second 1; burst 1; key "header:x-api-key" "cookie:s"; }"#,
        );
        let limiters =
            Limiters::new(&c, &Registry::default(), None).unwrap_or_else(|e| panic!("{e}"));
        let l = &limiters.list[0];
        assert_eq!(l.key_kinds, "header:x-api-key+cookie:s");
        let mut a = HeaderMap::new();
        a.insert("x-api-key", HeaderValue::from_static("a"));
        let mut b = HeaderMap::new();
        b.insert("x-api-key", HeaderValue::from_static("b"));
        let mut empty_value = HeaderMap::new();
        empty_value.insert("x-api-key", HeaderValue::from_static(""));
        let none = HeaderMap::new();
        let input = |headers| KeyInput {
            client_ip: None,
            route: "r",
            headers,
        };
        for h in [&a, &b, &empty_value, &none] {
            assert!(matches!(l.take(&input(h)), Take::Allowed(_)));
        }
        for h in [&a, &b, &empty_value, &none] {
            assert!(matches!(l.take(&input(h)), Take::Rejected(..)));
        }
        assert_eq!(l.keys(), 4, "absent is its own key, apart from empty");
    }

    #[test]
    fn shared_keys_are_the_same_in_every_limiter_and_apart_per_filter() {
        let settings = |text| {
            let c = config(text);
            let FilterKind::RateLimit(r) = &c.filters[0].kind else {
                panic!()
            };
            r.clone()
        };
        let r = settings(
            r#"filter "f" { type "rate-limit"; requests-per-second 1; key "client-ip" "header:x-k"; }"#,
        );
        let reg = Registry::default();
        let a = Limiter::new(FilterId::new("f"), &r, &reg).unwrap_or_else(|e| panic!("{e}"));
        let b = Limiter::new(FilterId::new("f"), &r, &reg).unwrap_or_else(|e| panic!("{e}"));
        let (sa, sb, sg) = (sip_key(&a.id), sip_key(&b.id), sip_key(&FilterId::new("g")));
        assert_eq!(sa, sb);
        assert_ne!(sa, sg);
        let mut with = HeaderMap::new();
        with.insert("x-k", HeaderValue::from_static(""));
        let none = HeaderMap::new();
        let input = |headers| KeyInput {
            client_ip: Some(IpAddr::from([10, 0, 0, 1])),
            route: "r",
            headers,
        };
        assert_eq!(
            a.stable_key(sa, &input(&with)),
            b.stable_key(sb, &input(&with))
        );
        assert_ne!(
            a.stable_key(sa, &input(&with)),
            a.stable_key(sa, &input(&none))
        );
        assert_ne!(
            a.stable_key(sa, &input(&none)),
            a.stable_key(sg, &input(&none))
        );
        // Pinned, so that a change of encoding (which would split buckets between
        // proxies of two versions) is seen.
        assert_eq!(
            format!("{:032x}", a.stable_key(sa, &input(&none))),
            "d5a0d74d3ec0399896b4ba84bb9a3d7d"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn unchanged_filters_keep_their_buckets_over_a_reload() {
        let f = r#"filter "f" { type "rate-limit"; requests-per-second 1; burst 1; }"#;
        let r = Registry::default();
        let old = Limiters::new(&config(f), &r, None).unwrap_or_else(|e| panic!("{e}"));
        let same = Limiters::new(&config(f), &r, Some(&old)).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            Arc::ptr_eq(&old.list[0], &same.list[0]),
            "the same limiter, not a copy"
        );
        let changed = r#"filter "f" { type "rate-limit"; requests-per-second 2; burst 1; }"#;
        let new = Limiters::new(&config(changed), &r, Some(&old)).unwrap_or_else(|e| panic!("{e}"));
        assert!(!Arc::ptr_eq(&old.list[0], &new.list[0]));
    }
}
