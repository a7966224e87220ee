//! Property tests: the loader never panics, whatever the input, and a valid configuration's
//! normalised form is stable. (The cargo-fuzz target in `fuzz/` explores the same property
//! with coverage guidance.)

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

use proptest::prelude::*;

const SEED: &str = include_str!("../../../examples/seed.kdl");
const PRODUCTION: &str = include_str!("../../../examples/production.kdl");

/// Pieces of KDL and of the schema, so random documents get past the parser often.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just(";".to_owned()),
        Just("\n".to_owned()),
        Just(" ".to_owned()),
        Just("#true".to_owned()),
        Just("#null".to_owned()),
        Just("=".to_owned()),
        Just("(u8)".to_owned()),
        prop::sample::select(vec![
            "listeners",
            "listener",
            "routes",
            "route",
            "upstreams",
            "upstream",
            "agents",
            "agent",
            "filters",
            "filter",
            "matches",
            "target",
            "tls",
            "sni",
            "client-auth",
            "health-check",
            "http",
            "tcp",
            "retry",
            "config",
            "include",
            "address",
            "protocol",
            "upstream",
            "filters",
            "failure-mode",
            "events",
            "transport",
            "unix-socket",
            "grpc",
            "weight",
            "hash-on",
            "path-regex",
            "header",
            "query-param",
            "set",
            "remove",
            "rename",
            "admin",
        ])
        .prop_map(str::to_owned),
        "\"[a-z0-9.:/*\\[\\]()-]{0,12}\"",
        any::<i64>().prop_map(|i| i.to_string()),
        any::<f32>().prop_map(|f| format!("{f:?}")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,400}") {
        let _ = zentinel_config::load_str("p.kdl", &text).map_err(|d| d.to_json());
    }

    #[test]
    fn token_soup_never_panics(tokens in prop::collection::vec(token(), 0..80)) {
        let text = tokens.join(" ");
        match zentinel_config::load_str("p.kdl", &text) {
            Ok(c) => { let _ = zentinel_config::RouteMatcher::new(&c); }
            Err(d) => { let _ = (d.to_string(), d.to_json()); }
        }
    }

    #[test]
    fn mutated_examples_never_panic(cut in 0usize..4000, len in 0usize..40, insert in token(), which in any::<bool>()) {
        let base = if which { SEED } else { PRODUCTION };
        let mut at = cut.min(base.len());
        while !base.is_char_boundary(at) { at -= 1; }
        let mut end = (at + len).min(base.len());
        while !base.is_char_boundary(end) { end -= 1; }
        let text = format!("{}{}{}", &base[..at], insert, &base[end..]);
        let _ = zentinel_config::load_str("p.kdl", &text).map_err(|d| d.to_string());
    }
}

#[test]
fn normalised_json_is_deterministic() {
    let a = zentinel_config::load_str("a.kdl", PRODUCTION)
        .expect("valid")
        .to_json();
    let b = zentinel_config::load_str("a.kdl", PRODUCTION)
        .expect("valid")
        .to_json();
    assert_eq!(a, b);
}
