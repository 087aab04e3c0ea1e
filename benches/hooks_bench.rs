//! hooks benchmark: what a `beforeToolCall` hook adds to a tool call.
//!
//! Every sample is one `Server::call` in this process (no MCP transport, no JSON-RPC) of a
//! command tool running `cat` (found on `PATH`), which echoes the arguments back; the echo is
//! checked, so an error can never be measured as a fast answer. The cases, each a server of
//! its own over one generated package:
//!
//! - **no hooks**: the tool alone (the baseline: one process spawn);
//! - **in-process hook**: a trivial [`HookHandler`] that allows, added with
//!   `Server::with_hook`;
//! - **command hook `true`**: a package hook running `true` (a second spawn per call);
//! - **Python hook**: a package hook `python3 hooks/allow.py` that reads the event JSON and
//!   allows, as a package would write it (`python3` from `PATH`, which may be a pyenv shim);
//!   when that is a shim, the same hook through the interpreter itself is measured too.
//!
//! The cases are interleaved round by round (the Python ones every few rounds, as they are
//! slow), so they see the same machine load. Output: a markdown table on stdout with n, p50,
//! p99 and the added p50/p99 over "no hooks"; progress on stderr.
//!
//! ```text
//! cargo bench --bench hooks_bench
//! cargo bench --bench hooks_bench -- --quick     # a tenth of the samples, a smoke run
//! ```

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use capmux::hooks::{BoxFuture, Decision, Hook, HookError, HookEvent, HookHandler, Matcher};
use capmux::{Config, Options, Server, Severity};
use common::{Flags, percentile, show, show_signed};
use serde_json::{Map, Value, json};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

/// The Python hook: reads the event, decides nothing (allows).
const ALLOW_PY: &str = "import json, sys\njson.load(sys.stdin)\n";

/// No single call may take longer than this; a hung call fails the bench instead.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    common::exit_code(run())
}

/// How many samples: `fast` rounds, the Python cases in every `python_every`-th one.
struct Plan {
    warmup: usize,
    rounds: usize,
    python_every: usize,
}

impl Plan {
    const FULL: Plan = Plan {
        warmup: 20,
        rounds: 1000,
        python_every: 5,
    };
    const QUICK: Plan = Plan {
        warmup: 5,
        rounds: 100,
        python_every: 5,
    };
}

/// The in-process hook: allows, and counts how often it was asked.
#[derive(Default)]
struct Allow {
    calls: AtomicUsize,
}

impl HookHandler for Allow {
    fn handle<'a>(&'a self, _input: &'a Value) -> BoxFuture<'a, Result<Decision, HookError>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Box::pin(async { Ok(Decision::default()) })
    }
}

/// One measured case.
struct Case {
    label: String,
    tool: String,
    server: Server,
    /// Measured only in every `python_every`-th round.
    slow: bool,
    samples: Vec<Duration>,
}

fn run() -> Result<()> {
    let usage = "usage: cargo bench --bench hooks_bench [-- --quick]\n  \
                 --quick    a tenth of the samples (a smoke run)";
    let Some(flags) = Flags::parse(&["--quick"], usage)? else {
        return Ok(());
    };
    let quick = flags.has("--quick");
    let plan = if quick { Plan::QUICK } else { Plan::FULL };
    let started = Instant::now();
    let cat = which::which("cat").context("`cat` is not on PATH")?;
    let python = which::which("python3").context("`python3` is not on PATH")?;
    let interpreter = python_executable()?;
    let shim = python.canonicalize().ok() != interpreter.canonicalize().ok();

    let dir = tempfile::tempdir().context("cannot make a temp dir")?;
    let allow = Arc::new(Allow::default());
    let mut cases = vec![
        case(&dir, "no hooks", "none", None, false)?,
        {
            let mut c = case(&dir, "in-process hook (allows)", "inproc", None, false)?;
            c.server = c.server.with_hook(Hook {
                package: "bench".into(),
                event: HookEvent::BeforeToolCall,
                matcher: Matcher::All,
                handler: allow.clone(),
                timeout: Duration::from_secs(5),
                fail_open: true,
            });
            c
        },
        case(
            &dir,
            "command hook `true`",
            "true",
            Some(json!(["true"])),
            false,
        )?,
        case(
            &dir,
            &format!("Python hook (`python3` = {})", python.display()),
            "python",
            Some(json!(["python3", "hooks/allow.py"])),
            true,
        )?,
    ];
    if shim {
        cases.push(case(
            &dir,
            &format!("Python hook ({})", interpreter.display()),
            "python-direct",
            Some(json!([interpreter.display().to_string(), "hooks/allow.py"])),
            true,
        )?);
    }

    let arguments = common::text_arguments();
    let expected = Value::Object(arguments.clone()).to_string();
    common::runtime()?.block_on(async {
        eprintln!("hooks_bench: warm-up ({} rounds)", plan.warmup);
        for _ in 0..plan.warmup {
            for case in &cases {
                call(case, &arguments, &expected).await?;
            }
        }
        eprintln!(
            "hooks_bench: {} rounds (Python every {})",
            plan.rounds, plan.python_every
        );
        for round in 0..plan.rounds {
            for case in cases.iter_mut() {
                if case.slow && round % plan.python_every != 0 {
                    continue;
                }
                let sample = call(case, &arguments, &expected).await?;
                case.samples.push(sample);
            }
            if (round + 1) % (plan.rounds / 10).max(1) == 0 {
                eprintln!("hooks_bench: {}/{} rounds", round + 1, plan.rounds);
            }
        }
        anyhow::Ok(())
    })?;
    let in_process_calls = allow.calls.load(Ordering::Relaxed);
    ensure!(
        in_process_calls == plan.warmup + plan.rounds,
        "the in-process hook ran {in_process_calls} times, not {}",
        plan.warmup + plan.rounds
    );

    common::print(&render(&cases, &cat, quick, started.elapsed()))
}

/// The path of the Python interpreter `python3` runs (a pyenv shim hides it).
fn python_executable() -> Result<PathBuf> {
    let output = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .context("cannot run python3")?;
    ensure!(output.status.success(), "python3 failed");
    Ok(PathBuf::from(
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
    ))
}

/// A case over a package `capmux-plugin-bench-<slug>` with the tool `echo` (`cat`) and, if
/// `hook` is an argv, one `beforeToolCall` hook running it.
fn case(dir: &TempDir, label: &str, slug: &str, hook: Option<Value>, slow: bool) -> Result<Case> {
    let id = format!("capmux-plugin-bench-{slug}");
    let root = dir.path().join(&id);
    std::fs::create_dir_all(root.join("hooks"))?;
    std::fs::write(root.join("hooks/allow.py"), ALLOW_PY)?;
    let hooks: Vec<Value> = hook
        .iter()
        .map(|argv| json!({ "event": "beforeToolCall", "command": argv }))
        .collect();
    let manifest = json!({
        "name": id, "version": "1.0.0",
        "capmux": { "manifestVersion": 1, "permissions": ["shell:execute"],
                    "tools": [{ "name": "echo", "description": "echoes its arguments",
                                "inputSchema": { "type": "object" }, "command": ["cat"] }],
                    "hooks": hooks }
    });
    std::fs::write(root.join("package.json"), manifest.to_string())?;
    let server = server(dir.path(), &root, &id)?;
    let registered = server.pool().hooks.len();
    ensure!(
        registered == usize::from(hook.is_some()),
        "{id}: {registered} hooks registered"
    );
    Ok(Case {
        label: label.to_owned(),
        tool: format!("bench-{slug}__echo"),
        server,
        slow,
        samples: Vec::new(),
    })
}

/// A server over the package at `root` alone, granted `shell:execute`.
fn server(dir: &Path, root: &Path, id: &str) -> Result<Server> {
    let config_path = dir.join("capmux-bench-config.toml");
    let text = format!(
        "data_dir = \"{}\"\n[packages.\"{id}\"]\ngrants = [\"shell:execute\"]\n",
        dir.join("data").display()
    );
    let mut config = Config::parse(&text, &config_path).context("config")?;
    config.user_packages = false;
    let options = Options::only(vec![root.to_path_buf()], dir.to_path_buf());
    let loaded = capmux::load_with(config, &options);
    if let Some(d) = loaded
        .diagnostics
        .iter()
        .find(|d| d.severity == Severity::Error)
    {
        bail!("{id}: {}", d.message);
    }
    Ok(Server::new(loaded.pool, &loaded.config, dir.to_path_buf()))
}

/// One call of `case`'s tool, checked; its wall time.
async fn call(case: &Case, arguments: &Map<String, Value>, expected: &str) -> Result<Duration> {
    let start = Instant::now();
    let result = tokio::time::timeout(
        CALL_TIMEOUT,
        case.server.call(
            &case.tool,
            Some(arguments.clone()),
            capmux::child::Forward::new(CancellationToken::new()),
        ),
    )
    .await
    .with_context(|| format!("{}: the call hung", case.label))?
    .with_context(|| format!("{}: no tool {}", case.label, case.tool))?;
    let elapsed = start.elapsed();
    let text: Vec<&str> = result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.as_str()))
        .collect();
    ensure!(
        result.is_error != Some(true) && text == [expected],
        "{}: unexpected result {text:?}",
        case.label
    );
    Ok(elapsed)
}

/// Seconds (possibly negative) with an explicit `+` when not negative.
fn signed(seconds: f64) -> String {
    if seconds >= 0.0 {
        format!("+{}", show_signed(seconds))
    } else {
        show_signed(seconds)
    }
}

fn render(cases: &[Case], cat: &Path, quick: bool, elapsed: Duration) -> String {
    let stats: Vec<(Duration, Duration)> = cases
        .iter()
        .map(|c| {
            let mut sorted = c.samples.clone();
            sorted.sort();
            (percentile(&sorted, 50.0), percentile(&sorted, 99.0))
        })
        .collect();
    let (base50, base99) = stats[0];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## hooks: cost of one beforeToolCall hook per `Server::call`{}\n",
        if quick { " (--quick)" } else { "" }
    );
    let _ = writeln!(
        out,
        "Tool: `{}` (echoes the arguments), in process, no MCP transport; {} CPUs.\n",
        cat.display(),
        common::cpus()
    );
    let _ = writeln!(
        out,
        "| case | n | p50 | p99 | added p50 | added p99 |\n|---|---:|---:|---:|---:|---:|"
    );
    for (case, (p50, p99)) in cases.iter().zip(&stats) {
        let (added50, added99) = if std::ptr::eq(case, &cases[0]) {
            ("—".to_owned(), "—".to_owned())
        } else {
            (
                signed(p50.as_secs_f64() - base50.as_secs_f64()),
                signed(p99.as_secs_f64() - base99.as_secs_f64()),
            )
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {added50} | {added99} |",
            case.label,
            case.samples.len(),
            show(*p50),
            show(*p99),
        );
    }
    let _ = writeln!(out, "\nTotal run: {:.1} s.", elapsed.as_secs_f64());
    out
}
