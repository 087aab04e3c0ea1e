//! Helpers shared by the benches (`mod common;` in each): the command line, the exit code,
//! progress lines, time limits, statistics and their formatting, the top and the tables of
//! the markdown report, an isolated environment for spawned processes, and an rmcp client
//! on a spawned server's stdio.
//!
//! Cargo does not build this file as a bench of its own (the package sets
//! `autobenches = false`); every bench compiles it into itself as a module.

// Every bench compiles this module separately and uses only a subset of it; what one bench
// leaves unused would otherwise warn there.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use rmcp::model::{
    CallToolResult, ClientCapabilities, ClientConfig, Implementation, JsonObject, ProtocolVersion,
};
use rmcp::service::RunningService;
use rmcp::{ClientCacheConfig, RoleClient, ServiceExt};
use serde_json::Value;
use tokio::process::{Child, Command};

/// The bench's name (its crate's, e.g. `capmux_bench`), the prefix of its stderr lines.
pub const BENCH: &str = env!("CARGO_CRATE_NAME");

/// The `text` argument of every tool call the benches make.
pub const TEXT: &str = "hello brave new world";

// ---------------------------------------------------------------------------------------
// The command line, the exit code, the output.
// ---------------------------------------------------------------------------------------

/// The flags given after `--` on the command line (cargo adds `--bench` itself).
pub struct Flags(Vec<String>);

impl Flags {
    /// Reads the command line, accepting only the flags in `known`; `None` when `-h` or
    /// `--help` was given, after printing `usage` to stderr.
    pub fn parse(known: &[&str], usage: &str) -> Result<Option<Flags>> {
        let mut given = Vec::new();
        for arg in std::env::args().skip(1) {
            match arg.as_str() {
                "--bench" => {}
                "-h" | "--help" => {
                    eprintln!("{usage}");
                    return Ok(None);
                }
                flag if known.contains(&flag) => given.push(arg),
                other => bail!("unknown argument `{other}`; try --help"),
            }
        }
        Ok(Some(Flags(given)))
    }

    /// Whether `flag` was given.
    pub fn has(&self, flag: &str) -> bool {
        self.0.iter().any(|f| f == flag)
    }
}

/// The exit code of a bench whose work returned `result`; an error is printed to stderr.
pub fn exit_code(result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // `{:#}` prints the chain without anyhow's backtrace (RUST_BACKTRACE may be set).
            eprintln!("{BENCH}: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// A progress line on stderr: `<bench>: <what> ...`.
pub fn progress(what: &str) {
    eprintln!("{BENCH}: {what} ...");
}

/// Writes the report to stdout (the crate's lints deny `print!`).
pub fn print(report: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(report.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// The runtime the benches' clients run on: a current-thread one, to keep the client's share
/// of each round trip small.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")
}

// ---------------------------------------------------------------------------------------
// Time limits and timing.
// ---------------------------------------------------------------------------------------

/// Awaits `future` for at most `limit` (a bench's `STEP_TIMEOUT`), so that a hung process
/// fails the bench instead of stalling it; `what` names the step in the error.
pub async fn bounded<T>(
    limit: Duration,
    what: &str,
    future: impl Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout(limit, future)
        .await
        .with_context(|| format!("{what}: no answer within {limit:?}"))?
}

/// Runs `future` and returns how long it took with its output.
pub async fn timed<T>(future: impl Future<Output = Result<T>>) -> Result<(Duration, T)> {
    let start = Instant::now();
    let value = future.await?;
    Ok((start.elapsed(), value))
}

// ---------------------------------------------------------------------------------------
// Statistics and their formatting.
// ---------------------------------------------------------------------------------------

/// The summary of one set of samples.
#[derive(Clone, Copy)]
pub struct Stats {
    pub n: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub mean: Duration,
    pub min: Duration,
    pub max: Duration,
}

impl Stats {
    /// The statistics of `samples` (in any order); fails if there are none.
    pub fn of(samples: &[Duration]) -> Result<Stats> {
        ensure!(!samples.is_empty(), "no samples");
        let mut sorted = samples.to_vec();
        sorted.sort();
        let n = sorted.len();
        let total: Duration = sorted.iter().sum();
        Ok(Stats {
            n,
            p50: percentile(&sorted, 50.0),
            p99: percentile(&sorted, 99.0),
            mean: total / u32::try_from(n)?,
            min: sorted[0],
            max: sorted[n - 1],
        })
    }
}

/// The median of `a[i] − b[i]` over paired samples, in seconds.
pub fn paired_median(a: &[Duration], b: &[Duration]) -> Result<f64> {
    ensure!(a.len() == b.len() && !a.is_empty(), "unpaired samples");
    let diffs: Vec<f64> = a
        .iter()
        .zip(b)
        .map(|(x, y)| x.as_secs_f64() - y.as_secs_f64())
        .collect();
    median_f64(&diffs)
}

/// The median of `values` (the mean of the middle two for an even count).
pub fn median_f64(values: &[f64]) -> Result<f64> {
    ensure!(!values.is_empty(), "no values");
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Ok(if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    })
}

/// Nearest-rank percentile of sorted, non-empty samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A duration in the unit that suits it.
pub fn show(d: Duration) -> String {
    show_signed(d.as_secs_f64())
}

/// Seconds (possibly negative) in the unit that suits them: µs, ms or s.
pub fn show_signed(seconds: f64) -> String {
    let magnitude = seconds.abs();
    if magnitude < 1e-3 {
        format!("{:.1} µs", seconds * 1e6)
    } else if magnitude < 1.0 {
        format!("{:.2} ms", seconds * 1e3)
    } else {
        format!("{seconds:.2} s")
    }
}

/// `n` with thousands separated by commas.
pub fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

// ---------------------------------------------------------------------------------------
// The machine and the markdown report.
// ---------------------------------------------------------------------------------------

/// The number of CPUs this process may use, or 0 if unknown.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(0, usize::from)
}

/// `/proc/loadavg`'s first three fields, or `?`.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "?".into())
}

/// The top of a markdown report: a `##` title and a bullet list about the run.
pub struct Header {
    title: String,
    lines: Vec<String>,
}

impl Header {
    /// A header whose first line is the mode (`--quick` or full), the CPU count and the load
    /// average now.
    pub fn new(title: &str, quick: bool) -> Header {
        Header {
            title: title.to_owned(),
            lines: vec![format!(
                "mode: {}; {} CPUs; load average at start: {}",
                if quick { "--quick" } else { "full" },
                cpus(),
                load_average()
            )],
        }
    }

    /// Adds a bullet.
    pub fn push(&mut self, line: String) {
        self.lines.push(line);
    }

    /// Adds the last bullet: the load average now and how long the bench took.
    pub fn finish(&mut self, elapsed: Duration) {
        self.push(format!(
            "load average at end: {}; bench took {}",
            load_average(),
            show(elapsed)
        ));
    }

    /// Writes the title and the bullets.
    pub fn render(&self, out: &mut String) -> std::fmt::Result {
        writeln!(out, "\n## {}\n", self.title)?;
        for line in &self.lines {
            writeln!(out, "- {line}")?;
        }
        Ok(())
    }
}

/// A row of a report's table: what was measured, and the statistics of its samples.
pub struct Row {
    pub what: String,
    pub stats: Stats,
}

impl Row {
    /// The row `what` over `samples`; fails if there are none.
    pub fn new(what: &str, samples: &[Duration]) -> Result<Row> {
        Ok(Row {
            what: what.to_owned(),
            stats: Stats::of(samples)?,
        })
    }
}

/// Writes `rows` as a markdown table (n, p50, p99, mean, min, max), or nothing if there are
/// none.
pub fn render_rows<'a>(
    out: &mut String,
    rows: impl IntoIterator<Item = &'a Row>,
) -> std::fmt::Result {
    for (i, row) in rows.into_iter().enumerate() {
        if i == 0 {
            writeln!(out, "| measurement | n | p50 | p99 | mean | min | max |")?;
            writeln!(out, "|---|---:|---:|---:|---:|---:|---:|")?;
        }
        let s = row.stats;
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.what,
            s.n,
            show(s.p50),
            show(s.p99),
            show(s.mean),
            show(s.min),
            show(s.max)
        )?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Spawned processes and an MCP client on their stdio.
// ---------------------------------------------------------------------------------------

/// `program` to run in `cwd` with `HOME` and the `XDG_*` folders in `home` (so no user
/// config or package leaks in), no `CAPMUX_CONFIG`, `CAPMUX_LOG=warn`, killed on drop.
pub fn isolated(home: &Path, program: impl AsRef<OsStr>, cwd: &Path) -> Command {
    let mut command = Command::new(program);
    command
        .current_dir(cwd)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env_remove("CAPMUX_CONFIG")
        .env("CAPMUX_LOG", "warn")
        .kill_on_drop(true);
    command
}

/// Completes the MCP handshake, as client `name`, with the server `child` spawned with
/// stdin and stdout piped (within `limit`), then disables rmcp's response cache. Returns the
/// client and when the handshake was complete (before the cache was disabled).
pub async fn connect(
    child: &mut Child,
    name: &str,
    limit: Duration,
) -> Result<(RunningService<RoleClient, ClientConfig>, Instant)> {
    let stdout = child.stdout.take().context("no stdout pipe")?;
    let stdin = child.stdin.take().context("no stdin pipe")?;
    let info = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new(name, env!("CARGO_PKG_VERSION")),
    )
    .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE);
    let client = bounded(limit, "initialize", async {
        info.serve((stdout, stdin))
            .await
            .context("MCP initialize failed")
    })
    .await?;
    let initialized = Instant::now();
    client
        .peer()
        .set_response_cache_config(ClientCacheConfig::disabled())
        .await;
    Ok((client, initialized))
}

/// Closes the client's end; the server `child` (called `what` in errors) must exit
/// cleanly on that EOF within 10 s, else it is killed and this fails.
pub async fn stop(
    client: RunningService<RoleClient, ClientConfig>,
    mut child: Child,
    what: &str,
) -> Result<()> {
    let _ = client.cancel().await;
    match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
        Ok(status) => {
            let status = status?;
            ensure!(status.success(), "{what} exited with {status}");
            Ok(())
        }
        Err(_) => {
            child.kill().await?;
            bail!("{what} did not exit within 10 s of stdin EOF")
        }
    }
}

/// The arguments `{"text": TEXT}`.
pub fn text_arguments() -> JsonObject {
    let mut map = JsonObject::new();
    map.insert("text".into(), Value::String(TEXT.into()));
    map
}

/// The text of a tool result (its text blocks, one a line), or an error if it is a tool
/// error.
pub fn result_text(tool: &str, result: &CallToolResult) -> Result<String> {
    let text: Vec<&str> = result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.as_str()))
        .collect();
    let text = text.join("\n");
    ensure!(result.is_error != Some(true), "{tool} failed: {text}");
    Ok(text)
}
