//! Slow clients end to end: slow headers, slow request bodies (gap and minimum rate), slow
//! readers (send deadline, bounded buffering of a large response) and thousands of
//! connections against the connection caps. In each, a normal client on another connection
//! is served while the attack runs. (`slowhttptest.rs` runs an independent tool.)

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    reason = "test code fails loudly and reports what it measured"
)]

pub mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use support::{MockUpstream, Proxy, RawConn, free_addr, get, wait_until};

/// The audit lines written so far.
fn audit(p: &Proxy) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p.dir().join("audit.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The first audit line with `reason`, waiting up to 5 s for it.
fn audit_line(p: &Proxy, reason: &str) -> serde_json::Value {
    let find = || audit(p).into_iter().find(|v| v["reason"] == reason);
    wait_until(
        Duration::from_secs(5),
        &format!("audit line {reason}"),
        || find().is_some(),
    );
    find().unwrap()
}

/// A normal client: one GET on a new connection, answered 200 within 5 s (generous: CI
/// machines run other tests beside this one).
fn served(addr: SocketAddr) {
    let started = Instant::now();
    let r = support::send_raw_with_timeout(
        addr,
        b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .expect("a normal client is answered");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Whether the peer has closed `s` (EOF or reset), without blocking.
fn peer_closed(mut s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    s.set_nonblocking(false).unwrap();
    closed
}

const QUIET: &str = r#"observability { access-log { destination "off"; }; audit-log { destination "file"; path "audit.log"; } }"#;

#[test]
fn slow_headers_are_cut_at_the_header_deadline_while_a_normal_client_is_served() {
    let up = MockUpstream::start("u");
    let addr = free_addr();
    let config = format!(
        r#"listeners {{ listener "web" {{ address "{addr}"; header-read-timeout-ms 1000; }} }}
{QUIET}
upstreams {{ upstream "u" {{ target "{}"; }} }}
routes {{ route "r" {{ upstream "u"; }} }}"#,
        up.addr()
    );
    let _p = Proxy::start(&config, &[addr]);
    // 50 slowloris connections, each sent one more header byte every 100 ms.
    let mut slow: Vec<TcpStream> = (0..50).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let started = Instant::now();
    let head = b"GET / HTTP/1.1\r\nHost: h\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let mut cut_at: Vec<Option<Duration>> = vec![None; slow.len()];
    let mut normal = 0;
    for b in head.iter() {
        for (i, s) in slow.iter_mut().enumerate() {
            if cut_at[i].is_none() && (s.write_all(&[*b]).is_err() || peer_closed(s)) {
                cut_at[i] = Some(started.elapsed());
            }
        }
        if cut_at.iter().all(Option::is_some) {
            break;
        }
        if started.elapsed() < Duration::from_millis(900) {
            // While the attack runs (before the deadline), a normal client is served.
            served(addr);
            normal += 1;
        }
        thread::sleep(Duration::from_millis(100));
    }
    assert!(normal >= 2, "normal requests during the attack: {normal}");
    eprintln!(
        "slow headers: {} connections cut between {:?} and {:?}; {normal} normal requests served meanwhile",
        cut_at.len(),
        cut_at.iter().flatten().min(),
        cut_at.iter().flatten().max()
    );
    for (i, c) in cut_at.iter().enumerate() {
        let c = c.unwrap_or_else(|| panic!("slow connection {i} was never cut"));
        assert!(
            c >= Duration::from_millis(900) && c < Duration::from_millis(4000),
            "connection {i} cut after {c:?}"
        );
    }
    assert_eq!(
        up.hits(),
        normal,
        "nothing of the slow requests went upstream"
    );
    served(addr);
}

/// Sends `head`, then `chunk` every `every` from another thread (until the connection
/// fails or `max` chunks), and waits (up to 10 s) for the answer. Returns its status (`None`
/// when the connection closed without one) and when it came.
fn trickle(
    addr: SocketAddr,
    head: &[u8],
    chunk: &'static [u8],
    every: Duration,
    max: usize,
) -> (Option<u16>, Duration) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(head).unwrap();
    let started = Instant::now();
    let mut w = s.try_clone().unwrap();
    let writer = thread::spawn(move || {
        for i in 0..max {
            if w.write_all(chunk).is_err() || i + 1 == max {
                return;
            }
            thread::sleep(every);
        }
    });
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let at = started.elapsed();
    let _ = s.shutdown(std::net::Shutdown::Both);
    writer.join().unwrap();
    let text = String::from_utf8_lossy(&got);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|c| c.parse().ok());
    (status, at)
}

#[test]
fn slow_request_bodies_are_cut_by_the_gap_deadline_and_the_minimum_rate() {
    let up = MockUpstream::start("u");
    let (gap, rate, late) = (free_addr(), free_addr(), free_addr());
    let config = format!(
        r#"listeners {{
    listener "gap" {{ address "{gap}"; body-read-timeout-ms 600; min-body-rate-bytes-per-sec 0; }}
    listener "rate" {{ address "{rate}"; body-read-timeout-ms 3000; min-body-rate-bytes-per-sec 100; body-rate-grace-ms 1000; }}
    listener "late" {{ address "{late}"; body-read-timeout-ms 3000; min-body-rate-bytes-per-sec 100; body-rate-grace-ms 2500; }}
}}
{QUIET}
upstreams {{ upstream "u" {{ target "{}"; }} }}
routes {{ route "r" {{ upstream "u"; }} }}"#,
        up.addr()
    );
    let p = Proxy::start(&config, &[gap, rate, late]);
    let head =
        b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n";

    // A body that stops: 408 once no byte has come for body-read-timeout-ms.
    let normal = thread::spawn(move || {
        thread::sleep(Duration::from_millis(200));
        served(gap);
    });
    let (status, at) = trickle(gap, head, b"0123456789", Duration::from_secs(60), 1);
    normal.join().unwrap();
    assert_eq!(status, Some(408), "after {at:?}");
    assert!(
        at >= Duration::from_millis(550) && at < Duration::from_millis(3500),
        "{at:?}"
    );
    eprintln!("slow body, gap 600 ms: 408 after {at:?}");
    let line = audit_line(&p, "body-read-timeout");
    assert_eq!(line["status"], 408, "{line}");

    // One byte every 200 ms never waits 3 s for a byte, but is far below 100 B/s: cut at the
    // rate deadline, grace (1 s) + bytes / rate, about 1.05 s.
    let normal = thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        served(rate);
    });
    let (status, at) = trickle(rate, head, b"x", Duration::from_millis(200), 100);
    normal.join().unwrap();
    assert_eq!(status, Some(408), "after {at:?}");
    assert!(
        at >= Duration::from_millis(950) && at < Duration::from_millis(3500),
        "{at:?}"
    );
    eprintln!("slow body, 5 B/s under 100 B/s, grace 1 s: 408 after {at:?}");
    let line = audit_line(&p, "body-too-slow");
    assert_eq!(line["status"], 408, "{line}");
    // A longer grace: the same trickle lasts about 2.55 s.
    let (status, at) = trickle(late, head, b"x", Duration::from_millis(200), 100);
    assert_eq!(status, Some(408), "after {at:?}");
    assert!(
        at >= Duration::from_millis(2450) && at < Duration::from_millis(5000),
        "{at:?}"
    );

    eprintln!("slow body, 5 B/s under 100 B/s, grace 2.5 s: 408 after {at:?}");
    // A body at 500 B/s (100 bytes every 200 ms) is above the rate: it is served whole.
    let (status, at) = trickle(rate, head, &[b'y'; 100], Duration::from_millis(200), 10);
    assert_eq!(status, Some(200), "after {at:?}");
    assert!(at >= Duration::from_millis(1700), "{at:?}");
    let served_upload = up
        .requests()
        .into_iter()
        .filter(|r| r.path == "/upload")
        .collect::<Vec<_>>();
    assert_eq!(
        served_upload.len(),
        1,
        "only the complete body reached the upstream"
    );
    assert_eq!(served_upload[0].body, vec![b'y'; 1000]);
}

/// One HTTP/2 request (prior knowledge, h2c) whose body is `chunk` every `every`, `max` times,
/// announced as `length` bytes. With `end`, the last chunk ends the stream; without, the
/// stream stays open after it (a stalled client, not one that gave up). Returns the status
/// the proxy answered (`None`: the stream was reset or nothing came within 10 s) and when.
fn h2_upload(
    addr: SocketAddr,
    length: usize,
    chunk: &'static [u8],
    every: Duration,
    max: usize,
    end: bool,
) -> (Option<u16>, Duration) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut client, conn) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = http::Request::builder()
            .method("POST")
            .uri("http://h/upload")
            .header("content-length", length)
            .body(())
            .unwrap();
        let (resp, mut body) = client.send_request(req, false).unwrap();
        let started = Instant::now();
        let writer = tokio::spawn(async move {
            for i in 0..max {
                let last = end && i + 1 == max;
                if body
                    .send_data(bytes::Bytes::from_static(chunk), last)
                    .is_err()
                {
                    return;
                }
                tokio::time::sleep(every).await;
            }
            // Keep the stream open until the test is done with it.
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(body);
        });
        let status = match tokio::time::timeout(Duration::from_secs(10), resp).await {
            Ok(Ok(r)) => Some(r.status().as_u16()),
            _ => None,
        };
        let at = started.elapsed();
        writer.abort();
        (status, at)
    })
}

/// The same deadlines over HTTP/2, where they bound the wait for a stream's next DATA frame:
/// a stream that stops is answered 408 after `body-read-timeout-ms`, one that trickles below
/// the minimum rate 408 at its rate deadline, and a body at a good rate is served.
#[test]
fn slow_http2_request_bodies_are_cut_like_http1_ones() {
    let up = MockUpstream::start("u");
    let (gap, rate) = (free_addr(), free_addr());
    let config = format!(
        r#"listeners {{
    listener "gap" {{ address "{gap}"; protocol "h2c"; body-read-timeout-ms 600; min-body-rate-bytes-per-sec 0; }}
    listener "rate" {{ address "{rate}"; protocol "h2c"; body-read-timeout-ms 3000; min-body-rate-bytes-per-sec 100; body-rate-grace-ms 1000; }}
}}
{QUIET}
upstreams {{ upstream "u" {{ target "{}"; }} }}
routes {{ route "r" {{ upstream "u"; }} }}"#,
        up.addr()
    );
    let p = Proxy::start(&config, &[gap, rate]);

    // A stream that stops after 10 bytes of 1000.
    let normal = thread::spawn(move || {
        thread::sleep(Duration::from_millis(200));
        served(gap);
    });
    let (status, at) = h2_upload(gap, 1000, b"0123456789", Duration::from_secs(60), 1, false);
    normal.join().unwrap();
    assert_eq!(status, Some(408), "after {at:?}");
    assert!(
        at >= Duration::from_millis(550) && at < Duration::from_millis(3500),
        "{at:?}"
    );
    eprintln!("HTTP/2 slow body, gap 600 ms: 408 after {at:?}");
    let line = audit_line(&p, "body-read-timeout");
    assert_eq!(line["status"], 408, "{line}");

    // One byte every 200 ms: cut at grace (1 s) + bytes / rate, about 1.05 s.
    let (status, at) = h2_upload(rate, 1000, b"x", Duration::from_millis(200), 100, false);
    assert_eq!(status, Some(408), "after {at:?}");
    assert!(
        at >= Duration::from_millis(950) && at < Duration::from_millis(3500),
        "{at:?}"
    );
    eprintln!("HTTP/2 slow body, 5 B/s under 100 B/s, grace 1 s: 408 after {at:?}");
    let line = audit_line(&p, "body-too-slow");
    assert_eq!(line["status"], 408, "{line}");

    // 100 bytes every 200 ms (500 B/s), the last with the stream's end: served whole.
    let (status, at) = h2_upload(
        rate,
        1000,
        &[b'y'; 100],
        Duration::from_millis(200),
        10,
        true,
    );
    assert_eq!(status, Some(200), "after {at:?}");
    let uploads = up
        .requests()
        .into_iter()
        .filter(|r| r.path == "/upload")
        .collect::<Vec<_>>();
    assert_eq!(
        uploads.len(),
        1,
        "only the complete body reached the upstream"
    );
    assert_eq!(uploads[0].body, vec![b'y'; 1000]);
}

/// An origin that answers `GET /big` with a 1 GiB body written as fast as its peer takes it,
/// and records how much it wrote and when its connection failed.
struct Firehose {
    addr: SocketAddr,
    written: Arc<AtomicU64>,
    failed_at: Arc<Mutex<Option<Instant>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Firehose {
    fn start() -> Self {
        let listener: TcpListener = support::bind_loopback();
        let addr = listener.local_addr().unwrap();
        let written = Arc::new(AtomicU64::new(0));
        let failed_at = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let (w, f, st) = (written.clone(), failed_at.clone(), stop.clone());
        let thread = thread::spawn(move || {
            listener.set_nonblocking(true).unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut conn = loop {
                match listener.accept() {
                    Ok((c, _)) => break c,
                    Err(_) if Instant::now() < deadline && !st.load(Ordering::SeqCst) => {
                        thread::sleep(Duration::from_millis(10));
                    }
                    Err(_) => return,
                }
            };
            conn.set_nonblocking(false).unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
                    _ => return,
                }
            }
            let total: u64 = 1 << 30;
            let header = format!("HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n");
            conn.write_all(header.as_bytes()).unwrap();
            conn.set_write_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            let chunk = vec![0u8; 64 * 1024];
            let mut sent = 0u64;
            while sent < total && Instant::now() < deadline && !st.load(Ordering::SeqCst) {
                match conn.write(&chunk) {
                    Ok(n) => {
                        sent += n as u64;
                        w.store(sent, Ordering::SeqCst);
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(_) => {
                        *f.lock().unwrap() = Some(Instant::now());
                        return;
                    }
                }
            }
        });
        Self {
            addr,
            written,
            failed_at,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Firehose {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[test]
fn a_client_that_does_not_read_is_cut_by_the_send_deadline_with_bounded_buffers() {
    let up = MockUpstream::start("u");
    let hose = Firehose::start();
    let addr = free_addr();
    let config = format!(
        r#"listeners {{ listener "web" {{ address "{addr}"; send-timeout-ms 1500; }} }}
{QUIET}
upstreams {{ upstream "u" {{ target "{}"; }}; upstream "big" {{ target "{}"; timeouts {{ read-ms 60000; }} }} }}
routes {{
    route "big" {{ matches {{ path-prefix "/big"; }}; upstream "big"; timeouts {{ total-ms 60000; }} }}
    route "r" {{ upstream "u"; }}
}}"#,
        up.addr(),
        hose.addr
    );
    let p = Proxy::start(&config, &[addr]);
    served(addr);
    let before = rss_kib(p.pid());
    // The slow reader: asks for 1 GiB and reads nothing.
    let mut reader = TcpStream::connect(addr).unwrap();
    reader
        .write_all(b"GET /big HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    let mut peak = before;
    let mut normal = 0;
    while hose.failed_at.lock().unwrap().is_none() && started.elapsed() < Duration::from_secs(10) {
        peak = peak.max(rss_kib(p.pid()));
        if started.elapsed() < Duration::from_millis(1200) {
            served(addr);
            normal += 1;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let failed_at = hose
        .failed_at
        .lock()
        .unwrap()
        .expect("the proxy closed the upstream connection of the stalled response");
    let cut = failed_at - started;
    let written = hose.written.load(Ordering::SeqCst);
    assert!(
        normal >= 3,
        "normal requests while the reader stalled: {normal}"
    );
    // Cut once one write has waited send-timeout-ms, not before.
    assert!(
        cut >= Duration::from_millis(1400) && cut < Duration::from_secs(6),
        "cut after {cut:?}"
    );
    // The upstream could push only what the socket buffers and a few chunks of the proxy
    // hold, out of 1 GiB; the proxy's memory did not follow the response.
    assert!(written < 64 << 20, "the upstream wrote {written} bytes");
    let grew = peak.saturating_sub(before);
    eprintln!(
        "slow reader: cut after {cut:?}; upstream wrote {written} of 1 GiB; proxy RSS {before} → {peak} KiB"
    );
    assert!(
        grew < 32 * 1024,
        "proxy RSS grew by {grew} KiB ({before} → {peak})"
    );
    // The client gets what was buffered, then the end of the connection.
    reader
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut got = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n as u64,
        }
    }
    assert!(got < written, "received {got} of {written}");
    let line = audit_line(&p, "send-timeout");
    assert!(line["status"].is_null(), "{line}");
    assert_eq!(line["route"], "big", "{line}");
    served(addr);
}

/// Raises this process's soft limit on open files to `want` when lower (the proxy, its
/// child, inherits it), with util-linux's `prlimit`.
fn raise_nofile(want: u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let soft: u64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if soft >= want {
        return;
    }
    let status = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &std::process::id().to_string(),
            &format!("--nofile={want}:{want}"),
        ])
        .status()
        .expect("run prlimit (util-linux) to raise RLIMIT_NOFILE");
    assert!(
        status.success(),
        "prlimit could not raise RLIMIT_NOFILE to {want} (soft limit {soft})"
    );
}

/// Opens `n` connections from `ip` (a loopback address), without sending anything.
fn open_from(rt: &tokio::runtime::Runtime, ip: &str, addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let local: SocketAddr = format!("{ip}:0").parse().unwrap();
    (0..n)
        .map(|_| {
            rt.block_on(async {
                let s = tokio::net::TcpSocket::new_v4()?;
                s.bind(local)?;
                let c = tokio::time::timeout(Duration::from_secs(5), s.connect(addr))
                    .await
                    .map_err(|_| std::io::Error::new(ErrorKind::TimedOut, "connect"))??;
                c.into_std()
            })
            .unwrap_or_else(|e| panic!("connect from {ip}: {e}"))
        })
        .collect()
}

/// How many of `conns` the proxy has closed.
fn closed(conns: &[TcpStream]) -> usize {
    conns.iter().filter(|c| peer_closed(c)).count()
}

/// The value of the metric line starting with `name` in the admin API's scrape.
fn metric(admin: SocketAddr, name: &str) -> u64 {
    let text = get(admin, "admin", "/metrics").text();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[test]
fn connection_caps_hold_at_thousands_of_connections() {
    raise_nofile(16_384);
    let up = MockUpstream::start("u");
    let addr = free_addr();
    let admin = free_addr();
    let config = format!(
        r#"listeners {{ listener "web" {{ address "{addr}"; header-read-timeout-ms 60000; }} }}
limits {{ max-connections 1600; max-connections-per-client 500; }}
admin {{ address "{admin}"; }}
{QUIET}
upstreams {{ upstream "u" {{ target "{}"; }} }}
routes {{ route "r" {{ upstream "u"; }} }}"#,
        up.addr()
    );
    let _p = Proxy::start(&config, &[addr, admin]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let open_count = || metric(admin, "zentinel_connections ");
    // 3000 connections from three client addresses: 500 of each are kept.
    let attackers: Vec<Vec<TcpStream>> = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
        .iter()
        .map(|ip| open_from(&rt, ip, addr, 1000))
        .collect();
    wait_until(Duration::from_secs(10), "1500 refusals", || {
        attackers.iter().map(|c| closed(c)).sum::<usize>() == 1500
    });
    for (i, c) in attackers.iter().enumerate() {
        assert_eq!(closed(c), 500, "client {i}: 500 of its 1000 were refused");
    }
    assert_eq!(open_count(), 1500);
    // A normal client from another address is served meanwhile.
    served(addr);
    // 500 more from a fourth address: only 100 fit under the total cap.
    let fourth = open_from(&rt, "127.0.0.5", addr, 500);
    wait_until(Duration::from_secs(10), "400 refusals", || {
        closed(&fourth) == 400
    });
    assert_eq!(open_count(), 1600);
    // At the total cap a new connection is closed without an answer.
    let mut c = RawConn::connect(addr).unwrap();
    let _ = c.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(
        c.closed_by_peer(Duration::from_secs(5)),
        "over the total cap"
    );
    assert_eq!(
        metric(
            admin,
            "zentinel_connections_refused_total{reason=\"max-connections-per-client\"}"
        ),
        1500
    );
    assert!(
        metric(
            admin,
            "zentinel_connections_refused_total{reason=\"max-connections\"}"
        ) >= 401
    );
    // Everything is given back when the clients go.
    drop(attackers);
    drop(fourth);
    wait_until(Duration::from_secs(10), "every slot released", || {
        open_count() == 0
    });
    served(addr);
    let again = open_from(&rt, "127.0.0.2", addr, 500);
    thread::sleep(Duration::from_millis(300));
    assert_eq!(closed(&again), 0, "a client's 500 slots came back");
    drop(again);
    eprintln!(
        "connection caps: 4000 connections opened and released in {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(up.hits(), 2, "only the normal clients reached the upstream");
}
