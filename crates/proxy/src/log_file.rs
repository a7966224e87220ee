//! Log files: each path has one writer thread fed through a bounded queue, so a slow disk
//! never stalls a request, and a full queue drops lines (counted, and reported once per
//! burst) rather than grow without bound. Every log destination naming the same path shares
//! one writer, across reloads too. [`reopen_all`] (SIGUSR1) closes and reopens every file,
//! for logrotate.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::thread;

use zentinel_config::model::LogDestination;

use crate::BuildError;

/// Lines queued for one file at most.
const QUEUE: usize = 16 * 1024;

enum Msg {
    Line(Vec<u8>),
    Reopen,
}

/// One log file and its writer thread.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    tx: SyncSender<Msg>,
    dropped: AtomicU64,
    /// Set while lines are being dropped, so the drop is reported once per burst.
    dropping: AtomicBool,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Line(l) => write!(f, "Line({} bytes)", l.len()),
            Self::Reopen => f.write_str("Reopen"),
        }
    }
}

fn open(path: &Path) -> io::Result<BufWriter<File>> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map(BufWriter::new)
}

fn registry() -> &'static Mutex<HashMap<PathBuf, Weak<LogFile>>> {
    static FILES: OnceLock<Mutex<HashMap<PathBuf, Weak<LogFile>>>> = OnceLock::new();
    FILES.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The writer of `path`: the one already open for it, or a new one. Fails when the file
/// cannot be opened for appending (a missing directory, no permission).
pub fn file(path: &Path) -> io::Result<Arc<LogFile>> {
    let mut files = registry().lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(f) = files.get(path).and_then(Weak::upgrade) {
        return Ok(f);
    }
    let out = open(path)?;
    let (tx, rx) = sync_channel(QUEUE);
    let f = Arc::new(LogFile {
        path: path.to_owned(),
        tx,
        dropped: AtomicU64::new(0),
        dropping: AtomicBool::new(false),
    });
    let name = format!("zentinel-log {}", path.display());
    let thread_path = path.to_owned();
    thread::Builder::new()
        .name(name)
        .spawn(move || write_loop(&thread_path, out, &rx))?;
    files.insert(path.to_owned(), Arc::downgrade(&f));
    Ok(f)
}

/// Closes and reopens every open log file (after logrotate moved them).
pub fn reopen_all() {
    let files = registry().lock().unwrap_or_else(PoisonError::into_inner);
    for f in files.values().filter_map(Weak::upgrade) {
        // Reopening is worth waiting for a slot: it is rare and the writer drains fast.
        let _ = f.tx.send(Msg::Reopen);
    }
}

impl LogFile {
    /// Queues one line (a newline is added); never blocks.
    pub fn write_line(&self, line: &str) {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.write_bytes(bytes);
    }

    /// Queues bytes that already end with a newline; never blocks.
    pub fn write_bytes(&self, bytes: Vec<u8>) {
        match self.tx.try_send(Msg::Line(bytes)) {
            Ok(()) => {
                self.dropping.store(false, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if !self.dropping.swap(true, Ordering::Relaxed) {
                    // Not through `tracing`: the error log may be this very file.
                    let _ = writeln!(
                        io::stderr(),
                        "zentinel: log file {} is not keeping up; {n} lines dropped so far",
                        self.path.display()
                    );
                }
            }
        }
    }

    /// Lines dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Where one log's lines go.
#[derive(Debug)]
pub(crate) enum Sink {
    /// Nowhere.
    Off,
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// A file, through its writer thread.
    File(Arc<LogFile>),
}

impl Sink {
    /// The sink of `destination`; `log` names the log in errors (`access-log`, …).
    pub(crate) fn new(log: &str, destination: &LogDestination) -> Result<Self, BuildError> {
        Ok(match destination {
            LogDestination::Stdout => Self::Stdout,
            LogDestination::Stderr => Self::Stderr,
            LogDestination::File(path) => Self::File(file(path).map_err(|e| BuildError::Log {
                log: log.to_owned(),
                path: path.display().to_string(),
                reason: e.to_string(),
            })?),
            _ => Self::Off,
        })
    }

    /// Whether lines are thrown away (so they need not be built).
    pub(crate) fn is_off(&self) -> bool {
        matches!(self, Self::Off)
    }

    /// Writes one line.
    pub(crate) fn line(&self, text: &str) {
        let result = match self {
            Self::Off => Ok(()),
            Self::Stdout => writeln!(io::stdout().lock(), "{text}"),
            Self::Stderr => writeln!(io::stderr().lock(), "{text}"),
            Self::File(f) => {
                f.write_line(text);
                Ok(())
            }
        };
        if result.is_err() {
            tracing::debug!("log write failed");
        }
    }
}

/// Writes queued lines, flushing whenever the queue is empty; ends when every sender is gone.
fn write_loop(path: &Path, mut out: BufWriter<File>, rx: &Receiver<Msg>) {
    while let Ok(msg) = rx.recv() {
        handle(path, &mut out, msg);
        while let Ok(more) = rx.try_recv() {
            handle(path, &mut out, more);
        }
        let _ = out.flush();
    }
    let _ = out.flush();
}

fn handle(path: &Path, out: &mut BufWriter<File>, msg: Msg) {
    match msg {
        Msg::Line(bytes) => {
            let _ = out.write_all(&bytes);
        }
        Msg::Reopen => {
            let _ = out.flush();
            match open(path) {
                Ok(new) => *out = new,
                Err(e) => {
                    let _ = writeln!(
                        io::stderr(),
                        "zentinel: cannot reopen log file {}: {e}; still writing to the old one",
                        path.display()
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A fresh directory under the system's temporary directory, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let n: u64 = rand::random();
            let dir = std::env::temp_dir().join(format!("zentinel-log-{name}-{n:016x}"));
            std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
            Self(dir)
        }
        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn wait_for(path: &Path, want: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            if text.contains(want) || Instant::now() > deadline {
                return text;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn lines_arrive_and_the_writer_is_shared_by_path() {
        let dir = TempDir::new("shared");
        let path = dir.path().join("a.log");
        let f = file(&path).unwrap_or_else(|e| panic!("{e}"));
        let g = file(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(Arc::ptr_eq(&f, &g));
        f.write_line("one");
        g.write_line("two");
        assert_eq!(wait_for(&path, "two"), "one\ntwo\n");
    }

    #[test]
    fn reopen_follows_a_rotated_file() {
        let dir = TempDir::new("reopen");
        let path = dir.path().join("r.log");
        let f = file(&path).unwrap_or_else(|e| panic!("{e}"));
        f.write_line("before");
        wait_for(&path, "before");
        std::fs::rename(&path, dir.path().join("r.log.1")).unwrap_or_else(|e| panic!("{e}"));
        reopen_all();
        f.write_line("after");
        assert_eq!(wait_for(&path, "after"), "after\n");
        let old = std::fs::read_to_string(dir.path().join("r.log.1")).unwrap_or_default();
        assert_eq!(old, "before\n");
    }

    #[test]
    fn a_file_that_cannot_be_opened_is_an_error() {
        assert!(file(Path::new("/nonexistent-dir/zentinel/x.log")).is_err());
    }
}
