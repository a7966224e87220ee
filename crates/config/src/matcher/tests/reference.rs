//! The matcher against a naive reference implementation: random route sets and requests,
//! the precomputed candidate lists must never change the answer.

use super::*;

/// A route as generated: every field becomes KDL.
#[derive(Clone, Debug)]
struct RouteSpec {
    priority: i32,
    hosts: Vec<String>,
    path: Option<&'static str>,
    prefix: Option<&'static str>,
    regex: Option<&'static str>,
    methods: Vec<&'static str>,
    headers: Vec<(&'static str, Option<&'static str>)>,
    query: Vec<(&'static str, Option<&'static str>)>,
}

impl RouteSpec {
    fn kdl(&self, id: &str) -> String {
        let mut m = String::new();
        let quoted =
            |items: &[&str]| -> String { items.iter().map(|s| format!(" \"{s}\"")).collect() };
        if !self.hosts.is_empty() {
            let hosts: Vec<&str> = self.hosts.iter().map(String::as_str).collect();
            m += &format!("host{}; ", quoted(&hosts));
        }
        for (key, value) in [
            ("path", self.path),
            ("path-prefix", self.prefix),
            ("path-regex", self.regex),
        ] {
            if let Some(v) = value {
                m += &format!("{key} \"{v}\"; ");
            }
        }
        if !self.methods.is_empty() {
            m += &format!("method{}; ", quoted(&self.methods));
        }
        for (key, list) in [("header", &self.headers), ("query-param", &self.query)] {
            for (name, value) in list {
                match value {
                    Some(v) => m += &format!("{key} \"{name}\" \"{v}\"; "),
                    None => m += &format!("{key} \"{name}\"; "),
                }
            }
        }
        route(id, self.priority, m.trim_end())
    }
}

/// A request as generated.
#[derive(Clone, Debug)]
struct ReqSpec {
    method: &'static str,
    host: Option<String>,
    path: &'static str,
    query: Option<String>,
    headers: Vec<(&'static str, &'static str)>,
}

#[derive(Clone, Debug)]
struct Scenario {
    routes: Vec<RouteSpec>,
    /// Routes the listener serves (`None`: all of them).
    served: Option<Vec<usize>>,
    default: Option<usize>,
    requests: Vec<ReqSpec>,
}

impl Scenario {
    fn kdl(&self) -> String {
        let name = |i: &usize| format!(" \"r{i}\"");
        let mut listener = String::new();
        if let Some(list) = &self.served {
            listener += &format!("routes{}; ", list.iter().map(name).collect::<String>());
        }
        if let Some(d) = self.default {
            listener += &format!("default-route \"r{d}\"; ");
        }
        let routes: String = self
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| r.kdl(&format!("r{i}")))
            .collect();
        format!(
            r#"
listeners {{
    listener "l" {{ address "127.0.0.1:8080"; protocol "http"; {listener}}}
}}
upstreams {{ upstream "u" {{ target "127.0.0.1:3000"; }} }}
routes {{
{routes}}}
"#
        )
    }
}

const LABELS: &[&str] = &["a", "b", "com"];

/// One to three labels.
fn host_name() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(LABELS), 1..=3).prop_map(|l| l.join("."))
}

/// Host patterns that nest into each other (so exact names, specific and general wildcards
/// overlap often), mixed with random ones.
const HOST_POOL: &[&str] = &[
    "com",
    "a.com",
    "b.a.com",
    "a.b.a.com",
    "b.com",
    "*.com",
    "*.a.com",
    "*.b.a.com",
    "*.b.com",
];

fn route_spec() -> impl Strategy<Value = RouteSpec> {
    let random_pattern = (any::<bool>(), host_name())
        .prop_map(|(wild, name)| if wild { format!("*.{name}") } else { name });
    let host_pattern = (
        prop_oneof![
            3 => prop::sample::select(HOST_POOL).prop_map(str::to_owned),
            1 => random_pattern,
        ],
        prop::bool::weighted(0.2),
    )
        .prop_map(|(p, upper)| if upper { p.to_ascii_uppercase() } else { p });
    let hosts = prop::collection::vec(host_pattern, 0..=2);
    let path = prop::option::weighted(0.15, prop::sample::select(&["/", "/api", "/api/v1"][..]));
    let prefix = prop::option::weighted(0.3, prop::sample::select(&["/", "/api", "/api/"][..]));
    let regex = prop::option::weighted(
        0.15,
        prop::sample::select(&["^/api/v[0-9]+$", "v1", "^/$"][..]),
    );
    let methods = prop_oneof![
        2 => Just(Vec::new()),
        1 => prop::sample::subsequence(&["GET", "POST", "PURGE"][..], 1..=2),
    ];
    let header = (
        prop::sample::select(&["x-a", "X-B"][..]),
        prop::option::of(prop::sample::select(&["1", "2"][..])),
    );
    let headers = prop::option::weighted(0.25, header).prop_map(|h| h.into_iter().collect());
    let query_param = (
        prop::sample::select(&["q", "a b", "%"][..]),
        prop::option::of(prop::sample::select(&["1", "a b", "", "%", "+"][..])),
    );
    let query = prop::option::weighted(0.25, query_param).prop_map(|q| q.into_iter().collect());
    (
        -1i32..=2,
        hosts,
        (path, prefix, regex),
        methods,
        headers,
        query,
    )
        .prop_map(
            |(priority, hosts, (path, prefix, regex), methods, headers, query)| RouteSpec {
                priority,
                hosts,
                path,
                prefix,
                regex,
                methods,
                headers,
                query,
            },
        )
}

/// Request hosts: random names, names derived from the routes' patterns (so that most requests
/// hit a configured host or a subdomain of a wildcard), decorated with case, port and dot, and
/// some odd forms.
fn request_host(routes: &[RouteSpec]) -> BoxedStrategy<Option<String>> {
    let mut derived: Vec<String> = Vec::new();
    for h in routes.iter().flat_map(|r| &r.hosts) {
        let h = h.to_ascii_lowercase();
        match h.strip_prefix("*.") {
            Some(suffix) => {
                derived.push(suffix.to_owned());
                derived.push(format!("x.{suffix}"));
                derived.push(format!("x.a.{suffix}"));
                derived.push(format!("x{suffix}"));
            }
            None => {
                derived.push(format!("x.{h}"));
                derived.push(h);
            }
        }
    }
    if derived.is_empty() {
        derived.push("a".to_owned());
    }
    let odd = prop::sample::select(
        &[
            "",
            ".",
            "[::1]:8080",
            "[::1]",
            "a..com",
            "x.a..com",
            "ü.com",
            "a.com:x",
            "a.com:80:80",
            "A.B.COM.:443",
        ][..],
    )
    .prop_map(str::to_owned);
    let name = prop_oneof![
        3 => prop::sample::select(derived),
        2 => prop::collection::vec(prop::sample::select(LABELS), 1..=4).prop_map(|l| l.join(".")),
        1 => odd,
    ];
    let decorated = (
        name,
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.15),
    )
        .prop_map(|(name, upper, port, dot)| {
            let mut h = if upper {
                name.to_ascii_uppercase()
            } else {
                name
            };
            if dot {
                h.push('.');
            }
            if port {
                h.push_str(":8443");
            }
            h
        });
    prop::option::weighted(0.85, decorated).boxed()
}

fn request(routes: &[RouteSpec]) -> impl Strategy<Value = ReqSpec> + use<> {
    let method = prop_oneof![
        2 => Just("GET"),
        1 => prop::sample::select(&["POST", "PURGE", "get", "DELETE"][..]),
    ];
    let path = prop::sample::select(
        &[
            "/", "/api", "/api/", "/api/v1", "/api/v12", "/apiv2", "/x/v1", "",
        ][..],
    );
    let key = prop::sample::select(&["q", "a+b", "a%20b", "%25", "%", "q%", "Q"][..]);
    let value = prop::option::of(prop::sample::select(
        &[
            "1", "a+b", "a%20b", "", "%25", "%", "%2B", "+", "%zz", "%3", "%31",
        ][..],
    ));
    let pair = (key, value).prop_map(|(k, v)| match v {
        Some(v) => format!("{k}={v}"),
        None => k.to_owned(),
    });
    let query = prop::option::weighted(
        0.6,
        prop::collection::vec(pair, 0..=3).prop_map(|p| p.join("&")),
    );
    let header = (
        prop::sample::select(&["x-a", "X-A", "x-b", "X-B", "x-c"][..]),
        prop::sample::select(&["1", "2", ""][..]),
    );
    let headers = prop::collection::vec(header, 0..=3);
    (method, request_host(routes), path, query, headers).prop_map(
        |(method, host, path, query, headers)| ReqSpec {
            method,
            host,
            path,
            query,
            headers,
        },
    )
}

fn scenario() -> impl Strategy<Value = Scenario> {
    prop::collection::vec(route_spec(), 1..=6)
        .prop_flat_map(|routes| {
            let n = routes.len();
            let requests = prop::collection::vec(request(&routes), 1..=12);
            (
                Just(routes),
                prop::option::of(prop::collection::vec(any::<bool>(), n)),
                prop::option::of(0..n),
                requests,
            )
        })
        .prop_map(|(routes, keep, default, requests)| {
            let served = keep
                .map(|k| (0..routes.len()).filter(|&i| k[i]).collect::<Vec<_>>())
                .filter(|list| !list.is_empty());
            // A restricted listener's default route must be one of its routes.
            let default = match (&served, default) {
                (Some(list), Some(d)) if !list.contains(&d) => Some(list[d % list.len()]),
                (_, d) => d,
            };
            Scenario {
                routes,
                served,
                default,
                requests,
            }
        })
}

/// The host as the reference compares it: no port, no trailing dot, lower case; `None` when
/// absent or unusable (not ASCII, longer than a DNS name).
fn reference_host(raw: &str) -> Option<String> {
    let name = if let Some(v6) = raw.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        let without_port = match raw.rfind(':') {
            Some(i) if raw[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &raw[..i],
            _ => raw,
        };
        without_port.strip_suffix('.').unwrap_or(without_port)
    };
    (name.is_ascii() && name.len() <= 253).then(|| name.to_ascii_lowercase())
}

/// Percent-decoding with `+` as space; a `%` not followed by two hex digits is literal.
fn reference_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if b.len() > i + 2
                && b[i + 1].is_ascii_hexdigit()
                && b[i + 2].is_ascii_hexdigit() =>
            {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(0));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Every condition of `route`, checked one by one.
fn reference_matches(route: &crate::model::Route, req: &ReqSpec) -> bool {
    let m = &route.matches;
    let host = req.host.as_deref().and_then(reference_host);
    let host_ok = m.hosts.is_empty()
        || host
            .as_deref()
            .is_some_and(|h| m.hosts.iter().any(|p: &HostPattern| p.matches(h)));
    let paths_ok = m.paths.iter().all(|p| p.matches(req.path));
    let method_ok = m.methods.is_empty() || m.methods.iter().any(|x| x == req.method);
    let headers_ok = m.headers.iter().all(|c| {
        req.headers.iter().any(|(n, v)| {
            n.to_ascii_lowercase() == c.name && c.value.as_ref().is_none_or(|want| want == v)
        })
    });
    let query_ok = m.query_params.iter().all(|c| {
        req.query.as_deref().is_some_and(|q| {
            q.split('&').any(|pair| {
                let (k, v) = match pair.find('=') {
                    Some(i) => (&pair[..i], &pair[i + 1..]),
                    None => (pair, ""),
                };
                reference_decode(k) == c.name.as_bytes()
                    && c.value
                        .as_ref()
                        .is_none_or(|want| reference_decode(v) == want.as_bytes())
            })
        })
    });
    host_ok && paths_ok && method_ok && headers_ok && query_ok
}

/// Routes `listener` serves (all routes without a listener), by priority then definition order.
fn reference_ranking(config: &Config, listener: Option<&Listener>) -> Vec<usize> {
    let served = |i: &usize| {
        listener
            .and_then(|l| l.routes.as_ref())
            .is_none_or(|list| list.contains(&config.routes[*i].id))
    };
    let mut order: Vec<usize> = (0..config.routes.len()).filter(served).collect();
    order.sort_by(|&a, &b| {
        config.routes[b]
            .priority
            .cmp(&config.routes[a].priority)
            .then(a.cmp(&b))
    });
    order
}

/// `(index, fallback)` of the route the reference picks.
fn reference_find(
    config: &Config,
    listener: Option<&Listener>,
    req: &ReqSpec,
) -> Option<(usize, bool)> {
    let hit = reference_ranking(config, listener)
        .into_iter()
        .find(|&i| reference_matches(&config.routes[i], req));
    match hit {
        Some(i) => Some((i, false)),
        None => listener
            .and_then(|l| l.default_route.as_ref())
            .and_then(|d| config.routes.iter().position(|r| &r.id == d))
            .map(|i| (i, true)),
    }
}

fn check_scenario(s: &Scenario) -> Result<(), TestCaseError> {
    let text = s.kdl();
    let config = match crate::load_str("prop.kdl", &text) {
        Ok(c) => c,
        Err(d) => {
            return Err(TestCaseError::fail(format!(
                "generated configuration does not load:\n{d}\n{text}"
            )));
        }
    };
    let listener = &config.listeners[0];
    let matchers = [
        (None, RouteMatcher::new(&config)),
        (
            Some(listener),
            RouteMatcher::for_listener(&config, listener),
        ),
    ];
    for (l, m) in &matchers {
        let ranked: Vec<&str> = m.ranked().map(|r| r.as_str()).collect();
        let want_ranked: Vec<&str> = reference_ranking(&config, *l)
            .into_iter()
            .map(|i| config.routes[i].id.as_str())
            .collect();
        prop_assert_eq!(ranked, want_ranked);
        for r in &s.requests {
            let headers: Vec<(&str, &str)> = r.headers.to_vec();
            let hs = Hs(&headers);
            let req = Request {
                method: r.method,
                host: r.host.as_deref(),
                path: r.path,
                query: r.query.as_deref(),
                headers: &hs,
            };
            let got = m.find(&req);
            // The trace agrees with `find`, and each route's verdict with the reference.
            let trace = m.trace(&req);
            prop_assert_eq!(trace.found, got);
            for c in &trace.routes {
                prop_assert_eq!(
                    c.holds(),
                    reference_matches(&config.routes[c.index], r),
                    "route {} request {:?}",
                    c.id,
                    r
                );
            }
            if let Some(g) = &got {
                prop_assert_eq!(g.id, &config.routes[g.index].id);
            }
            let got = got.map(|g| (g.index, g.fallback));
            let want = reference_find(&config, *l, r);
            prop_assert_eq!(
                got,
                want,
                "listener: {:?}\nrequest: {:?}\nconfig:\n{}",
                l.map(|l| &l.id),
                r,
                text
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        // No regression files: this module must not write next to the sources.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// The precomputed per-host candidate lists never change the answer: the matcher picks
    /// exactly what trying every route in rank order would pick.
    #[test]
    fn matcher_agrees_with_naive_reference(s in scenario()) {
        check_scenario(&s)?;
    }

    /// The reference decoder and the matcher's allocation-free comparison agree on arbitrary
    /// text, including stray `%` and `+`.
    #[test]
    fn decoded_eq_agrees_with_reference_decoding(
        raw in "[a%+2Fz0-9 é]{0,8}",
        want in "[a%+/ z0-9é]{0,4}",
    ) {
        let decoded = reference_decode(&raw);
        prop_assert_eq!(crate::matcher::decoded_eq(&raw, &want), decoded == want.as_bytes());
        // Whatever `raw` decodes to (when it is text), it is equal to itself.
        if let Ok(text) = String::from_utf8(decoded) {
            prop_assert!(crate::matcher::decoded_eq(&raw, &text));
        }
    }

    /// Host normalization agrees with the reference on arbitrary short hosts.
    #[test]
    fn normalize_host_agrees_with_reference(raw in "[aB.:\\[\\]0-9ü]{0,12}") {
        let mut buf = [0u8; crate::matcher::MAX_HOST];
        let got = crate::matcher::normalize_host(&raw, &mut buf).map(str::to_owned);
        prop_assert_eq!(got, reference_host(&raw));
    }
}

/// Regression: a Host with an empty first label (".example.com") once reached wildcard
/// routes. The matcher and the reference must agree on such hosts.
#[test]
fn reference_agrees_on_leading_dot_hosts() {
    let s = Scenario {
        routes: vec![RouteSpec {
            priority: 0,
            hosts: vec!["*.a.com".into()],
            path: None,
            prefix: None,
            regex: None,
            methods: vec![],
            headers: vec![],
            query: vec![],
        }],
        served: None,
        default: None,
        requests: vec![ReqSpec {
            method: "GET",
            host: Some(".a.com".into()),
            path: "/",
            query: None,
            headers: vec![],
        }],
    };
    if let Err(e) = check_scenario(&s) {
        panic!("{e}");
    }
}
