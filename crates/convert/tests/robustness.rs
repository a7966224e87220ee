//! Random bytes and random directive soup never panic any front-end, and whatever comes out
//! is either valid KDL for Zentinel or says why not.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

use proptest::prelude::*;
use zentinel_convert::{ConvertOptions, Source, TraefikFormat, convert_with};

fn sources() -> [Source; 4] {
    [
        Source::Nginx,
        Source::Haproxy,
        Source::Traefik {
            format: TraefikFormat::Yaml,
        },
        Source::Traefik {
            format: TraefikFormat::Toml,
        },
    ]
}

fn check(text: &str) {
    let o = ConvertOptions::with_default_listen("127.0.0.1:8080".parse().unwrap());
    for s in sources() {
        let c = convert_with(s, text, &o);
        assert!(
            c.is_valid() || !c.blockers.is_empty(),
            "{s:?}: invalid output without a reason for {text:?}\n{}",
            c.kdl
        );
        let internal = c.blockers.iter().any(|b| b.contains("converter bug"));
        assert!(
            !internal,
            "{s:?}: converter bug for {text:?}\n{}\n{:?}",
            c.kdl,
            c.diagnostics.map(|d| d.to_string())
        );
    }
}

const NGINX: &[&str] = &[
    "http {",
    "}",
    "server {",
    "location / {",
    "location ~* \\.php$ {",
    "location = /x {",
    "listen 80;",
    "listen 443 ssl http2 default_server;",
    "listen [::]:80;",
    "server_name a.com *.b.com;",
    "proxy_pass http://up;",
    "proxy_pass http://127.0.0.1:3000/;",
    "upstream up {",
    "server 10.0.0.1:80 weight=2;",
    "least_conn;",
    "ip_hash;",
    "hash $cookie_s consistent;",
    "add_header X-A b always;",
    "proxy_set_header Host $host;",
    "proxy_set_header X-B c;",
    "proxy_hide_header X-B;",
    "ssl_certificate a.crt;",
    "ssl_certificate_key a.key;",
    "limit_req_zone $binary_remote_addr zone=z:1m rate=5r/s;",
    "limit_req zone=z burst=3;",
    "client_max_body_size 1m;",
    "return 301 /;",
    "\"",
    "#",
    ";",
    "{",
];

const HAPROXY: &[&str] = &[
    "frontend f",
    "backend b",
    "defaults",
    "global",
    "listen l",
    "mode http",
    "mode tcp",
    "bind :80",
    "bind :443 ssl crt a.pem",
    "default_backend b",
    "use_backend b if { path_beg /a }",
    "acl x path /x",
    "use_backend b if x || !x",
    "server s 10.0.0.1:80 check",
    "server s2 h:80 weight 3",
    "balance leastconn",
    "option httpchk GET /h",
    "http-check expect status 204",
    "timeout connect 5s",
    "timeout client 0",
    "http-request set-header X-A b",
    "http-response del-header Server",
    "http-request deny",
    "maxconn 0",
];

const TRAEFIK: &[&str] = &[
    "http:",
    "  routers:",
    "    r:",
    "      rule: \"Host(`a.com`) || PathPrefix(`/x`)\"",
    "      service: s",
    "      middlewares: [m]",
    "  services:",
    "    s:",
    "      loadBalancer:",
    "        servers:",
    "          - url: http://127.0.0.1:1",
    "  middlewares:",
    "    m:",
    "      rateLimit: {average: 5}",
    "      headers: {customRequestHeaders: {X-A: b}}",
    "[http.routers.r]",
    "rule = \"Path(`/`)\"",
    "service = \"s\"",
    "[[http.services.s.loadBalancer.servers]]",
    "url = \"http://10.0.0.1:80\"",
];

fn soup(words: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(words), 0..40).prop_map(|v| v.join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn nginx_soup_never_panics(text in soup(NGINX)) {
        check(&text);
    }

    #[test]
    fn haproxy_soup_never_panics(text in soup(HAPROXY)) {
        check(&text);
    }

    #[test]
    fn traefik_soup_never_panics(text in soup(TRAEFIK)) {
        check(&text);
    }
}
