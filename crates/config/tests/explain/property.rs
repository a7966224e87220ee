//! The route is always the matcher's: generated configurations and requests.

use super::*;

// The route is always the matcher's

const HOSTS: &[&str] = &["a.test", "b.a.test", "*.a.test", "*.test", "c.test"];
const PREFIXES: &[&str] = &["/", "/api", "/api/v1/", "/static/"];
const METHODS: &[&str] = &["GET", "POST", "DELETE"];

#[derive(Clone, Debug)]
struct RouteSpec {
    priority: i32,
    host: Option<&'static str>,
    prefix: Option<&'static str>,
    method: Option<&'static str>,
    header: Option<(&'static str, Option<&'static str>)>,
    query: Option<&'static str>,
}

fn route_spec() -> impl Strategy<Value = RouteSpec> {
    (
        -2..3i32,
        prop::option::of(prop::sample::select(HOSTS)),
        prop::option::of(prop::sample::select(PREFIXES)),
        prop::option::weighted(0.3, prop::sample::select(METHODS)),
        prop::option::weighted(
            0.3,
            (
                prop::sample::select(&["x-a", "x-b"][..]),
                prop::option::of(Just("1")),
            ),
        ),
        prop::option::weighted(0.2, prop::sample::select(&["q", "debug"][..])),
    )
        .prop_map(
            |(priority, host, prefix, method, header, query)| RouteSpec {
                priority,
                host,
                prefix,
                method,
                header,
                query,
            },
        )
}

#[derive(Clone, Debug)]
struct ReqSpec {
    method: &'static str,
    host: &'static str,
    port: Option<u16>,
    host_header: Option<&'static str>,
    path: &'static str,
    query: Option<&'static str>,
    headers: Vec<(&'static str, &'static str)>,
}

fn req_spec() -> impl Strategy<Value = ReqSpec> {
    let hosts = &[
        "a.test",
        "B.A.test",
        "x.b.a.test",
        "c.test",
        "test",
        "other",
    ][..];
    (
        prop::sample::select(METHODS),
        prop::sample::select(hosts),
        prop::option::of(prop::sample::select(&[80u16, 8080][..])),
        prop::option::weighted(0.2, prop::sample::select(hosts)),
        prop::sample::select(&["/", "/api", "/api/v1/x", "/static/a.css", "/other"][..]),
        prop::option::of(prop::sample::select(&["q=1", "debug", "a=b&q", "x"][..])),
        prop::collection::vec(
            (
                prop::sample::select(&["x-a", "x-b", "x-c"][..]),
                prop::sample::select(&["1", "2"][..]),
            ),
            0..3,
        ),
    )
        .prop_map(
            |(method, host, port, host_header, path, query, headers)| ReqSpec {
                method,
                host,
                port,
                host_header,
                path,
                query,
                headers,
            },
        )
}

fn scenario_config(routes: &[RouteSpec], default: Option<usize>) -> Config {
    let mut body = String::new();
    for (i, r) in routes.iter().enumerate() {
        let mut m = String::new();
        if let Some(h) = r.host {
            m += &format!("host \"{h}\"; ");
        }
        if let Some(p) = r.prefix {
            m += &format!("path-prefix \"{p}\"; ");
        }
        if let Some(x) = r.method {
            m += &format!("method \"{x}\"; ");
        }
        match r.header {
            Some((n, Some(v))) => m += &format!("header \"{n}\" \"{v}\"; "),
            Some((n, None)) => m += &format!("header \"{n}\"; "),
            None => {}
        }
        if let Some(q) = r.query {
            m += &format!("query-param \"{q}\"; ");
        }
        let matches = if m.is_empty() {
            String::new()
        } else {
            format!("matches {{ {m}}}; ")
        };
        body += &format!(
            "route \"r{i}\" {{ priority {}; {matches}upstream \"u\"; }}\n",
            r.priority
        );
    }
    let default = default
        .filter(|d| *d < routes.len())
        .map(|d| format!("default-route \"r{d}\"; "))
        .unwrap_or_default();
    load(&format!(
        r#"
listeners {{ listener "l" {{ address "127.0.0.1:8080"; protocol "http"; {default}}} }}
upstreams {{ upstream "u" {{ target "127.0.0.1:3000"; }} }}
routes {{
{body}}}
"#
    ))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn explain_reports_the_route_find_picks(
        routes in prop::collection::vec(route_spec(), 1..8),
        default in prop::option::weighted(0.3, 0..8usize),
        requests in prop::collection::vec(req_spec(), 1..8),
    ) {
        let config = scenario_config(&routes, default);
        let matcher = RouteMatcher::for_listener(&config, &config.listeners[0]);
        for spec in &requests {
            let authority = match spec.port {
                Some(p) => format!("{}:{p}", spec.host),
                None => spec.host.to_owned(),
            };
            let url = match spec.query {
                Some(q) => format!("http://{authority}{}?{q}", spec.path),
                None => format!("http://{authority}{}", spec.path),
            };
            let mut r = RequestDescription::from_url(spec.method, &url).unwrap();
            if let Some(h) = spec.host_header {
                r.push_header("Host", h).unwrap();
            }
            for (n, v) in &spec.headers {
                r.push_header(n, v).unwrap();
            }
            let e = explain(&config, None, &r).unwrap();

            // What the proxy does: its header map has Host; it routes on the Host header.
            let mut headers: Vec<(String, String)> = r.headers.clone();
            if spec.host_header.is_none() {
                headers.push(("host".to_owned(), authority.clone()));
            }
            let host = spec.host_header.map_or(authority.clone(), str::to_owned);
            let found = matcher.find(&Request {
                method: spec.method,
                host: Some(&host),
                path: spec.path,
                query: spec.query,
                headers: &headers,
            });
            let got = e.routing.matched.as_ref().map(|m| (m.id.as_str(), m.by == MatchedBy::DefaultRoute));
            let want = found.map(|f| (f.id.as_str(), f.fallback));
            prop_assert_eq!(got, want, "{} with {:?}", url, r.headers);

            // The reasons agree with the verdict.
            if let Some(m) = &e.routing.matched {
                if m.by == MatchedBy::Conditions {
                    prop_assert!(m.conditions.iter().all(|c| c.holds));
                }
                prop_assert!(e.routing.shadowed.iter().all(|s| s.rank > m.rank));
                let forwarded = matches!(e.outcome, Outcome::Forward { .. });
                prop_assert!(forwarded);
            } else {
                prop_assert_eq!(status(&e), Some(404));
            }
            for n in &e.routing.near_misses {
                prop_assert_eq!(n.conditions.iter().filter(|c| !c.holds).count(), 1);
            }
        }
    }
}
