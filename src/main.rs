//! The `capmux` binary: parses the command line, sets up logging on stderr, calls the
//! library and maps the outcome to an exit code (0 ok, 1 the thing checked or called
//! failed, 2 capmux itself could not do what was asked).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use capmux::diagnostic::{self, Diagnostic, Severity};
use capmux::{Loaded, Options, Overrides, Server};

const EXAMPLES: &str = "\
Examples:
  capmux serve                                   serve ./plugins (and your packages) over stdio
  capmux --package ./my-plugin serve             serve one more package
  capmux check ./my-plugin                       validate a package while writing it
  capmux tools                                   list every tool with its origin
  capmux call text-tools__word_count '{\"text\":\"hello world\"}'
  capmux --package claude_desktop_config.json serve   serve the MCP servers of a config file
  capmux --package ~/src/claude-plugin serve     a Claude Code plugin (or Gemini, Codex, AionUi extension)
  capmux status                                  the child servers of each running capmux serve
  capmux install github:owner/plugin --yes       install a package (npm, git, folder, marketplace)
  capmux prompt --provider claude                print the merged system prompt
  capmux compose 'Fix the login bug'             the first message for an agent host

Connect a client:
  claude mcp add capmux -- capmux serve";

const INSTALL_HELP: &str = "Examples:
  capmux install @modelcontextprotocol/server-everything@2026.8.31 --yes
  capmux install github:owner/claude-plugin@v1.2.0
  capmux install ./my-plugin --link
  capmux install review-kit@team-market --grant mcp:server

Nothing the package ships runs during the install. A running `capmux serve` picks the
package up and tells its client (list_changed).";

/// capmux: capability packages of every agent format, served as one MCP server.
#[derive(Parser, Debug)]
#[command(name = "capmux", version, about, after_help = EXAMPLES)]
struct Cli {
    /// The config file (TOML); default .capmux/config.toml, then ~/.config/capmux/config.toml.
    #[arg(long, global = true, env = "CAPMUX_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// A package root (capmux, Claude Code plugin or marketplace, Gemini CLI, Codex or
    /// AionUi extension, skill), a folder of package roots, or a servers config file
    /// (`mcpServers` JSON, Codex config.toml) to serve too (repeatable).
    #[arg(long = "package", short = 'p', global = true, value_name = "PATH")]
    packages: Vec<PathBuf>,
    /// Leave out the bundled plugins/ folder.
    #[arg(long, global = true)]
    no_bundled: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve every package as one MCP server on stdin/stdout.
    #[command(
        after_help = "Example:\n  claude mcp add capmux -- capmux serve\n\nLogs go to stderr (CAPMUX_LOG=debug for more); stdout carries only MCP."
    )]
    Serve,
    /// Validate packages: print every problem with its file; exit 1 on errors.
    #[command(after_help = "Examples:\n  capmux check ./my-plugin\n  capmux check plugins/")]
    Check {
        /// Package roots or folders of package roots.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// List the packages with their format, source and what they hold.
    #[command(after_help = "Example:\n  capmux list --json | jq '.[].id'")]
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List every tool a client sees, with the package and item it comes from.
    #[command(after_help = "Example:\n  capmux tools --json")]
    Tools {
        /// Print JSON (name, origin, description, inputSchema).
        #[arg(long)]
        json: bool,
    },
    /// Show each child MCP server's state, restarts, item counts and last error: those of
    /// every running `capmux serve`, else (or with --probe) start them here and report;
    /// exit 1 if one failed.
    #[command(
        after_help = "Examples:\n  capmux status                          the servers of each running capmux serve\n  capmux status --probe --package ./servers.json"
    )]
    Status {
        /// Print JSON: one object per capmux process with its `servers`.
        #[arg(long)]
        json: bool,
        /// Start the servers here even when a `capmux serve` is running.
        #[arg(long)]
        probe: bool,
    },
    /// Call a tool by its public name, as a client would; exit 1 if the tool fails.
    #[command(after_help = "Example:\n  capmux call text-tools__sha256 '{\"text\":\"abc\"}'")]
    Call {
        /// The public tool name (see `capmux tools`).
        name: String,
        /// The arguments as a JSON object.
        #[arg(default_value = "{}")]
        arguments: String,
    },
    /// Compose the first message of a conversation (host API): rules, system prompts and
    /// skills index, then the message, after the beforeMessage hooks; exit 1 if a hook
    /// cancels it.
    #[command(
        after_help = "Examples:\n  capmux compose 'Fix the login bug' --provider claude\n  echo 'Fix the login bug' | capmux compose --json"
    )]
    Compose {
        /// The user's message; read from stdin when left out.
        message: Option<String>,
        /// Keep the system prompts meant for this provider (claude, gemini, codex, ...).
        #[arg(long)]
        provider: Option<String>,
        /// The conversation's id, passed to hooks as session_id.
        #[arg(long)]
        conversation: Option<String>,
        /// Print the message, the parts and the hooks' context as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the afterResponse hooks over a model's reply (host API); exit 1 if a hook blocks it.
    #[command(after_help = "Example:\n  capmux after-response 'Done: the bug is fixed.' --json")]
    AfterResponse {
        /// The reply; read from stdin when left out.
        text: Option<String>,
        /// The conversation's id, passed to hooks as session_id.
        #[arg(long)]
        conversation: Option<String>,
        /// Print the reply and what the hooks did as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the skills every client gets, or export them into a client's skills folder.
    #[command(subcommand)]
    Skills(SkillsCommand),
    /// Create a new package that passes `capmux check` as it is: a system prompt, a prompt,
    /// a command tool, a skill and a README.
    #[command(after_help = "Example:\n  capmux new jira-helper && capmux check jira-helper")]
    New {
        /// The package's name: lowercase letters, digits and hyphens.
        name: String,
        /// The folder to create it in (default: the working directory).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Install a package from npm, GitHub, a git URL, a tarball, a folder or a marketplace.
    /// Shows what it asks for and runs, and asks; without consent it is installed disabled.
    #[command(after_help = INSTALL_HELP)]
    Install {
        /// npm spec (`name`, `name@1.2`, `@scope/name`), `github:owner/repo[@ref]`, a git URL
        /// (`https://…`, `file://…`, with `#ref`), a `.tgz`, a folder, or `PLUGIN@MARKETPLACE`.
        spec: String,
        /// Use a local folder in place (for development): edits show up at once.
        #[arg(long)]
        link: bool,
        /// Grant every permission it asks for, without asking.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Grant this permission without asking (repeatable).
        #[arg(long = "grant", value_name = "PERM")]
        grants: Vec<String>,
    },
    /// Fetch installed packages again from their source and swap them in (all when no id).
    #[command(after_help = "Example:
  capmux update review-kit")]
    Update {
        ids: Vec<String>,
        /// Grant what the new version asks for, without asking.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Remove an installed package and its files.
    Remove { id: String },
    /// Serve an installed package again.
    Enable { id: String },
    /// Keep an installed package, but serve none of it.
    Disable { id: String },
    /// Grant an installed package permissions it asks for.
    #[command(after_help = "Example:
  capmux grant review-kit mcp:server shell:execute")]
    Grant {
        id: String,
        #[arg(required = true)]
        permissions: Vec<String>,
    },
    /// Take permissions back from an installed package.
    Revoke {
        id: String,
        #[arg(required = true)]
        permissions: Vec<String>,
    },
    /// Show an installed package: source, version, digest, state, grants, settings and what
    /// it runs.
    Info { id: String },
    /// Set or show a setting of an installed package (checked against its settings; secret
    /// values are never printed).
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Check that installed packages still match their digests; a changed one is held.
    Verify,
    /// Claude Code marketplaces: add one, list their plugins.
    #[command(subcommand)]
    Marketplace(MarketplaceCommand),
    /// Print the JSON Schema of the native manifest (the "capmux" object of package.json).
    #[command(after_help = "Example:\n  capmux schema > capmux-manifest.schema.json")]
    Schema,
    /// Print the merged system prompt.
    #[command(after_help = "Example:\n  capmux prompt --provider gemini")]
    Prompt {
        /// Include the parts meant for this provider only (claude, gemini, codex, ...).
        #[arg(long)]
        provider: Option<String>,
        /// Print the parts with their origins as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Set a setting: `VALUE` is JSON when it parses as JSON, else a string.
    #[command(
        after_help = "Example:\n  capmux config set review-kit api_base https://api.example.com"
    )]
    Set {
        id: String,
        key: String,
        value: String,
    },
    /// Show a setting (a secret shows only whether it is set).
    Get { id: String, key: String },
}

#[derive(Subcommand, Debug)]
enum MarketplaceCommand {
    /// Add a marketplace (a folder or a git repository with .claude-plugin/marketplace.json).
    #[command(
        after_help = "Example:\n  capmux marketplace add github:anthropics/claude-code\n  capmux install commit-commands@claude-code-plugins"
    )]
    Add { spec: String },
    /// List the plugins of the added marketplaces.
    List,
}

#[derive(Subcommand, Debug)]
enum SkillsCommand {
    /// List every skill with its public name, package and SKILL.md resource.
    #[command(after_help = "Example:\n  capmux skills list")]
    List,
    /// Write every active skill as DIR/<name>/, for clients that load skills from a folder.
    #[command(
        after_help = "Examples:\n  capmux skills export --to ~/.claude/skills\n  capmux skills export --to ~/.agents/skills\n\nOnly folders capmux wrote are ever changed or removed (see DIR/.capmux-skills.json);\nrunning it again changes nothing unless a skill changed."
    )]
    Export {
        /// The skills folder to write into.
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
    },
}

fn main() -> ExitCode {
    // `capmux exec-child PPID PROGRAM ARGS...`: how capmux starts a child server (internal).
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "exec-child") {
        let err = capmux::process::exec_child(&args[2..]);
        let _ = writeln!(std::io::stderr(), "capmux exec-child: {err}");
        return ExitCode::from(127);
    }
    if let Ok(exe) = std::env::current_exe() {
        capmux::child::set_exec_helper(exe);
    }
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_env("CAPMUX_LOG")
                .unwrap_or_else(|_| EnvFilter::new("capmux=info,rmcp=error")),
        )
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(cli) {
        Ok(code) => code,
        // `capmux tools | head` closes our stdout early; that is not an error.
        Err(err)
            if err
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "capmux: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Writes to stdout; the one place the binary prints its output.
fn out(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        stdout.write_all(b"\n")?;
    }
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("cannot read the working directory")?;
    let only_explicit = matches!(cli.command, Command::Check { .. });
    let mut packages = cli.packages;
    if let Command::Check { paths } = &cli.command {
        packages.extend(paths.iter().cloned());
    }
    let options = Options {
        config: cli.config,
        overrides: Overrides {
            packages,
            no_bundled: cli.no_bundled,
            only_explicit,
        },
        cwd: cwd.clone(),
    };
    let load = || capmux::load(&options);
    match cli.command {
        Command::Serve => serve(load()?, cwd, options.clone()),
        Command::Check { .. } => check(&load()?, &cwd),
        Command::List { json } => list(&load()?, &cwd, json),
        Command::Tools { json } => tools(load()?, cwd, json),
        Command::Status { json, probe } => status(load()?, cwd, json, probe),
        Command::Call { name, arguments } => call(load()?, cwd, &name, &arguments),
        Command::Compose {
            message,
            provider,
            conversation,
            json,
        } => {
            let server = server_of(load()?, cwd);
            let message = argument_or_stdin(message)?;
            let composed = runtime()?.block_on(server.compose(
                &message,
                conversation.as_deref(),
                provider.as_deref(),
            ));
            if json {
                out(&serde_json::to_string_pretty(&composed)?)?;
            } else if let Some(blocked) = &composed.cancelled {
                let _ = writeln!(std::io::stderr(), "capmux: {}", blocked.message());
            } else {
                out(&composed.text)?;
            }
            Ok(if composed.cancelled.is_some() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::AfterResponse {
            text,
            conversation,
            json,
        } => {
            let server = server_of(load()?, cwd);
            let text = argument_or_stdin(text)?;
            let responded =
                runtime()?.block_on(server.after_response(&text, conversation.as_deref()));
            if json {
                out(&serde_json::to_string_pretty(&responded)?)?;
            } else if let Some(blocked) = &responded.blocked {
                let _ = writeln!(std::io::stderr(), "capmux: {}", blocked.message());
            } else {
                out(&responded.response)?;
            }
            Ok(if responded.blocked.is_some() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Skills(SkillsCommand::List) => skills_list(&load()?),
        Command::Skills(SkillsCommand::Export { to }) => skills_export(&load()?, &cwd, &to),
        Command::New { name, dir } => {
            let parent = dir.map_or_else(|| cwd.clone(), |d| cwd.join(d));
            let root = capmux::scaffold::create(&parent, &name)?;
            out(&format!(
                "created {}\nnext: capmux check {}",
                root.display(),
                diagnostic::relative_to(&root, &cwd).display()
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Install {
            spec,
            link,
            yes,
            grants,
        } => lifecycle_cmd(|home| {
            let mut consent = capmux::install::Consent {
                yes,
                ..Default::default()
            };
            for g in &grants {
                consent.grants.insert(
                    capmux::package::Permission::parse(g)
                        .ok_or_else(|| format!("`{g}` is not a permission"))?,
                );
            }
            if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
                consent.ask = Some(ask);
            }
            let progress = capmux::install::Progress::new();
            let done = capmux::install::install(home, &spec, &cwd, link, &consent, &progress)?;
            progress.finish();
            for d in &done.diagnostics {
                if d.severity != capmux::Severity::Info {
                    let _ = writeln!(std::io::stderr(), "{d}");
                }
            }
            Ok(format!(
                "{}installed {} {}{}",
                done.summary,
                done.id,
                done.entry.version.as_deref().unwrap_or(""),
                match &done.entry.held {
                    Some(why) => format!(" (disabled: {why})"),
                    None if !done.entry.enabled => " (disabled)".to_owned(),
                    None => String::new(),
                }
            ))
        }),
        Command::Update { ids, yes } => lifecycle_cmd(|home| {
            let ids = if ids.is_empty() {
                home.read()?.packages.into_keys().collect()
            } else {
                ids
            };
            let consent = capmux::install::Consent {
                yes,
                ..Default::default()
            };
            let mut lines = Vec::new();
            for id in ids {
                let progress = capmux::install::Progress::new();
                let done = capmux::install::update(home, &id, &cwd, &consent, &progress)?;
                lines.push(format!(
                    "updated {id} to {}{}",
                    done.entry.version.as_deref().unwrap_or("-"),
                    done.entry
                        .held
                        .map(|h| format!(" (disabled: {h})"))
                        .unwrap_or_default()
                ));
            }
            Ok(lines.join("\n"))
        }),
        Command::Remove { id } => lifecycle_cmd(|home| {
            capmux::install::remove(home, &id).map(|_| format!("removed {id}"))
        }),
        Command::Enable { id } => {
            lifecycle_cmd(|home| capmux::lifecycle::set_enabled(home, &id, true))
        }
        Command::Disable { id } => {
            lifecycle_cmd(|home| capmux::lifecycle::set_enabled(home, &id, false))
        }
        Command::Grant { id, permissions } => {
            lifecycle_cmd(|home| capmux::lifecycle::set_grants(home, &id, &permissions, true))
        }
        Command::Revoke { id, permissions } => {
            lifecycle_cmd(|home| capmux::lifecycle::set_grants(home, &id, &permissions, false))
        }
        Command::Info { id } => lifecycle_cmd(|home| capmux::lifecycle::info(home, &id)),
        Command::Config(ConfigCommand::Set { id, key, value }) => {
            lifecycle_cmd(|home| capmux::lifecycle::config_set(home, &id, &key, &value))
        }
        Command::Config(ConfigCommand::Get { id, key }) => {
            lifecycle_cmd(|home| capmux::lifecycle::config_get(home, &id, &key))
        }
        Command::Verify => {
            let home = capmux::registry::Home::find().context("no home folder")?;
            let results = capmux::install::verify(&home).map_err(anyhow::Error::msg)?;
            let mut failed = false;
            for (id, result) in results {
                match result {
                    Ok(()) => out(&format!("ok {id}"))?,
                    Err(reason) => {
                        failed = true;
                        out(&format!("HELD {id}: {reason}"))?;
                    }
                }
            }
            Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Marketplace(MarketplaceCommand::Add { spec }) => lifecycle_cmd(|home| {
            let progress = capmux::install::Progress::new();
            let (name, plugins) = capmux::install::add_marketplace(home, &spec, &cwd, &progress)?;
            Ok(format!(
                "added marketplace {name} ({plugins} plugins); install one with `capmux install PLUGIN@{name}`"
            ))
        }),
        Command::Marketplace(MarketplaceCommand::List) => lifecycle_cmd(|home| {
            let registry = home.read()?;
            let mut lines = Vec::new();
            for (name, market) in &registry.marketplaces {
                lines.push(format!("{name} ({})", market.source));
                let file = market.path.join(capmux::package::claude_marketplace_file());
                let json: serde_json::Value = std::fs::read_to_string(&file)
                    .ok()
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or_default();
                for plugin in json["plugins"].as_array().into_iter().flatten() {
                    let id = plugin["name"].as_str().unwrap_or("?");
                    let installed = if registry.packages.contains_key(id) {
                        " [installed]"
                    } else {
                        ""
                    };
                    lines.push(format!(
                        "  {id}@{name}{installed}  {}",
                        plugin["description"].as_str().unwrap_or("")
                    ));
                }
            }
            Ok(lines.join("\n"))
        }),
        Command::Schema => {
            out(&capmux::package::schema::manifest_schema())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Prompt { provider, json } => {
            let loaded = load()?;
            let prompt = &loaded.pool.system_prompt;
            if json {
                let parts: Vec<_> = prompt.parts_for(provider.as_deref()).collect();
                out(&serde_json::to_string_pretty(&parts)?)?;
            } else {
                out(&prompt.render(provider.as_deref()))?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs a command on the registry; its error is printed and exits 1.
fn lifecycle_cmd(
    f: impl FnOnce(&capmux::registry::Home) -> Result<String, String>,
) -> anyhow::Result<ExitCode> {
    let home =
        capmux::registry::Home::find().context("no home folder: set HOME or XDG_DATA_HOME")?;
    match f(&home) {
        Ok(text) => {
            if !text.is_empty() {
                out(&text)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "capmux: {err}");
            Ok(ExitCode::from(1))
        }
    }
}

/// Asks a yes/no question on the terminal.
fn ask(question: &str) -> bool {
    let _ = write!(std::io::stderr(), "{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok()
        && matches!(answer.trim().to_lowercase().as_str(), "y" | "yes")
}

/// The server over what was loaded, its diagnostics logged.
fn server_of(loaded: Loaded, cwd: PathBuf) -> Server {
    for d in loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity != Severity::Info)
    {
        log_diagnostic(d);
    }
    Server::new(loaded.pool, &loaded.config, cwd)
}

/// `value`, or all of stdin when it was left out.
fn argument_or_stdin(value: Option<String>) -> anyhow::Result<String> {
    match value {
        Some(value) => Ok(value),
        None => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .context("cannot read stdin")?;
            Ok(text.trim_end_matches('\n').to_owned())
        }
    }
}

/// One thread: a proxy hop is a little work on each of many small messages, and on a
/// single thread it skips the cross-thread wake-ups (measured in `children_bench`: 31 µs of
/// CPU per forwarded call instead of 44, and a lower peak RSS). Blocking work (stdin, file
/// reads) still goes to tokio's blocking pool.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn serve(loaded: Loaded, cwd: PathBuf, options: Options) -> anyhow::Result<ExitCode> {
    for d in &loaded.diagnostics {
        log_diagnostic(d);
    }
    let (packages, tools, prompts, resources) = (
        loaded.pool.packages.len(),
        loaded.pool.tools.len(),
        loaded.pool.prompts.len(),
        loaded.pool.resources.len(),
    );
    let status_cwd = cwd.clone();
    let known = loaded.diagnostics.clone();
    let server = Server::new(loaded.pool, &loaded.config, cwd);
    let runtime = runtime()?;
    let served = runtime.block_on(async move {
        use tokio::signal::unix::{SignalKind, signal};
        // Installed before we say we serve, so a SIGTERM from then on is a clean stop.
        let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        };
        tracing::info!(packages, tools, prompts, resources, "serving MCP on stdio");
        server.children().publish_status(status_cwd);
        // Hot reload: installs, removals and edits reach the connected client.
        tokio::spawn(capmux::watch::run(server.clone(), options, known));
        capmux::serve_stdio(server, shutdown).await
    });
    // A blocking read of stdin may still be parked in the runtime's thread pool; it must
    // not keep the process alive after the session ended.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    served?;
    Ok(ExitCode::SUCCESS)
}

fn log_diagnostic(d: &Diagnostic) {
    let package = d.package.as_deref().unwrap_or("-");
    let path = d.path.display();
    match d.severity {
        Severity::Error => tracing::error!(%package, %path, line = d.line, "{}", d.message),
        Severity::Warning => tracing::warn!(%package, %path, line = d.line, "{}", d.message),
        Severity::Info => tracing::info!(%package, %path, line = d.line, "{}", d.message),
    }
}

fn show_diagnostics(diagnostics: &[Diagnostic], cwd: &std::path::Path) -> String {
    let mut text = String::new();
    for d in diagnostics {
        let mut shown = d.clone();
        shown.path = diagnostic::relative_to(&d.path, cwd);
        text.push_str(&format!("{shown}\n"));
    }
    text
}

fn check(loaded: &Loaded, cwd: &std::path::Path) -> anyhow::Result<ExitCode> {
    let mut text = show_diagnostics(&loaded.diagnostics, cwd);
    for active in loaded.pool.packages.iter() {
        let p = &active.package;
        text.push_str(&format!(
            "checked {} {} ({}): {} tools, {} prompts, {} system prompts, {} skills, {} servers, {} hooks\n",
            p.id,
            p.version.as_deref().unwrap_or("-"),
            p.format,
            p.tools.len(),
            p.prompts.len(),
            p.system_prompts.len(),
            p.skills.len(),
            p.mcp_servers.len(),
            p.hooks.len(),
        ));
    }
    let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .count();
    text.push_str(&format!("{errors} errors, {warnings} warnings"));
    out(&text)?;
    Ok(if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn list(loaded: &Loaded, cwd: &std::path::Path, json: bool) -> anyhow::Result<ExitCode> {
    let pool = &loaded.pool;
    if json {
        let rows: Vec<serde_json::Value> = pool
            .packages
            .iter()
            .map(|a| {
                let p = &a.package;
                serde_json::json!({
                    "id": p.id, "namespace": a.namespace, "version": p.version,
                    "format": p.format, "source": p.source, "root": p.root,
                    "enabled": a.enabled, "priority": p.priority,
                    "permissions": p.permissions, "granted": a.grants,
                    "tools": p.tools.len(), "prompts": p.prompts.len(),
                    "systemPrompts": p.system_prompts.len(), "mcpServers": p.mcp_servers.len(),
                    "skills": p.skills.iter().map(|s| &s.name).collect::<Vec<_>>(),
                    "hooks": p.hooks.len(),
                    "diagnostics": loaded.diagnostics.iter()
                        .filter(|d| d.package.as_deref() == Some(&p.id)).collect::<Vec<_>>(),
                })
            })
            .collect();
        out(&serde_json::to_string_pretty(&rows)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut text = format!(
        "{:<32} {:<14} {:<9} {:<10} {:<8} {:>5} {:>7} {:>6} {:>6}\n",
        "PACKAGE",
        "NAMESPACE",
        "VERSION",
        "FORMAT",
        "SOURCE",
        "TOOLS",
        "PROMPTS",
        "SYSTEM",
        "SKILLS"
    );
    for a in pool.packages.iter() {
        let p = &a.package;
        text.push_str(&format!(
            "{:<32} {:<14} {:<9} {:<10} {:<8} {:>5} {:>7} {:>6} {:>6}{}\n",
            p.id,
            a.namespace,
            p.version.as_deref().unwrap_or("-"),
            p.format.to_string(),
            p.source.to_string(),
            p.tools.len(),
            p.prompts.len(),
            p.system_prompts.len(),
            p.skills.len(),
            if a.enabled { "" } else { "  (disabled)" },
        ));
    }
    if !loaded.diagnostics.is_empty() {
        text.push('\n');
        text.push_str(&show_diagnostics(&loaded.diagnostics, cwd));
    }
    out(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `f` on a server whose child servers were started (and are stopped after).
fn with_children<T>(
    loaded: Loaded,
    cwd: PathBuf,
    f: impl AsyncFnOnce(&Server) -> T,
) -> anyhow::Result<T> {
    let server = server_of(loaded, cwd);
    let runtime = runtime()?;
    let value = runtime.block_on(async {
        if !server.children().is_empty() {
            server.start_children(None).await;
            // A command waits for every child, not only for `startup_wait`.
            server
                .children()
                .settled(std::time::Duration::from_secs(3600))
                .await;
            server.sync_children();
        }
        let value = f(&server).await;
        server.shutdown().await;
        value
    });
    Ok(value)
}

fn status(loaded: Loaded, cwd: PathBuf, json: bool, probe: bool) -> anyhow::Result<ExitCode> {
    let running = if probe {
        Vec::new()
    } else {
        capmux::child::status::running()
    };
    let reports = if running.is_empty() {
        let servers = with_children(loaded, cwd.clone(), async |server: &Server| {
            server.children().status()
        })?;
        vec![capmux::child::status::Report {
            pid: std::process::id(),
            cwd,
            servers,
        }]
    } else {
        running
    };
    if json {
        out(&serde_json::to_string_pretty(&reports)?)?;
    } else {
        let mut text = String::new();
        for report in &reports {
            if report.pid != std::process::id() {
                text.push_str(&format!(
                    "capmux serve (pid {}) in {}\n",
                    report.pid,
                    report.cwd.display()
                ));
            }
            text.push_str(&format!(
                "{:<28} {:<6} {:<10} {:>8} {:>5} {:>7} {:>9}  {}\n",
                "SERVER",
                "TYPE",
                "STATE",
                "RESTARTS",
                "TOOLS",
                "PROMPTS",
                "RESOURCES",
                "LAST ERROR"
            ));
            for s in &report.servers {
                let state = match &s.state {
                    capmux::child::State::Failed { .. } => "failed".to_owned(),
                    capmux::child::State::Restarting { .. } => "restarting".to_owned(),
                    capmux::child::State::Idle => "idle".to_owned(),
                    state => state.to_string(),
                };
                let error = match &s.state {
                    capmux::child::State::Failed { reason } => Some(reason.as_str()),
                    _ => s.last_error.as_deref(),
                };
                text.push_str(&format!(
                    "{:<28} {:<6} {:<10} {:>8} {:>5} {:>7} {:>9}  {}\n",
                    s.server,
                    s.transport,
                    state,
                    s.restarts,
                    s.tools,
                    s.prompts,
                    s.resources + s.templates,
                    error.unwrap_or("-")
                ));
            }
            text.push_str(&format!("{} servers\n", report.servers.len()));
        }
        out(text.trim_end())?;
    }
    let failed = reports
        .iter()
        .flat_map(|r| &r.servers)
        .any(|s| matches!(s.state, capmux::child::State::Failed { .. }));
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn tools(loaded: Loaded, cwd: PathBuf, json: bool) -> anyhow::Result<ExitCode> {
    let pool = with_children(loaded, cwd, async |server: &Server| server.pool())?;
    let pool = &*pool;
    let rows: Vec<(String, String, String, &rmcp::model::Tool)> = pool
        .tools
        .iter()
        .map(|(public, entry)| {
            let origin = match (pool.tool(public), entry.route) {
                (Some((active, tool)), _) => format!("{}: {}", active.package.id, tool.name),
                (None, capmux::pool::ToolRoute::Child { server, tool }) => {
                    let name = pool.catalogs[server]
                        .as_ref()
                        .map(|c| c.tools[tool].name.to_string())
                        .unwrap_or_default();
                    format!("server {}: {name}", pool.servers[server].label)
                }
                (None, _) => "capmux: skills".to_owned(),
            };
            let description = entry.item.description.as_deref().unwrap_or("").to_owned();
            (public.clone(), origin, description, &entry.item)
        })
        .collect();
    if json {
        let rows: Vec<serde_json::Value> = rows
            .iter()
            .map(|(name, origin, description, item)| {
                serde_json::json!({ "name": name, "origin": origin, "description": description,
                                    "inputSchema": item.input_schema })
            })
            .collect();
        out(&serde_json::to_string_pretty(&rows)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut text = String::new();
    for (name, origin, description, _) in &rows {
        let first_line = description.lines().next().unwrap_or("");
        text.push_str(&format!("{name:<40} {origin:<44} {first_line}\n"));
    }
    text.push_str(&format!("{} tools", rows.len()));
    out(&text)?;
    Ok(ExitCode::SUCCESS)
}

fn skills_list(loaded: &Loaded) -> anyhow::Result<ExitCode> {
    let pool = &loaded.pool;
    let mut text = String::new();
    for (public, entry) in &pool.skills {
        let package = &pool.packages[entry.package].package.id;
        text.push_str(&format!("{public:<44} {package:<28} {}\n", entry.uri));
    }
    text.push_str(&format!("{} skills", pool.skills.len()));
    out(&text)?;
    Ok(ExitCode::SUCCESS)
}

fn skills_export(
    loaded: &Loaded,
    cwd: &std::path::Path,
    to: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let report = capmux::export::export(&loaded.pool, &cwd.join(to))?;
    let mut text = show_diagnostics(&report.diagnostics, cwd);
    for (what, names) in [
        ("written", &report.written),
        ("unchanged", &report.unchanged),
        ("removed", &report.removed),
    ] {
        if !names.is_empty() {
            text.push_str(&format!("{what}: {}\n", names.join(", ")));
        }
    }
    text.push_str(&format!(
        "{} written, {} unchanged, {} removed, {} not exported",
        report.written.len(),
        report.unchanged.len(),
        report.removed.len(),
        report.diagnostics.len()
    ));
    out(&text)?;
    Ok(ExitCode::SUCCESS)
}

fn call(loaded: Loaded, cwd: PathBuf, name: &str, arguments: &str) -> anyhow::Result<ExitCode> {
    let arguments: serde_json::Value =
        serde_json::from_str(arguments).context("the arguments are not valid JSON")?;
    let serde_json::Value::Object(arguments) = arguments else {
        bail!("the arguments must be a JSON object, like '{{\"text\": \"hi\"}}'");
    };
    let forward = capmux::child::Forward::new(CancellationToken::new());
    let result = with_children(loaded, cwd, async |server: &Server| {
        server.call(name, Some(arguments), forward).await
    })?
    .with_context(|| format!("unknown tool `{name}`; `capmux tools` lists them"))?;
    let text: Vec<String> = result
        .content
        .iter()
        .map(|c| match c.as_text() {
            Some(t) => t.text.clone(),
            None => serde_json::to_string(c).unwrap_or_default(),
        })
        .collect();
    if result.is_error == Some(true) {
        let _ = writeln!(std::io::stderr(), "{}", text.join("\n"));
        return Ok(ExitCode::from(1));
    }
    out(&text.join("\n"))?;
    Ok(ExitCode::SUCCESS)
}
