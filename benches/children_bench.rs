//! capmux benchmark: child MCP servers through capmux vs the same servers spoken to directly.
//!
//! The child is the example server `examples/mcp_child.rs` with `--tools 20` (31 tools: 11
//! fixed ones and `tool_0..tool_19`). capmux runs the release binary
//! (`capmux --no-bundled --package <servers.json> serve`, a Claude-Desktop-style
//! `{"mcpServers": {"c0": {...}, ...}}` file), driven by an rmcp 3.9 client over its
//! stdin/stdout exactly as a host would use it; "direct" is the same client on `mcp_child`'s
//! own stdin/stdout. Four things are measured:
//!
//! 1. **The `tools/call` hop.** `echo {text}` sequentially, direct and as `c0__echo` through
//!    capmux with one child, interleaved call by call (who goes first alternates) so both see
//!    the same machine load: p50/p99 each, the added p50, and the median of the paired
//!    differences. Then 16 concurrent tasks on one client connection: calls/s direct vs
//!    through capmux (rounds alternate), the ratio, and the CPU time each process spent per
//!    call (from `/proc/<pid>/stat`), to show where the time goes.
//! 2. **Cold start** of `capmux serve` with 1, 10 and 50 children: spawn → `initialize`
//!    answered (capmux answers once its children are ready, up to `[servers] startup_wait`),
//!    and spawn → the first `tools/list` (all pages) that lists every tool. For comparison,
//!    one `mcp_child` started directly (spawn → initialize, → listed), and 50 started directly
//!    at once (the slowest one's spawn → initialize, and all 50 listed).
//! 3. **`tools/list` with 50 children × 31 tools** (1,550 tools, every page followed with
//!    rmcp's `list_all_tools`), and one child's 31-tool listing direct, for scale.
//! 4. **capmux's memory with 50 children**: `VmHWM` and `VmRSS` of capmux's own process
//!    (`/proc/<pid>/status`, children not included) after the listings and a round of calls
//!    to every child; the children's RSS is shown beside it.
//!
//! Every answer is checked (the echoed text, the exact set of tool names), so an error can
//! never be measured as a fast answer.
//!
//! Run (`cargo bench` builds the capmux binary; the bench builds the example itself with a
//! nested `cargo build --release --example mcp_child`, since `cargo bench` does not):
//!
//! ```text
//! cargo bench --bench children_bench
//! cargo bench --bench children_bench -- --quick     # ~1/10 of the samples, a smoke run
//! ```
//!
//! Output: markdown tables on stdout, then the raw numbers (progress on stderr). Every
//! process runs with `HOME` and `XDG_*` in a temp dir, so no user config or package leaks
//! in. The client runs on a current-thread runtime with rmcp's response cache disabled.

mod common;

use std::borrow::Cow;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use common::{
    Flags, Header, Row, Stats, TEXT, grouped, progress, show, show_signed, text_arguments, timed,
};
use rmcp::RoleClient;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ClientConfig, JsonObject, PaginatedRequestParams,
};
use rmcp::service::{Peer, RunningService};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::process::{Child, Command};
use tokio::task::JoinSet;

/// The tools `mcp_child` always has, in its listing order.
const FIXED_TOOLS: [&str; 11] = [
    "echo",
    "add",
    "sleep",
    "fail",
    "crash",
    "log",
    "sample",
    "elicit",
    "add_tool",
    "remove_tool",
    "roots",
];
/// `mcp_child --tools 20`: `tool_0..tool_19` on top of the fixed ones.
const EXTRA_TOOLS: usize = 20;
const TOOLS_PER_CHILD: usize = FIXED_TOOLS.len() + EXTRA_TOOLS;

/// The cold starts measured; the last is also the listing and memory case.
const CHILD_COUNTS: [usize; 3] = [1, 10, 50];
const MANY: usize = 50;

/// Concurrent tasks on one client connection.
const CONCURRENCY: usize = 16;

/// capmux's default page size (`page_size`), to know how many pages a listing takes.
const PAGE_SIZE: usize = 100;

/// The targets the summary checks.
const ADDED_P50_TARGET: Duration = Duration::from_micros(50);
const THROUGHPUT_TARGET: f64 = 0.90;
const HWM_TARGET_KIB: u64 = 20 * 1024;

/// No single step may take longer than this; a hung capmux fails the bench instead.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Linux reports CPU time in `/proc/<pid>/stat` in USER_HZ ticks, 100 a second on every
/// architecture's ABI.
const USER_HZ: u64 = 100;

fn main() -> ExitCode {
    common::exit_code(run())
}

fn run() -> Result<()> {
    let usage = "usage: cargo bench --bench children_bench [-- --quick]\n  \
                 --quick    about a tenth of the samples (a smoke run)";
    let Some(flags) = Flags::parse(&["--quick"], usage)? else {
        return Ok(());
    };
    let quick = flags.has("--quick");
    let plan = if quick { Plan::QUICK } else { Plan::FULL };
    let started = Instant::now();
    let env = BenchEnv::new()?;
    let mut report = Report::new(&env, quick);

    common::runtime()?.block_on(async {
        measure_calls(&plan, &env, &mut report).await?;
        measure_cold_starts(&plan, &env, &mut report).await?;
        measure_many(&plan, &env, &mut report).await
    })?;

    report.header.finish(started.elapsed());
    common::print(&report.render()?)
}

/// How many samples of each kind; warm-up rounds are not recorded.
struct Plan {
    call_warmup: usize,
    calls: usize,
    /// Rounds of concurrent bursts, each side; calls per task in one burst.
    burst_rounds: usize,
    burst_per_task: usize,
    cold_starts: usize,
    direct_starts: usize,
    parallel_starts: usize,
    list_warmup: usize,
    listings: usize,
}

impl Plan {
    const FULL: Plan = Plan {
        call_warmup: 200,
        calls: 2000,
        burst_rounds: 5,
        burst_per_task: 400,
        cold_starts: 10,
        direct_starts: 20,
        parallel_starts: 5,
        list_warmup: 10,
        listings: 300,
    };
    const QUICK: Plan = Plan {
        call_warmup: 20,
        calls: 200,
        burst_rounds: 2,
        burst_per_task: 50,
        cold_starts: 2,
        direct_starts: 5,
        parallel_starts: 1,
        list_warmup: 2,
        listings: 30,
    };
}

/// Awaits `future` for at most [`STEP_TIMEOUT`].
async fn bounded<T>(what: &str, future: impl Future<Output = Result<T>>) -> Result<T> {
    common::bounded(STEP_TIMEOUT, what, future).await
}

// ---------------------------------------------------------------------------------------
// The environment: the binaries, an isolated home, the servers files.
// ---------------------------------------------------------------------------------------

struct BenchEnv {
    capmux: PathBuf,
    child: PathBuf,
    /// `HOME` and the XDG folders of every process started here.
    home: TempDir,
    /// The servers files.
    work: TempDir,
}

impl BenchEnv {
    fn new() -> Result<BenchEnv> {
        // Cargo builds the package's binaries for its benches and says where.
        let capmux = PathBuf::from(env!("CARGO_BIN_EXE_capmux"));
        ensure!(
            capmux.is_file(),
            "{} is missing: run `cargo build --release` first",
            capmux.display()
        );
        progress("building examples/mcp_child (cargo build --release --example mcp_child)");
        let child = build_child()?;
        Ok(BenchEnv {
            capmux,
            child,
            home: tempfile::Builder::new()
                .prefix("capmux-children-bench-home")
                .tempdir()?,
            work: tempfile::Builder::new()
                .prefix("capmux-children-bench-work")
                .tempdir()?,
        })
    }

    /// `program` in the work folder, isolated (see [`common::isolated`]), with
    /// `MCP_CHILD_LOG=warn` and stdin and stdout piped.
    fn isolated(&self, program: &Path) -> Command {
        let mut command = common::isolated(self.home.path(), program, self.work.path());
        command
            .env("MCP_CHILD_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        command
    }

    /// `mcp_child --tools 20`, to be spoken to directly.
    fn direct_child(&self) -> Command {
        let mut command = self.isolated(&self.child);
        command
            .args(["--tools", &EXTRA_TOOLS.to_string()])
            .stderr(Stdio::null());
        command
    }

    /// `capmux --no-bundled --package <servers> serve`.
    fn capmux_serve(&self, servers: &Path) -> Command {
        let mut command = self.isolated(&self.capmux);
        let args: [OsString; 4] = [
            "--no-bundled".into(),
            "--package".into(),
            servers.into(),
            "serve".into(),
        ];
        command
            .args(args)
            // The children are identical, so capmux rightly warns, at every pool rebuild,
            // that each one's `child://readme` is shadowed by `c0`'s (49 lines with 50
            // children); errors still show.
            .env("CAPMUX_LOG", "error")
            .stderr(Stdio::inherit());
        command
    }

    /// `capmux --no-bundled serve`: no package, no child.
    fn capmux_empty(&self) -> Command {
        let mut command = self.isolated(&self.capmux);
        command
            .args(["--no-bundled", "serve"])
            .stderr(Stdio::inherit());
        command
    }

    /// `capmux exec-child <this pid> mcp_child --tools 20`: the child started the way
    /// capmux starts it (the exec helper sets the parent-death signal, then execs it).
    fn exec_child(&self) -> Command {
        let mut command = self.isolated(&self.capmux);
        command
            .arg("exec-child")
            .arg(std::process::id().to_string())
            .arg(&self.child)
            .args(["--tools", &EXTRA_TOOLS.to_string()])
            .stderr(Stdio::null());
        command
    }

    /// A servers file with `n` children `c0..c{n-1}`, each `mcp_child --tools 20`.
    fn write_servers(&self, n: usize) -> Result<PathBuf> {
        let servers: serde_json::Map<String, Value> = (0..n)
            .map(|i| {
                let entry = json!({
                    "command": self.child.display().to_string(),
                    "args": ["--tools", EXTRA_TOOLS.to_string()],
                    "env": { "MCP_CHILD_LOG": "warn" }
                });
                (format!("c{i}"), entry)
            })
            .collect();
        let path = self.work.path().join(format!("servers-{n}.json"));
        let text = serde_json::to_vec_pretty(&json!({ "mcpServers": servers }))?;
        std::fs::write(&path, text)?;
        Ok(path)
    }
}

/// Builds the example child server (release, like the bench) and returns its path. Cargo
/// reports the path, so a custom target dir works too. The variables cargo set for this
/// bench are removed: some build scripts (ring's) track `CARGO_MANIFEST_DIR`, and
/// inheriting it would rebuild half the tree.
fn build_child() -> Result<PathBuf> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let release = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.file_name()? == "release"))
        .unwrap_or(true);
    let mut cargo = std::process::Command::new(env!("CARGO"));
    cargo.args([
        "build",
        "--quiet",
        "--example",
        "mcp_child",
        "--message-format=json",
    ]);
    cargo.arg("--manifest-path").arg(repo.join("Cargo.toml"));
    if release {
        cargo.arg("--release");
    }
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_BIN_EXE_")
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_MANIFEST_LINKS",
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
                "OUT_DIR",
            ]
            .contains(&key.as_ref())
        {
            cargo.env_remove(key.as_ref());
        }
    }
    let output = cargo
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo build --example mcp_child")?;
    ensure!(
        output.status.success(),
        "cargo build --example mcp_child failed ({})",
        output.status
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let path = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "mcp_child")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .context("cargo reported no mcp_child executable")?;
    ensure!(path.is_file(), "no example binary at {}", path.display());
    Ok(path)
}

/// Every public tool name of `n` children through capmux, sorted.
fn expected_names(n: usize) -> Vec<String> {
    let mut names: Vec<String> = (0..n)
        .flat_map(|i| {
            FIXED_TOOLS
                .iter()
                .map(|t| (*t).to_owned())
                .chain((0..EXTRA_TOOLS).map(|t| format!("tool_{t}")))
                .map(move |t| format!("c{i}__{t}"))
        })
        .collect();
    names.sort();
    names
}

/// Checks that `tools` holds exactly the `expected` names (sorted), in any order.
fn check_names(tools: &[rmcp::model::Tool], expected: &[String]) -> Result<()> {
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort_unstable();
    ensure!(
        names.len() == expected.len(),
        "listing holds {} tools, expected {}",
        names.len(),
        expected.len()
    );
    if let Some((got, want)) = names.iter().zip(expected).find(|(a, b)| **a != b.as_str()) {
        bail!("listing is not the expected set: got `{got}` where `{want}` belongs");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// A spawned MCP server (capmux or mcp_child) with an rmcp client on its stdio.
// ---------------------------------------------------------------------------------------

struct Conn {
    client: RunningService<RoleClient, ClientConfig>,
    peer: Peer<RoleClient>,
    child: Child,
    /// When the process was spawned, and how long until `initialize` was answered.
    spawned: Instant,
    initialized: Duration,
}

impl Conn {
    /// Spawns `command` (stdin/stdout piped) and completes the MCP handshake.
    async fn start(mut command: Command) -> Result<Conn> {
        let spawned = Instant::now();
        let mut child = command.spawn().context("cannot spawn the server")?;
        let (client, initialized) =
            common::connect(&mut child, "capmux-children-bench", STEP_TIMEOUT).await?;
        let initialized = initialized - spawned;
        let peer = client.peer().clone();
        Ok(Conn {
            client,
            peer,
            child,
            spawned,
            initialized,
        })
    }

    fn pid(&self) -> Result<u32> {
        self.child.id().context("the server has exited")
    }

    async fn list_all(&self) -> Result<Vec<rmcp::model::Tool>> {
        bounded("tools/list", async {
            Ok(self.peer.list_all_tools().await?)
        })
        .await
    }

    /// The number of pages of one complete listing.
    async fn count_pages(&self) -> Result<usize> {
        let mut cursor = None;
        let mut pages = 0;
        loop {
            let params = PaginatedRequestParams::default().with_cursor(cursor);
            let page = self.peer.list_tools(Some(params)).await?;
            pages += 1;
            cursor = page.next_cursor;
            if cursor.is_none() {
                return Ok(pages);
            }
            ensure!(pages <= 100_000, "pagination does not end");
        }
    }

    /// Closes the client's end; the server must exit cleanly on that EOF.
    async fn stop(self) -> Result<()> {
        drop(self.peer);
        common::stop(self.client, self.child, "the server").await
    }
}

/// One checked `tools/call` of `tool` (an echo, or a `tool_i` echoing its arguments as JSON):
/// its text must contain [`TEXT`].
async fn call(peer: &Peer<RoleClient>, tool: Cow<'static, str>, args: &JsonObject) -> Result<()> {
    let params = CallToolRequestParams::new(tool.clone()).with_arguments(args.clone());
    let result = match peer.call_tool_once(params).await? {
        CallToolResponse::Complete(result) => result,
        other => bail!("{tool}: not a final result: {other:?}"),
    };
    let text = common::result_text(&tool, &result)?;
    ensure!(text.contains(TEXT), "{tool} answered `{text}`");
    Ok(())
}

/// Which tool a concurrent task calls: `(task, i)` → the i-th call's tool name.
type PickTool = Arc<dyn Fn(usize, usize) -> Cow<'static, str> + Send + Sync>;

/// How a server to start is spawned.
type Starter = fn(&BenchEnv) -> Command;

/// One timed, checked call.
async fn timed_call(
    peer: &Peer<RoleClient>,
    tool: &'static str,
    args: &JsonObject,
) -> Result<Duration> {
    let (elapsed, ()) = timed(bounded("tools/call", call(peer, tool.into(), args))).await?;
    Ok(elapsed)
}

/// [`CONCURRENCY`] tasks, each making `per_task` calls in a row, on one connection; `tool`
/// picks the tool of the task's i-th call. Returns the wall time and every call's latency.
async fn burst(
    peer: &Peer<RoleClient>,
    per_task: usize,
    tool: PickTool,
) -> Result<(Duration, Vec<Duration>)> {
    let args = Arc::new(text_arguments());
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for task in 0..CONCURRENCY {
        let (peer, args, tool) = (peer.clone(), args.clone(), tool.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(per_task);
            for i in 0..per_task {
                let begin = Instant::now();
                call(&peer, tool(task, i), &args).await?;
                latencies.push(begin.elapsed());
            }
            Ok::<_, anyhow::Error>(latencies)
        });
    }
    let mut latencies = Vec::with_capacity(CONCURRENCY * per_task);
    let collect = async {
        while let Some(task) = tasks.join_next().await {
            latencies.extend(task.context("a call task panicked")??);
        }
        Ok(())
    };
    bounded("concurrent calls", collect).await?;
    Ok((start.elapsed(), latencies))
}

// ---------------------------------------------------------------------------------------
// /proc: CPU time, memory, children.
// ---------------------------------------------------------------------------------------

struct ProcStat {
    ppid: u32,
    cpu: Duration,
}

/// `/proc/<pid>/stat`: the parent and the user + system CPU time (all threads).
fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(comm)`: state is field 3, ppid 4, utime 14, stime 15.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(ProcStat {
        ppid,
        cpu: Duration::from_millis((utime + stime) * 1000 / USER_HZ),
    })
}

fn cpu_of(pids: &[u32]) -> Duration {
    pids.iter()
        .filter_map(|p| proc_stat(*p))
        .map(|s| s.cpu)
        .sum()
}

/// The processes whose parent is `parent`.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| proc_stat(*pid).is_some_and(|s| s.ppid == parent))
        .collect()
}

#[derive(Clone, Copy, Default)]
struct Memory {
    /// Peak resident set (`VmHWM`), KiB.
    hwm: u64,
    /// Resident set now (`VmRSS`), KiB, and its anonymous (heap, stacks) and file-backed
    /// (the binary's pages, shared libraries) parts.
    rss: u64,
    anon: u64,
    file: u64,
    threads: u64,
}

/// `VmHWM`, `VmRSS` (`RssAnon`, `RssFile`) and `Threads` of one process (not its children).
fn memory(pid: u32) -> Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let field = |name: &str| -> Result<u64> {
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .with_context(|| format!("no {name} in {path}"))?;
        let number = line.trim_start_matches(':').split_whitespace().next();
        number
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("bad {name} line in {path}: {line}"))
    };
    Ok(Memory {
        hwm: field("VmHWM")?,
        rss: field("VmRSS")?,
        anon: field("RssAnon")?,
        file: field("RssFile")?,
        threads: field("Threads")?,
    })
}

impl Memory {
    /// The cells of a markdown row: peak, RSS, anonymous, file-backed, threads.
    fn cells(&self) -> String {
        format!(
            "{} | {} | {} | {} | {}",
            mib(self.hwm),
            mib(self.rss),
            mib(self.anon),
            mib(self.file),
            self.threads
        )
    }

    fn raw(&self) -> String {
        format!(
            "VmHWM_kB={} VmRSS_kB={} RssAnon_kB={} RssFile_kB={} threads={}",
            self.hwm, self.rss, self.anon, self.file, self.threads
        )
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

// ---------------------------------------------------------------------------------------
// 1. tools/call: direct vs capmux, sequential and concurrent.
// ---------------------------------------------------------------------------------------

/// CPU time per call of each process, over bursts.
#[derive(Default)]
struct CpuPerCall {
    calls: usize,
    client: Duration,
    capmux: Duration,
    child: Duration,
}

impl CpuPerCall {
    fn per_call(&self, d: Duration) -> String {
        if self.calls == 0 {
            return "-".into();
        }
        show(d / u32::try_from(self.calls).unwrap_or(u32::MAX))
    }
}

async fn measure_calls(plan: &Plan, env: &BenchEnv, report: &mut Report) -> Result<()> {
    progress("sequential echo calls: direct vs capmux (1 child)");
    let direct = Conn::start(env.direct_child()).await?;
    let servers = env.write_servers(1)?;
    let capmux = Conn::start(env.capmux_serve(&servers)).await?;
    check_names(&capmux.list_all().await?, &expected_names(1))?;
    let direct_child_pid = direct.pid()?;
    let capmux_pid = capmux.pid()?;
    let grandchildren = children_of(capmux_pid);
    ensure!(
        grandchildren.len() == 1,
        "capmux has {} child processes, expected 1",
        grandchildren.len()
    );

    let args = text_arguments();
    let mut seq_direct = Vec::with_capacity(plan.calls);
    let mut seq_capmux = Vec::with_capacity(plan.calls);
    for round in 0..plan.call_warmup + plan.calls {
        let (d, c) = if round % 2 == 0 {
            let d = timed_call(&direct.peer, "echo", &args).await?;
            (d, timed_call(&capmux.peer, "c0__echo", &args).await?)
        } else {
            let c = timed_call(&capmux.peer, "c0__echo", &args).await?;
            (timed_call(&direct.peer, "echo", &args).await?, c)
        };
        if round >= plan.call_warmup {
            seq_direct.push(d);
            seq_capmux.push(c);
        }
    }
    report.section("1. `tools/call` `echo`: direct vs through capmux (1 child)");
    report.row("sequential, direct to `mcp_child` (`echo`)", &seq_direct)?;
    report.row("sequential, through capmux (`c0__echo`)", &seq_capmux)?;
    let direct_stats = Stats::of(&seq_direct)?;
    let capmux_stats = Stats::of(&seq_capmux)?;
    let added = capmux_stats.p50.as_secs_f64() - direct_stats.p50.as_secs_f64();
    let paired = common::paired_median(&seq_capmux, &seq_direct)?;
    let added_p99 = capmux_stats.p99.as_secs_f64() - direct_stats.p99.as_secs_f64();
    report.raw(format!(
        "seq.added_p50_us={:.1} seq.added_paired_median_us={:.1} seq.added_p99_us={:.1}",
        added * 1e6,
        paired * 1e6,
        added_p99 * 1e6
    ));
    report.target(
        "added p50 of a sequential `tools/call` (capmux p50 − direct p50)",
        show_signed(added),
        format!("< {}", show(ADDED_P50_TARGET)),
        added < ADDED_P50_TARGET.as_secs_f64(),
    );

    progress("16 concurrent tasks: direct vs capmux");
    let echo_direct: PickTool = Arc::new(|_, _| Cow::Borrowed("echo"));
    let echo_capmux: PickTool = Arc::new(|_, _| Cow::Borrowed("c0__echo"));
    let warmup = (plan.burst_per_task / 5).max(5);
    burst(&direct.peer, warmup, echo_direct.clone()).await?;
    burst(&capmux.peer, warmup, echo_capmux.clone()).await?;
    let me = std::process::id();
    let mut rates_direct = Vec::new();
    let mut rates_capmux = Vec::new();
    let mut lat_direct = Vec::new();
    let mut lat_capmux = Vec::new();
    let mut cpu_direct = CpuPerCall::default();
    let mut cpu_capmux = CpuPerCall::default();
    for round in 0..plan.burst_rounds * 2 {
        // Who goes first alternates.
        let on_capmux = (round % 2 == 1) ^ ((round / 2) % 2 == 1);
        let (client_before, capmux_before, child_before) = (
            cpu_of(&[me]),
            cpu_of(&[capmux_pid]),
            cpu_of(&[direct_child_pid]) + cpu_of(&grandchildren),
        );
        let (peer, tool) = if on_capmux {
            (&capmux.peer, echo_capmux.clone())
        } else {
            (&direct.peer, echo_direct.clone())
        };
        let (wall, latencies) = burst(peer, plan.burst_per_task, tool).await?;
        let calls = latencies.len();
        let rate = calls as f64 / wall.as_secs_f64();
        let (cpu, rates, lat) = if on_capmux {
            (&mut cpu_capmux, &mut rates_capmux, &mut lat_capmux)
        } else {
            (&mut cpu_direct, &mut rates_direct, &mut lat_direct)
        };
        cpu.calls += calls;
        cpu.client += cpu_of(&[me]).saturating_sub(client_before);
        cpu.capmux += cpu_of(&[capmux_pid]).saturating_sub(capmux_before);
        cpu.child +=
            (cpu_of(&[direct_child_pid]) + cpu_of(&grandchildren)).saturating_sub(child_before);
        rates.push(rate);
        lat.extend(latencies);
    }
    let what = format!("{CONCURRENCY} concurrent tasks, per call, direct");
    report.row(&what, &lat_direct)?;
    let what = format!("{CONCURRENCY} concurrent tasks, per call, through capmux");
    report.row(&what, &lat_capmux)?;

    let direct_rate = common::median_f64(&rates_direct)?;
    let capmux_rate = common::median_f64(&rates_capmux)?;
    let ratio = capmux_rate / direct_rate;
    let mut table = String::new();
    writeln!(
        table,
        "| path | direct p50 | capmux p50 | added (p50 − p50) | added (paired median) | ratio (p50) |"
    )?;
    writeln!(table, "|---|---:|---:|---:|---:|---:|")?;
    writeln!(
        table,
        "| sequential `echo` | {} | {} | {} | {} | {:.3}× |",
        show(direct_stats.p50),
        show(capmux_stats.p50),
        show_signed(added),
        show_signed(paired),
        capmux_stats.p50.as_secs_f64() / direct_stats.p50.as_secs_f64()
    )?;
    writeln!(table)?;
    writeln!(
        table,
        "| {CONCURRENCY} concurrent tasks, one connection | calls | calls/s (median of {} rounds) | CPU/call: client | CPU/call: capmux | CPU/call: mcp_child |",
        plan.burst_rounds
    )?;
    writeln!(table, "|---|---:|---:|---:|---:|---:|")?;
    for (label, rate, cpu, via) in [
        ("direct", direct_rate, &cpu_direct, false),
        ("through capmux", capmux_rate, &cpu_capmux, true),
    ] {
        writeln!(
            table,
            "| {label} | {} | {rate:.0} | {} | {} | {} |",
            cpu.calls,
            cpu.per_call(cpu.client),
            if via {
                cpu.per_call(cpu.capmux)
            } else {
                "-".into()
            },
            cpu.per_call(cpu.child)
        )?;
    }
    writeln!(
        table,
        "\nthroughput through capmux / direct: **{ratio:.3}** (per round: {})",
        rates_direct
            .iter()
            .zip(&rates_capmux)
            .map(|(d, c)| format!("{:.2}", c / d))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    writeln!(
        table,
        "\nCPU per call is from `/proc/<pid>/stat` (10 ms ticks) over all bursts; \
         with {} CPUs, every CPU µs capmux spends is taken from the client and the child.",
        common::cpus()
    )?;
    report.table(table);
    report.raw(format!(
        "conc.direct.calls_per_s={} conc.capmux.calls_per_s={} conc.ratio={ratio:.4}",
        rates_direct
            .iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(","),
        rates_capmux
            .iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(",")
    ));
    for (label, cpu) in [("direct", &cpu_direct), ("capmux", &cpu_capmux)] {
        let us = |d: Duration| d.as_secs_f64() * 1e6 / cpu.calls.max(1) as f64;
        report.raw(format!(
            "conc.{label}.cpu_us_per_call client={:.1} capmux={:.1} child={:.1} (calls={})",
            us(cpu.client),
            us(cpu.capmux),
            us(cpu.child),
            cpu.calls
        ));
    }
    report.target(
        &format!("throughput at {CONCURRENCY} concurrent, capmux / direct"),
        format!("{ratio:.3} ({capmux_rate:.0} vs {direct_rate:.0} calls/s)"),
        format!("≥ {THROUGHPUT_TARGET:.2}"),
        ratio >= THROUGHPUT_TARGET,
    );

    let mem = memory(capmux_pid)?;
    report.note(format!(
        "capmux with 1 child after these calls: VmHWM {}, VmRSS {} (anonymous {}, \
         file-backed {}), {} threads.",
        mib(mem.hwm),
        mib(mem.rss),
        mib(mem.anon),
        mib(mem.file),
        mem.threads
    ));
    report.raw(format!("mem.capmux_1_child {}", mem.raw()));

    direct.stop().await?;
    capmux.stop().await
}

// ---------------------------------------------------------------------------------------
// 2. Cold starts.
// ---------------------------------------------------------------------------------------

/// Lists until every expected tool is there (children slower than `startup_wait` join
/// later); returns the tools and how many listings came back incomplete first.
async fn list_until_complete(
    conn: &Conn,
    expected: &[String],
) -> Result<(Vec<rmcp::model::Tool>, usize)> {
    let mut incomplete = 0;
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let tools = conn.list_all().await?;
        if tools.len() >= expected.len() {
            check_names(&tools, expected)?;
            return Ok((tools, incomplete));
        }
        incomplete += 1;
        ensure!(
            Instant::now() < deadline,
            "only {} of {} tools listed after {STEP_TIMEOUT:?}",
            tools.len(),
            expected.len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn measure_cold_starts(plan: &Plan, env: &BenchEnv, report: &mut Report) -> Result<()> {
    report.section(&format!(
        "2. Cold start (every child `mcp_child --tools {EXTRA_TOOLS}`, {TOOLS_PER_CHILD} tools)"
    ));
    for n in CHILD_COUNTS {
        let children = if n == 1 { "child" } else { "children" };
        progress(&format!("cold starts of capmux serve with {n} {children}"));
        let servers = env.write_servers(n)?;
        let expected = expected_names(n);
        let mut init = Vec::new();
        let mut listed = Vec::new();
        let mut stops = Vec::new();
        let mut late = 0;
        for round in 0..=plan.cold_starts {
            let conn = Conn::start(env.capmux_serve(&servers)).await?;
            let (_, incomplete) = list_until_complete(&conn, &expected).await?;
            let all_listed = conn.spawned.elapsed();
            let initialized = conn.initialized;
            let (stopped, ()) = timed(conn.stop()).await?;
            if round > 0 {
                init.push(initialized);
                listed.push(all_listed);
                stops.push(stopped);
                late += usize::from(incomplete > 0);
            }
        }
        let what = format!("capmux, {n} {children}: spawn → `initialize` answered");
        report.row(&what, &init)?;
        let what = format!(
            "capmux, {n} {children}: spawn → first complete `tools/list` ({} tools)",
            expected.len()
        );
        report.row(&what, &listed)?;
        let what = format!("capmux, {n} {children}: stdin EOF → exited (not part of the start)");
        report.row(&what, &stops)?;
        if late > 0 {
            report.note(format!(
                "with {n} children, {late} of {} first listings were incomplete (a child slower \
                 than `startup_wait`); the time is to the first complete one.",
                plan.cold_starts
            ));
        }
        report.raw(format!("cold.capmux_{n}.first_listing_incomplete={late}"));
    }

    progress("cold starts of capmux serve without children");
    let mut init = Vec::new();
    for round in 0..=plan.direct_starts {
        let conn = Conn::start(env.capmux_empty()).await?;
        if round > 0 {
            init.push(conn.initialized);
        }
        conn.stop().await?;
    }
    let what = "for scale: capmux, no package, no child: spawn → `initialize` answered";
    report.row(what, &init)?;

    progress("cold starts of mcp_child, direct and through `capmux exec-child`");
    let starts: [(&str, Starter); 2] = [
        ("1 `mcp_child` direct", BenchEnv::direct_child),
        (
            "1 `mcp_child` via `capmux exec-child` (as capmux starts it)",
            BenchEnv::exec_child,
        ),
    ];
    for (label, command) in starts {
        let mut init = Vec::new();
        let mut listed = Vec::new();
        for round in 0..=plan.direct_starts {
            let conn = Conn::start(command(env)).await?;
            let tools = conn.list_all().await?;
            let all_listed = conn.spawned.elapsed();
            ensure!(tools.len() == TOOLS_PER_CHILD, "{} tools", tools.len());
            if round > 0 {
                init.push(conn.initialized);
                listed.push(all_listed);
            }
            conn.stop().await?;
        }
        report.row(&format!("{label}: spawn → `initialize` answered"), &init)?;
        report.row(&format!("{label}: spawn → `tools/list` answered"), &listed)?;
    }

    progress(&format!("{MANY} mcp_child started at once, direct"));
    let mut slowest = Vec::new();
    let mut fastest = Vec::new();
    let mut all_listed = Vec::new();
    for round in 0..=plan.parallel_starts {
        let start = Instant::now();
        let mut tasks = JoinSet::new();
        for _ in 0..MANY {
            let command = env.direct_child();
            tasks.spawn(async move {
                let conn = Conn::start(command).await?;
                let initialized = start.elapsed();
                let tools = conn.list_all().await?;
                ensure!(tools.len() == TOOLS_PER_CHILD, "{} tools", tools.len());
                Ok::<_, anyhow::Error>((conn, initialized))
            });
        }
        let mut conns = Vec::with_capacity(MANY);
        let mut inits = Vec::with_capacity(MANY);
        let collect = async {
            while let Some(task) = tasks.join_next().await {
                let (conn, initialized) = task.context("a start task panicked")??;
                conns.push(conn);
                inits.push(initialized);
            }
            Ok(())
        };
        bounded("parallel starts", collect).await?;
        let listed = start.elapsed();
        if round > 0 {
            slowest.extend(inits.iter().max().copied());
            fastest.extend(inits.iter().min().copied());
            all_listed.push(listed);
        }
        let mut stops = JoinSet::new();
        for conn in conns {
            stops.spawn(conn.stop());
        }
        while let Some(stopped) = stops.join_next().await {
            stopped.context("a stop task panicked")??;
        }
    }
    let what = format!("{MANY} `mcp_child` direct, at once: the fastest's spawn → `initialize`");
    report.row(&what, &fastest)?;
    let what = format!("{MANY} `mcp_child` direct, at once: the slowest's spawn → `initialize`");
    report.row(&what, &slowest)?;
    let what = format!("{MANY} `mcp_child` direct, at once: spawn → all {MANY} listed");
    report.row(&what, &all_listed)?;
    report.note(
        "capmux starts each child through `capmux exec-child` (its own binary, which sets the \
         parent-death signal and execs the server), so a child started by capmux pays one \
         more exec than a direct one."
            .into(),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 3. tools/list with 50 children; 4. memory.
// ---------------------------------------------------------------------------------------

async fn measure_many(plan: &Plan, env: &BenchEnv, report: &mut Report) -> Result<()> {
    progress(&format!("tools/list with {MANY} children"));
    let servers = env.write_servers(MANY)?;
    let expected = expected_names(MANY);
    let capmux = Conn::start(env.capmux_serve(&servers)).await?;
    let pid = capmux.pid()?;
    list_until_complete(&capmux, &expected).await?;
    let after_start = memory(pid)?;
    let pages = capmux.count_pages().await?;
    ensure!(
        pages == expected.len().div_ceil(PAGE_SIZE),
        "{pages} pages for {} tools",
        expected.len()
    );

    let mut samples = Vec::with_capacity(plan.listings);
    for round in 0..plan.list_warmup + plan.listings {
        let (elapsed, tools) = timed(capmux.list_all()).await?;
        check_names(&tools, &expected)?;
        if round >= plan.list_warmup {
            samples.push(elapsed);
        }
    }
    let direct = Conn::start(env.direct_child()).await?;
    let mut direct_samples = Vec::with_capacity(plan.listings);
    for round in 0..plan.list_warmup + plan.listings {
        let (elapsed, tools) = timed(direct.list_all()).await?;
        ensure!(tools.len() == TOOLS_PER_CHILD, "{} tools", tools.len());
        if round >= plan.list_warmup {
            direct_samples.push(elapsed);
        }
    }
    direct.stop().await?;
    report.section(&format!(
        "3. `tools/list` with {MANY} children × {TOOLS_PER_CHILD} tools ({} tools)",
        grouped(expected.len())
    ));
    let what = format!(
        "full listing through capmux, {} tools, page_size {PAGE_SIZE} ({pages} pages, `list_all_tools`)",
        grouped(expected.len())
    );
    report.row(&what, &samples)?;
    let what =
        format!("for scale: one `mcp_child`'s {TOOLS_PER_CHILD}-tool listing, direct (1 page)");
    report.row(&what, &direct_samples)?;

    progress(&format!(
        "calls to each of the {MANY} children, then memory"
    ));
    let args = text_arguments();
    let mut calls = 0;
    for i in 0..MANY {
        for tool in [
            "echo".to_owned(),
            "tool_0".into(),
            format!("tool_{}", EXTRA_TOOLS - 1),
        ] {
            bounded(
                "tools/call",
                call(&capmux.peer, format!("c{i}__{tool}").into(), &args),
            )
            .await?;
            calls += 1;
        }
    }
    let per_task = plan.burst_per_task / 4;
    let spread: PickTool = Arc::new(|task, i| format!("c{}__echo", (task * 7 + i) % MANY).into());
    let (_, latencies) = burst(&capmux.peer, per_task, spread).await?;
    calls += latencies.len();
    let after = memory(pid)?;
    let children = children_of(pid);
    let child_rss: Vec<u64> = children
        .iter()
        .filter_map(|c| memory(*c).ok())
        .map(|m| m.rss)
        .collect();
    let children_total: u64 = child_rss.iter().sum();
    capmux.stop().await?;

    report.section(&format!(
        "4. capmux's memory with {MANY} children (its own process only)"
    ));
    let mut table = String::new();
    writeln!(
        table,
        "| when | VmHWM (peak) | VmRSS | of which anonymous (`RssAnon`) | of which file-backed (`RssFile`) | threads |"
    )?;
    writeln!(table, "|---|---:|---:|---:|---:|---:|")?;
    writeln!(
        table,
        "| after start and the first complete listing | {} |",
        after_start.cells()
    )?;
    writeln!(
        table,
        "| after {} listings and {calls} calls ({} sequential to 3 tools of each child, {} from {CONCURRENCY} concurrent tasks spread over the children) | {} |",
        plan.list_warmup + plan.listings + 1,
        calls - latencies.len(),
        latencies.len(),
        after.cells()
    )?;
    writeln!(
        table,
        "\nFor comparison, its {} child processes: {} RSS in all, {} on average.",
        child_rss.len(),
        mib(children_total),
        mib(children_total / (child_rss.len().max(1) as u64))
    )?;
    report.table(table);
    report.raw(format!(
        "mem.capmux_{MANY}_children.after_start {}",
        after_start.raw()
    ));
    report.raw(format!(
        "mem.capmux_{MANY}_children.after_load {}",
        after.raw()
    ));
    report.raw(format!(
        "mem.children count={} total_VmRSS_kB={children_total}",
        child_rss.len()
    ));
    report.target(
        &format!("capmux peak RSS (VmHWM) with {MANY} children"),
        format!("{} (VmRSS {})", mib(after.hwm), mib(after.rss)),
        format!("< {}", mib(HWM_TARGET_KIB)),
        after.hwm < HWM_TARGET_KIB,
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Statistics and the report.
// ---------------------------------------------------------------------------------------

/// A duration in microseconds, for the raw numbers.
fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[derive(Default)]
struct Section {
    title: String,
    rows: Vec<Row>,
    /// Pre-rendered markdown after the rows.
    tables: Vec<String>,
    notes: Vec<String>,
}

struct Target {
    what: String,
    measured: String,
    goal: String,
    met: bool,
}

struct Report {
    header: Header,
    sections: Vec<Section>,
    targets: Vec<Target>,
    raw: Vec<String>,
}

impl Report {
    fn new(env: &BenchEnv, quick: bool) -> Report {
        let mut header = Header::new("capmux child servers benchmark", quick);
        header.push(format!("capmux binary: `{}`", env.capmux.display()));
        header.push(format!(
            "child: `{} --tools {EXTRA_TOOLS}`",
            env.child.display()
        ));
        Report {
            header,
            sections: Vec::new(),
            targets: Vec::new(),
            raw: Vec::new(),
        }
    }

    fn section(&mut self, title: &str) {
        self.sections.push(Section {
            title: title.to_owned(),
            ..Section::default()
        });
    }

    fn current(&mut self) -> &mut Section {
        if self.sections.is_empty() {
            self.section("results");
        }
        let last = self.sections.len() - 1;
        &mut self.sections[last]
    }

    fn row(&mut self, what: &str, samples: &[Duration]) -> Result<()> {
        let row = Row::new(what, samples)?;
        let stats = row.stats;
        self.raw.push(format!(
            "{what}: n={} p50_us={:.1} p99_us={:.1} mean_us={:.1} min_us={:.1} max_us={:.1}",
            stats.n,
            us(stats.p50),
            us(stats.p99),
            us(stats.mean),
            us(stats.min),
            us(stats.max)
        ));
        self.current().rows.push(row);
        Ok(())
    }

    fn table(&mut self, markdown: String) {
        self.current().tables.push(markdown);
    }

    fn note(&mut self, text: String) {
        self.current().notes.push(text);
    }

    fn raw(&mut self, line: String) {
        self.raw.push(line);
    }

    fn target(&mut self, what: &str, measured: String, goal: String, met: bool) {
        self.targets.push(Target {
            what: what.to_owned(),
            measured,
            goal,
            met,
        });
    }

    fn render(&self) -> Result<String> {
        let mut out = String::new();
        self.header.render(&mut out)?;
        writeln!(out, "\n### Targets\n")?;
        writeln!(out, "| target | measured | goal | met |")?;
        writeln!(out, "|---|---:|---:|:---:|")?;
        for t in &self.targets {
            writeln!(
                out,
                "| {} | {} | {} | {} |",
                t.what,
                t.measured,
                t.goal,
                if t.met { "yes" } else { "**no**" }
            )?;
        }
        for section in &self.sections {
            writeln!(out, "\n### {}\n", section.title)?;
            common::render_rows(&mut out, &section.rows)?;
            for (i, table) in section.tables.iter().enumerate() {
                // A blank line between blocks; the section title ends with one already.
                let gap = if i == 0 && section.rows.is_empty() {
                    ""
                } else {
                    "\n"
                };
                writeln!(out, "{gap}{}", table.trim_end())?;
            }
            for note in &section.notes {
                writeln!(out, "\n{note}")?;
            }
        }
        writeln!(out, "\n### Raw numbers\n\n```text")?;
        for line in &self.raw {
            writeln!(out, "{line}")?;
        }
        writeln!(out, "```")?;
        Ok(out)
    }
}
