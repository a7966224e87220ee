//! A real `redis-server` for the shared rate-limit tests: one per test, on a free loopback
//! port, no persistence; killed on drop. `stop`/`resume` (SIGSTOP/SIGCONT) simulate a hung
//! server, `kill` a dead one, `restart` brings it back on the same port, empty.
//! `start_with_password` starts one that requires `AUTH` (`requirepass`); the helpers here
//! authenticate on their own.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// How long the server may take to answer `PING` after it is started.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `redis-server`.
#[derive(Debug)]
pub struct Redis {
    port: u16,
    password: Option<String>,
    child: Option<Child>,
}

impl Redis {
    /// Starts a server on a free loopback port and waits until it answers `PING`.
    pub fn start() -> Self {
        Self::start_as(None)
    }

    /// Starts a server that requires `password` (`requirepass`).
    pub fn start_with_password(password: &str) -> Self {
        Self::start_as(Some(password.to_owned()))
    }

    fn start_as(password: Option<String>) -> Self {
        let mut r = Self {
            port: free_port(),
            password,
            child: None,
        };
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        let port = self.port.to_string();
        let mut cmd = Command::new("redis-server");
        if let Some(p) = &self.password {
            cmd.args(["--requirepass", p]);
        }
        let child = cmd
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (scripts/setup.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        while !self.answers_ping() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://{}/0", self.addr())
    }

    /// Whether the server answers `PING` within 200 ms.
    pub fn answers_ping(&self) -> bool {
        self.command("PING\r\n")
            .is_some_and(|a| a.starts_with("+PONG"))
    }

    /// Sends one inline command and returns the first reply read within 200 ms
    /// (authenticated first when the server requires a password).
    pub fn command(&self, line: &str) -> Option<String> {
        self.command_in(0, line)
    }

    /// [`Redis::command`] in database `db`.
    pub fn command_in(&self, db: u8, line: &str) -> Option<String> {
        let t = Duration::from_millis(200);
        let mut s = TcpStream::connect_timeout(&self.addr(), t).ok()?;
        s.set_read_timeout(Some(t)).ok()?;
        let mut buf = vec![0u8; 64 << 10];
        let mut ask = |s: &mut TcpStream, line: &str| -> Option<String> {
            s.write_all(line.as_bytes()).ok()?;
            let n = s.read(&mut buf).ok()?;
            Some(String::from_utf8_lossy(&buf[..n]).into_owned())
        };
        if let Some(p) = &self.password {
            ask(&mut s, &format!("AUTH {p}\r\n")).filter(|a| a.starts_with("+OK"))?;
        }
        if db != 0 {
            ask(&mut s, &format!("SELECT {db}\r\n")).filter(|a| a.starts_with("+OK"))?;
        }
        ask(&mut s, line)
    }

    fn signal(&self, name: &str) {
        let pid = self.child.as_ref().expect("redis-server running").id();
        let ok = Command::new("kill")
            .args(["-s", name, &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -s {name} {pid}");
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing is answered.
    pub fn stop(&self) {
        self.signal("STOP");
    }

    /// Lets a frozen server go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    /// Kills the server and waits for it to exit: connections are refused.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the server if it runs and starts it again, empty, on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            // A frozen process still dies of SIGKILL.
            let _ = Command::new("kill")
                .args(["-s", "KILL", &c.id().to_string()])
                .status();
        }
        self.kill();
    }
}
