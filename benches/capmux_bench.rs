//! capmux benchmark: what capmux costs on top of the work it multiplexes.
//!
//! Three things are measured, each through the real release binary (`target/release/capmux`)
//! driven by an rmcp 3.9 client over its stdin/stdout, exactly as a host would use it:
//!
//! 1. **`tools/list` with 2,000 tools.** 4 generated native packages × 500 command tools in a
//!    temp dir, served with `capmux --no-bundled --package <dir> serve`. One sample is one
//!    complete paginated listing (every `nextCursor` followed), at the default page size (100,
//!    20 pages) and with a config file setting `page_size = 1000` (2 pages). Also: the cold
//!    start (spawn → initialized, spawn → first full listing) and the in-process cost of
//!    loading those packages (`capmux::load_with`, split into discovery and `Pool::build`).
//! 2. **A command-tool call through capmux vs the same script run directly.** Direct: spawn
//!    `python3 plugins/text-tools/tools/word_count.py`, write the arguments to its stdin, read
//!    its stdout to EOF, wait. Through capmux: a `tools/call` of `text-tools__word_count` to
//!    one long-running `capmux serve` (sequential calls), and, for reference, the one-shot CLI
//!    `capmux call text-tools__word_count '{...}'`. The three are interleaved round by round
//!    so that they see the same machine load. The same for `sha256.js` under node
//!    (`--no-node` skips it), and for a generated tool running `cat`: that process costs
//!    ~1 ms instead of 30-100 ms, so what capmux adds around a spawn rises above the noise;
//!    it is also called through capmux's `Runner` in this process, to split that cost
//!    between the runner and the server. Direct runs are started as capmux starts a tool
//!    (the environment allow-list of `src/runner.rs`, the program resolved on `PATH`
//!    first), so that both sides pay the same for the interpreter and the spawn.
//! 3. **The MCP hop alone**, with no process spawn: sequential `ping` and `prompts/get` of
//!    `house-rules__review` round trips, i.e. capmux's own per-request cost plus the stdio hop.
//!
//! Every response is checked (the listing holds exactly the 2,000 generated names, sorted and
//! unique; a call's text says `4 words` / the expected digest; the prompt is filled in), so an
//! error can never be measured as a fast answer.
//!
//! Run (the release binary must be current; `cargo bench` builds it, since the package has a
//! bin target):
//!
//! ```text
//! cargo build --release && cargo bench --bench capmux_bench
//! cargo bench --bench capmux_bench -- --quick     # ~1/10 of the samples, a smoke run
//! cargo bench --bench capmux_bench -- --no-node   # skip the sha256.js comparison
//! ```
//!
//! Output: markdown tables on stdout (progress on stderr). Every capmux process runs with
//! `HOME` and `XDG_*` in a temp dir, so no user config or package leaks in; interpreters are
//! found on the inherited `PATH`, by capmux and by the direct runs alike. The client runs on
//! a current-thread runtime with rmcp's response cache disabled, to keep the client's share
//! of each round trip small.

mod common;

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail, ensure};
use capmux::{Config, Options, Pool};
use common::{Flags, Header, Row, Stats, TEXT, progress, show, show_signed, text_arguments, timed};
use rmcp::RoleClient;
use rmcp::model::{
    CallToolRequestParams, ClientConfig, ClientRequest, GetPromptRequestParams, ListToolsResult,
    PaginatedRequestParams, PingRequest, RequestId, ServerJsonRpcMessage, ServerResult, Tool,
};
use rmcp::service::RunningService;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

/// 4 × 500 = 2,000 tools; a package may declare at most 1,000 items.
const PACKAGES: usize = 4;
const TOOLS_PER_PACKAGE: usize = 500;
const TOTAL_TOOLS: usize = PACKAGES * TOOLS_PER_PACKAGE;

/// What `word_count` must answer for [`TEXT`].
const WORD_COUNT_EXPECT: &str = "4 words";

/// The one tool of the generated `cat` package.
const CAT_TOOL: &str = "bench-cat__echo";

const REVIEW_PROMPT: &str = "house-rules__review";
/// A line of `plugins/house-rules/prompts/review.md`, to know the prompt really came back.
const REVIEW_MARKER: &str = "You are reviewing a code change";

/// The host variables capmux passes to a command tool.
const TOOL_ENV_ALLOW: &[&str] = capmux::process::ENV_ALLOW;

/// No single step may take longer than this; a hung capmux fails the bench instead.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// The script of every generated tool (never run here; it keeps the packages realistic).
const ECHO_PY: &str = r#"import json, sys
args = json.load(sys.stdin)
print(json.dumps({"success": True, "data": args}))
"#;

fn main() -> ExitCode {
    common::exit_code(run())
}

fn run() -> Result<()> {
    let Some(args) = Args::parse()? else {
        return Ok(());
    };
    let plan = if args.quick { Plan::QUICK } else { Plan::FULL };
    let started = Instant::now();
    let env = BenchEnv::new()?;
    let mut report = Report::new(&env, &args)?;

    progress("in-process load of 2,000 tools");
    let packages = env.write_packages()?;
    let pool = measure_load(&plan, &env, &packages, &mut report)?;
    measure_codec(&plan, &pool, &mut report)?;
    drop(pool);

    common::runtime()?.block_on(async {
        measure_listing(&plan, &env, &packages, &mut report).await?;
        measure_calls_and_hops(&plan, &env, &args, &mut report).await
    })?;

    report.header.finish(started.elapsed());
    common::print(&report.render()?)
}

/// The command line after `--` (cargo adds `--bench` itself).
struct Args {
    quick: bool,
    node: bool,
}

impl Args {
    /// `None` when only `--help` was asked for.
    fn parse() -> Result<Option<Args>> {
        let usage = "usage: cargo bench --bench capmux_bench [-- --quick] [-- --no-node]\n  \
                     --quick    about a tenth of the samples (a smoke run)\n  \
                     --no-node  skip the sha256.js comparison";
        let Some(flags) = Flags::parse(&["--quick", "--no-node"], usage)? else {
            return Ok(None);
        };
        Ok(Some(Args {
            quick: flags.has("--quick"),
            node: !flags.has("--no-node"),
        }))
    }
}

/// How many samples of each kind; warm-up rounds are not recorded.
struct Plan {
    loads: usize,
    cold_starts: usize,
    list_warmup: usize,
    listings: usize,
    call_warmup: usize,
    calls: usize,
    /// The CLI one-shot runs in every n-th call round.
    cli_every: usize,
    node_calls: usize,
    hop_warmup: usize,
    hops: usize,
}

impl Plan {
    const FULL: Plan = Plan {
        loads: 20,
        cold_starts: 10,
        list_warmup: 10,
        listings: 300,
        call_warmup: 10,
        calls: 300,
        cli_every: 3,
        node_calls: 100,
        hop_warmup: 200,
        hops: 2000,
    };
    const QUICK: Plan = Plan {
        loads: 3,
        cold_starts: 2,
        list_warmup: 2,
        listings: 30,
        call_warmup: 2,
        calls: 30,
        cli_every: 3,
        node_calls: 10,
        hop_warmup: 20,
        hops: 200,
    };
}

/// Awaits `future` for at most [`STEP_TIMEOUT`].
async fn bounded<T>(what: &str, future: impl Future<Output = Result<T>>) -> Result<T> {
    common::bounded(STEP_TIMEOUT, what, future).await
}

// ---------------------------------------------------------------------------------------
// The environment: the binary, an isolated home, the generated packages.
// ---------------------------------------------------------------------------------------

struct BenchEnv {
    repo: PathBuf,
    bin: PathBuf,
    /// A source file newer than `bin`, if any: the bench then measures older code.
    stale: Option<PathBuf>,
    /// `HOME` and the XDG folders of every process started here.
    home: TempDir,
    /// The generated packages and config files.
    work: TempDir,
}

impl BenchEnv {
    fn new() -> Result<BenchEnv> {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(|dir| repo.join(dir))
            .unwrap_or_else(|| repo.join("target"));
        let bin = target.join("release").join("capmux");
        if !bin.is_file() {
            bail!(
                "{} is missing: run `cargo build --release` first",
                bin.display()
            );
        }
        let stale = newer_source(&repo, &bin);
        if let Some(newer) = &stale {
            eprintln!(
                "capmux_bench: warning: {} is newer than {}; run `cargo build --release` to bench the current code",
                newer.display(),
                bin.display()
            );
        }
        Ok(BenchEnv {
            repo,
            bin,
            stale,
            home: tempfile::Builder::new()
                .prefix("capmux-bench-home")
                .tempdir()?,
            work: tempfile::Builder::new()
                .prefix("capmux-bench-work")
                .tempdir()?,
        })
    }

    /// `program` started the way capmux starts a command tool (see `src/runner.rs`):
    ///
    /// - only the allow-listed environment, `HOME` being the isolated one. The host's whole
    ///   environment can cost a lot: with `NODE_EXTRA_CA_CERTS` set, every node start reads
    ///   that bundle (~45 ms here), which capmux's tools never pay;
    /// - the program resolved to an absolute path first. With a bare name and a changed
    ///   environment, std cannot use `posix_spawn` and falls back to fork + exec, about
    ///   0.5 ms slower per spawn here, which would make capmux look faster than direct.
    fn tool_command(&self, program: &str, cwd: &Path) -> Result<Command> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let resolved = which::which_in(program, Some(path), cwd)
            .with_context(|| format!("`{program}` is not on PATH"))?;
        let mut command = Command::new(resolved);
        command
            .current_dir(cwd)
            .env_clear()
            .envs(
                TOOL_ENV_ALLOW
                    .iter()
                    .filter_map(|k| std::env::var_os(k).map(|v| (*k, v))),
            )
            .env("HOME", self.home.path())
            .kill_on_drop(true);
        Ok(command)
    }

    /// The capmux binary with `args`, isolated.
    fn capmux(&self, args: &[OsString], cwd: &Path) -> Command {
        let mut command = common::isolated(self.home.path(), &self.bin, cwd);
        command.args(args);
        command
    }

    /// Writes the 2,000-tool packages; returns their parent folder.
    fn write_packages(&self) -> Result<PathBuf> {
        let dir = self.work.path().join("packages");
        for p in 0..PACKAGES {
            let root = dir.join(format!("bench-{p}"));
            std::fs::create_dir_all(&root)?;
            let tools: Vec<Value> = (0..TOOLS_PER_PACKAGE)
                .map(|t| {
                    json!({
                        "name": format!("tool_{t}"),
                        "description": format!(
                            "Bench tool {t} of package {p}: echoes its `text` argument back as JSON."
                        ),
                        "inputSchema": {
                            "type": "object",
                            "properties": { "text": { "type": "string" } }
                        },
                        "command": ["python3", "echo.py"]
                    })
                })
                .collect();
            let manifest = json!({
                "name": format!("bench-{p}"),
                "version": "1.0.0",
                "capmux": {
                    "manifestVersion": 1,
                    "permissions": ["shell:execute"],
                    "tools": tools
                }
            });
            std::fs::write(
                root.join("package.json"),
                serde_json::to_vec_pretty(&manifest)?,
            )?;
            std::fs::write(root.join("echo.py"), ECHO_PY)?;
        }
        Ok(dir)
    }

    /// Writes a package whose one tool runs `cat`, and a config granting it
    /// `shell:execute`; returns both paths.
    fn write_cat_package(&self) -> Result<(PathBuf, PathBuf)> {
        let root = self.work.path().join("bench-cat");
        std::fs::create_dir_all(&root)?;
        let manifest = json!({
            "name": "bench-cat",
            "version": "1.0.0",
            "capmux": {
                "manifestVersion": 1,
                "permissions": ["shell:execute"],
                "tools": [{
                    "name": "echo",
                    "description": "Echoes its arguments back (runs `cat`).",
                    "inputSchema": {
                        "type": "object",
                        "properties": { "text": { "type": "string" } }
                    },
                    "command": ["cat"]
                }]
            }
        });
        std::fs::write(
            root.join("package.json"),
            serde_json::to_vec_pretty(&manifest)?,
        )?;
        let config = self.config_file(
            "grant-cat.toml",
            "[packages.\"bench-cat\"]\ngrants = [\"shell:execute\"]\n",
        )?;
        Ok((root, config))
    }

    /// A config file holding `toml`; returns its path.
    fn config_file(&self, name: &str, toml: &str) -> Result<PathBuf> {
        let path = self.work.path().join(name);
        std::fs::write(&path, toml)?;
        Ok(path)
    }
}

/// A file under `src/` (or `Cargo.toml`) modified after `bin`, if any.
fn newer_source(repo: &Path, bin: &Path) -> Option<PathBuf> {
    let built = modified(bin)?;
    let mut stack = vec![repo.join("src")];
    let mut files = vec![repo.join("Cargo.toml")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).ok()?.filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
        .into_iter()
        .find(|f| modified(f).is_some_and(|m| m > built))
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Every public tool name of the generated packages, sorted.
fn expected_tool_names() -> Vec<String> {
    let mut names: Vec<String> = (0..PACKAGES)
        .flat_map(|p| (0..TOOLS_PER_PACKAGE).map(move |t| format!("bench-{p}__tool_{t}")))
        .collect();
    names.sort();
    names
}

/// Checks that `names` is exactly the generated set, in order.
fn check_listing(names: &[String], expected: &[String]) -> Result<()> {
    ensure!(
        names.len() == expected.len(),
        "listing holds {} tools, expected {}",
        names.len(),
        expected.len()
    );
    if let Some((got, want)) = names.iter().zip(expected).find(|(a, b)| a != b) {
        bail!(
            "listing is not the sorted set of generated tools: got `{got}` where `{want}` belongs"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// A running `capmux serve` with an rmcp client on its stdio.
// ---------------------------------------------------------------------------------------

struct Capmux {
    client: RunningService<RoleClient, ClientConfig>,
    child: Child,
}

impl Capmux {
    /// Spawns `capmux <args> serve` in `cwd` and completes the MCP handshake.
    async fn start(env: &BenchEnv, args: &[OsString], cwd: &Path) -> Result<Capmux> {
        let mut command = env.capmux(args, cwd);
        command
            .arg("serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().context("cannot spawn capmux serve")?;
        let (client, _) = common::connect(&mut child, "capmux-bench", STEP_TIMEOUT).await?;
        Ok(Capmux { client, child })
    }

    /// One complete paginated listing: the tools and the number of pages.
    async fn list_tools(&self) -> Result<(Vec<Tool>, usize)> {
        let mut tools = Vec::with_capacity(TOTAL_TOOLS);
        let mut cursor = None;
        let mut pages = 0;
        loop {
            let params = PaginatedRequestParams::default().with_cursor(cursor);
            let page = self.client.list_tools(Some(params)).await?;
            pages += 1;
            tools.extend(page.tools);
            cursor = page.next_cursor;
            if cursor.is_none() {
                return Ok((tools, pages));
            }
            ensure!(pages <= TOTAL_TOOLS + 1, "pagination does not end");
        }
    }

    /// Calls tool `name`; returns its text, or fails if it is a tool error.
    async fn call_tool(&self, name: &'static str, arguments: Map<String, Value>) -> Result<String> {
        let params = CallToolRequestParams::new(name).with_arguments(arguments);
        common::result_text(name, &self.client.call_tool(params).await?)
    }

    async fn ping(&self) -> Result<()> {
        let request = ClientRequest::PingRequest(PingRequest::default());
        match self.client.send_request(request).await? {
            ServerResult::EmptyResult(_) => Ok(()),
            other => bail!("ping: unexpected answer {other:?}"),
        }
    }

    /// `prompts/get` of the review prompt; returns the text of its message.
    async fn review_prompt(&self, arguments: Map<String, Value>) -> Result<String> {
        let params = GetPromptRequestParams::new(REVIEW_PROMPT).with_arguments(arguments);
        let result = self.client.get_prompt(params).await?;
        ensure!(
            result.messages.len() == 1,
            "{REVIEW_PROMPT}: {} messages",
            result.messages.len()
        );
        let text = result.messages[0]
            .content
            .as_text()
            .map(|t| t.text.clone())
            .context("prompt message is not text")?;
        Ok(text)
    }

    /// Closes the client's end; capmux must exit cleanly on that EOF.
    async fn stop(self) -> Result<()> {
        common::stop(self.client, self.child, "capmux serve").await
    }
}

// ---------------------------------------------------------------------------------------
// 1. tools/list with 2,000 tools; loading them.
// ---------------------------------------------------------------------------------------

/// In-process: `load_with` end to end, then its two halves separately; returns a pool.
fn measure_load(plan: &Plan, env: &BenchEnv, packages: &Path, report: &mut Report) -> Result<Pool> {
    let expected = expected_tool_names();
    let cwd = env.work.path().to_path_buf();
    let options = Options::only(vec![packages.to_path_buf()], cwd.clone());
    let check = |pool: &Pool| -> Result<()> {
        let names: Vec<String> = pool.tools.keys().cloned().collect();
        check_listing(&names, &expected)
    };

    let schema = json!({ "type": "object", "properties": { "text": { "type": "string" } } });
    let mut total = Vec::new();
    let mut discover = Vec::new();
    let mut validators = Vec::new();
    let mut build = Vec::new();
    let mut last = None;
    for round in 0..=plan.loads {
        // `Config::default()` reads no user packages: the generated ones are all there is.
        let start = Instant::now();
        let loaded = capmux::load_with(Config::default(), &options);
        let elapsed = start.elapsed();
        check(&loaded.pool)?;
        if let Some(error) = loaded.diagnostics.iter().find(|d| d.is_error()) {
            bail!("loading the generated packages failed: {error}");
        }

        let config = Config::default();
        let start = Instant::now();
        let roots = capmux::discover::roots(&config, &options.overrides, &cwd, Vec::new());
        let (found, _) = capmux::discover::discover(&roots);
        let discovered = start.elapsed();
        let start = Instant::now();
        let pool = Pool::build(found, &config);
        let built = start.elapsed();
        check(&pool)?;

        let start = Instant::now();
        for _ in 0..TOTAL_TOOLS {
            jsonschema::validator_for(&schema).context("the bench's schema is invalid")?;
        }
        let compiled = start.elapsed();

        if round > 0 {
            total.push(elapsed);
            discover.push(discovered);
            validators.push(compiled);
            build.push(built);
        }
        last = Some(pool);
    }
    let section = Section::Listing;
    report.row(
        section,
        "in-process `load_with`, 2,000 tools (discover + parse + `Pool::build`)",
        &total,
    )?;
    report.row(
        section,
        "… of which discover + load the 4 packages (JSON parse, one validator per tool)",
        &discover,
    )?;
    let what = "… (for scale: compiling 2,000 such `inputSchema` validators alone)";
    report.row(section, what, &validators)?;
    report.row(section, "… of which `Pool::build`", &build)?;
    last.context("no pool was built")
}

/// In-process: what one response holding all 2,000 tools costs to encode (capmux's side:
/// `pool::page` + serde) and to decode (the rmcp client's side), without any I/O.
fn measure_codec(plan: &Plan, pool: &Pool, report: &mut Report) -> Result<()> {
    let mut encode = Vec::new();
    let mut decode = Vec::new();
    let mut bytes = 0;
    for round in 0..plan.list_warmup + plan.listings {
        let start = Instant::now();
        let (items, next) = capmux::pool::page(&pool.tools, None, usize::MAX);
        let mut result = ListToolsResult::with_all_items(items);
        result.next_cursor = next;
        let message = ServerJsonRpcMessage::response(
            ServerResult::ListToolsResult(result),
            RequestId::Number(1),
        );
        let json = serde_json::to_vec(&message)?;
        let encoded = start.elapsed();

        let start = Instant::now();
        let message: ServerJsonRpcMessage = serde_json::from_slice(&json)?;
        let decoded = start.elapsed();
        match message.into_response() {
            Some((ServerResult::ListToolsResult(result), _)) => {
                ensure!(
                    result.tools.len() == TOTAL_TOOLS,
                    "decoded {} tools",
                    result.tools.len()
                );
            }
            other => bail!("decoded something else: {other:?}"),
        }
        bytes = json.len();
        if round >= plan.list_warmup {
            encode.push(encoded);
            decode.push(decoded);
        }
    }
    let kib = bytes / 1024;
    let what = format!(
        "in-process encode of one 2,000-tool `tools/list` response ({kib} KiB): capmux's side"
    );
    report.row(Section::Listing, &what, &encode)?;
    let what = "in-process decode of that response by rmcp: the client's side";
    report.row(Section::Listing, what, &decode)
}

async fn measure_listing(
    plan: &Plan,
    env: &BenchEnv,
    packages: &Path,
    report: &mut Report,
) -> Result<()> {
    let expected = expected_tool_names();
    let cwd = env.work.path();
    let base: Vec<OsString> = vec!["--no-bundled".into(), "--package".into(), packages.into()];

    progress("cold starts of capmux serve with 2,000 tools");
    let (init, first) = cold_starts(plan, env, &base, cwd, &expected).await?;
    report.row(
        Section::Listing,
        "cold start: spawn → `initialize` answered",
        &init,
    )?;
    report.row(
        Section::Listing,
        "cold start: spawn → first full listing (page 100)",
        &first,
    )?;

    let page_1000 = env.config_file("page-1000.toml", "page_size = 1000\n")?;
    let configs: [(Option<&Path>, usize); 2] = [(None, 100), (Some(&page_1000), 1000)];
    for (config, page_size) in configs {
        progress(&format!("tools/list with page_size {page_size}"));
        let mut args = base.clone();
        if let Some(config) = config {
            args.extend(["--config".into(), config.into()]);
        }
        let server = Capmux::start(env, &args, cwd).await?;
        let pages = TOTAL_TOOLS.div_ceil(page_size);
        let samples = listings(plan, &server, &expected, pages).await?;
        server.stop().await?;
        let what = format!("full `tools/list`, page_size {page_size} ({pages} pages), over stdio");
        report.row(Section::Listing, &what, &samples)?;
    }
    Ok(())
}

/// Repeated complete listings on one server, each checked.
async fn listings(
    plan: &Plan,
    server: &Capmux,
    expected: &[String],
    pages: usize,
) -> Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(plan.listings);
    for round in 0..plan.list_warmup + plan.listings {
        let (elapsed, (tools, got_pages)) =
            timed(bounded("tools/list", server.list_tools())).await?;
        ensure!(got_pages == pages, "{got_pages} pages, expected {pages}");
        let names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
        check_listing(&names, expected)?;
        if round >= plan.list_warmup {
            samples.push(elapsed);
        }
    }
    Ok(samples)
}

/// Spawn → initialized, and spawn → first complete listing, for fresh processes.
async fn cold_starts(
    plan: &Plan,
    env: &BenchEnv,
    args: &[OsString],
    cwd: &Path,
    expected: &[String],
) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let mut init = Vec::new();
    let mut first = Vec::new();
    for round in 0..=plan.cold_starts {
        let start = Instant::now();
        let server = Capmux::start(env, args, cwd).await?;
        let initialized = start.elapsed();
        let (tools, _) = bounded("tools/list", server.list_tools()).await?;
        let listed = start.elapsed();
        let names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
        check_listing(&names, expected)?;
        server.stop().await?;
        if round > 0 {
            init.push(initialized);
            first.push(listed);
        }
    }
    Ok((init, first))
}

// ---------------------------------------------------------------------------------------
// 2. Command tool calls: direct vs capmux; 3. the MCP hop.
// ---------------------------------------------------------------------------------------

/// A command tool served by capmux, and the same command to run directly.
struct ToolCase {
    public: &'static str,
    label: &'static str,
    /// The direct run, in the repository root.
    argv: &'static [&'static str],
    /// Text every correct answer contains.
    expect: String,
    /// Whether the command prints the RFC's ToolResult (`{"success": true, ...}`).
    tool_result: bool,
}

impl ToolCase {
    fn word_count() -> ToolCase {
        ToolCase {
            public: "text-tools__word_count",
            label: "word_count.py",
            argv: &["python3", "plugins/text-tools/tools/word_count.py"],
            expect: WORD_COUNT_EXPECT.into(),
            tool_result: true,
        }
    }

    fn sha256() -> ToolCase {
        let digest = Sha256::digest(TEXT.as_bytes());
        ToolCase {
            public: "text-tools__sha256",
            label: "sha256.js",
            argv: &["node", "plugins/text-tools/tools/sha256.js"],
            expect: digest.iter().map(|b| format!("{b:02x}")).collect(),
            tool_result: true,
        }
    }

    /// The floor: `cat` echoes the arguments back, so the process costs ~1 ms and what
    /// capmux adds around a spawn becomes visible.
    fn cat() -> ToolCase {
        ToolCase {
            public: CAT_TOOL,
            label: "cat (floor)",
            argv: &["cat"],
            expect: TEXT.into(),
            tool_result: false,
        }
    }

    fn direct_command_line(&self) -> String {
        self.argv.join(" ")
    }

    fn input(&self) -> Result<Vec<u8>> {
        Ok(serde_json::to_vec(&Value::Object(text_arguments()))?)
    }

    /// Runs the command itself, in the environment capmux would give it: arguments on
    /// stdin, stdout to EOF, wait.
    async fn run_direct(&self, env: &BenchEnv, input: &[u8]) -> Result<Vec<u8>> {
        let (program, args) = self.argv.split_first().context("empty argv")?;
        let mut command = env.tool_command(program, &env.repo)?;
        command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot spawn {program}"))?;
        let mut stdin = child.stdin.take().context("no stdin pipe")?;
        stdin.write_all(input).await?;
        drop(stdin);
        let mut out = Vec::new();
        child
            .stdout
            .take()
            .context("no stdout pipe")?
            .read_to_end(&mut out)
            .await?;
        let status = child.wait().await?;
        ensure!(
            status.success(),
            "`{}` exited with {status}",
            self.direct_command_line()
        );
        Ok(out)
    }

    /// Runs `capmux call <tool> <json>` once.
    async fn run_cli(&self, env: &BenchEnv, input: &[u8]) -> Result<Vec<u8>> {
        let args = [
            OsString::from("call"),
            self.public.into(),
            String::from_utf8_lossy(input).into_owned().into(),
        ];
        let output = env
            .capmux(&args, &env.repo)
            .stdin(Stdio::null())
            .output()
            .await?;
        ensure!(
            output.status.success(),
            "capmux call exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(output.stdout)
    }

    fn check_direct(&self, out: &[u8]) -> Result<()> {
        let line = self.direct_command_line();
        let result: Value =
            serde_json::from_slice(out).with_context(|| format!("`{line}` printed no JSON"))?;
        let succeeded = !self.tool_result || result["success"] == Value::Bool(true);
        ensure!(
            succeeded && result.to_string().contains(&self.expect),
            "`{line}` answered {result}"
        );
        Ok(())
    }

    fn check_text(&self, how: &str, text: &str) -> Result<()> {
        ensure!(
            text.contains(&self.expect),
            "{} via {how} answered `{text}`, expected `{}`",
            self.public,
            self.expect
        );
        Ok(())
    }
}

/// The samples of one tool: direct, through MCP, through the CLI.
#[derive(Default)]
struct CallSamples {
    direct: Vec<Duration>,
    mcp: Vec<Duration>,
    runner: Vec<Duration>,
    cli: Vec<Duration>,
}

/// What else a round runs besides the direct run and the MCP call.
#[derive(Default)]
struct Extras<'a> {
    /// The CLI one-shot, in every n-th round.
    cli_every: Option<usize>,
    /// capmux's runner called in this process: no MCP, no capmux process.
    runner: Option<&'a InProcess>,
}

/// capmux's `Runner` in this process, over one package.
struct InProcess {
    server: capmux::Server,
}

impl InProcess {
    /// Loads `package` (alone) under the config file `config`, as `capmux serve` would.
    fn load(package: &Path, config: &Path, cwd: &Path) -> Result<InProcess> {
        let mut config = Config::read(config)?;
        config.user_packages = false;
        let options = Options::only(vec![package.to_path_buf()], cwd.to_path_buf());
        let loaded = capmux::load_with(config, &options);
        if let Some(error) = loaded.diagnostics.iter().find(|d| d.is_error()) {
            bail!("loading {} failed: {error}", package.display());
        }
        let server = capmux::Server::new(loaded.pool, &loaded.config, cwd.to_path_buf());
        Ok(InProcess { server })
    }

    /// Calls `public` with the bench's arguments; returns its text, or fails on a tool error.
    async fn call(&self, public: &str) -> Result<String> {
        let pool = self.server.pool();
        let (active, tool) = pool
            .tool(public)
            .with_context(|| format!("no tool {public}"))?;
        let arguments = Some(text_arguments());
        let result = self
            .server
            .runner()
            .call(active, tool, public, arguments, CancellationToken::new())
            .await;
        common::result_text(public, &result)
    }
}

/// One checked direct run.
async fn run_direct(env: &BenchEnv, case: &ToolCase, input: &[u8]) -> Result<Duration> {
    let (elapsed, out) = timed(bounded("direct run", case.run_direct(env, input))).await?;
    case.check_direct(&out)?;
    Ok(elapsed)
}

/// One checked `tools/call` through capmux.
async fn call_mcp(server: &Capmux, case: &ToolCase) -> Result<Duration> {
    let call = server.call_tool(case.public, text_arguments());
    let (elapsed, text) = timed(bounded("tools/call", call)).await?;
    case.check_text("MCP", &text)?;
    Ok(elapsed)
}

/// Interleaved rounds: direct and MCP (alternating which goes first), then the extras (the
/// CLI only every n-th round).
async fn compare(
    env: &BenchEnv,
    server: &Capmux,
    case: &ToolCase,
    warmup: usize,
    rounds: usize,
    extras: &Extras<'_>,
) -> Result<CallSamples> {
    let input = case.input()?;
    let mut samples = CallSamples::default();
    for round in 0..warmup + rounds {
        let keep = round >= warmup;
        // Who goes first alternates, so that neither side always runs right after the other.
        let (direct, mcp) = if round % 2 == 0 {
            let direct = run_direct(env, case, &input).await?;
            (direct, call_mcp(server, case).await?)
        } else {
            let mcp = call_mcp(server, case).await?;
            (run_direct(env, case, &input).await?, mcp)
        };
        if keep {
            samples.direct.push(direct);
            samples.mcp.push(mcp);
        }
        if let Some(runner) = extras.runner {
            let (elapsed, text) = timed(bounded("Runner::call", runner.call(case.public))).await?;
            case.check_text("the in-process runner", &text)?;
            if keep {
                samples.runner.push(elapsed);
            }
        }
        if let Some(every) = extras.cli_every
            && (round < warmup || (round - warmup).is_multiple_of(every))
        {
            let (cli, out) = timed(bounded("capmux call", case.run_cli(env, &input))).await?;
            case.check_text("the CLI", &String::from_utf8_lossy(&out))?;
            if keep {
                samples.cli.push(cli);
            }
        }
    }
    Ok(samples)
}

async fn measure_calls_and_hops(
    plan: &Plan,
    env: &BenchEnv,
    args: &Args,
    report: &mut Report,
) -> Result<()> {
    let server = Capmux::start(env, &[], &env.repo).await?;

    let with_cli = Extras {
        cli_every: Some(plan.cli_every),
        ..Extras::default()
    };
    let mut cases = vec![(ToolCase::word_count(), plan.calls, with_cli)];
    if args.node {
        cases.push((ToolCase::sha256(), plan.node_calls, Extras::default()));
    }
    for (case, rounds, extras) in &cases {
        progress(&format!("{} calls: direct vs capmux", case.label));
        let samples = compare(env, &server, case, plan.call_warmup, *rounds, extras).await?;
        report.call(case, &samples)?;
    }

    progress("cat calls (the floor): direct vs capmux vs in-process runner");
    let (package, config) = env.write_cat_package()?;
    let floor_args: Vec<OsString> = vec![
        "--no-bundled".into(),
        "--package".into(),
        package.clone().into(),
        "--config".into(),
        config.clone().into(),
    ];
    let floor = Capmux::start(env, &floor_args, env.work.path()).await?;
    let runner = InProcess::load(&package, &config, env.work.path())?;
    let extras = Extras {
        runner: Some(&runner),
        ..Extras::default()
    };
    let case = ToolCase::cat();
    let samples = compare(env, &floor, &case, plan.call_warmup, plan.calls, &extras).await?;
    report.call(&case, &samples)?;
    floor.stop().await?;

    progress("MCP round trips (ping, prompts/get)");
    let pings = hops(plan, || server.ping()).await?;
    report.row(Section::Hop, "`ping`", &pings)?;
    let mut arguments = Map::new();
    arguments.insert("diff".into(), Value::String("x".into()));
    let (client, arguments) = (&server, &arguments);
    let prompts = hops(plan, move || async move {
        let text = client.review_prompt(arguments.clone()).await?;
        ensure!(
            text.contains(REVIEW_MARKER) && !text.contains("{{diff}}"),
            "{REVIEW_PROMPT} came back unfilled or wrong"
        );
        Ok(())
    })
    .await?;
    report.row(
        Section::Hop,
        "`prompts/get` `house-rules__review` {diff: \"x\"}",
        &prompts,
    )?;

    server.stop().await
}

/// Sequential round trips of `request`, after a warm-up.
async fn hops<F, Fut>(plan: &Plan, mut request: F) -> Result<Vec<Duration>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let mut samples = Vec::with_capacity(plan.hops);
    for round in 0..plan.hop_warmup + plan.hops {
        let (elapsed, ()) = timed(bounded("request", request())).await?;
        if round >= plan.hop_warmup {
            samples.push(elapsed);
        }
    }
    Ok(samples)
}

// ---------------------------------------------------------------------------------------
// Statistics and the report.
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Listing,
    Call,
    Hop,
}

impl Section {
    const ALL: [Section; 3] = [Section::Listing, Section::Call, Section::Hop];

    fn title(self) -> String {
        match self {
            Section::Listing => format!(
                "1. `tools/list` with {} tools ({PACKAGES} packages × {TOOLS_PER_PACKAGE})",
                common::grouped(TOTAL_TOOLS)
            ),
            Section::Call => "2. Command-tool call: capmux vs the script run directly".into(),
            Section::Hop => "3. The MCP hop alone (no process spawn), sequential".into(),
        }
    }
}

/// One tool's comparison: direct vs MCP vs CLI.
struct Comparison {
    label: &'static str,
    direct: Stats,
    mcp: Stats,
    /// Median of the per-round differences MCP − direct, in seconds: the rounds are
    /// interleaved, so this cancels slow drifts of the machine's load.
    paired_added: f64,
    cli: Option<Stats>,
}

struct Report {
    header: Header,
    rows: Vec<(Section, Row)>,
    comparisons: Vec<Comparison>,
}

impl Report {
    fn new(env: &BenchEnv, args: &Args) -> Result<Report> {
        let mut header = Header::new("capmux benchmark", args.quick);
        header.push(format!("capmux binary: `{}`", env.bin.display()));
        if let Some(newer) = &env.stale {
            header.push(format!(
                "**warning: the binary is older than `{}`: it may not be the current code**",
                newer.display()
            ));
        }
        let mut programs = vec!["python3"];
        if args.node {
            programs.push("node");
        }
        for program in programs {
            header.push(describe_program(program)?);
        }
        Ok(Report {
            header,
            rows: Vec::new(),
            comparisons: Vec::new(),
        })
    }

    fn row(&mut self, section: Section, what: &str, samples: &[Duration]) -> Result<()> {
        self.rows.push((section, Row::new(what, samples)?));
        Ok(())
    }

    fn call(&mut self, case: &ToolCase, samples: &CallSamples) -> Result<()> {
        let label = case.label;
        let direct = format!("{label} run directly (`{}`)", case.direct_command_line());
        self.row(Section::Call, &direct, &samples.direct)?;
        let mcp = format!("{label} via capmux MCP `tools/call` `{}`", case.public);
        self.row(Section::Call, &mcp, &samples.mcp)?;
        if !samples.runner.is_empty() {
            let what = format!("{label} via capmux's `Runner::call` in this process (no MCP)");
            self.row(Section::Call, &what, &samples.runner)?;
        }
        let cli = if samples.cli.is_empty() {
            None
        } else {
            self.row(
                Section::Call,
                &format!("{label} via `capmux call` (CLI one-shot)"),
                &samples.cli,
            )?;
            Some(Stats::of(&samples.cli)?)
        };
        self.comparisons.push(Comparison {
            label,
            direct: Stats::of(&samples.direct)?,
            mcp: Stats::of(&samples.mcp)?,
            paired_added: common::paired_median(&samples.mcp, &samples.direct)?,
            cli,
        });
        Ok(())
    }

    /// The rows of `section`, in the order they were measured.
    fn rows_of(&self, section: Section) -> impl Iterator<Item = &Row> {
        self.rows
            .iter()
            .filter(move |(s, _)| *s == section)
            .map(|(_, row)| row)
    }

    fn render(&self) -> Result<String> {
        let mut out = String::new();
        self.header.render(&mut out)?;
        for section in Section::ALL {
            writeln!(out, "\n### {}\n", section.title())?;
            common::render_rows(&mut out, self.rows_of(section))?;
            if section == Section::Call {
                self.render_comparisons(&mut out)?;
            }
            if section == Section::Hop {
                for row in self.rows_of(section) {
                    let per_second = 1.0 / row.stats.mean.as_secs_f64();
                    writeln!(
                        out,
                        "\n{}: ≈ {per_second:.0} requests/s sequential (1 / mean).",
                        row.what
                    )?;
                }
            }
        }
        Ok(out)
    }

    fn render_comparisons(&self, out: &mut String) -> Result<()> {
        writeln!(
            out,
            "\n| tool | direct p50 | capmux MCP p50 | added by capmux (p50 − p50) | ratio (p50) | added (paired median) | CLI p50 | CLI added (p50) |"
        )?;
        writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|")?;
        for c in &self.comparisons {
            let direct = c.direct.p50.as_secs_f64();
            let added = c.mcp.p50.as_secs_f64() - direct;
            let (cli, cli_added) = match c.cli {
                Some(cli) => (show(cli.p50), show_signed(cli.p50.as_secs_f64() - direct)),
                None => ("-".into(), "-".into()),
            };
            writeln!(
                out,
                "| {} | {} | {} | {} | {:.3}× | {} | {} | {} |",
                c.label,
                show(c.direct.p50),
                show(c.mcp.p50),
                show_signed(added),
                c.mcp.p50.as_secs_f64() / direct,
                show_signed(c.paired_added),
                cli,
                cli_added
            )?;
        }
        Ok(())
    }
}

/// Where `program` resolves on `PATH`, and whether it is a script (e.g. a pyenv shim).
fn describe_program(program: &str) -> Result<String> {
    let path = which::which(program).with_context(|| format!("`{program}` is not on PATH"))?;
    let mut head = [0u8; 2];
    let script = std::fs::File::open(&path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok()
        && &head == b"#!";
    Ok(format!(
        "`{program}` on PATH: `{}`{}",
        path.display(),
        if script {
            " (a `#!` script, e.g. a pyenv shim: every spawn, direct or via capmux, pays for it)"
        } else {
            ""
        }
    ))
}
