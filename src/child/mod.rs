//! Child MCP servers: the supervisor that runs them and the forwarding between them and the
//! client.
//!
//! Each child has a lifecycle task: connect (spawn or dial, `initialize` within the startup
//! timeout, list everything with pagination), serve until the connection ends, then restart
//! with exponential backoff, or give up after `max_restarts` crashes in a row (the count
//! resets after a stable minute). Whatever ends a connection (the process exiting, stdout
//! closing, a line over the limit) fails its in-flight requests at once, since rmcp drops
//! their responders with the connection, and the process group is killed.
//!
//! A stdio child runs in its own process group, started through `capmux exec-child`, which
//! sets the parent-death signal and then becomes the server: if capmux is killed outright,
//! the kernel kills the child. Its environment is the allow-list plus its own `env`.
//!
//! The catalogues feed the pool ([`crate::pool::Pool::with_children`]): every change (a child
//! ready, gone, or re-listed after its `list_changed`) bumps a generation that the server
//! watches to swap in a new pool and notify the client.

// Logging, sampling and roots are deprecated by protocol 2026-07-28, and still what the
// children of a 2025-11-25 session use.
#![allow(deprecated)]

pub mod sse;
pub mod status;
mod transport;

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use rmcp::model::{
    self as mcp, CallToolRequest, CallToolRequestParams, CallToolResult,
    CancelledNotificationParam, ClientCapabilities, ClientInfo, ClientRequest,
    CreateMessageRequestParams, CreateMessageResult, ElicitRequestParams, ElicitResult, ErrorData,
    GetPromptRequest, GetPromptRequestParams, GetPromptResult, Implementation, ListRootsResult,
    LoggingLevel, ProgressToken, ProtocolVersion, ReadResourceRequest, ReadResourceRequestParams,
    ReadResourceResult, RootsCapabilities, ServerRequest, ServerResult, SetLevelRequestParams,
};
use rmcp::service::{
    ClientCacheConfig, Peer, PeerRequestOptions, RequestContext, RoleClient, RoleServer,
    RunningService, ServiceError,
};
use rmcp::{ClientHandler, ServiceExt};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::diagnostic::Diagnostic;
use crate::package::Transport;
use crate::pool::Pool;
use transport::{Event, Intercept, LineReader, Routes, StdioTransport};

/// The longest line a stdio child may send (rmcp's own cap).
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// A crash-free run this long resets the restart count.
const STABLE: Duration = Duration::from_secs(60);

/// The first restart delay; it doubles each time, up to [`BACKOFF_MAX`].
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Shutdown: after closing stdin, how long a child has before SIGTERM, then before SIGKILL.
const CLOSE_GRACE: Duration = Duration::from_millis(800);
const TERM_GRACE: Duration = Duration::from_millis(600);

/// How long a child whose stdout closed has to exit, so its status can be reported.
const EXIT_GRACE: Duration = Duration::from_millis(300);

/// A child's stderr: the longest line logged, lines per second, and lines kept for errors.
const STDERR_LINE: usize = 4096;
const STDERR_RATE: u32 = 100;
const STDERR_TAIL: usize = 8;

/// The capmux binary, run as `capmux exec-child` to start stdio children with the
/// parent-death signal set; without it they start directly (their group is still killed on
/// shutdown, but not if capmux is killed outright).
static EXEC_HELPER: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Sets the capmux binary children are started through (the binary sets its own path;
/// tests and embedders set the built `capmux`). Only the first call counts.
pub fn set_exec_helper(path: PathBuf) {
    let _ = EXEC_HELPER.set(path);
}

/// What a running child serves.
#[derive(Debug, Default, PartialEq)]
pub struct Catalog {
    pub tools: Vec<mcp::Tool>,
    pub prompts: Vec<mcp::Prompt>,
    pub resources: Vec<mcp::Resource>,
    pub templates: Vec<mcp::ResourceTemplate>,
    pub instructions: Option<String>,
    /// Whether it takes `logging/setLevel`.
    pub logging: bool,
}

/// Where a child is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum State {
    /// Lazy and not used yet.
    Idle,
    Starting,
    Ready,
    /// Crashed; starting again after a delay.
    Restarting {
        reason: String,
    },
    /// Not running and not coming back: why.
    Failed {
        reason: String,
    },
    /// Shut down.
    Stopped,
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            State::Idle => f.write_str("idle (starts on first use)"),
            State::Starting => f.write_str("starting"),
            State::Ready => f.write_str("ready"),
            State::Restarting { reason } => write!(f, "restarting ({reason})"),
            State::Failed { reason } => write!(f, "failed: {reason}"),
            State::Stopped => f.write_str("stopped"),
        }
    }
}

/// One child as `capmux status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub server: String,
    pub package: String,
    pub transport: String,
    #[serde(flatten)]
    pub state: State,
    pub restarts: u32,
    pub pid: Option<u32>,
    pub tools: usize,
    pub prompts: usize,
    pub resources: usize,
    pub templates: usize,
    pub last_error: Option<String>,
}

/// Timeouts and limits, from the config's `[servers]`.
#[derive(Debug, Clone)]
pub struct Limits {
    pub startup: Duration,
    pub startup_wait: Duration,
    pub request: Duration,
    pub request_max: Duration,
    pub max_restarts: u32,
}

impl Limits {
    pub fn from_config(config: &Config) -> Limits {
        let secs = |v: Option<f64>, default: f64| {
            Duration::from_secs_f64(v.filter(|v| v.is_finite() && *v > 0.0).unwrap_or(default))
        };
        let s = &config.servers;
        Limits {
            startup: secs(s.startup_timeout, 30.0),
            startup_wait: secs(s.startup_wait, 5.0),
            request: secs(s.request_timeout, 60.0),
            request_max: secs(s.max_request_timeout, 600.0),
            max_restarts: s.max_restarts.unwrap_or(5),
        }
    }
}

/// The client connected to capmux, as the children see it: where their requests go and
/// the capabilities they are told about.
#[derive(Default)]
pub struct Upstream {
    peer: Mutex<Option<Peer<RoleServer>>>,
    level: Mutex<Option<LoggingLevel>>,
}

impl Upstream {
    pub fn peer(&self) -> Option<Peer<RoleServer>> {
        self.peer.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The capabilities children are told: the client's sampling, elicitation and roots, and
    /// nothing the client does not have.
    fn capabilities(&self) -> ClientCapabilities {
        let mut caps = ClientCapabilities::default();
        if let Some(client) = self.peer().and_then(|p| p.peer_info()) {
            let theirs = &client.capabilities;
            caps.sampling = theirs.sampling.clone();
            caps.elicitation = theirs.elicitation.clone();
            caps.roots = theirs.roots.clone().map(|r| {
                let mut roots = RootsCapabilities::default();
                roots.list_changed = r.list_changed;
                roots
            });
        }
        caps
    }

    fn require(&self, what: &str) -> Result<Peer<RoleServer>, ErrorData> {
        self.peer().ok_or_else(|| {
            ErrorData::internal_error(format!("no client is connected to answer {what}"), None)
        })
    }
}

/// How a stdio child is launched, or where an HTTP one is.
#[derive(Debug, Clone, PartialEq)]
enum Launch {
    Stdio {
        program: PathBuf,
        args: Vec<String>,
        env: Vec<(String, String)>,
        cwd: PathBuf,
    },
    /// Streamable HTTP, or the legacy HTTP+SSE transport when `sse`.
    Remote {
        url: String,
        headers: BTreeMap<String, String>,
        sse: bool,
    },
}

/// What every child shares.
struct Shared {
    upstream: Upstream,
    limits: Limits,
    /// Bumped on every catalogue change.
    generation: watch::Sender<u64>,
    /// Bumped on every change of state or catalogue.
    statuses: watch::Sender<u64>,
    shutdown: CancellationToken,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Whether `start` was called: children a reload adds start at once.
    started: std::sync::atomic::AtomicBool,
}

impl Shared {
    fn changed(&self) {
        self.generation.send_modify(|g| *g += 1);
        self.statuses.send_modify(|g| *g += 1);
    }
}

/// One child server.
pub struct Child {
    /// `<namespace>` or `<package namespace>/<server>`.
    pub label: Arc<str>,
    pub package: String,
    launch: Result<Launch, String>,
    lazy: bool,
    request_timeout: Duration,
    shared: Arc<Shared>,
    /// Cancelled to stop this child alone (a reload removed it); a child of the
    /// supervisor's shutdown token.
    stop: CancellationToken,
    state: watch::Sender<State>,
    slot: Mutex<Slot>,
}

#[derive(Default)]
struct Slot {
    conn: Option<Arc<Conn>>,
    catalog: Option<Arc<Catalog>>,
    started: bool,
    restarts: u32,
    pid: Option<u32>,
    last_error: Option<String>,
}

/// A live connection to a child.
struct Conn {
    peer: Peer<RoleClient>,
    routes: Arc<Routes>,
    queue: mpsc::Sender<Event>,
    /// Cancelled when the connection has ended: its forwarding tasks stop.
    closed: CancellationToken,
}

/// What a forwarded request brings from the client's request.
#[derive(Clone, Default)]
pub struct Forward {
    pub cancel: CancellationToken,
    /// The client's peer and progress token, when it asked for progress.
    pub progress: Option<(Peer<RoleServer>, ProgressToken)>,
}

impl Forward {
    pub fn new(cancel: CancellationToken) -> Forward {
        Forward {
            cancel,
            progress: None,
        }
    }
}

/// Every child server of a pool.
pub struct Supervisor {
    /// Swapped whole by [`Supervisor::update`].
    children: Arc<RwLock<Arc<Vec<Arc<Child>>>>>,
    shared: Arc<Shared>,
    diagnostics: RwLock<Vec<Diagnostic>>,
}

impl Supervisor {
    /// The children of `pool`'s servers (none runs yet); a server that cannot be launched
    /// (its command not found, a variable not set) is failed now, with a diagnostic.
    pub fn new(pool: &Pool, config: &Config, workspace: &Path) -> Supervisor {
        let limits = Limits::from_config(config);
        let shared = Arc::new(Shared {
            upstream: Upstream::default(),
            limits: limits.clone(),
            generation: watch::Sender::new(0),
            statuses: watch::Sender::new(0),
            shutdown: CancellationToken::new(),
            tasks: Mutex::new(Vec::new()),
            started: std::sync::atomic::AtomicBool::new(false),
        });
        let mut diagnostics = Vec::new();
        let children = (0..pool.servers.len())
            .map(|i| Child::new(&shared, pool, i, workspace, &mut diagnostics))
            .collect();
        Supervisor {
            children: Arc::new(RwLock::new(Arc::new(children))),
            shared,
            diagnostics: RwLock::new(diagnostics),
        }
    }

    /// Makes the children those of `pool` (after a reload): a child whose package, name and
    /// launch are unchanged keeps running; a removed or changed one is stopped; new ones are
    /// started when the others were. Their catalogues follow with the usual change signal.
    pub fn update(&self, pool: &Pool, workspace: &Path) {
        let old = self.children();
        let mut diagnostics = Vec::new();
        let children: Vec<Arc<Child>> = (0..pool.servers.len())
            .map(|i| {
                let fresh = Child::new(&self.shared, pool, i, workspace, &mut diagnostics);
                old.iter()
                    .find(|c| {
                        c.package == fresh.package
                            && c.label == fresh.label
                            && c.launch == fresh.launch
                            && c.lazy == fresh.lazy
                            && c.request_timeout == fresh.request_timeout
                            && !c.stop.is_cancelled()
                    })
                    .cloned()
                    .unwrap_or(fresh)
            })
            .collect();
        for child in old.iter() {
            if !children.iter().any(|c| Arc::ptr_eq(c, child)) {
                tracing::info!(server = %child.label, "server removed by a reload; stopping it");
                child.stop.cancel();
            }
        }
        *self.children.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(children);
        *self.diagnostics.write().unwrap_or_else(|p| p.into_inner()) = diagnostics;
        if self
            .shared
            .started
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            self.start();
        }
        self.shared.changed();
    }

    /// The children, aligned with the pool's `servers`.
    pub fn children(&self) -> Arc<Vec<Arc<Child>>> {
        self.children
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn is_empty(&self) -> bool {
        self.children().is_empty()
    }

    /// Why servers could not be launched at all.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        self.diagnostics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The client children's requests go to.
    pub fn upstream_peer(&self) -> Option<Peer<RoleServer>> {
        self.shared.upstream.peer()
    }

    /// Records the client: children's requests go to it and their capabilities are its.
    pub fn set_upstream(&self, peer: Peer<RoleServer>) {
        *self
            .shared
            .upstream
            .peer
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(peer);
    }

    /// Starts every child that is not lazy, in parallel; calling it again does nothing.
    pub fn start(&self) {
        self.shared
            .started
            .store(true, std::sync::atomic::Ordering::SeqCst);
        for child in self.children().iter() {
            if !child.lazy {
                child.clone().ensure_started();
            }
        }
    }

    /// Waits until no child is starting, or `max` has passed.
    pub async fn settled(&self, max: Duration) {
        let deadline = tokio::time::Instant::now() + max;
        for child in self.children().iter() {
            let mut rx = child.state.subscribe();
            let _ =
                tokio::time::timeout_at(deadline, rx.wait_for(|s| !matches!(s, State::Starting)))
                    .await;
        }
    }

    /// What each child serves now, aligned with the pool's `servers`.
    pub fn catalogs(&self) -> Vec<Option<Arc<Catalog>>> {
        self.children()
            .iter()
            .map(|c| c.slot().catalog.clone())
            .collect()
    }

    /// A receiver that sees every catalogue change.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.shared.generation.subscribe()
    }

    pub fn status(&self) -> Vec<Status> {
        self.children().iter().map(|c| c.status()).collect()
    }

    /// Keeps this process's status file ([`status`]) up to date until shutdown, then
    /// removes it.
    pub fn publish_status(&self, cwd: PathBuf) {
        let children = self.children.clone();
        let mut changes = self.shared.statuses.subscribe();
        let shutdown = self.shared.shutdown.clone();
        let pid = std::process::id();
        let task = tokio::spawn(async move {
            while !shutdown.is_cancelled() {
                let report = status::Report {
                    pid,
                    cwd: cwd.clone(),
                    servers: children
                        .read()
                        .unwrap_or_else(|p| p.into_inner())
                        .iter()
                        .map(|c| c.status())
                        .collect(),
                };
                if let Err(err) = status::write(&report) {
                    tracing::debug!("cannot write the status file: {err}");
                }
                tokio::select! {
                    r = changes.changed() => if r.is_err() { break },
                    () = shutdown.cancelled() => break,
                }
                // Changes come in bursts (50 children starting): one write for a burst.
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    () = shutdown.cancelled() => break,
                }
            }
            status::remove(pid);
        });
        self.shared
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task);
    }

    /// Tells every running child the client's log level, and every later one too.
    pub async fn set_log_level(&self, level: LoggingLevel) {
        *self
            .shared
            .upstream
            .level
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(level);
        for child in self.children().iter() {
            child.send_log_level().await;
        }
    }

    /// Passes the client's `roots/list_changed` to every running child.
    pub async fn roots_changed(&self) {
        for child in self.children().iter() {
            let conn = child.slot().conn.clone();
            if let Some(conn) = conn {
                let _ = conn.peer.notify_roots_list_changed().await;
            }
        }
    }

    /// Stops every child (close, SIGTERM, SIGKILL of its group) and waits for them, at most
    /// about 1.5 s.
    pub async fn shutdown(&self) {
        self.shared.shutdown.cancel();
        let tasks: Vec<_> =
            std::mem::take(&mut *self.shared.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        let all = async {
            for task in tasks {
                let _ = task.await;
            }
        };
        let _ =
            tokio::time::timeout(CLOSE_GRACE + TERM_GRACE + Duration::from_millis(200), all).await;
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        // Without a shutdown (a panic, a test ending), the groups still go.
        self.shared.shutdown.cancel();
        for child in self.children().iter() {
            if let Some(pid) = child.slot().pid {
                let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
    }
}

/// The launch of `transport` with `${...}` expanded and the command found.
fn launch(
    transport: &Transport,
    active: &crate::pool::Active,
    workspace: &Path,
) -> Result<Launch, String> {
    let vars = active.vars(workspace);
    let expand = |s: &str| crate::expand::expand(s, &vars);
    let expand_map = |m: &BTreeMap<String, String>| {
        m.iter()
            .map(|(k, v)| Ok((k.clone(), expand(v)?)))
            .collect::<Result<BTreeMap<_, _>, String>>()
    };
    Ok(match transport {
        Transport::Stdio {
            command,
            args,
            env,
            cwd,
        } => {
            let root = &active.package.root;
            let cwd = match cwd {
                Some(cwd) => root.join(expand(cwd)?),
                None => root.clone(),
            };
            let command = expand(command)?;
            let program = crate::process::resolve_program(&command, root).ok_or_else(|| {
                if command.contains('/') {
                    format!("command `{command}` is not a file in the package")
                } else {
                    format!("command `{command}` is not found on PATH")
                }
            })?;
            let mut all = crate::process::host_env();
            all.extend(active.env(workspace));
            all.extend(expand_map(env)?);
            Launch::Stdio {
                program,
                args: crate::expand::expand_all(args, &vars)?,
                env: all,
                cwd,
            }
        }
        Transport::Http { url, headers } | Transport::Sse { url, headers } => Launch::Remote {
            url: expand(url)?,
            headers: expand_map(headers)?,
            sse: matches!(transport, Transport::Sse { .. }),
        },
    })
}

/// Whether `uri` fits an RFC 6570 template: each `{…}` matches one or more characters, a
/// simple `{var}` no `/`.
pub fn template_matches(template: &str, uri: &str) -> bool {
    let mut pattern = String::from("^");
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        pattern.push_str(&regex::escape(&rest[..open]));
        let Some(close) = rest[open..].find('}') else {
            return false;
        };
        let expr = &rest[open + 1..open + close];
        pattern.push_str(if expr.starts_with(['+', '#', '/', '?', '&', '.', ';']) {
            ".*"
        } else {
            "[^/]+"
        });
        rest = &rest[open + close + 1..];
    }
    pattern.push_str(&regex::escape(rest));
    pattern.push('$');
    regex::Regex::new(&pattern).is_ok_and(|re| re.is_match(uri))
}

impl Child {
    /// The child of `pool.servers[i]` (not started); a server that cannot be launched (its
    /// command not found, a variable not set) is failed now, with a diagnostic.
    fn new(
        shared: &Arc<Shared>,
        pool: &Pool,
        i: usize,
        workspace: &Path,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Arc<Child> {
        let (sref, server) = pool.server(i);
        let active = &pool.packages[sref.package];
        let launch = launch(&server.transport, active, workspace);
        let state = match &launch {
            Ok(_) if server.lazy => State::Idle,
            Ok(_) => State::Starting,
            Err(reason) => {
                diagnostics.push(
                    Diagnostic::error(
                        &active.package.root,
                        format!("server `{}` cannot start: {reason}", server.name),
                    )
                    .in_package(active.package.id.clone()),
                );
                State::Failed {
                    reason: reason.clone(),
                }
            }
        };
        let slot = Slot {
            last_error: launch.as_ref().err().cloned(),
            ..Slot::default()
        };
        Arc::new(Child {
            label: sref.label.as_str().into(),
            package: active.package.id.clone(),
            launch,
            lazy: server.lazy,
            request_timeout: server
                .timeout_ms
                .map_or(shared.limits.request, Duration::from_millis),
            shared: shared.clone(),
            stop: shared.shutdown.child_token(),
            state: watch::Sender::new(state),
            slot: Mutex::new(slot),
        })
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn state(&self) -> State {
        self.state.borrow().clone()
    }

    fn set_state(&self, state: State) {
        tracing::info!(server = %self.label, state = %state, "server state");
        self.state.send_replace(state);
        self.shared.statuses.send_modify(|g| *g += 1);
    }

    pub fn status(&self) -> Status {
        let slot = self.slot();
        let catalog = slot.catalog.clone().unwrap_or_default();
        Status {
            server: self.label.to_string(),
            package: self.package.clone(),
            transport: match &self.launch {
                Ok(Launch::Stdio { .. }) | Err(_) => "stdio",
                Ok(Launch::Remote { sse: false, .. }) => "http",
                Ok(Launch::Remote { sse: true, .. }) => "sse",
            }
            .to_owned(),
            state: self.state(),
            restarts: slot.restarts,
            pid: slot.pid,
            tools: catalog.tools.len(),
            prompts: catalog.prompts.len(),
            resources: catalog.resources.len(),
            templates: catalog.templates.len(),
            last_error: slot.last_error.clone(),
        }
    }

    /// Starts the lifecycle task unless it runs already.
    fn ensure_started(self: Arc<Self>) {
        if self.launch.is_err() || self.stop.is_cancelled() {
            return;
        }
        {
            let mut slot = self.slot();
            if slot.started {
                return;
            }
            slot.started = true;
        }
        let shared = self.shared.clone();
        let task = tokio::spawn(self.run());
        shared
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task);
    }

    /// The lifecycle: connect, serve, restart with backoff; ends failed or stopped.
    async fn run(self: Arc<Self>) {
        let shutdown = self.stop.clone();
        let mut in_row = 0u32;
        let mut was_ready = false;
        loop {
            self.set_state(State::Starting);
            let started = Instant::now();
            let reason = match self.connect().await {
                Ok(session) => {
                    was_ready = true;
                    self.set_state(State::Ready);
                    self.shared.changed();
                    let reason = session.ended(&self.label, &shutdown).await;
                    {
                        let mut slot = self.slot();
                        if let Some(conn) = slot.conn.take() {
                            conn.closed.cancel();
                        }
                        slot.catalog = None;
                        slot.pid = None;
                        slot.last_error = Some(reason.clone());
                    }
                    self.shared.changed();
                    reason
                }
                Err(reason) => {
                    self.slot().last_error = Some(reason.clone());
                    reason
                }
            };
            if shutdown.is_cancelled() {
                self.set_state(State::Stopped);
                return;
            }
            if !was_ready {
                // It never came up: a configuration problem more than a crash.
                tracing::error!(server = %self.label, "server failed to start: {reason}");
                self.set_state(State::Failed { reason });
                return;
            }
            if started.elapsed() >= STABLE {
                in_row = 0;
            }
            in_row += 1;
            self.slot().restarts += 1;
            if in_row > self.shared.limits.max_restarts {
                let reason = format!(
                    "gave up after {} restarts in a row; last: {reason}",
                    self.shared.limits.max_restarts
                );
                tracing::error!(server = %self.label, "{reason}");
                self.set_state(State::Failed { reason });
                return;
            }
            let delay = BACKOFF_FIRST
                .saturating_mul(1 << (in_row - 1).min(10))
                .min(BACKOFF_MAX);
            tracing::warn!(server = %self.label, "server {reason}; restarting in {delay:?}");
            self.set_state(State::Restarting { reason });
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = shutdown.cancelled() => {
                    self.set_state(State::Stopped);
                    return;
                }
            }
        }
    }

    /// Spawns or dials the child, initializes it and lists what it serves, within the
    /// startup timeout.
    async fn connect(self: &Arc<Self>) -> Result<Session, String> {
        let Ok(launch) = &self.launch else {
            return Err("cannot be launched".into());
        };
        let ct = CancellationToken::new();
        let (queue, events) = mpsc::channel(transport::QUEUE);
        let routes = Arc::new(Routes::default());
        let handler = ChildClient {
            shared: self.shared.clone(),
            label: self.label.clone(),
        };
        let startup = self.shared.limits.startup;
        let mut process = None;
        let handshake = async {
            let running = match launch {
                Launch::Stdio {
                    program,
                    args,
                    env,
                    cwd,
                } => {
                    let (proc, transport) = self.spawn(program, args, env, cwd)?;
                    self.slot().pid = proc.pid;
                    process = Some(proc);
                    let transport = Intercept::new(transport, &routes, &queue);
                    handler.serve_with_ct(transport, ct.clone()).await
                }
                Launch::Remote {
                    url,
                    headers,
                    sse: false,
                } => {
                    let transport = Intercept::new(http_transport(url, headers)?, &routes, &queue);
                    handler.serve_with_ct(transport, ct.clone()).await
                }
                Launch::Remote {
                    url,
                    headers,
                    sse: true,
                } => {
                    let client = crate::hooks::http_client()?;
                    let transport = sse::SseTransport::connect(client, url, headers, MAX_LINE)
                        .await
                        .map_err(|err| err.to_string())?;
                    let transport = Intercept::new(transport, &routes, &queue);
                    handler.serve_with_ct(transport, ct.clone()).await
                }
            }
            .map_err(|err| format!("initialize failed: {err}"))?;
            let peer = running.peer().clone();
            peer.set_response_cache_config(ClientCacheConfig::disabled())
                .await;
            let catalog = list(&peer).await?;
            Ok::<_, String>((running, catalog))
        };
        let result = tokio::select! {
            r = tokio::time::timeout(startup, handshake) => r
                .unwrap_or_else(|_| Err(format!("did not finish its handshake within {startup:?}"))),
            () = self.stop.cancelled() => Err("shut down while starting".into()),
        };
        let (running, catalog) = match result {
            Ok(ok) => ok,
            Err(reason) => {
                let reason = match process.take() {
                    Some(proc) => proc.kill_and_explain(reason).await,
                    None => reason,
                };
                self.slot().pid = None;
                return Err(reason);
            }
        };
        let conn = Arc::new(Conn {
            peer: running.peer().clone(),
            routes,
            queue,
            closed: CancellationToken::new(),
        });
        {
            let mut slot = self.slot();
            slot.conn = Some(conn.clone());
            slot.catalog = Some(Arc::new(catalog));
        }
        self.send_log_level().await;
        let refresh = Arc::new(Notify::new());
        tokio::spawn(forward_events(
            events,
            self.shared.clone(),
            self.label.clone(),
            refresh.clone(),
            conn.closed.clone(),
        ));
        tokio::spawn(refresher(Arc::downgrade(self), conn, refresh));
        Ok(Session {
            running,
            ct,
            process,
        })
    }

    /// Spawns a stdio child in its own process group, its stderr drained into the log.
    fn spawn(
        &self,
        program: &Path,
        args: &[String],
        env: &[(String, String)],
        cwd: &Path,
    ) -> Result<(Process, StdioTransport), String> {
        let mut command = match EXEC_HELPER.get() {
            Some(helper) => {
                let mut command = tokio::process::Command::new(helper);
                command
                    .arg("exec-child")
                    .arg(std::process::id().to_string())
                    .arg(program);
                command
            }
            None => tokio::process::Command::new(program),
        };
        command
            .args(args)
            .current_dir(cwd)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|err| format!("cannot run `{}`: {err}", program.display()))?;
        let pid = child.id();
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err("its pipes could not be opened".into());
        };
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        tokio::spawn(drain_stderr(stderr, self.label.clone(), tail.clone()));
        let ended = Arc::new(Mutex::new(None));
        let transport = StdioTransport {
            reader: LineReader::new(stdout, MAX_LINE),
            writer: Arc::new(tokio::sync::Mutex::new(Some(stdin))),
            label: self.label.clone(),
            ended: ended.clone(),
            skipped: 0,
        };
        Ok((
            Process {
                child,
                pid,
                tail,
                ended,
            },
            transport,
        ))
    }

    async fn send_log_level(&self) {
        let level = *self
            .shared
            .upstream
            .level
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let (conn, logging) = {
            let slot = self.slot();
            (
                slot.conn.clone(),
                slot.catalog.as_ref().is_some_and(|c| c.logging),
            )
        };
        if let (Some(level), Some(conn), true) = (level, conn, logging)
            && let Err(err) = conn.peer.set_level(SetLevelRequestParams::new(level)).await
        {
            tracing::debug!(server = %self.label, "logging/setLevel failed: {err}");
        }
    }

    /// The live connection: waits while the child starts (a lazy one starts now).
    async fn connection(self: &Arc<Self>) -> Result<Arc<Conn>, ErrorData> {
        if self.lazy {
            self.clone().ensure_started();
        }
        let mut rx = self.state.subscribe();
        let wait = rx.wait_for(|s| !matches!(s, State::Starting | State::Idle));
        let state = match tokio::time::timeout(self.shared.limits.startup, wait).await {
            Ok(Ok(state)) => state.clone(),
            _ => State::Starting,
        };
        match state {
            State::Ready => self.slot().conn.clone().ok_or_else(|| self.unavailable()),
            State::Starting => Err(ErrorData::internal_error(
                format!("server `{}` is still starting", self.label),
                None,
            )),
            _ => Err(self.unavailable()),
        }
    }

    /// The error for a call that cannot reach the child, naming why.
    fn unavailable(&self) -> ErrorData {
        let message = match self.state() {
            State::Restarting { reason } => {
                format!("server `{}` {reason}; it is restarting", self.label)
            }
            State::Failed { reason } => format!("server `{}` failed: {reason}", self.label),
            State::Stopped => format!("server `{}` is shut down", self.label),
            state => match self.slot().last_error.clone() {
                Some(reason) => format!("server `{}` {reason}", self.label),
                None => format!("server `{}` is {state}", self.label),
            },
        };
        ErrorData::internal_error(message, None)
    }

    /// Sends `request` with the timeouts, routes its progress to the client and passes the
    /// client's cancellation on.
    async fn request(
        self: &Arc<Self>,
        request: ClientRequest,
        forward: &Forward,
    ) -> Result<ServerResult, ErrorData> {
        let conn = self.connection().await?;
        let options = PeerRequestOptions::with_timeout(self.request_timeout)
            .reset_timeout_on_progress()
            .with_max_total_timeout(self.shared.limits.request_max);
        let handle = match conn.peer.send_request_with_option(request, options).await {
            Ok(handle) => handle,
            Err(err) => return Err(self.failed(err).await),
        };
        let token = handle.progress_token.clone();
        if let Some((peer, upstream)) = &forward.progress {
            conn.routes
                .register(token.clone(), peer.clone(), upstream.clone(), &conn.queue);
        }
        let id = handle.id.clone();
        let result = tokio::select! {
            r = handle.await_response() => r,
            () = forward.cancel.cancelled() => {
                conn.routes.unregister(&token);
                let _ = conn.peer.notify_cancelled(CancelledNotificationParam::new(
                    Some(id),
                    Some("cancelled by the client".into()),
                )).await;
                return Err(ErrorData::internal_error("cancelled by the client", None));
            }
        };
        if forward.progress.is_some() {
            conn.routes.unregister(&token);
            // Everything the child sent before its answer is queued; let it reach the client
            // before the answer does.
            let (done, flushed) = tokio::sync::oneshot::channel();
            if conn.queue.send(Event::Flush(done)).await.is_ok() {
                let _ = flushed.await;
            }
        }
        match result {
            Ok(result) => Ok(result),
            Err(err) => Err(self.failed(err).await),
        }
    }

    /// The client's error for a request that failed on the way.
    async fn failed(&self, err: ServiceError) -> ErrorData {
        match err {
            ServiceError::McpError(err) => err,
            ServiceError::Timeout { timeout } => ErrorData::internal_error(
                format!(
                    "server `{}` did not answer within {timeout:?}; the request was cancelled",
                    self.label
                ),
                None,
            ),
            ServiceError::TransportClosed | ServiceError::TransportSend(_) => {
                // The connection is gone; give the lifecycle a moment to learn how it ended.
                let mut rx = self.state.subscribe();
                let _ = tokio::time::timeout(
                    Duration::from_millis(500),
                    rx.wait_for(|s| !matches!(s, State::Ready)),
                )
                .await;
                self.unavailable()
            }
            other => ErrorData::internal_error(format!("server `{}`: {other}", self.label), None),
        }
    }

    /// `tools/call` of the child's tool `name`.
    pub async fn call_tool(
        self: &Arc<Self>,
        name: &str,
        arguments: Option<serde_json::Map<String, serde_json::Value>>,
        forward: &Forward,
    ) -> Result<CallToolResult, ErrorData> {
        let mut params = CallToolRequestParams::new(name.to_owned());
        params.arguments = arguments;
        match self
            .request(
                ClientRequest::CallToolRequest(CallToolRequest::new(params)),
                forward,
            )
            .await?
        {
            ServerResult::CallToolResult(result) => Ok(result),
            other => Err(unexpected(&self.label, &other)),
        }
    }

    /// `prompts/get` of the child's prompt `name`.
    pub async fn get_prompt(
        self: &Arc<Self>,
        name: &str,
        arguments: Option<serde_json::Map<String, serde_json::Value>>,
        forward: &Forward,
    ) -> Result<GetPromptResult, ErrorData> {
        let mut params = GetPromptRequestParams::new(name.to_owned());
        params.arguments = arguments;
        match self
            .request(
                ClientRequest::GetPromptRequest(GetPromptRequest::new(params)),
                forward,
            )
            .await?
        {
            ServerResult::GetPromptResult(result) => Ok(result),
            other => Err(unexpected(&self.label, &other)),
        }
    }

    /// `resources/read` of `uri` from the child.
    pub async fn read_resource(
        self: &Arc<Self>,
        uri: &str,
        forward: &Forward,
    ) -> Result<ReadResourceResult, ErrorData> {
        let params = ReadResourceRequestParams::new(uri.to_owned());
        match self
            .request(
                ClientRequest::ReadResourceRequest(ReadResourceRequest::new(params)),
                forward,
            )
            .await?
        {
            ServerResult::ReadResourceResult(result) => Ok(result),
            other => Err(unexpected(&self.label, &other)),
        }
    }

    /// Lists the child again after its `list_changed`.
    async fn refresh(&self, conn: &Conn) {
        match list(&conn.peer).await {
            Ok(mut catalog) => {
                let mut slot = self.slot();
                let same = slot.catalog.as_deref().is_some_and(|old| {
                    catalog.instructions.clone_from(&old.instructions);
                    *old == catalog
                });
                if !same {
                    catalog.instructions =
                        slot.catalog.as_ref().and_then(|c| c.instructions.clone());
                    slot.catalog = Some(Arc::new(catalog));
                    drop(slot);
                    self.shared.changed();
                }
            }
            Err(err) => {
                tracing::warn!(server = %self.label, "re-listing after list_changed failed: {err}")
            }
        }
    }
}

fn unexpected(label: &str, result: &ServerResult) -> ErrorData {
    ErrorData::internal_error(
        format!("server `{label}` answered with an unexpected result: {result:?}"),
        None,
    )
}

/// Everything a child serves, each list read to its last page.
async fn list(peer: &Peer<RoleClient>) -> Result<Catalog, String> {
    let Some(info) = peer.peer_info() else {
        return Err("no initialize result".into());
    };
    let caps = &info.capabilities;
    let mut catalog = Catalog {
        instructions: info.instructions.clone(),
        logging: caps.logging.is_some(),
        ..Catalog::default()
    };
    let failed = |what: &'static str| move |err: ServiceError| format!("{what} failed: {err}");
    if caps.tools.is_some() {
        catalog.tools = peer.list_all_tools().await.map_err(failed("tools/list"))?;
    }
    if caps.prompts.is_some() {
        catalog.prompts = peer
            .list_all_prompts()
            .await
            .map_err(failed("prompts/list"))?;
    }
    if caps.resources.is_some() {
        catalog.resources = peer
            .list_all_resources()
            .await
            .map_err(failed("resources/list"))?;
        // Templates are optional even for a server with resources.
        catalog.templates = peer.list_all_resource_templates().await.unwrap_or_default();
    }
    Ok(catalog)
}

/// A connection being served, and its process when it has one.
struct Session {
    running: RunningService<RoleClient, ChildClient>,
    ct: CancellationToken,
    process: Option<Process>,
}

impl Session {
    /// Waits for the connection to end (or shutdown, which ends it) and says how it ended.
    async fn ended(self, label: &str, shutdown: &CancellationToken) -> String {
        let Session {
            running,
            ct,
            process,
        } = self;
        let waiting = running.waiting();
        tokio::pin!(waiting);
        let Some(mut proc) = process else {
            return tokio::select! {
                r = &mut waiting => match r {
                    Ok(reason) => format!("closed the connection ({reason:?})"),
                    Err(err) => format!("connection failed: {err}"),
                },
                () = shutdown.cancelled() => {
                    ct.cancel();
                    let _ = waiting.await;
                    "shut down".into()
                }
            };
        };
        tokio::select! {
            status = proc.child.wait() => {
                // Ends the rmcp loop even when a grandchild still holds stdout.
                ct.cancel();
                let reason = match status {
                    Ok(status) => describe(status),
                    Err(err) => format!("could not be waited for: {err}"),
                };
                proc.kill_and_explain(reason).await
            }
            _ = &mut waiting => {
                let gave_up = proc.ended.lock().unwrap_or_else(|p| p.into_inner()).take();
                let reason = match gave_up {
                    Some(reason) => reason,
                    // Stdout closes as the process exits: its status says more, if it comes.
                    None => match tokio::time::timeout(EXIT_GRACE, proc.child.wait()).await {
                        Ok(Ok(status)) => describe(status),
                        _ => "closed its stdout".into(),
                    },
                };
                proc.kill_and_explain(reason).await
            }
            () = shutdown.cancelled() => {
                tracing::debug!(server = %label, "closing");
                ct.cancel();
                // Closing stdin is the spec's first step; then SIGTERM, then SIGKILL.
                if tokio::time::timeout(CLOSE_GRACE, proc.child.wait()).await.is_err() {
                    proc.signal(Signal::SIGTERM);
                    if tokio::time::timeout(TERM_GRACE, proc.child.wait()).await.is_err() {
                        proc.signal(Signal::SIGKILL);
                    }
                }
                proc.signal(Signal::SIGKILL);
                let _ = proc.child.wait().await;
                "shut down".into()
            }
        }
    }
}

/// A stdio child's process.
struct Process {
    child: tokio::process::Child,
    pid: Option<u32>,
    /// The last lines of its stderr.
    tail: Arc<Mutex<VecDeque<String>>>,
    /// Why the transport gave up, when it did (a line over the limit).
    ended: Arc<Mutex<Option<String>>>,
}

impl Process {
    fn signal(&self, signal: Signal) {
        if let Some(pid) = self.pid {
            let _ = killpg(Pid::from_raw(pid as i32), signal);
        }
    }

    /// Kills the group, reaps the child and returns `reason` with its last stderr line.
    async fn kill_and_explain(mut self, reason: String) -> String {
        self.signal(Signal::SIGKILL);
        let _ = self.child.wait().await;
        let last = self
            .tail
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .back()
            .cloned();
        match last {
            Some(line) => format!("{reason}; its last stderr line: {line}"),
            None => reason,
        }
    }
}

fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => {
            let name =
                Signal::try_from(signal).map_or_else(|_| signal.to_string(), |s| s.to_string());
            format!("was killed by {name}")
        }
        _ => format!("ended ({status})"),
    }
}

/// Logs a child's stderr line by line under its name, at most [`STDERR_RATE`] lines a
/// second (the rest counted), keeping the last few for error messages. It always reads to
/// the end, so the child never blocks on a full pipe.
async fn drain_stderr(
    stderr: tokio::process::ChildStderr,
    label: Arc<str>,
    tail: Arc<Mutex<VecDeque<String>>>,
) {
    let mut reader = LineReader::new(stderr, STDERR_LINE);
    let mut window = Instant::now();
    let mut logged = 0u32;
    let mut dropped = 0u64;
    while let Some(line) = reader.next_cut().await {
        let line = String::from_utf8_lossy(&line).trim_end().to_owned();
        if line.is_empty() {
            continue;
        }
        if window.elapsed() >= Duration::from_secs(1) {
            if dropped > 0 {
                tracing::warn!(server = %label, "{dropped} stderr lines were not logged (over {STDERR_RATE}/s)");
            }
            window = Instant::now();
            logged = 0;
            dropped = 0;
        }
        if logged < STDERR_RATE {
            logged += 1;
            tracing::info!(server = %label, "stderr: {line}");
        } else {
            dropped += 1;
        }
        let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
        if tail.len() == STDERR_TAIL {
            tail.pop_front();
        }
        tail.push_back(line.chars().take(500).collect());
    }
}

/// Sends a connection's queued events to the client, one at a time, in order.
async fn forward_events(
    mut events: mpsc::Receiver<Event>,
    shared: Arc<Shared>,
    label: Arc<str>,
    refresh: Arc<Notify>,
    closed: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            // What was queued before the end still goes out.
            biased;
            event = events.recv() => match event {
                Some(event) => event,
                None => return,
            },
            () = closed.cancelled() => return,
        };
        match event {
            Event::Progress(peer, params) => {
                let _ = peer.notify_progress(params).await;
            }
            Event::Log(mut params) => {
                let logger = match &params.logger {
                    Some(logger) => format!("{label}/{logger}"),
                    None => label.to_string(),
                };
                tracing::debug!(server = %label, level = ?params.level, "log: {}", params.data);
                params.logger = Some(logger);
                if let Some(peer) = shared.upstream.peer() {
                    #[allow(deprecated)]
                    let _ = peer.notify_logging_message(params).await;
                }
            }
            Event::ResourceUpdated(params) => {
                if let Some(peer) = shared.upstream.peer() {
                    let _ = peer.notify_resource_updated(params).await;
                }
            }
            Event::ListChanged => refresh.notify_one(),
            Event::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// Re-lists a child after each `list_changed` (several in a row make one listing).
async fn refresher(child: std::sync::Weak<Child>, conn: Arc<Conn>, refresh: Arc<Notify>) {
    loop {
        tokio::select! {
            () = refresh.notified() => {}
            () = conn.closed.cancelled() => return,
        }
        if conn.peer.is_transport_closed() {
            return;
        }
        let Some(child) = child.upgrade() else {
            return;
        };
        child.refresh(&conn).await;
    }
}

/// The HTTP transport of a streamable HTTP child.
fn http_transport(
    url: &str,
    headers: &BTreeMap<String, String>,
) -> Result<rmcp::transport::StreamableHttpClientTransport<reqwest::Client>, String> {
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    let mut custom = std::collections::HashMap::new();
    for (name, value) in headers {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|err| format!("header `{name}`: {err}"))?;
        let value = reqwest::header::HeaderValue::from_str(value)
            .map_err(|err| format!("header `{name}`: {err}"))?;
        custom.insert(name, value);
    }
    let config =
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()).custom_headers(custom);
    let client = crate::hooks::http_client()?;
    Ok(rmcp::transport::StreamableHttpClientTransport::with_client(
        client, config,
    ))
}

/// capmux as the client of a child: the child's requests go to capmux's client.
#[derive(Clone)]
struct ChildClient {
    shared: Arc<Shared>,
    label: Arc<str>,
}

impl ChildClient {
    async fn upstream<T>(
        &self,
        what: &str,
        cx: &RequestContext<RoleClient>,
        request: impl Future<Output = Result<T, ServiceError>>,
    ) -> Result<T, ErrorData> {
        tokio::select! {
            r = request => r.map_err(|err| match err {
                ServiceError::McpError(err) => err,
                other => ErrorData::internal_error(format!("{what} through capmux failed: {other}"), None),
            }),
            () = cx.ct.cancelled() => Err(ErrorData::internal_error("cancelled by the server", None)),
        }
    }
}

impl ClientHandler for ChildClient {
    fn get_info(&self) -> ClientInfo {
        ClientInfo::new(
            self.shared.upstream.capabilities(),
            Implementation::new("capmux", env!("CARGO_PKG_VERSION")),
        )
        .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        cx: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        let peer = self.shared.upstream.require("sampling")?;
        tracing::debug!(server = %self.label, "forwarding sampling/createMessage");
        #[allow(deprecated)]
        let request = peer.create_message(params);
        self.upstream("sampling", &cx, request).await
    }

    async fn list_roots(
        &self,
        cx: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, ErrorData> {
        let peer = self.shared.upstream.require("roots/list")?;
        #[allow(deprecated)]
        let request = peer.list_roots();
        self.upstream("roots/list", &cx, request).await
    }

    async fn create_elicitation(
        &self,
        params: ElicitRequestParams,
        cx: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let peer = self.shared.upstream.require("elicitation")?;
        let request = async move {
            match peer
                .send_request(ServerRequest::ElicitRequest(mcp::ElicitRequest::new(
                    params,
                )))
                .await?
            {
                mcp::ClientResult::ElicitResult(result) => Ok(result),
                _ => Err(ServiceError::UnexpectedResponse),
            }
        };
        self.upstream("elicitation", &cx, request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_their_uris() {
        assert!(template_matches("file:///{path}", "file:///a.txt"));
        assert!(!template_matches("file:///{path}", "file:///a/b.txt"));
        assert!(template_matches("file:///{+path}", "file:///a/b.txt"));
        assert!(template_matches(
            "test://static/resource/{id}",
            "test://static/resource/7"
        ));
        assert!(!template_matches(
            "test://static/resource/{id}",
            "test://other/7"
        ));
        assert!(template_matches("db://{table}/{id}", "db://users/1"));
        assert!(!template_matches("a{", "a"));
    }
}
