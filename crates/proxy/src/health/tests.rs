use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch as channel;
use tokio::time::Instant;

use super::*;
use crate::pool::{SelectInput, Tried};
use zentinel_config::model::Config;

/// A deadline for probes that are expected to succeed or fail quickly on loopback.
const GENEROUS: Duration = Duration::from_secs(5);

fn config(upstream: &str) -> Config {
    let text = format!(
        "listeners {{ listener \"w\" {{ address \"127.0.0.1:1\"; }} }}\nroutes {{ route \"r\" {{ upstream \"u\"; }} }}\nupstreams {{ upstream \"u\" {{ {upstream} }} }}"
    );
    zentinel_config::load_str("t.kdl", &text).unwrap_or_else(|d| panic!("{d}"))
}

/// The pool and health check of `upstream` (which must have a `health-check`).
fn pool_and_check(upstream: &str) -> (Arc<Pool>, HealthCheck) {
    let c = config(upstream);
    let u = &c.upstreams[0];
    let pool = Pool::new(u).expect("pool");
    (
        Arc::new(pool),
        u.health_check.clone().expect("a health check"),
    )
}

fn pick(p: &Pool) -> Option<usize> {
    p.select(SelectInput {
        hash_key: None,
        tried: Tried::default(),
    })
}

// --- the state machine ---

#[test]
fn thresholds_count_consecutive_results_only() {
    let mut t = Thresholds::new(2, 3);
    assert!(t.healthy(), "targets start in service");
    assert_eq!(t.record(false), None);
    assert_eq!(t.record(false), None);
    assert_eq!(t.record(true), None, "a success resets the failures");
    assert_eq!(t.record(false), None);
    assert_eq!(t.record(false), None);
    assert_eq!(
        t.record(false),
        Some(Transition::Down),
        "third failure in a row"
    );
    assert!(!t.healthy());
    assert_eq!(t.record(false), None, "already down");
    assert_eq!(t.record(true), None);
    assert_eq!(t.record(false), None, "a failure resets the successes");
    assert_eq!(t.record(true), None);
    assert_eq!(
        t.record(true),
        Some(Transition::Up),
        "second success in a row"
    );
    assert!(t.healthy());
    assert_eq!(t.record(true), None, "already up");
    assert_eq!(
        t.record(false),
        None,
        "the count starts again after a transition"
    );
}

#[test]
fn thresholds_of_one_flip_on_every_change() {
    let mut t = Thresholds::new(1, 1);
    assert_eq!(t.record(true), None);
    assert_eq!(t.record(false), Some(Transition::Down));
    assert_eq!(t.record(false), None);
    assert_eq!(t.record(true), Some(Transition::Up));
    // 0 would mean "never"; it acts as 1 (the configuration allows 1..=100).
    let mut z = Thresholds::new(0, 0);
    assert_eq!(z.record(false), Some(Transition::Down));
}

// --- parsing and the request ---

#[test]
fn status_lines_are_parsed_strictly() {
    let cases: [(&[u8], Option<u16>); 12] = [
        (b"HTTP/1.1 200 OK", Some(200)),
        (b"HTTP/1.0 503", Some(503)),
        (b"HTTP/1.1 204 No Content Here", Some(204)),
        (b"HTTP/2 200", Some(200)),
        (b"HTTP/1.1 20 OK", None),
        (b"HTTP/1.1 2000", None),
        (b"HTTP/1.1 20x OK", None),
        (b"HTTP/1.1 099 Low", None),
        (b"HTTP/1.1 600 High", None),
        (b"http/1.1 200 OK", None),
        (b"HTTP/ 200 OK", None),
        (b"SSH-2.0-OpenSSH", None),
    ];
    for (line, want) in cases {
        assert_eq!(status_of(line), want, "{}", String::from_utf8_lossy(line));
    }
}

#[test]
fn response_heads_are_recognised_early() {
    assert_eq!(parse_head(b""), Parsed::Incomplete);
    assert_eq!(parse_head(b"HTT"), Parsed::Incomplete);
    assert_eq!(parse_head(b"HTTP/1.1 200 O"), Parsed::Incomplete);
    assert_eq!(
        parse_head(b"SSH-2"),
        Parsed::Malformed,
        "refused before a newline"
    );
    assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\n"), Parsed::Final(200));
    assert_eq!(parse_head(b"HTTP/1.1 200 OK\n"), Parsed::Final(200));
    assert_eq!(
        parse_head(b"HTTP/1.1 101 Switching\r\n"),
        Parsed::Final(101)
    );
    assert_eq!(
        parse_head(b"HTTP/1.1 100 Continue\r\n"),
        Parsed::Interim {
            status: 100,
            len: None
        }
    );
    let two = b"HTTP/1.1 103 Early\r\nLink: x\r\n\r\nHTTP/1.1 200 OK\r\n";
    assert_eq!(
        parse_head(two),
        Parsed::Interim {
            status: 103,
            len: Some(31)
        }
    );
    assert_eq!(parse_head(&two[31..]), Parsed::Final(200));
}

#[test]
fn the_probe_request_is_exactly_the_documented_one() {
    let r = http_request("/healthz", "10.0.0.1:8080").expect("valid");
    assert_eq!(
        String::from_utf8(r).expect("ascii"),
        "GET /healthz HTTP/1.1\r\nHost: 10.0.0.1:8080\r\nConnection: close\r\nUser-Agent: zentinel-health-check\r\n\r\n"
    );
    let r = http_request("/a b\r\nX: y", "h").expect("valid");
    assert!(
        r.starts_with(b"GET /a%20b%0D%0AX:%20y HTTP/1.1\r\n"),
        "{}",
        String::from_utf8_lossy(&r)
    );
    assert_eq!(http_request("/", "bad host"), None);
    assert_eq!(http_request("/", "h\r\nX-Injected: 1"), None);
    assert_eq!(http_request("/", ""), None);
}

#[test]
fn the_host_defaults_to_the_target_address() {
    let c = config(
        r#"target "127.0.0.1:3001"; health-check { http "/hc" { expect-status 204; host "svc.internal"; }; }; target "127.0.0.1:3002";"#,
    );
    let check = c.upstreams[0].health_check.as_ref().expect("check");
    let Probe::Http {
        request: Some(r),
        expect: 204,
        tls: None,
    } = Probe::new(&check.probe, "127.0.0.1:3001", None)
    else {
        panic!("an http probe expecting 204");
    };
    assert!(String::from_utf8_lossy(&r).contains("\r\nHost: svc.internal\r\n"));
    let c = config(r#"target "127.0.0.1:3001"; health-check { http "/hc"; }"#);
    let check = c.upstreams[0].health_check.as_ref().expect("check");
    let Probe::Http {
        request: Some(r), ..
    } = Probe::new(&check.probe, "127.0.0.1:3001", None)
    else {
        panic!("an http probe");
    };
    assert!(String::from_utf8_lossy(&r).contains("\r\nHost: 127.0.0.1:3001\r\n"));
}

// --- probes against a tiny listener ---

/// Accepts one connection, reads the request head (bounded), then writes `answer` and
/// closes, or with `None` keeps the connection open without answering until the client
/// goes away. The task returns the request it read.
async fn serve_once(
    answer: Option<&'static [u8]>,
) -> (SocketAddr, tokio::task::JoinHandle<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let Ok((mut s, _)) = l.accept().await else {
            return Vec::new();
        };
        let mut req = Vec::new();
        let mut chunk = [0u8; 1024];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 8192 {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return req,
                Ok(n) => req.extend_from_slice(&chunk[..n]),
            }
        }
        match answer {
            Some(a) => {
                let _ = s.write_all(a).await;
            }
            None => while matches!(s.read(&mut chunk).await, Ok(n) if n > 0) {},
        }
        req
    });
    (addr, task)
}

fn http_probe(expect: u16) -> Probe {
    Probe::Http {
        request: http_request("/healthz", "probe.test").map(Arc::from),
        expect,
        tls: None,
    }
}

#[tokio::test]
async fn http_probe_is_healthy_on_the_expected_status_only() {
    let (addr, server) = serve_once(Some(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")).await;
    within(GENEROUS, probe(addr, &http_probe(200)))
        .await
        .expect("200 is healthy");
    let req = server.await.expect("server");
    assert_eq!(
        req,
        b"GET /healthz HTTP/1.1\r\nHost: probe.test\r\nConnection: close\r\nUser-Agent: zentinel-health-check\r\n\r\n"
    );

    let (addr, _server) = serve_once(Some(b"HTTP/1.1 503 Service Unavailable\r\n\r\n")).await;
    let e = within(GENEROUS, probe(addr, &http_probe(200))).await;
    assert!(
        matches!(
            e,
            Err(ProbeFailure::Status {
                got: 503,
                expected: 200
            })
        ),
        "{e:?}"
    );
    let (addr, _server) = serve_once(Some(b"HTTP/1.1 503 Service Unavailable\r\n\r\n")).await;
    within(GENEROUS, probe(addr, &http_probe(503)))
        .await
        .expect("503 is healthy when expected");
}

#[tokio::test(start_paused = true)]
async fn http_probe_without_an_answer_fails_at_the_deadline() {
    let (addr, server) = serve_once(None).await;
    let deadline = Duration::from_millis(500);
    let start = Instant::now();
    let e = within(deadline, probe(addr, &http_probe(200))).await;
    assert!(
        matches!(e, Err(ProbeFailure::Timeout(d)) if d == deadline),
        "{e:?}"
    );
    assert_eq!(start.elapsed(), deadline, "fails exactly at the deadline");
    server.abort();
}

#[tokio::test]
async fn odd_answers_are_failures_and_reads_are_bounded() {
    let (addr, _s) = serve_once(Some(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
    ))
    .await;
    within(GENEROUS, probe(addr, &http_probe(200)))
        .await
        .expect("interim responses are skipped");
    let (addr, _s) = serve_once(Some(b"SSH-2.0-OpenSSH_9.6\r\n")).await;
    let e = within(GENEROUS, probe(addr, &http_probe(200))).await;
    assert!(matches!(e, Err(ProbeFailure::Malformed)), "{e:?}");
    let (addr, _s) = serve_once(Some(b"HTTP/1.1 20")).await;
    let e = within(GENEROUS, probe(addr, &http_probe(200))).await;
    assert!(matches!(e, Err(ProbeFailure::Closed)), "{e:?}");
    // An endless interim head: the probe stops reading at 8 KiB.
    let flood: &'static [u8] = Box::leak(
        [&b"HTTP/1.1 103 Early Hints\r\n"[..], &[b'x'; 10_000][..]]
            .concat()
            .into_boxed_slice(),
    );
    let (addr, _s) = serve_once(Some(flood)).await;
    let e = within(GENEROUS, probe(addr, &http_probe(200))).await;
    assert!(matches!(e, Err(ProbeFailure::TooLarge)), "{e:?}");
    let bad_host = Probe::Http {
        request: None,
        expect: 200,
        tls: None,
    };
    let e = within(GENEROUS, probe(addr, &bad_host)).await;
    assert!(matches!(e, Err(ProbeFailure::InvalidHost)), "{e:?}");
}

#[tokio::test]
async fn tls_probes_fail_on_a_clear_text_answer_and_on_unusable_settings() {
    // A plain HTTP answer is not a TLS server hello: the handshake fails.
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let _s = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await;
        }
    });
    let c = config(&format!(
        r#"target "{addr}"; tls {{ sni "probe.test"; verify #false; }}; health-check {{ http "/healthz"; }}"#
    ));
    let Ok(rt) = Runtime::build(Arc::new(c)) else {
        // No system trust store on this machine: `verify #false` needs one (see
        // `upstream_tls`); the e2e tests cover TLS probes with a `ca-file`.
        return;
    };
    let tls = rt.upstream_tls[0].as_ref().expect("tls");
    let cfg = tls.probe_config().map_err(Arc::<str>::from);
    let t = ProbeTls::new(&cfg, tls.probe_name(0));
    assert!(matches!(t, ProbeTls::Ready { .. }), "{t:?}");
    let p = Probe::new(
        &rt.config.upstreams[0]
            .health_check
            .as_ref()
            .expect("check")
            .probe,
        "x",
        Some(t),
    );
    let e = within(GENEROUS, probe(addr, &p)).await;
    assert!(matches!(e, Err(ProbeFailure::Tls(_))), "{e:?}");
    assert!(e.is_err_and(|e| e.to_string().starts_with("TLS handshake failed: ")));
    let unusable = Probe::Http {
        request: http_request("/", "h").map(Arc::from),
        expect: 200,
        tls: Some(ProbeTls::new(&Err(Arc::from("no roots")), None)),
    };
    let e = within(GENEROUS, probe(addr, &unusable)).await;
    assert!(matches!(e, Err(ProbeFailure::TlsSetup(_))), "{e:?}");
}

#[tokio::test]
async fn tcp_probe_is_healthy_iff_the_connect_completes() {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    within(GENEROUS, probe(addr, &Probe::Tcp))
        .await
        .expect("listening");
    drop(l);
    let e = within(GENEROUS, probe(addr, &Probe::Tcp)).await;
    assert!(matches!(e, Err(ProbeFailure::Connect(_))), "{e:?}");
}

// --- the loop, with scripted probes and virtual time ---

const TWO: &str = r#"target "127.0.0.1:3001"; target "127.0.0.1:3002";"#;

#[tokio::test(start_paused = true)]
async fn the_loop_probes_every_interval_and_applies_the_thresholds() {
    let (pool, check) = pool_and_check(&format!(
        "{TWO} health-check {{ tcp; interval-ms 100; timeout-ms 50; healthy-threshold 2; unhealthy-threshold 3; }}"
    ));
    let ok = Arc::new(AtomicBool::new(true));
    let probes = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = channel::channel(false);
    let start = Instant::now();
    let task = {
        let (pool, ok, probes) = (pool.clone(), ok.clone(), probes.clone());
        tokio::spawn(async move {
            let probe = || {
                probes.fetch_add(1, Ordering::SeqCst);
                let ok = ok.load(Ordering::SeqCst);
                async move {
                    if ok {
                        Ok(())
                    } else {
                        Err(ProbeFailure::Closed)
                    }
                }
            };
            watch(&pool, 0, &check, probe, rx).await;
        })
    };
    let at = |ms: u64| tokio::time::sleep_until(start + Duration::from_millis(ms));
    // Probes start at 0, 100, 200, ... ms; the checks below sit between them.
    at(250).await;
    assert_eq!(
        probes.load(Ordering::SeqCst),
        3,
        "one probe per interval, the first at once"
    );
    assert!(pool.available(0));
    ok.store(false, Ordering::SeqCst);
    at(450).await; // failures at 300 and 400
    assert!(pool.available(0), "two failures are below the threshold");
    at(550).await; // third failure at 500
    assert!(
        !pool.available(0) && pool.is_down(0),
        "three failures take it out"
    );
    for _ in 0..10 {
        assert_eq!(pick(&pool), Some(1), "selection skips the target");
    }
    ok.store(true, Ordering::SeqCst);
    at(650).await; // success at 600
    assert!(!pool.available(0), "one success is below the threshold");
    at(750).await; // second success at 700
    assert!(pool.available(0), "two successes bring it back");
    tx.send(true).expect("loop listening");
    task.await.expect("loop ends on shutdown");
    let n = probes.load(Ordering::SeqCst);
    at(2000).await;
    assert_eq!(probes.load(Ordering::SeqCst), n, "no probe after shutdown");
}

#[tokio::test(start_paused = true)]
async fn a_hanging_probe_fails_at_the_timeout_and_shutdown_abandons_it() {
    let (pool, check) = pool_and_check(&format!(
        "{TWO} health-check {{ tcp; interval-ms 100; timeout-ms 50; unhealthy-threshold 2; }}"
    ));
    let (tx, rx) = channel::channel(false);
    let task = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let hang = || std::future::pending::<Result<(), ProbeFailure>>();
            watch(&pool, 1, &check, hang, rx).await;
        })
    };
    let start = Instant::now();
    tokio::time::sleep_until(start + Duration::from_millis(120)).await;
    assert!(
        pool.available(1),
        "the first probe failed at 50 ms: one failure"
    );
    tokio::time::sleep_until(start + Duration::from_millis(160)).await;
    assert!(!pool.available(1), "the second failed at 150 ms");
    assert!(pool.available(0), "the other target is not affected");
    tokio::time::sleep_until(start + Duration::from_millis(220)).await;
    let before = Instant::now();
    tx.send(true).expect("loop listening");
    task.await.expect("loop ends on shutdown");
    assert_eq!(
        Instant::now(),
        before,
        "the hanging probe is abandoned at once"
    );
}

#[test]
fn selection_skips_targets_marked_down_with_every_algorithm() {
    for lb in [
        "round-robin",
        "weighted",
        "least-connections",
        "power-of-two-choices",
    ] {
        let (pool, _) = pool_and_check(&format!(
            "{TWO} load-balancing \"{lb}\"; health-check {{ tcp; }}"
        ));
        pool.set_down(0, true);
        for _ in 0..50 {
            assert_eq!(pick(&pool), Some(1), "{lb}");
        }
        pool.set_down(1, true);
        assert_eq!(pick(&pool), None, "{lb}: nothing left");
        pool.set_down(0, false);
        assert_eq!(pick(&pool), Some(0), "{lb}: back in service");
    }
    let (pool, _) = pool_and_check(&format!(
        "{TWO} load-balancing \"consistent-hash\"; hash-on \"header\" \"x-user\"; health-check {{ tcp; }}"
    ));
    for key in ["a", "b", "c", "d", "e", "f"] {
        let input = SelectInput {
            hash_key: Some(key.as_bytes()),
            tried: Tried::default(),
        };
        let first = pool.select(input).expect("a target");
        pool.set_down(first, true);
        assert_eq!(
            pool.select(input),
            Some(1 - first),
            "{key} moves while down"
        );
        pool.set_down(first, false);
        assert_eq!(pool.select(input), Some(first), "{key} comes back");
    }
}

// --- the service ---

#[tokio::test]
async fn the_service_checks_every_target_and_stops_on_shutdown() {
    let up = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let up_addr = up.local_addr().expect("addr");
    let accept = tokio::spawn(async move {
        while let Ok((mut s, _)) = up.accept().await {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await;
        }
    });
    let dead = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let dead_addr = dead.local_addr().expect("addr");
    drop(dead);
    let c = config(&format!(
        r#"target "{up_addr}"; target "{dead_addr}"; health-check {{ http "/healthz"; interval-ms 100; timeout-ms 50; unhealthy-threshold 1; }}"#
    ));
    let rt = Runtime::build(Arc::new(c)).expect("runtime");
    let shared = Arc::new(Shared::new(rt));
    let service = HealthChecks::new(shared.clone());
    let (tx, rx) = channel::channel(false);
    let run = tokio::spawn(async move { service.start(rx).await });
    let rt = shared.load();
    let deadline = Instant::now() + GENEROUS;
    while !rt.pools[0].is_down(1) {
        assert!(
            Instant::now() < deadline,
            "the dead target is never marked down"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!rt.pools[0].is_down(0), "the live target stays in service");
    tx.send(true).expect("service listening");
    tokio::time::timeout(GENEROUS, run)
        .await
        .expect("the service returns on shutdown")
        .expect("no panic");
    accept.abort();
}
