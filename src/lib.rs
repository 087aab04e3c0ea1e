//! capmux: capability packages of every agent format, served as one MCP server.
//!
//! The data flow, module by module: `config` (our own TOML) and `discover` (package roots
//! from the sources) → `package` (one format-independent `Package` per root, plus
//! diagnostics) → `pool` (public names from `names`, routes, the merged `system_prompt`) →
//! `server` (MCP over stdio), with `runner` executing command tools. The binary's `main.rs`
//! only parses the command line and prints.

pub mod child;
pub mod config;
pub mod diagnostic;
pub mod discover;
pub mod expand;
pub mod export;
pub mod hooks;
pub mod host;
pub mod install;
pub mod lifecycle;
pub mod names;
pub mod package;
pub mod pool;
pub mod process;
pub mod registry;
pub mod runner;
pub mod scaffold;
pub mod server;
pub mod skills;
pub mod slash;
pub mod system_prompt;
pub mod watch;

use std::future::Future;
use std::path::PathBuf;

use rmcp::ServiceExt;

pub use config::{Config, ConfigError};
pub use diagnostic::{Diagnostic, Severity};
pub use discover::Overrides;
pub use pool::Pool;
pub use server::Server;

/// What capmux was asked to load.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--config PATH`; else the config file is looked for in the usual places.
    pub config: Option<PathBuf>,
    pub overrides: Overrides,
    /// The working directory: the project, and what `${workspace}` means.
    pub cwd: PathBuf,
}

impl Options {
    /// Exactly the package roots (or folders of roots) in `packages`: nothing bundled, nothing
    /// from the project or the user. What `capmux check` loads, and tests and benchmarks.
    pub fn only(packages: Vec<PathBuf>, cwd: PathBuf) -> Options {
        Options {
            config: None,
            overrides: Overrides {
                packages,
                no_bundled: true,
                only_explicit: true,
            },
            cwd,
        }
    }
}

/// Everything loaded: the config, the merged pool, and every diagnostic on the way.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub pool: Pool,
    /// The loader's diagnostics followed by the merge's, sorted.
    pub diagnostics: Vec<Diagnostic>,
}

/// Loads the config, discovers and loads the packages, and merges them into a pool. Only a
/// broken config file is an error; broken packages are diagnostics.
pub fn load(options: &Options) -> Result<Loaded, ConfigError> {
    let config = Config::find(options.config.as_deref(), &options.cwd)?;
    Ok(load_with(config, options))
}

/// [`load`] with a config already in hand.
pub fn load_with(mut config: Config, options: &Options) -> Loaded {
    let (installed, mut diagnostics) = if config.user_packages && !options.overrides.only_explicit {
        registry::apply(&mut config)
    } else {
        (Vec::new(), Vec::new())
    };
    let roots = discover::roots(&config, &options.overrides, &options.cwd, installed);
    let (packages, found) = discover::discover(&roots);
    diagnostics.extend(found);
    let pool = Pool::build(packages, &config);
    diagnostics.extend(pool.diagnostics().iter().cloned());
    // Servers that cannot be launched (a command not found): known without starting any.
    if !pool.servers.is_empty() {
        let children = child::Supervisor::new(&pool, &config, &options.cwd);
        diagnostics.extend(children.diagnostics().iter().cloned());
    }
    diagnostic::sort(&mut diagnostics);
    Loaded {
        config,
        pool,
        diagnostics,
    }
}

/// Serves `server` on stdin/stdout until the client closes stdin or `shutdown` resolves,
/// whichever comes first (also during the handshake); then stops the child servers.
pub async fn serve_stdio(server: Server, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let children = server.clone();
    let session = async move {
        let running = server.serve(rmcp::transport::stdio_pipes()).await?;
        let reason = running.waiting().await?;
        anyhow::Ok(reason)
    };
    tokio::select! {
        reason = session => {
            tracing::info!(reason = ?reason?, "client session ended");
        }
        () = shutdown => {
            // Dropping the session future drops the running service, which cancels it.
            tracing::info!("shutting down on signal");
        }
    }
    children.shutdown().await;
    Ok(())
}
