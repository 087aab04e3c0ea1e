//! Running a package's process: command tools and command hooks both come through here.
//!
//! The process starts in a process group of its own, with an allow-listed environment
//! (never the host's whole environment) and its input on stdin, written from a task of its
//! own so that a process printing before it reads cannot deadlock against us. Its stdout is
//! kept up to a limit and drained past it; the tail of its stderr is kept for messages. When
//! it exits, times out or the caller cancels, the whole group is killed, so nothing it
//! started in the background outlives the call or holds our pipes open.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

/// Host environment variables a package's process may see.
pub const ENV_ALLOW: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR"];

/// How much of stderr is kept for an error message.
pub const STDERR_TAIL: usize = 4096;

/// How long the pipes may stay open after the process group is gone.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// What to run.
pub struct Spec<'a> {
    pub program: &'a Path,
    pub args: &'a [String],
    pub cwd: &'a Path,
    /// The whole environment of the process.
    pub env: Vec<(String, String)>,
    pub stdin: Vec<u8>,
    pub timeout: Duration,
    /// The most bytes of stdout kept.
    pub output_limit: usize,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(ExitStatus),
    TimedOut,
    Cancelled,
}

/// What a run printed.
#[derive(Debug)]
pub struct Output {
    pub ended: Ended,
    /// The first `output_limit` bytes of stdout.
    pub stdout: Vec<u8>,
    /// How many bytes stdout had in all.
    pub stdout_total: usize,
    /// The last [`STDERR_TAIL`] bytes of stderr.
    pub stderr_tail: Vec<u8>,
}

/// The allow-listed variables of the host's environment.
pub fn host_env() -> Vec<(String, String)> {
    ENV_ALLOW
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v)))
        .collect()
}

/// `program` as a path: relative to `root` when it has a `/`, else from `PATH`.
pub fn resolve_program(program: &str, root: &Path) -> Option<PathBuf> {
    if program.contains('/') {
        let path = root.join(program);
        return path.is_file().then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    which::which_in(program, Some(path), root).ok()
}

/// Runs `spec` to its end; the error is why it could not start.
pub async fn run(spec: Spec<'_>, cancel: CancellationToken) -> Result<Output, std::io::Error> {
    let mut child = Command::new(spec.program)
        .args(spec.args)
        .current_dir(spec.cwd)
        .env_clear()
        .envs(spec.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()?;
    let pgid = child.id().map(|id| Pid::from_raw(id as i32));
    // If this future is dropped (a caller's timeout), the group still goes.
    let _group = GroupGuard(pgid);

    let stdin = child.stdin.take();
    let input = spec.stdin;
    let writer = tokio::spawn(async move {
        if let Some(mut stdin) = stdin {
            let _ = stdin.write_all(&input).await;
            let _ = stdin.shutdown().await;
        }
    });
    let limit = spec.output_limit;
    let stdout = child
        .stdout
        .take()
        .map(|r| tokio::spawn(read_head(r, limit)));
    let stderr = child
        .stderr
        .take()
        .map(|r| tokio::spawn(read_tail(r, STDERR_TAIL)));

    let ended = tokio::select! {
        status = child.wait() => match status {
            Ok(status) => Ended::Exited(status),
            Err(_) => Ended::Cancelled,
        },
        () = tokio::time::sleep(spec.timeout) => Ended::TimedOut,
        () = cancel.cancelled() => Ended::Cancelled,
    };
    // The group goes in every case: after a normal exit this sweeps what the process left
    // running in the background, which would otherwise hold our pipes open.
    if let Some(pgid) = pgid {
        let _ = killpg(pgid, Signal::SIGKILL);
    }
    let _ = child.wait().await;
    writer.abort();
    let (stdout, stdout_total) = join_reader(stdout).await;
    let (stderr_tail, _) = join_reader(stderr).await;
    Ok(Output {
        ended,
        stdout,
        stdout_total,
        stderr_tail,
    })
}

/// `capmux exec-child PPID PROGRAM ARGS...`: sets the parent-death signal (SIGKILL), checks
/// that the parent is still `PPID` (it may have died before the signal was set), then
/// becomes `PROGRAM`. Returns only on failure. This is how a child server gets the signal
/// without `unsafe` code between fork and exec.
pub fn exec_child(args: &[std::ffi::OsString]) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let (Some(ppid), Some(program)) = (args.first(), args.get(1)) else {
        return std::io::Error::other("usage: capmux exec-child PPID PROGRAM [ARGS...]");
    };
    let ppid: i32 = match ppid.to_string_lossy().parse() {
        Ok(ppid) => ppid,
        Err(_) => return std::io::Error::other("PPID is not a number"),
    };
    if let Err(err) = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL) {
        return std::io::Error::other(format!("cannot set the parent-death signal: {err}"));
    }
    if nix::unistd::getppid().as_raw() != ppid {
        return std::io::Error::other("the parent is gone");
    }
    std::process::Command::new(program).args(&args[2..]).exec()
}

/// Kills a process group when dropped; killing a group that is gone already is harmless.
struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

/// Reads all of `reader`, keeping the first `limit` bytes; returns them and the total.
async fn read_head(mut reader: impl AsyncRead + Unpin, limit: usize) -> (Vec<u8>, usize) {
    let mut kept = Vec::new();
    let mut total = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = limit.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                total += n;
            }
        }
    }
    (kept, total)
}

/// Reads all of `reader`, keeping the last `limit` bytes.
async fn read_tail(mut reader: impl AsyncRead + Unpin, limit: usize) -> (Vec<u8>, usize) {
    let mut kept: Vec<u8> = Vec::new();
    let mut total = 0usize;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                total += n;
                if kept.len() > 2 * limit {
                    kept.drain(..kept.len() - limit);
                }
            }
        }
    }
    if kept.len() > limit {
        kept.drain(..kept.len() - limit);
    }
    (kept, total)
}

async fn join_reader(
    handle: Option<tokio::task::JoinHandle<(Vec<u8>, usize)>>,
) -> (Vec<u8>, usize) {
    let Some(mut handle) = handle else {
        return (Vec::new(), 0);
    };
    // A process that escaped the group (setsid) may hold the pipe open; don't wait for it.
    match tokio::time::timeout(DRAIN_GRACE, &mut handle).await {
        Ok(Ok(read)) => read,
        _ => {
            handle.abort();
            (Vec::new(), 0)
        }
    }
}
