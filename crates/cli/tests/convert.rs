//! `zentinel convert` end to end: nginx, HAProxy and Traefik configurations converted by the
//! binary, the result validated, and a converted nginx configuration run by the proxy with
//! requests routed as nginx would have routed them.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

pub mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::{MockUpstream, Proxy, free_addr, get};

fn zentinel(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zentinel"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn a_converted_nginx_configuration_routes_like_nginx() {
    let (api, site) = (MockUpstream::start("api"), MockUpstream::start("site"));
    let addr = free_addr();
    let nginx = format!(
        r#"
events {{ worker_connections 1024; }}
http {{
    upstream api_pool {{ server {api} weight=3; }}
    server {{
        listen {addr};
        server_name example.test;
        client_max_body_size 1m;
        location /api/ {{
            proxy_pass http://api_pool;
            proxy_read_timeout 5s;
            add_header X-Served-By zentinel-converted;
        }}
        location / {{ proxy_pass http://{site}; }}
    }}
}}
"#,
        api = api.addr(),
        site = site.addr()
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("nginx.conf"), nginx).unwrap();
    let out = zentinel(
        &[
            "convert",
            "--from",
            "nginx",
            "nginx.conf",
            "-o",
            "zentinel.kdl",
        ],
        dir.path(),
    );
    let report = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(report.contains("mapped"), "{report}");
    let kdl = std::fs::read_to_string(dir.path().join("zentinel.kdl")).unwrap();
    let check = zentinel(&["validate", "zentinel.kdl"], dir.path());
    assert_eq!(check.status.code(), Some(0), "{kdl}");

    let _p = Proxy::start(&kdl, &[addr]);
    let r = get(addr, "example.test", "/api/users");
    assert_eq!(r.status, 200, "{kdl}");
    assert!(r.text().starts_with("upstream=api"), "{}", r.text());
    assert_eq!(r.header("x-served-by"), Some("zentinel-converted"));
    let r = get(addr, "example.test", "/index.html");
    assert!(r.text().starts_with("upstream=site"), "{}", r.text());
}

#[test]
fn haproxy_and_traefik_configurations_convert_to_valid_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("haproxy.cfg"),
        "defaults\n    mode http\n    timeout connect 5s\nfrontend web\n    bind 127.0.0.1:8081\n    acl is_api path_beg /api\n    use_backend api if is_api\n    default_backend site\nbackend api\n    balance leastconn\n    server a1 127.0.0.1:9001 weight 2 check\nbackend site\n    server s1 127.0.0.1:9002\n",
    )
    .unwrap();
    let out = zentinel(&["convert", "--from", "haproxy", "haproxy.cfg"], dir.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(dir.path().join("from-haproxy.kdl"), &out.stdout).unwrap();
    let check = zentinel(&["validate", "from-haproxy.kdl"], dir.path());
    assert_eq!(check.status.code(), Some(0));

    std::fs::write(
        dir.path().join("dynamic.yaml"),
        "http:\n  routers:\n    api:\n      rule: \"Host(`api.test`) && PathPrefix(`/v1`)\"\n      service: api\n  services:\n    api:\n      loadBalancer:\n        servers:\n          - url: \"http://127.0.0.1:9003\"\n",
    )
    .unwrap();
    // Traefik names entry points, not addresses: without one, no valid configuration.
    let out = zentinel(
        &["convert", "--from", "traefik", "dynamic.yaml"],
        dir.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = zentinel(
        &[
            "convert",
            "--from",
            "traefik",
            "--listen",
            "127.0.0.1:8082",
            "dynamic.yaml",
        ],
        dir.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = zentinel(
        &[
            "convert",
            "--from",
            "traefik",
            "--listen",
            "127.0.0.1:8082",
            "--format",
            "json",
            "dynamic.yaml",
        ],
        dir.path(),
    );
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(
        v["kdl"].as_str().is_some_and(|k| k.contains("api.test")),
        "{v}"
    );
    let out = zentinel(&["convert", "--from", "apache", "dynamic.yaml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
}
