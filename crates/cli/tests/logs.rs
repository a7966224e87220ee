//! Logs to files: access, audit and error logs written to the files the configuration names,
//! reopened on SIGUSR1 after logrotate moved them, and a file that cannot be opened is a
//! clear start-up error.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

pub mod support;

use std::path::Path;
use std::time::Duration;

use support::agent::{MockAgent, Script};
use support::{MockUpstream, Proxy, free_addr, get, wait_until};

const USR1: i32 = 10;

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

#[test]
fn logs_go_to_their_files_and_are_reopened_on_sigusr1() {
    let agent = MockAgent::start();
    agent.set_for_path(
        "/blocked",
        Script::Block {
            status: 403,
            body: "no\n",
            rule: "r-9",
        },
    );
    let up = MockUpstream::start("u");
    let addr = free_addr();
    let config = format!(
        r#"listeners {{ listener "web" {{ address "{addr}"; }} }}
observability {{
    access-log {{ destination "file"; path "access.log"; }}
    audit-log {{ destination "file"; path "audit.log"; }}
    error-log {{ destination "file"; path "error.log"; level "info"; }}
}}
upstreams {{ upstream "u" {{ target "{}"; }} }}
agents {{ agent "a" {{ transport {{ unix-socket "{}"; }}; events "request-headers"; }} }}
routes {{ route "r" {{ upstream "u"; filters "a"; }} }}"#,
        up.addr(),
        agent.socket().display()
    );
    let p = Proxy::start(&config, &[addr]);
    let dir = p.dir().to_owned();
    let first = get(addr, "h.test", "/first");
    let first_id = first.header("x-request-id").unwrap().to_owned();
    assert_eq!(get(addr, "h.test", "/blocked").status, 403);
    wait_until(Duration::from_secs(5), "lines in the files", || {
        read(&dir, "access.log").lines().count() == 2
            && read(&dir, "audit.log").contains("r-9")
            && read(&dir, "error.log").contains("listening")
    });
    let line: serde_json::Value =
        serde_json::from_str(read(&dir, "access.log").lines().next().unwrap()).unwrap();
    assert_eq!(line["request_id"], first_id.as_str());
    assert!(!p.stdout().contains(&first_id), "nothing on stdout");

    for name in ["access.log", "audit.log", "error.log"] {
        std::fs::rename(dir.join(name), dir.join(format!("{name}.1"))).unwrap();
    }
    p.signal(USR1);
    wait_until(Duration::from_secs(5), "the files reopened", || {
        dir.join("access.log").exists() && read(&dir, "error.log").contains("reopened")
    });
    let second = get(addr, "h.test", "/second");
    let second_id = second.header("x-request-id").unwrap().to_owned();
    assert_eq!(get(addr, "h.test", "/blocked").status, 403);
    wait_until(Duration::from_secs(5), "lines in the new files", || {
        read(&dir, "access.log").contains(&second_id) && read(&dir, "audit.log").contains("r-9")
    });
    let old = read(&dir, "access.log.1");
    assert!(
        old.contains(&first_id) && !old.contains(&second_id),
        "{old}"
    );
    assert!(!read(&dir, "access.log").contains(&first_id));
}

#[test]
fn a_log_file_that_cannot_be_opened_stops_the_start() {
    let addr = free_addr();
    for (log, extra) in [("access-log", ""), ("error-log", r#"level "info";"#)] {
        let (code, err) = Proxy::fail_to_start(&format!(
            r#"listeners {{ listener "web" {{ address "{addr}"; }} }}
observability {{ {log} {{ destination "file"; path "missing-dir/x.log"; {extra} }} }}
upstreams {{ upstream "u" {{ target "127.0.0.1:2"; }} }}
routes {{ route "r" {{ upstream "u"; }} }}"#
        ));
        assert_eq!(code, Some(1), "{err}");
        assert!(
            err.contains(log) && err.contains("missing-dir/x.log"),
            "{log}: {err}"
        );
    }
}

#[test]
fn limit_rejections_are_audited_with_the_request_id() {
    let up = MockUpstream::start("u");
    let addr = free_addr();
    let config = format!(
        r#"listeners {{ listener "web" {{ address "{addr}"; }} }}
observability {{ access-log {{ destination "off"; }}; audit-log {{ destination "file"; path "audit.log"; }} }}
limits {{ max-uri-bytes 64; max-body-bytes 10; max-connections-per-client 2; }}
upstreams {{ upstream "u" {{ target "{}"; }} }}
routes {{ route "r" {{ upstream "u"; }} }}"#,
        up.addr()
    );
    let p = Proxy::start(&config, &[addr]);
    let dir = p.dir().to_owned();
    let long = format!("/{}", "a".repeat(100));
    let r = get(addr, "h.test", &long);
    assert_eq!(r.status, 414);
    let uri_id = r.header("x-request-id").unwrap().to_owned();
    // Only the head: refused on the declared length before any body byte is sent.
    let head = b"POST / HTTP/1.1\r\nHost: h.test\r\nContent-Length: 100\r\n\r\n";
    let r = support::send_raw(addr, head).unwrap();
    assert_eq!(r.status, 413);
    let body_id = r.header("x-request-id").unwrap().to_owned();
    // The third connection of a client with `max-connections-per-client 2` is refused.
    // (Each request above had its own connection: let their slots be given back first.)
    std::thread::sleep(Duration::from_millis(200));
    let keep = b"GET / HTTP/1.1\r\nHost: h.test\r\n\r\n";
    let held: Vec<_> = (0..2)
        .map(|_| {
            let mut c = support::RawConn::connect(addr).unwrap();
            c.send(keep).unwrap();
            assert_eq!(c.read_response().unwrap().status, 200);
            c
        })
        .collect();
    let mut refused = support::RawConn::connect(addr).unwrap();
    let _ = refused.send(keep);
    assert!(refused.closed_by_peer(Duration::from_secs(5)));
    drop(held);
    let audit = || -> Vec<serde_json::Value> {
        read(&dir, "audit.log")
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    wait_until(Duration::from_secs(5), "three audit lines", || {
        audit().len() >= 3
    });
    let lines = audit();
    let find = |reason: &str| {
        lines
            .iter()
            .find(|l| l["reason"] == reason)
            .unwrap_or_else(|| panic!("no {reason} line in {lines:?}"))
    };
    let uri = find("uri-too-long");
    assert_eq!(
        (uri["decision"].as_str(), uri["status"].as_u64()),
        (Some("reject"), Some(414))
    );
    assert_eq!(uri["request_id"], uri_id.as_str());
    let body = find("body-too-large");
    assert_eq!(body["request_id"], body_id.as_str());
    assert_eq!(body["route"], "r");
    let conn = find("max-connections-per-client");
    assert_eq!(conn["client"], "127.0.0.1");
    assert!(conn["request_id"].is_null());
}
