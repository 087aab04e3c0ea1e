//! The MCP front end: the pool served as one MCP server, over stdio or any rmcp transport.
//!
//! This is the only module that speaks rmcp's server side. It holds the current pool behind
//! a lock that is only held to clone an `Arc`, so a request works on one consistent pool from
//! start to end and a reload never waits for a running tool. Lists are sorted (the pool's
//! maps are `BTreeMap`s) and paginated with the last name of a page as the cursor, so a
//! cursor stays meaningful across a reload.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use std::ops::Bound;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ErrorData, GetPromptRequestParams, GetPromptResponse,
    GetPromptResult, Implementation, InitializeRequestParams, InitializeResult, ListPromptsResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, PromptMessage,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, ResourceContents, Role,
    ServerCapabilities, ServerConfig,
};
use rmcp::model::{
    CallToolResult, ContentBlock, GetSkillRequestParams, GetSkillResult, ListSkillsResult, Skill,
    SkillFrontmatter, SkillResource, SkillResources,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler};

use serde_json::{Map, Value};

use crate::child::{Forward, Supervisor};
use crate::config::Config;
use crate::hooks::{self, Hook, HookEvent, Hooks};
use crate::pool::{self, PromptRoute, ResourceRoute, SkillEntry, ToolRoute};
use crate::runner::Runner;
use crate::skills;
use crate::system_prompt::{self, provider_for_client};
use crate::{Pool, package};

/// The MCP server; cheap to clone (one clone per session).
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

struct Inner {
    /// The pool being served and its hooks. Written only by a reload, which swaps in a new
    /// `Arc`; every request clones the `Arc` once and works on that snapshot.
    served: RwLock<Arc<Served>>,
    runner: Runner,
    page_size: usize,
    instructions_budget: usize,
    /// This server's session id in hook events.
    session_id: String,
    /// The pool without the children's items: what a catalogue change rebuilds from;
    /// replaced by a reload.
    base: RwLock<Arc<Pool>>,
    /// The child servers (none, when no package has any).
    children: Supervisor,
    /// In-process hooks added with [`Server::add_hook`]; kept across reloads.
    extra_hooks: std::sync::Mutex<Hooks>,
    /// Held while the served pool is rebuilt from the catalogues, so rebuilds never race.
    rebuild: std::sync::Mutex<()>,
    /// Whether the children were started (once per server).
    started: std::sync::atomic::AtomicBool,
    /// How long `initialize` waits for children.
    startup_wait: std::time::Duration,
}

/// A pool and the hook chain built from it.
pub(crate) struct Served {
    pub(crate) pool: Arc<Pool>,
    pub(crate) hooks: Hooks,
}

impl Server {
    pub fn new(pool: Pool, config: &Config, workspace: PathBuf) -> Self {
        let children = Supervisor::new(&pool, config, &workspace);
        let runner = Runner::new(config, workspace);
        let hooks = package_hooks(&pool, &runner);
        let pool = Arc::new(pool);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        Server {
            inner: Arc::new(Inner {
                served: RwLock::new(Arc::new(Served {
                    pool: pool.clone(),
                    hooks,
                })),
                base: RwLock::new(pool),
                children,
                extra_hooks: std::sync::Mutex::new(Hooks::default()),
                rebuild: std::sync::Mutex::new(()),
                started: std::sync::atomic::AtomicBool::new(false),
                startup_wait: crate::child::Limits::from_config(config).startup_wait,
                runner,
                page_size: config.page_size(),
                instructions_budget: config.instructions_budget(),
                session_id: format!("capmux-{}-{nanos:x}", std::process::id()),
            }),
        }
    }

    /// Adds an in-process hook after the packages' hooks (builder form of [`Server::add_hook`]).
    pub fn with_hook(self, hook: Hook) -> Self {
        self.add_hook(hook);
        self
    }

    /// Adds an in-process hook after the packages' hooks, for every clone of this server
    /// and every session, from the next request on.
    pub fn add_hook(&self, hook: Hook) {
        let mut served = match self.inner.served.write() {
            Ok(served) => served,
            Err(poisoned) => poisoned.into_inner(),
        };
        let hook = Arc::new(hook);
        self.inner
            .extra_hooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_shared(hook.clone());
        let mut hooks = served.hooks.clone();
        hooks.push_shared(hook);
        *served = Arc::new(Served {
            pool: served.pool.clone(),
            hooks,
        });
    }

    pub(crate) fn served(&self) -> Arc<Served> {
        match self.inner.served.read() {
            Ok(served) => served.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The child servers (none, when no package has any).
    pub fn children(&self) -> &Supervisor {
        &self.inner.children
    }

    /// Serves `pool` from now on (a reload: packages installed, removed, changed): the
    /// hooks are built again, children whose launch is unchanged keep running, removed ones
    /// stop, new ones start, and the client gets `list_changed` for each list that changed.
    pub async fn reload(&self, pool: Pool) {
        let workspace = self.inner.runner.workspace.clone();
        let mut hooks = package_hooks(&pool, &self.inner.runner);
        hooks.append(
            &self
                .inner
                .extra_hooks
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        let pool = Arc::new(pool);
        *self.inner.base.write().unwrap_or_else(|p| p.into_inner()) = pool.clone();
        {
            let mut served = self.inner.served.write().unwrap_or_else(|p| p.into_inner());
            *served = Arc::new(Served {
                pool: served.pool.clone(),
                hooks,
            });
        }
        self.inner.children.update(&pool, &workspace);
        self.rebuild().await;
    }

    /// Starts the child servers (once) and waits, at most `[servers] startup_wait`, for
    /// them to be ready or failed, so that the first listing has their items; slower ones
    /// join later with `list_changed`. `client` is the session whose client the children's
    /// requests (sampling, elicitation, roots) go to, and whose capabilities they are told.
    pub async fn start_children(&self, client: Option<rmcp::Peer<RoleServer>>) {
        let children = &self.inner.children;
        if let Some(peer) = client {
            children.set_upstream(peer);
        }
        if self
            .inner
            .started
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        let mut changes = children.changes();
        children.start();
        // Catalogue changes swap in a new pool and tell the client what changed.
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                // Children come up in bursts (fifty at start): one new pool for a burst.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                changes.mark_unchanged();
                let Some(inner) = weak.upgrade() else { return };
                let server = Server { inner };
                server.rebuild().await;
            }
        });
        children.settled(self.inner.startup_wait).await;
        self.rebuild_quietly();
    }

    /// Starts the children for a client that skipped `initialize` (a 2026-07-28 client
    /// starts with `server/discover`); after the first request this is one atomic load.
    async fn ensure_children(&self, cx: &RequestContext<RoleServer>) {
        if !self
            .inner
            .started
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            self.start_children(Some(cx.peer.clone())).await;
        }
    }

    /// Stops the child servers, within about 1.5 s.
    pub async fn shutdown(&self) {
        self.inner.children.shutdown().await;
    }

    /// Swaps in the pool of the children's catalogues as they are now. The server does this
    /// itself on every change (and tells the client); this is for a caller that needs the
    /// children's items at once, without a client.
    pub fn sync_children(&self) {
        self.rebuild_quietly();
    }

    /// Swaps in the pool of the current catalogues; returns the old and the new one.
    fn rebuild_quietly(&self) -> (Arc<Pool>, Arc<Pool>) {
        let children = &self.inner.children;
        let _guard = self.inner.rebuild.lock().unwrap_or_else(|p| p.into_inner());
        let base = self
            .inner
            .base
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let pool = Arc::new(base.with_children(&children.catalogs()));
        let mut served = match self.inner.served.write() {
            Ok(served) => served,
            Err(poisoned) => poisoned.into_inner(),
        };
        let old = served.pool.clone();
        *served = Arc::new(Served {
            pool: pool.clone(),
            hooks: served.hooks.clone(),
        });
        // What the children's items ran into (a name or URI taken) is new at runtime.
        for d in pool
            .diagnostics()
            .iter()
            .filter(|d| !old.diagnostics().contains(d))
        {
            tracing::warn!(
                package = d.package.as_deref().unwrap_or("-"),
                "{}",
                d.message
            );
        }
        (old, pool)
    }

    /// [`Server::rebuild_quietly`], then `list_changed` for each list that changed.
    async fn rebuild(&self) {
        let (old, new) = self.rebuild_quietly();
        let Some(peer) = self.children().upstream_peer() else {
            return;
        };
        fn same<T: PartialEq, R>(
            a: &std::collections::BTreeMap<String, pool::Entry<T, R>>,
            b: &std::collections::BTreeMap<String, pool::Entry<T, R>>,
        ) -> bool {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|((ka, a), (kb, b))| ka == kb && a.item == b.item)
        }
        if !same(&old.tools, &new.tools) {
            let _ = peer.notify_tool_list_changed().await;
        }
        if !same(&old.prompts, &new.prompts) {
            let _ = peer.notify_prompt_list_changed().await;
        }
        if !same(&old.resources, &new.resources) || old.templates.len() != new.templates.len() {
            let _ = peer.notify_resource_list_changed().await;
        }
    }

    /// The pool as it is now.
    pub fn pool(&self) -> Arc<Pool> {
        self.served().pool.clone()
    }

    /// The session id hook events carry.
    pub fn session_id(&self) -> &str {
        &self.inner.session_id
    }

    /// The working directory: the project, and the `cwd` of hook events.
    pub fn workspace(&self) -> &std::path::Path {
        &self.inner.runner.workspace
    }

    /// A new event of `event` with the common fields set.
    pub(crate) fn event(&self, event: HookEvent) -> Value {
        hooks::event_json(event, &self.inner.session_id, self.workspace())
    }

    /// The runner command tools go through.
    pub fn runner(&self) -> &Runner {
        &self.inner.runner
    }

    /// Calls the tool with public name `name`; `None` when there is no such tool. This is
    /// `tools/call` without the protocol, for the CLI and for library users; the
    /// `beforeToolCall` and `afterToolCall` hooks run around it.
    pub async fn call(
        &self,
        name: &str,
        arguments: Option<Map<String, Value>>,
        forward: Forward,
    ) -> Option<CallToolResult> {
        let served = self.served();
        let pool = &served.pool;
        let entry = pool.tools.get(name)?;
        let item = match entry.route {
            ToolRoute::Command { package, tool } => {
                pool.packages[package].package.tools[tool].name.clone()
            }
            ToolRoute::LoadSkill => skills::LOAD_TOOL.to_owned(),
            ToolRoute::ReadSkillFile => skills::READ_TOOL.to_owned(),
            ToolRoute::Child { server, tool } => pool.catalogs[server]
                .as_ref()
                .map(|c| c.tools[tool].name.to_string())
                .unwrap_or_default(),
        };
        let hooks = &served.hooks;
        // The names a hook's matcher may use: ours, the tool's own, and what Claude Code
        // and Gemini CLI would call it (as capmux's tool, and as the child server's own).
        // Built only when a tool hook may read them: a call without hooks allocates none.
        let tool_hooks =
            hooks.has(HookEvent::BeforeToolCall) || hooks.has(HookEvent::AfterToolCall);
        let mut all_names = Vec::new();
        if tool_hooks {
            all_names.push(format!("mcp__capmux__{name}"));
        }
        if let ToolRoute::Child { server, .. } = entry.route
            && tool_hooks
        {
            let (server_ref, spec) = pool.server(server);
            let package = &pool.packages[server_ref.package].package.id;
            let s = &spec.name;
            all_names.extend([
                format!("mcp__{s}__{item}"),
                format!("mcp__plugin_{package}_{s}__{item}"),
                format!("mcp_{s}_{item}"),
            ]);
        }
        let mut names = vec![name, item.as_str()];
        names.extend(all_names.iter().map(String::as_str));
        let mut arguments = arguments;
        let mut context = Vec::new();

        if hooks.has(HookEvent::BeforeToolCall) {
            let mut event = self.event(HookEvent::BeforeToolCall);
            event["tool_name"] = name.into();
            event["tool_input"] = Value::Object(arguments.clone().unwrap_or_default());
            let outcome = hooks.run(HookEvent::BeforeToolCall, &names, event).await;
            if let Some(blocked) = outcome.blocked {
                return Some(CallToolResult::error(vec![ContentBlock::text(
                    blocked.message(),
                )]));
            }
            match outcome.event.get("tool_input") {
                Some(Value::Object(input)) => arguments = Some(input.clone()),
                _ => {
                    return Some(CallToolResult::error(vec![ContentBlock::text(
                        "a beforeToolCall hook replaced the arguments with something that is not an object",
                    )]));
                }
            }
            context.extend(outcome.context);
        }

        let mut result = match entry.route {
            ToolRoute::Command { package, tool } => {
                let active = &pool.packages[package];
                let tool = &active.package.tools[tool];
                self.inner
                    .runner
                    .call(active, tool, name, arguments.clone(), forward.cancel)
                    .await
            }
            ToolRoute::Child { server, .. } => match self.child(server) {
                Some(child) => child
                    .call_tool(&item, arguments.clone(), &forward)
                    .await
                    .unwrap_or_else(|err| {
                        CallToolResult::error(vec![ContentBlock::text(err.message)])
                    }),
                None => CallToolResult::error(vec![ContentBlock::text("no such server")]),
            },
            route => Self::skill_tool(pool, route, arguments.as_ref()),
        };

        if hooks.has(HookEvent::AfterToolCall) {
            let mut event = self.event(HookEvent::AfterToolCall);
            event["tool_name"] = name.into();
            event["tool_input"] = Value::Object(arguments.unwrap_or_default());
            event["tool_response"] = serde_json::to_value(&result).unwrap_or_default();
            let outcome = hooks.run(HookEvent::AfterToolCall, &names, event).await;
            if let Some(blocked) = outcome.blocked {
                return Some(CallToolResult::error(vec![ContentBlock::text(
                    blocked.message(),
                )]));
            }
            if let Some(response) = outcome.event.get("tool_response") {
                result = tool_result_from(response);
            }
            context.extend(outcome.context);
        }
        result
            .content
            .extend(context.into_iter().map(ContentBlock::text));
        Some(result)
    }

    /// The child behind the pool's server `index`.
    fn child(&self, index: usize) -> Option<std::sync::Arc<crate::child::Child>> {
        self.inner.children.children().get(index).cloned()
    }

    /// `prompts/get` without hooks: the prompt filled in.
    async fn prompt(
        &self,
        pool: &Pool,
        request: &GetPromptRequestParams,
        provider: Option<&str>,
        forward: &Forward,
    ) -> Result<GetPromptResult, ErrorData> {
        let Some(entry) = pool.prompts.get(&request.name) else {
            return Err(ErrorData::invalid_params(
                format!("unknown prompt `{}`", request.name),
                None,
            ));
        };
        let (description, text) = match entry.route {
            PromptRoute::Child { server, prompt } => {
                let (Some(child), Some(catalog)) = (self.child(server), &pool.catalogs[server])
                else {
                    return Err(ErrorData::internal_error("no such server", None));
                };
                return child
                    .get_prompt(
                        &catalog.prompts[prompt].name,
                        request.arguments.clone(),
                        forward,
                    )
                    .await;
            }
            PromptRoute::System => (
                entry.item.description.clone(),
                pool.system_prompt.render(provider),
            ),
            PromptRoute::Skill { package, skill } => {
                let skill = &pool.packages[package].package.skills[skill];
                if let Some(other) = request
                    .arguments
                    .iter()
                    .flatten()
                    .map(|(k, _)| k)
                    .find(|k| *k != "arguments")
                {
                    return Err(ErrorData::invalid_params(
                        format!(
                            "prompt `{}` has no argument `{other}`; its one argument is: arguments",
                            request.name
                        ),
                        None,
                    ));
                }
                let arguments = request
                    .arguments
                    .as_ref()
                    .and_then(|a| a.get("arguments"))
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .unwrap_or_default();
                (
                    Some(skill.description.clone()),
                    skills::prompt_text(skill, &arguments),
                )
            }
            PromptRoute::Compose => {
                let arg = |key: &str| {
                    request
                        .arguments
                        .as_ref()
                        .and_then(|a| a.get(key))
                        .and_then(Value::as_str)
                };
                let message = arg("message").ok_or_else(|| {
                    ErrorData::invalid_params(
                        "prompt `compose` is missing required argument `message`",
                        None,
                    )
                })?;
                let composed = self
                    .compose(message, None, arg("provider").or(provider))
                    .await;
                if let Some(blocked) = composed.cancelled {
                    return Err(ErrorData::invalid_request(blocked.message(), None));
                }
                (entry.item.description.clone(), composed.text)
            }
            PromptRoute::Package { package, prompt } => {
                let active = &pool.packages[package];
                let prompt = &active.package.prompts[prompt];
                let mut text = render_prompt(&request.name, prompt, request.arguments.as_ref())
                    .map_err(|message| ErrorData::invalid_params(message, None))?;
                let (shell, files) = (
                    active.holds(package::Permission::ShellExecute),
                    active.holds(package::Permission::FsRead),
                );
                if prompt.inline && (shell || files) {
                    let runner = &self.inner.runner;
                    let inline = crate::slash::Inline {
                        shell,
                        files,
                        workspace: &runner.workspace,
                        env: runner.env(active, None),
                        cancel: forward.cancel.clone(),
                    };
                    text = crate::slash::expand_inline(&text, &inline).await;
                }
                (prompt.description.clone(), text)
            }
        };
        let mut result = GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)]);
        result.description = description;
        Ok(result)
    }

    /// `resources/read` without hooks. A URI no listed resource has goes to the first
    /// child whose resource template matches it.
    async fn resource(
        &self,
        pool: &Pool,
        uri: &str,
        provider: Option<&str>,
        forward: &Forward,
    ) -> Result<ReadResourceResult, ErrorData> {
        let child_read = |server: usize| async move {
            match self.child(server) {
                Some(child) => child.read_resource(uri, forward).await,
                None => Err(ErrorData::internal_error("no such server", None)),
            }
        };
        let Some(entry) = pool.resources.get(uri) else {
            return match pool.template_for(uri) {
                Some(server) => child_read(server).await,
                None => Err(ErrorData::resource_not_found(
                    format!("unknown resource `{uri}`"),
                    None,
                )),
            };
        };
        let contents = match entry.route {
            ResourceRoute::Child { server, .. } => return child_read(server).await,
            ResourceRoute::SystemPrompt => ResourceContents::text(
                pool.system_prompt.render(provider),
                system_prompt::RESOURCE_URI,
            )
            .with_mime_type("text/markdown"),
            ResourceRoute::SkillFile {
                package,
                skill,
                file,
            } => {
                let skill = &pool.packages[package].package.skills[skill];
                let file = &skill.files[file];
                let bytes = skills::read_file(skill, file)
                    .map_err(|message| ErrorData::internal_error(message, None))?;
                // The digest of what is sent, which differs from the listed one if the file
                // changed since it was loaded: a client that checks it learns the truth.
                let digest = package::skill::digest(&bytes);
                let contents = match String::from_utf8(bytes) {
                    Ok(text) if package::skill::is_text(file.mime) => {
                        ResourceContents::text(text, uri)
                    }
                    Ok(text) => ResourceContents::blob(BASE64.encode(text.as_bytes()), uri),
                    Err(err) => ResourceContents::blob(BASE64.encode(err.as_bytes()), uri),
                };
                let mut meta = rmcp::model::MetaObject::new();
                meta.0.insert("digest".into(), digest.into());
                contents.with_mime_type(file.mime).with_meta(meta)
            }
        };
        Ok(ReadResourceResult::new(vec![contents]))
    }

    fn provider(cx: &RequestContext<RoleServer>) -> Option<&'static str> {
        cx.peer
            .peer_info()
            .and_then(|info| provider_for_client(&info.client_info.name))
    }

    /// What this pool serves; the skills extension (SEP-2640) only when there are skills;
    /// `list_changed` (a reload or a child can change every list) and logging (children's
    /// log messages) always.
    fn capabilities(pool: &Pool) -> ServerCapabilities {
        let builder = ServerCapabilities::builder()
            .enable_tools()
            .enable_prompts()
            .enable_resources();
        let mut caps = if pool.skills.is_empty() {
            builder.build()
        } else {
            builder.enable_skills().build()
        };
        if let Some(tools) = caps.tools.as_mut() {
            tools.list_changed = Some(true);
        }
        if let Some(prompts) = caps.prompts.as_mut() {
            prompts.list_changed = Some(true);
        }
        if let Some(resources) = caps.resources.as_mut() {
            resources.list_changed = Some(true);
        }
        caps.logging = Some(Default::default());
        caps
    }

    /// A capmux skill tool: load a skill, or read one of its files.
    fn skill_tool(
        pool: &Pool,
        route: ToolRoute,
        arguments: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> CallToolResult {
        let arg = |name: &str| {
            arguments
                .and_then(|a| a.get(name))
                .and_then(serde_json::Value::as_str)
        };
        let error = |text: String| CallToolResult::error(vec![ContentBlock::text(text)]);
        let Some(name) = arg(if route == ToolRoute::LoadSkill {
            "name"
        } else {
            "skill"
        }) else {
            return error("give the skill's name, as in the skills index".into());
        };
        let Some(entry) = pool.skills.get(name) else {
            let known: Vec<&str> = pool.skills.keys().map(String::as_str).collect();
            return error(format!(
                "unknown skill `{name}`; the skills are: {}",
                known.join(", ")
            ));
        };
        let skill = pool.skill(entry);
        if route == ToolRoute::LoadSkill {
            return CallToolResult::success(vec![ContentBlock::text(skills::load_text(
                name,
                skill,
                &entry.base_uri,
            ))]);
        }
        let Some(path) = arg("path") else {
            return error("give the file's `path` relative to the skill folder".into());
        };
        let file = match skills::find_file(skill, name, path) {
            Ok(file) => file,
            Err(message) => return error(message),
        };
        match skills::read_file(skill, file) {
            Ok(bytes) if package::skill::is_text(file.mime) => match String::from_utf8(bytes) {
                Ok(text) => CallToolResult::success(vec![ContentBlock::text(text)]),
                Err(_) => error(format!("`{path}` is not UTF-8 text")),
            },
            Ok(bytes) => CallToolResult::success(vec![ContentBlock::text(format!(
                "`{path}` is a binary file ({}, {} bytes); read the resource {}{} instead",
                file.mime,
                bytes.len(),
                entry.base_uri,
                skills::encode_path(&file.path)
            ))]),
            Err(message) => error(message),
        }
    }
}

/// The text of a package prompt with its arguments filled in; errors name what is wrong.
pub fn render_prompt(
    public: &str,
    prompt: &package::Prompt,
    arguments: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Result<String, String> {
    let mut values: HashMap<&str, String> = HashMap::new();
    if let Some(arguments) = arguments {
        for (name, value) in arguments {
            if !prompt.arguments.iter().any(|a| &a.name == name) {
                let known: Vec<&str> = prompt.arguments.iter().map(|a| a.name.as_str()).collect();
                return Err(format!(
                    "prompt `{public}` has no argument `{name}`; its arguments are: {}",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ));
            }
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            values.insert(name, text);
        }
    }
    let missing: Vec<&str> = prompt
        .arguments
        .iter()
        .filter(|a| a.required && !values.contains_key(a.name.as_str()))
        .map(|a| a.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "prompt `{public}` is missing required argument{} {}",
            if missing.len() == 1 { "" } else { "s" },
            missing
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let value = |name: &str| values.get(name).map_or("", String::as_str);
    Ok(match prompt.syntax {
        package::Syntax::Placeholders => {
            let declared = |name: &str| prompt.arguments.iter().any(|a| a.name == name);
            fill_placeholders(&prompt.template, |name| declared(name).then(|| value(name)))
        }
        package::Syntax::Slash { one_based } => {
            let single = matches!(&prompt.arguments[..], [a] if a.name == crate::slash::ARGUMENTS);
            if single {
                let all = value(crate::slash::ARGUMENTS);
                let words = crate::slash::split_words(all);
                crate::slash::fill_slash(&prompt.template, all, &words, &[], one_based)
            } else {
                let named: Vec<(String, String)> = prompt
                    .arguments
                    .iter()
                    .filter_map(|a| Some((a.name.clone(), values.get(a.name.as_str())?.clone())))
                    .collect();
                let words: Vec<String> = named.iter().map(|(_, v)| v.clone()).collect();
                crate::slash::fill_slash(
                    &prompt.template,
                    &words.join(" "),
                    &words,
                    &named,
                    one_based,
                )
            }
        }
        package::Syntax::Gemini => {
            crate::slash::fill_gemini(&prompt.template, value(crate::slash::ARGS))
        }
    })
}

/// Replaces each `{{name}}` (or `{{ name }}`) for which `value` has an answer, in one pass,
/// so a value that itself contains `{{...}}` is never expanded again.
fn fill_placeholders<'v>(text: &str, value: impl Fn(&str) -> Option<&'v str>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        match after
            .find("}}")
            .and_then(|end| Some((end, value(after[..end].trim())?)))
        {
            Some((end, replacement)) => {
                out.push_str(&rest[..start]);
                out.push_str(replacement);
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[..start + 2]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The name inside its package of the public prompt `public` (itself for capmux's own).
fn prompt_item(pool: &Pool, public: &str) -> String {
    match pool.prompts.get(public).map(|e| e.route) {
        Some(PromptRoute::Package { package, prompt }) => {
            pool.packages[package].package.prompts[prompt].name.clone()
        }
        Some(PromptRoute::Skill { package, skill }) => {
            pool.packages[package].package.skills[skill].name.clone()
        }
        Some(PromptRoute::Child { server, prompt }) => pool.catalogs[server]
            .as_ref()
            .map_or_else(|| public.to_owned(), |c| c.prompts[prompt].name.clone()),
        _ => public.to_owned(),
    }
}

/// The hook chain of a pool's packages, built with the runner's environment.
fn package_hooks(pool: &Pool, runner: &Runner) -> Hooks {
    let mut client = None;
    let mut chain = Vec::new();
    for &(p, h) in &pool.hooks {
        let active = &pool.packages[p];
        let hook = &active.package.hooks[h];
        let handler: Arc<dyn hooks::HookHandler> = match &hook.handler {
            package::HookHandler::Command { argv } => {
                let mut env = runner.env(active, None);
                env.extend([
                    (
                        "CAPMUX_HOOK_EVENT".to_owned(),
                        hooks::capmux_name(hook.event).to_owned(),
                    ),
                    (
                        "CLAUDE_PLUGIN_ROOT".to_owned(),
                        active.package.root.display().to_string(),
                    ),
                    (
                        "CLAUDE_PLUGIN_DATA".to_owned(),
                        active.data_dir.display().to_string(),
                    ),
                    (
                        "CLAUDE_PROJECT_DIR".to_owned(),
                        runner.workspace.display().to_string(),
                    ),
                ]);
                let argv = match crate::expand::expand_all(argv, &active.vars(&runner.workspace)) {
                    Ok(argv) => argv,
                    Err(err) => {
                        tracing::error!(package = %active.package.id, cause = %err, "command hook not run");
                        continue;
                    }
                };
                Arc::new(hooks::CommandHook {
                    event: hook.event,
                    argv,
                    timeout: hook_timeout(hook),
                    root: active.package.root.clone(),
                    env,
                })
            }
            package::HookHandler::Http { url } => {
                let url = match crate::expand::expand(url, &active.vars(&runner.workspace)) {
                    Ok(url) => url,
                    Err(err) => {
                        tracing::error!(package = %active.package.id, cause = %err, "URL hook not run");
                        continue;
                    }
                };
                if client.is_none() {
                    client = match hooks::http_client() {
                        Ok(c) => Some(c),
                        Err(err) => {
                            tracing::error!(package = %active.package.id, cause = %err, "URL hook not run");
                            continue;
                        }
                    };
                }
                let Some(client) = client.clone() else {
                    continue;
                };
                Arc::new(hooks::HttpHook {
                    event: hook.event,
                    url,
                    client,
                })
            }
        };
        let Ok(matcher) = hooks::Matcher::parse(hook.matcher.as_deref()) else {
            continue; // The pool admitted only valid matchers.
        };
        chain.push(Hook {
            package: active.package.id.clone(),
            event: hook.event,
            matcher,
            handler,
            timeout: hook_timeout(hook),
            fail_open: hook.fail_open.unwrap_or(true),
        });
    }
    Hooks::new(chain)
}

fn hook_timeout(hook: &package::Hook) -> std::time::Duration {
    hook.timeout_ms
        .map_or(hooks::DEFAULT_TIMEOUT, std::time::Duration::from_millis)
        .min(hooks::MAX_TIMEOUT)
}

/// A tool result as a hook gave it: a `CallToolResult` object, else text.
fn tool_result_from(value: &Value) -> CallToolResult {
    match serde_json::from_value::<CallToolResult>(value.clone()) {
        Ok(result) if value.get("content").is_some() => result,
        _ => CallToolResult::success(vec![ContentBlock::text(match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })]),
    }
}

/// A skill as `skills/list` and `skills/get` describe it (SEP-2640).
fn skill_entry(pool: &Pool, public: &str, entry: &SkillEntry) -> Skill {
    let skill = pool.skill(entry);
    let mut frontmatter = SkillFrontmatter::new(skill.name.clone(), skill.description.clone());
    for (key, value) in &skill.frontmatter {
        if key != "name" && key != "description" {
            frontmatter.extra.insert(key.clone(), value.clone());
        }
    }
    let files = skill
        .files
        .iter()
        .map(|f| {
            SkillResource::new(
                format!("{}{}", entry.base_uri, skills::encode_path(&f.path)),
                f.digest.clone(),
                f.size,
            )
        })
        .collect();
    let mut meta = rmcp::model::MetaObject::new();
    meta.0.insert("name".into(), public.into());
    Skill::new(entry.uri.clone(), frontmatter, SkillResources::Files(files)).with_meta(meta)
}

/// What a forwarded request takes from the client's: cancellation and the progress route.
fn forward_of(cx: &RequestContext<RoleServer>) -> Forward {
    Forward {
        cancel: cx.ct.clone(),
        progress: cx
            .meta
            .get_progress_token()
            .map(|token| (cx.peer.clone(), token)),
    }
}

fn cursor(request: Option<PaginatedRequestParams>) -> Option<String> {
    request.and_then(|r| r.cursor)
}

impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        let pool = self.pool();
        ServerConfig::new(Self::capabilities(&pool))
            .with_server_info(
                Implementation::new("capmux", env!("CARGO_PKG_VERSION"))
                    .with_title("capmux")
                    .with_description(
                        "Capability packages of every agent format, served as one MCP server",
                    ),
            )
            .with_instructions(
                pool.system_prompt
                    .instructions(None, self.inner.instructions_budget),
            )
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        context.peer.set_peer_info(request.clone());
        let mut result = self.negotiate_initialize(&request)?;
        self.start_children(Some(context.peer.clone())).await;
        result.capabilities = Self::capabilities(&self.pool());
        let provider = provider_for_client(&request.client_info.name);
        let served = self.served();
        let mut instructions = served
            .pool
            .system_prompt
            .instructions(provider, self.inner.instructions_budget);
        if served.hooks.has(HookEvent::SessionStart) {
            let mut event = self.event(HookEvent::SessionStart);
            event["source"] = "startup".into();
            event["client_name"] = request.client_info.name.clone().into();
            event["client_version"] = request.client_info.version.clone().into();
            event["provider"] = provider.map_or(Value::Null, Into::into);
            let outcome = served
                .hooks
                .run(HookEvent::SessionStart, &["startup"], event)
                .await;
            if let Some(blocked) = &outcome.blocked {
                tracing::warn!(package = %blocked.package, reason = %blocked.reason, "a sessionStart hook cannot block a session; ignored");
            }
            // The hooks' text is this session's own: it comes after the merged prompt and
            // is not cut by the instructions budget, since the hook chose to send it.
            for context in outcome.context {
                if !instructions.is_empty() {
                    instructions.push_str("\n\n");
                }
                instructions.push_str(&context);
            }
        }
        result.instructions = (!instructions.is_empty()).then_some(instructions);
        Ok(result)
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.ensure_children(&context).await;
        let pool = self.pool();
        let (items, next) = pool::page(
            &pool.tools,
            cursor(request).as_deref(),
            self.inner.page_size,
        );
        let mut result = ListToolsResult::with_all_items(items);
        result.next_cursor = next;
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.ensure_children(&context).await;
        match self
            .call(&request.name, request.arguments, forward_of(&context))
            .await
        {
            Some(result) => Ok(result.into()),
            None => Err(ErrorData::invalid_params(
                format!("unknown tool `{}`", request.name),
                None,
            )),
        }
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        self.ensure_children(&context).await;
        let pool = self.pool();
        let (items, next) = pool::page(
            &pool.prompts,
            cursor(request).as_deref(),
            self.inner.page_size,
        );
        let mut result = ListPromptsResult::with_all_items(items);
        result.next_cursor = next;
        Ok(result)
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        self.ensure_children(&context).await;
        let served = self.served();
        let mut request = request;
        let names = [
            request.name.clone(),
            prompt_item(&served.pool, &request.name),
        ];
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let hooks = &served.hooks;
        let mut context_texts = Vec::new();
        if hooks.has(HookEvent::BeforePromptGet) {
            let mut event = self.event(HookEvent::BeforePromptGet);
            event["prompt_name"] = request.name.clone().into();
            event["prompt_arguments"] =
                Value::Object(request.arguments.clone().unwrap_or_default());
            let outcome = hooks.run(HookEvent::BeforePromptGet, &names, event).await;
            if let Some(blocked) = outcome.blocked {
                return Err(ErrorData::invalid_request(blocked.message(), None));
            }
            if let Some(Value::Object(arguments)) = outcome.event.get("prompt_arguments") {
                request.arguments = Some(arguments.clone());
            }
            context_texts.extend(outcome.context);
        }
        let mut result = self
            .prompt(
                &served.pool,
                &request,
                Self::provider(&context),
                &forward_of(&context),
            )
            .await?;
        if hooks.has(HookEvent::AfterPromptGet) {
            let mut event = self.event(HookEvent::AfterPromptGet);
            event["prompt_name"] = request.name.clone().into();
            event["prompt_arguments"] =
                Value::Object(request.arguments.clone().unwrap_or_default());
            event["prompt_result"] = serde_json::to_value(&result).unwrap_or_default();
            let outcome = hooks.run(HookEvent::AfterPromptGet, &names, event).await;
            if let Some(blocked) = outcome.blocked {
                return Err(ErrorData::invalid_request(blocked.message(), None));
            }
            if let Some(replaced) = outcome.event.get("prompt_result") {
                result = serde_json::from_value(replaced.clone()).unwrap_or_else(|_| {
                    let text = replaced
                        .as_str()
                        .map_or_else(|| replaced.to_string(), str::to_owned);
                    GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
                });
            }
            context_texts.extend(outcome.context);
        }
        result.messages.extend(
            context_texts
                .into_iter()
                .map(|text| PromptMessage::new_text(Role::User, text)),
        );
        Ok(result.into())
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.ensure_children(&context).await;
        let pool = self.pool();
        let (items, next) = pool::page(
            &pool.resources,
            cursor(request).as_deref(),
            self.inner.page_size,
        );
        let mut result = ListResourcesResult::with_all_items(items);
        result.next_cursor = next;
        Ok(result)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.ensure_children(&context).await;
        let served = self.served();
        let hooks = &served.hooks;
        let mut uri = request.uri.clone();
        let names = [uri.clone()];
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        if hooks.has(HookEvent::BeforeResourceRead) {
            let mut event = self.event(HookEvent::BeforeResourceRead);
            event["uri"] = uri.clone().into();
            let outcome = hooks
                .run(HookEvent::BeforeResourceRead, &names, event)
                .await;
            if let Some(blocked) = outcome.blocked {
                return Err(ErrorData::invalid_request(blocked.message(), None));
            }
            if let Some(Value::String(replaced)) = outcome.event.get("uri") {
                uri = replaced.clone();
            }
        }
        let mut result = self
            .resource(
                &served.pool,
                &uri,
                Self::provider(&context),
                &forward_of(&context),
            )
            .await?;
        if hooks.has(HookEvent::AfterResourceRead) {
            let mut event = self.event(HookEvent::AfterResourceRead);
            event["uri"] = uri.clone().into();
            event["resource_result"] = serde_json::to_value(&result).unwrap_or_default();
            let outcome = hooks.run(HookEvent::AfterResourceRead, &names, event).await;
            if let Some(blocked) = outcome.blocked {
                return Err(ErrorData::invalid_request(blocked.message(), None));
            }
            if let Some(replaced) = outcome.event.get("resource_result") {
                result = serde_json::from_value(replaced.clone()).unwrap_or_else(|_| {
                    let text = replaced
                        .as_str()
                        .map_or_else(|| replaced.to_string(), str::to_owned);
                    ReadResourceResult::new(vec![ResourceContents::text(text, &uri)])
                });
            }
        }
        Ok(result.into())
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListResourceTemplatesResult, ErrorData> {
        self.ensure_children(&context).await;
        let pool = self.pool();
        Ok(rmcp::model::ListResourceTemplatesResult::with_all_items(
            pool.templates.iter().map(|(_, t)| t.clone()).collect(),
        ))
    }

    #[allow(deprecated)]
    async fn set_level(
        &self,
        request: rmcp::model::SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.children().set_log_level(request.level).await;
        Ok(())
    }

    async fn on_roots_list_changed(
        &self,
        _context: rmcp::service::NotificationContext<RoleServer>,
    ) {
        self.children().roots_changed().await;
    }

    async fn list_skills(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListSkillsResult, ErrorData> {
        let pool = self.pool();
        let start = match cursor(request) {
            Some(c) => Bound::Excluded(c),
            None => Bound::Unbounded,
        };
        let mut iter = pool.skills.range((start, Bound::Unbounded));
        let page: Vec<(&String, &SkillEntry)> = iter.by_ref().take(self.inner.page_size).collect();
        let next = match (page.last(), iter.next()) {
            (Some((last, _)), Some(_)) => Some((*last).clone()),
            _ => None,
        };
        let skills = page
            .into_iter()
            .map(|(public, entry)| skill_entry(&pool, public, entry))
            .collect();
        let mut result = ListSkillsResult::with_all_items(skills);
        result.next_cursor = next;
        Ok(result)
    }

    async fn get_skill(
        &self,
        request: GetSkillRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetSkillResult, ErrorData> {
        let pool = self.pool();
        let found = pool
            .skills
            .iter()
            .find(|(_, entry)| entry.uri == request.uri);
        match found {
            Some((public, entry)) => Ok(GetSkillResult::new(skill_entry(&pool, public, entry))),
            None => Err(ErrorData::invalid_params(
                format!("no skill at `{}`", request.uri),
                None,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced_once_and_values_are_not_expanded() {
        let value = |name: &str| match name {
            "x" => Some("{{y}}"),
            "y" => Some("Y"),
            _ => None,
        };
        assert_eq!(
            fill_placeholders("a {{x}} b {{ x }} {{y}} {{z}}", value),
            "a {{y}} b {{y}} Y {{z}}"
        );
    }
}
