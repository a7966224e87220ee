//! The `zentinel` binary as a child process, with its configuration and output in a temporary
//! directory.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long the binary may take to start listening, or to exit when it is expected to fail.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `zentinel run -c <dir>/zentinel.kdl`; killed (SIGKILL) and reaped on drop.
#[derive(Debug)]
pub struct Proxy {
    dir: tempfile::TempDir,
    child: Child,
}

/// Creates the temp dir, writes `zentinel.kdl` and the extra files, and spawns the binary in
/// that directory with stdout and stderr going to `stdout.log` and `stderr.log`.
fn spawn(config: &str, files: &[(&str, &str)]) -> (tempfile::TempDir, Child) {
    let dir = tempfile::tempdir().expect("proxy: create temp dir");
    for (name, contents) in files {
        write_in(dir.path(), name, contents);
    }
    let config_path = dir.path().join("zentinel.kdl");
    std::fs::write(&config_path, config).expect("proxy: write zentinel.kdl");
    let out = File::create(dir.path().join("stdout.log")).expect("proxy: create stdout.log");
    let err = File::create(dir.path().join("stderr.log")).expect("proxy: create stderr.log");
    let child = Command::new(env!("CARGO_BIN_EXE_zentinel"))
        .arg("run")
        .arg("-c")
        .arg(&config_path)
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("proxy: spawn zentinel");
    (dir, child)
}

fn write_in(dir: &Path, name: &str, contents: &str) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("proxy: create directory");
    }
    std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn read_log(dir: &Path, name: &str) -> String {
    std::fs::read(dir.join(name))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

impl Proxy {
    /// Writes `config` to `zentinel.kdl` in a fresh temp dir, starts the binary on it and
    /// waits (up to 30 s) until every address in `listen` accepts TCP connections. Panics,
    /// with the child's stderr, if it exits first or the wait times out.
    ///
    /// Readiness is probed by connecting, so the proxy sees one short-lived connection per
    /// listener address before the test's own traffic.
    pub fn start(config: &str, listen: &[SocketAddr]) -> Self {
        Self::start_with_files(config, &[], listen)
    }

    /// [`Proxy::start`], first writing `files` (relative name, contents) into the directory
    /// (for includes, certificates...); the proxy's working directory is that directory.
    pub fn start_with_files(config: &str, files: &[(&str, &str)], listen: &[SocketAddr]) -> Self {
        let (dir, child) = spawn(config, files);
        let mut proxy = Self { dir, child };
        proxy.wait_listening(listen);
        proxy
    }

    fn wait_listening(&mut self, listen: &[SocketAddr]) {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut pending: Vec<SocketAddr> = listen.to_vec();
        loop {
            if let Some(status) = self.child.try_wait().expect("proxy: try_wait") {
                panic!(
                    "zentinel exited ({status}) before listening on {pending:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            pending.retain(|a| TcpStream::connect_timeout(a, Duration::from_millis(100)).is_err());
            if pending.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "zentinel not listening on {pending:?} after {START_TIMEOUT:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs the binary on a configuration expected not to start and returns its exit code and
    /// stderr once it exits. Panics if it is still running after 30 s.
    pub fn fail_to_start(config: &str) -> (Option<i32>, String) {
        let (dir, child) = spawn(config, &[]);
        let mut proxy = Self { dir, child };
        match proxy.wait_exit(START_TIMEOUT) {
            Some(status) => (status.code(), proxy.stderr()),
            None => panic!(
                "zentinel still running after {START_TIMEOUT:?}, expected it to fail; stderr:\n{}",
                proxy.stderr()
            ),
        }
    }

    /// The temp directory holding `zentinel.kdl`, `stdout.log` and `stderr.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("zentinel.kdl")
    }

    /// Writes (or overwrites) a file in the directory, e.g. a new `zentinel.kdl` before a
    /// reload signal.
    pub fn write_file(&self, name: &str, contents: &str) {
        write_in(self.dir.path(), name, contents);
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends signal `sig` (by number: 1 HUP, 2 INT, 3 QUIT, 9 KILL, 10 USR1, 12 USR2, 15 TERM;
    /// others passed as a number) with the `kill` command. Panics if `kill` fails.
    pub fn signal(&self, sig: i32) {
        let name = match sig {
            1 => Some("HUP"),
            2 => Some("INT"),
            3 => Some("QUIT"),
            9 => Some("KILL"),
            10 => Some("USR1"),
            12 => Some("USR2"),
            15 => Some("TERM"),
            _ => None,
        };
        let pid = self.pid().to_string();
        let mut cmd = Command::new("kill");
        match name {
            Some(n) => cmd.args(["-s", n, &pid]),
            None => cmd.args([format!("-{sig}"), pid.clone()]),
        };
        let status = cmd.status().expect("run the kill command");
        assert!(
            status.success(),
            "kill signal {sig} to {pid} failed: {status}"
        );
    }

    /// Waits (polling every 20 ms) up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("proxy: try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        read_log(self.dir.path(), "stderr.log")
    }

    /// Everything the process wrote to stdout so far.
    pub fn stdout(&self) -> String {
        read_log(self.dir.path(), "stdout.log")
    }

    /// Waits until stderr contains `needle`; panics with the stderr after `timeout`.
    pub fn wait_stderr(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.stderr().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "stderr did not show {needle:?} within {timeout:?}; stderr:\n{}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
