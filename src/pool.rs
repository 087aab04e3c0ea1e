//! The capability pool: every public name a client sees, and the route behind it.
//!
//! Built from the loaded packages and the user's config in one pass, then read-only: a
//! reload builds a new pool and swaps it in whole. Packages are taken in (priority, id)
//! order; that order decides who keeps a contested namespace or public name (see `names`).
//! The pool prebuilds the MCP shapes (`rmcp::model::Tool`, …) so that listing is a copy.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rmcp::model as mcp;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::child::Catalog;
use crate::config::Config;
use crate::diagnostic::{Diagnostic, Severity};
use crate::names::{self, Names, QualifiedName};
use crate::package::skill::Skill;
use crate::package::{Format, HookHandler, McpServer, Package, Permission, Source};
use crate::skills;
use crate::system_prompt::{self, Part, SystemPrompt};

/// A package as served: the package plus what the user decided about it.
#[derive(Debug)]
pub struct Active {
    pub package: Package,
    /// The namespace its items are served under.
    pub namespace: String,
    /// What the user granted (bundled packages hold what they declare).
    pub grants: BTreeSet<Permission>,
    /// Setting values: the user's, else the declared defaults.
    pub settings: Map<String, Value>,
    /// Its `${pluginData}` folder; the runner creates it before a tool runs.
    pub data_dir: PathBuf,
    /// `false` when the user disabled it: loaded and listed, nothing served.
    pub enabled: bool,
}

impl Active {
    /// The values its `${...}` variables expand to, with `workspace` as `${workspace}`.
    pub fn vars<'a>(&'a self, workspace: &'a std::path::Path) -> crate::expand::Vars<'a> {
        crate::expand::Vars {
            plugin_root: &self.package.root,
            plugin_data: &self.data_dir,
            workspace,
            settings: &self.settings,
        }
    }

    /// The package's own variables for its processes (`CLAUDE_PLUGIN_ROOT`, a Gemini
    /// setting's `envVar`, …), expanded; one that cannot be (an unset setting) is left out.
    pub fn env(&self, workspace: &std::path::Path) -> Vec<(String, String)> {
        let vars = self.vars(workspace);
        self.package
            .env
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), crate::expand::expand(v, &vars).ok()?)))
            .collect()
    }

    /// Whether the package both declares and holds `permission`.
    pub fn holds(&self, permission: Permission) -> bool {
        self.package.permissions.contains(&permission) && self.grants.contains(&permission)
    }
}

/// What stands behind a public tool name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolRoute {
    /// `packages[package].package.tools[tool]`, run as a command.
    Command { package: usize, tool: usize },
    /// capmux's own: load a skill by name.
    LoadSkill,
    /// capmux's own: read one file of a skill.
    ReadSkillFile,
    /// `catalogs[server].tools[tool]` of a child server.
    Child { server: usize, tool: usize },
}

/// What stands behind a public prompt name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptRoute {
    Package {
        package: usize,
        prompt: usize,
    },
    /// The merged system prompt.
    System,
    /// A user-invocable skill: its body.
    Skill {
        package: usize,
        skill: usize,
    },
    /// The host API's first message: rules, system prompts, skills index, then the message.
    Compose,
    /// `catalogs[server].prompts[prompt]` of a child server.
    Child {
        server: usize,
        prompt: usize,
    },
}

/// What stands behind a resource URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceRoute {
    /// The merged system prompt.
    SystemPrompt,
    /// A file of a skill.
    SkillFile {
        package: usize,
        skill: usize,
        file: usize,
    },
    /// `catalogs[server].resources[resource]` of a child server.
    Child { server: usize, resource: usize },
}

/// A child server a package declares and may run, with the namespace its items are served
/// under.
#[derive(Debug, Clone)]
pub struct ServerRef {
    pub package: usize,
    pub server: usize,
    pub namespace: String,
    /// How people see it: `<namespace>` for a servers config entry, else
    /// `<package namespace>/<server>`.
    pub label: String,
}

/// A skill as served: where it is and the URIs of its folder and entry file.
#[derive(Debug, Clone)]
pub struct SkillEntry {
    pub package: usize,
    pub skill: usize,
    /// `skill://<namespace>/<skill>/`
    pub base_uri: String,
    /// The URI of its SKILL.md.
    pub uri: String,
}

/// One listed item: its MCP shape and its route.
#[derive(Debug, Clone)]
pub struct Entry<T, R> {
    pub item: T,
    pub route: R,
}

/// Every public name and its route; immutable once built. A child server's catalogue change
/// makes a new pool from the one without children ([`Pool::with_children`]).
#[derive(Debug, Default, Clone)]
pub struct Pool {
    /// Packages in (priority, id) order.
    pub packages: Arc<Vec<Active>>,
    /// The child servers that may run, in (package, position) order: the order in which
    /// their items claim names.
    pub servers: Vec<ServerRef>,
    /// What each server serves now (`None`: not running), aligned with `servers`.
    pub catalogs: Vec<Option<Arc<Catalog>>>,
    /// The resource templates of the running children: (server, template).
    pub templates: Vec<(usize, mcp::ResourceTemplate)>,
    pub tools: BTreeMap<String, Entry<mcp::Tool, ToolRoute>>,
    pub prompts: BTreeMap<String, Entry<mcp::Prompt, PromptRoute>>,
    pub resources: BTreeMap<String, Entry<mcp::Resource, ResourceRoute>>,
    /// Skills by public name.
    pub skills: BTreeMap<String, SkillEntry>,
    pub system_prompt: SystemPrompt,
    /// The hooks that may run, as (package, hook) indexes in the order they run: by package
    /// priority, package id, position. Hooks whose package lacks the permission are left out.
    pub hooks: Vec<(usize, usize)>,
    /// What went wrong while merging (collisions, settings); the loader's come separately.
    pub diagnostics: Vec<Diagnostic>,
    /// Public tool names handed out, with the reverse map.
    pub tool_names: Names,
    /// Public prompt names; MCP keeps tools and prompts apart, so a tool and a prompt of
    /// one package may share a name.
    pub prompt_names: Names,
    /// Public skill names (also the names of their prompts).
    pub skill_names: Names,
}

/// A page of a sorted map: the items after `cursor`, and the cursor of the next page.
pub fn page<T: Clone, R>(
    map: &BTreeMap<String, Entry<T, R>>,
    cursor: Option<&str>,
    size: usize,
) -> (Vec<T>, Option<String>) {
    let start = match cursor {
        Some(c) => Bound::Excluded(c.to_owned()),
        None => Bound::Unbounded,
    };
    let mut iter = map.range((start, Bound::Unbounded));
    let items: Vec<(&String, &Entry<T, R>)> = iter.by_ref().take(size).collect();
    let next = match (items.last(), iter.next()) {
        (Some((last, _)), Some(_)) => Some((*last).clone()),
        _ => None,
    };
    (
        items.into_iter().map(|(_, e)| e.item.clone()).collect(),
        next,
    )
}

impl Pool {
    /// Merges `packages` under `config`.
    pub fn build(mut packages: Vec<Package>, config: &Config) -> Pool {
        packages.sort_by(|a, b| (a.priority, &a.id).cmp(&(b.priority, &b.id)));
        let mut pool = Pool {
            tool_names: Names::new(config.name_budget()),
            prompt_names: Names::new(config.name_budget()),
            skill_names: Names::new(config.name_budget()),
            ..Pool::default()
        };
        let data_root = config.data_dir();
        let mut namespaces: BTreeMap<String, String> = BTreeMap::new();
        let mut actives = Vec::new();
        let mut server_namespaces: Vec<Vec<Option<String>>> = Vec::new();
        for package in packages {
            let alias = config
                .package(&package.id)
                .and_then(|u| u.namespace.clone());
            let (namespace, per_server) = if package.format == Format::Servers {
                // Each entry of a servers config is served under its own name; the file's
                // own namespace only names its data folder.
                let per_server = package
                    .mcp_servers
                    .iter()
                    .map(|server| {
                        let ns =
                            pool.namespace(&server.name, &package.root, None, config, &namespaces);
                        if let Some(ns) = &ns {
                            namespaces
                                .insert(ns.clone(), format!("{}/{}", package.id, server.name));
                        }
                        ns
                    })
                    .collect();
                let namespace =
                    names::namespace_for_package(&package.id).unwrap_or_else(|_| "servers".into());
                (namespace, per_server)
            } else {
                let Some(namespace) =
                    pool.namespace(&package.id, &package.root, alias, config, &namespaces)
                else {
                    continue;
                };
                namespaces.insert(namespace.clone(), package.id.clone());
                (namespace, Vec::new())
            };
            server_namespaces.push(per_server);
            let user = config.package(&package.id);
            // Bundled packages and the user's own servers config hold what they declare.
            let grants = if package.source == Source::Bundled || package.format == Format::Servers {
                package.permissions.clone()
            } else {
                user.map(|u| {
                    u.grants
                        .iter()
                        .filter_map(|g| Permission::parse(g))
                        .collect()
                })
                .unwrap_or_default()
            };
            let settings = pool.settings(&package, config);
            let data_dir = data_root.join(&namespace);
            let enabled = user.and_then(|u| u.enabled).unwrap_or(true);
            actives.push(Active {
                package,
                namespace,
                grants,
                settings,
                data_dir,
                enabled,
            });
        }
        pool.packages = Arc::new(actives);
        pool.register_servers(&server_namespaces);
        pool.register_items();
        pool.register_skills();
        pool.register_hooks();
        pool.system_prompt = system_prompt_of(&pool.packages, config, &mut pool.diagnostics);
        if let Some(index) = pool.skills_index() {
            pool.system_prompt.parts.push(index);
        }
        pool.register_own_items();
        pool
    }

    /// The namespace of `package`: the user's alias, else derived from its id; a taken or
    /// reserved one gets a suffix from the id's hash, with a warning.
    fn namespace(
        &mut self,
        id: &str,
        root: &Path,
        alias: Option<String>,
        config: &Config,
        taken: &BTreeMap<String, String>,
    ) -> Option<String> {
        let base = match alias {
            Some(alias) => alias,
            None => match names::namespace_for_package(id) {
                Ok(ns) => ns,
                Err(err) => {
                    self.diagnostics.push(
                        Diagnostic::error(
                            root,
                            format!(
                                "no namespace can be made from the package id: {err}; set `namespace` under [packages.\"{}\"] in {}",
                                id,
                                config.location()
                            ),
                        )
                        .in_package(id.to_owned()),
                    );
                    return None;
                }
            },
        };
        let holder = if base == names::RESERVED_NAMESPACE {
            Some("capmux itself")
        } else {
            taken.get(&base).map(String::as_str)
        };
        let Some(holder) = holder else {
            return Some(base);
        };
        // The suffix comes from the id's hash, so it does not depend on the other packages;
        // in the unlikely case it is taken too, a longer piece of the hash is used.
        let digest: String = Sha256::digest(id.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let renamed = (6..=digest.len())
            .step_by(2)
            .map(|len| format!("{base}-{}", &digest[..len]))
            .find(|candidate| !taken.contains_key(candidate))
            .unwrap_or_else(|| format!("{base}-{digest}"));
        self.diagnostics.push(
            Diagnostic::warning(
                root,
                format!(
                    "namespace `{base}` is taken by {holder}; this package's items are served under `{renamed}` (set `namespace` under [packages.\"{}\"] in {} to choose one)",
                    id,
                    config.location()
                ),
            )
            .in_package(id.to_owned()),
        );
        Some(renamed)
    }

    /// Setting values for `package`: the user's, checked against the declared type, else
    /// the default; unknown and ill-typed values are reported.
    fn settings(&mut self, package: &Package, config: &Config) -> Map<String, Value> {
        let mut values = Map::new();
        let user = config.package(&package.id).map(|u| &u.settings);
        let report = |pool: &mut Pool, message: String| {
            pool.diagnostics.push(
                Diagnostic::warning(config.path.clone().unwrap_or_default(), message)
                    .in_package(package.id.clone()),
            );
        };
        if let Some(user) = user {
            for key in user.keys() {
                if !package.settings.contains_key(key) {
                    report(
                        self,
                        format!(
                            "setting `{key}` is not declared by package `{}`; ignored",
                            package.id
                        ),
                    );
                }
            }
        }
        for (key, setting) in &package.settings {
            let value = user.and_then(|u| u.get(key)).cloned();
            match value {
                Some(v) if setting.kind.accepts(&v, &setting.options) => {
                    values.insert(key.clone(), v);
                }
                Some(_) => report(
                    self,
                    format!(
                        "setting `{key}` of package `{}` has the wrong type (expected {:?}); ignored",
                        package.id, setting.kind
                    ),
                ),
                None => {
                    if let Some(default) = &setting.default {
                        values.insert(key.clone(), default.clone());
                    }
                }
            }
        }
        values
    }

    fn register_items(&mut self) {
        for (p, active) in self.packages.iter().enumerate() {
            if !active.enabled {
                continue;
            }
            let package = &active.package;
            for (t, tool) in package.tools.iter().enumerate() {
                let qualified = QualifiedName::new(&active.namespace, &tool.name);
                let Some(public) = claim(
                    &mut self.tool_names,
                    &mut self.diagnostics,
                    active,
                    qualified,
                    "tool",
                ) else {
                    continue;
                };
                let mut item = mcp::Tool::new_with_raw(
                    public.clone(),
                    tool.description.clone().map(Into::into),
                    tool.input_schema.clone(),
                );
                item.title = tool.title.clone();
                item.annotations = tool
                    .annotations
                    .as_ref()
                    .and_then(|a| serde_json::from_value(a.clone()).ok());
                self.tools.insert(
                    public,
                    Entry {
                        item,
                        route: ToolRoute::Command {
                            package: p,
                            tool: t,
                        },
                    },
                );
            }
            for (i, prompt) in package.prompts.iter().enumerate() {
                let qualified = QualifiedName::new(&active.namespace, &prompt.name);
                let Some(public) = claim(
                    &mut self.prompt_names,
                    &mut self.diagnostics,
                    active,
                    qualified,
                    "prompt",
                ) else {
                    continue;
                };
                if prompt.inline && !active.holds(Permission::ShellExecute) {
                    self.diagnostics.push(
                        Diagnostic::warning(
                            &active.package.root,
                            format!(
                                "prompt `{public}` runs inline commands only when the package is granted `shell:execute` (and reads files with `fs:read`); until then they stay text"
                            ),
                        )
                        .in_package(active.package.id.clone()),
                    );
                }
                let arguments: Vec<mcp::PromptArgument> = prompt
                    .arguments
                    .iter()
                    .map(|a| {
                        let mut arg = mcp::PromptArgument::new(&a.name).with_required(a.required);
                        if let Some(d) = &a.description {
                            arg = arg.with_description(d);
                        }
                        arg
                    })
                    .collect();
                let mut item = mcp::Prompt::new(
                    public.clone(),
                    prompt.description.clone(),
                    (!arguments.is_empty()).then_some(arguments),
                );
                item.title = prompt.title.clone();
                self.prompts.insert(
                    public,
                    Entry {
                        item,
                        route: PromptRoute::Package {
                            package: p,
                            prompt: i,
                        },
                    },
                );
            }
        }
    }

    /// capmux's own items: the merged system prompt as a prompt and as a resource. Their
    /// names hold no `__`, so no package item can take them.
    fn register_own_items(&mut self) {
        let item = mcp::Prompt::new(
            system_prompt::PROMPT_NAME,
            Some(
                "The merged system prompt of every enabled package: rules, package prompts, skills index",
            ),
            None,
        );
        self.prompts.insert(
            system_prompt::PROMPT_NAME.into(),
            Entry {
                item,
                route: PromptRoute::System,
            },
        );
        let compose = mcp::Prompt::new(
            crate::host::COMPOSE_PROMPT,
            Some(
                "The first message of a conversation in the AionUi RFC layout: the rules, every package's system prompts and the skills index, then the message, after the beforeMessage hooks",
            ),
            Some(vec![
                mcp::PromptArgument::new("message")
                    .with_required(true)
                    .with_description("the user's message"),
                mcp::PromptArgument::new("provider")
                    .with_required(false)
                    .with_description(
                        "claude, gemini, codex, …: keeps the system prompts meant for it",
                    ),
            ]),
        );
        self.prompts.insert(
            crate::host::COMPOSE_PROMPT.into(),
            Entry {
                item: compose,
                route: PromptRoute::Compose,
            },
        );
        let text_len = self.system_prompt.render(None).len() as u64;
        let resource = mcp::Resource::new(system_prompt::RESOURCE_URI, "system-prompt")
            .with_title("Merged system prompt")
            .with_description("The merged system prompt of every enabled package, in full")
            .with_mime_type("text/markdown")
            .with_size(text_len);
        self.resources.insert(
            system_prompt::RESOURCE_URI.into(),
            Entry {
                item: resource,
                route: ResourceRoute::SystemPrompt,
            },
        );
    }

    /// Every skill's files as resources, a prompt per user-invocable skill, and the two
    /// skill tools when there is any skill.
    fn register_skills(&mut self) {
        for (p, active) in self.packages.iter().enumerate() {
            if !active.enabled {
                continue;
            }
            for (s, skill) in active.package.skills.iter().enumerate() {
                let qualified = QualifiedName::new(&active.namespace, &skill.name);
                let Some(public) = claim(
                    &mut self.skill_names,
                    &mut self.diagnostics,
                    active,
                    qualified.clone(),
                    "skill",
                ) else {
                    continue;
                };
                let base_uri = skills::uri(&active.namespace, &skill.name, "");
                let entry_uri = skills::uri(&active.namespace, &skill.name, skill.entry());
                for (f, file) in skill.files.iter().enumerate() {
                    let uri = skills::uri(&active.namespace, &skill.name, &file.path);
                    let mut meta = mcp::MetaObject::new();
                    meta.0.insert("digest".into(), file.digest.clone().into());
                    let mut resource = mcp::Resource::new(&uri, format!("{public}/{}", file.path))
                        .with_mime_type(file.mime)
                        .with_size(file.size)
                        .with_meta(meta);
                    if uri == entry_uri {
                        resource = resource
                            .with_title(public.clone())
                            .with_description(skill.description.clone());
                    }
                    self.resources.insert(
                        uri,
                        Entry {
                            item: resource,
                            route: ResourceRoute::SkillFile {
                                package: p,
                                skill: s,
                                file: f,
                            },
                        },
                    );
                }
                if skill.user_invocable
                    && claim(
                        &mut self.prompt_names,
                        &mut self.diagnostics,
                        active,
                        qualified,
                        "skill prompt",
                    )
                    .is_some()
                {
                    let argument =
                        mcp::PromptArgument::new("arguments")
                            .with_required(false)
                            .with_description(skill.argument_hint.clone().unwrap_or_else(|| {
                                "what to do with the skill ($ARGUMENTS)".into()
                            }));
                    let item = mcp::Prompt::new(
                        public.clone(),
                        Some(skill.description.clone()),
                        Some(vec![argument]),
                    );
                    self.prompts.insert(
                        public.clone(),
                        Entry {
                            item,
                            route: PromptRoute::Skill {
                                package: p,
                                skill: s,
                            },
                        },
                    );
                }
                self.skills.insert(
                    public,
                    SkillEntry {
                        package: p,
                        skill: s,
                        base_uri,
                        uri: entry_uri,
                    },
                );
            }
        }
        if self.skills.is_empty() {
            return;
        }
        let names: Vec<String> = self.skills.keys().cloned().collect();
        let own = |item: &str| {
            names::format(
                &QualifiedName::new(names::RESERVED_NAMESPACE, item),
                usize::MAX,
            )
        };
        let load = own(skills::LOAD_TOOL);
        let read = own(skills::READ_TOOL);
        self.tools.insert(
            load.clone(),
            Entry {
                item: skills::load_tool(&load, &names),
                route: ToolRoute::LoadSkill,
            },
        );
        self.tools.insert(
            read.clone(),
            Entry {
                item: skills::read_tool(&read),
                route: ToolRoute::ReadSkillFile,
            },
        );
    }

    /// Admits each hook whose package declares and holds what it needs (`shell:execute` for a
    /// command, `network:fetch` for a URL) and whose matcher is valid; reports the others.
    fn register_hooks(&mut self) {
        for (p, active) in self.packages.iter().enumerate() {
            if !active.enabled {
                continue;
            }
            for (h, hook) in active.package.hooks.iter().enumerate() {
                let needs = match hook.handler {
                    HookHandler::Command { .. } => Permission::ShellExecute,
                    HookHandler::Http { .. } => Permission::NetworkFetch,
                };
                let event = crate::hooks::capmux_name(hook.event);
                let problem =
                    if let Err(err) = crate::hooks::Matcher::parse(hook.matcher.as_deref()) {
                        Some(err)
                    } else if !active.holds(needs) {
                        let how = if active.package.permissions.contains(&needs) {
                            "has not been granted"
                        } else {
                            "does not declare"
                        };
                        Some(format!(
                            "the package {how} `{needs}`, which a {} hook needs",
                            match hook.handler {
                                HookHandler::Command { .. } => "command",
                                HookHandler::Http { .. } => "URL",
                            }
                        ))
                    } else {
                        None
                    };
                match problem {
                    Some(problem) => {
                        // A missing grant is the user's to give: a warning. A matcher that
                        // cannot work or a permission never declared is the package's error.
                        let granted_later =
                            active.package.permissions.contains(&needs) && !active.holds(needs);
                        let severity = if granted_later {
                            Severity::Warning
                        } else {
                            Severity::Error
                        };
                        self.diagnostics.push(
                            Diagnostic::new(
                                severity,
                                &active.package.root,
                                format!("{event} hook #{h} is not run: {problem}"),
                            )
                            .in_package(active.package.id.clone()),
                        );
                    }
                    None => self.hooks.push((p, h)),
                }
            }
        }
    }

    /// The skills index as the last part of the system prompt.
    fn skills_index(&self) -> Option<Part> {
        if self.skills.is_empty() {
            return None;
        }
        let listed: Vec<(String, String, String)> = self
            .skills
            .iter()
            .map(|(public, entry)| {
                (
                    public.clone(),
                    self.skill(entry).description.clone(),
                    entry.uri.clone(),
                )
            })
            .collect();
        let load_tool = names::format(
            &QualifiedName::new(names::RESERVED_NAMESPACE, skills::LOAD_TOOL),
            usize::MAX,
        );
        Some(Part {
            origin: "capmux: skills index".into(),
            heading: "Skills".into(),
            text: skills::index_text(&listed, &load_tool, true),
            brief: Some(skills::index_text(&listed, &load_tool, false)),
            providers: None,
        })
    }

    /// The skill behind an entry.
    pub fn skill(&self, entry: &SkillEntry) -> &Skill {
        &self.packages[entry.package].package.skills[entry.skill]
    }

    /// The package and tool behind a public name of a command tool.
    pub fn tool(&self, public: &str) -> Option<(&Active, &crate::package::Tool)> {
        match self.tools.get(public)?.route {
            ToolRoute::Command { package, tool } => {
                let active = &self.packages[package];
                Some((active, &active.package.tools[tool]))
            }
            ToolRoute::LoadSkill | ToolRoute::ReadSkillFile | ToolRoute::Child { .. } => None,
        }
    }

    /// Admits each child server whose package holds `mcp:server`; reports the others.
    /// `per_server` holds the namespaces of servers config entries, by package.
    fn register_servers(&mut self, per_server: &[Vec<Option<String>>]) {
        let packages = self.packages.clone();
        for (p, active) in packages.iter().enumerate() {
            if !active.enabled || active.package.mcp_servers.is_empty() {
                continue;
            }
            let needs = Permission::McpServer;
            if !active.holds(needs) {
                let declared = active.package.permissions.contains(&needs);
                let (severity, how) = if declared {
                    (Severity::Warning, "has not been granted")
                } else {
                    (Severity::Error, "does not declare")
                };
                self.diagnostics.push(
                    Diagnostic::new(
                        severity,
                        &active.package.root,
                        format!(
                            "its {} MCP server(s) are not started: the package {how} `{needs}`",
                            active.package.mcp_servers.len()
                        ),
                    )
                    .in_package(active.package.id.clone()),
                );
                continue;
            }
            for (s, server) in active.package.mcp_servers.iter().enumerate() {
                let (namespace, label) = if active.package.format == Format::Servers {
                    match per_server.get(p).and_then(|v| v.get(s)).cloned().flatten() {
                        Some(ns) => (ns.clone(), ns),
                        None => continue,
                    }
                } else {
                    (
                        active.namespace.clone(),
                        format!("{}/{}", active.namespace, server.name),
                    )
                };
                self.servers.push(ServerRef {
                    package: p,
                    server: s,
                    namespace,
                    label,
                });
            }
        }
        self.catalogs = vec![None; self.servers.len()];
    }

    /// The server a [`ServerRef`] stands for.
    pub fn server(&self, index: usize) -> (&ServerRef, &McpServer) {
        let server = &self.servers[index];
        (
            server,
            &self.packages[server.package].package.mcp_servers[server.server],
        )
    }

    /// This pool, built without children, with the items of the children's `catalogs`
    /// (aligned with `servers`). Children claim names after every package item, in server
    /// order, so a child never takes a name from a package and a restart gives the same names.
    /// When two servers of one package offer the same item, the later one's is served as
    /// `<ns>__<server>__<item>`. A resource URI two servers offer is served by the earlier
    /// one, with a warning.
    pub fn with_children(&self, catalogs: &[Option<Arc<Catalog>>]) -> Pool {
        let mut pool = self.clone();
        pool.catalogs = self
            .servers
            .iter()
            .enumerate()
            .map(|(i, _)| catalogs.get(i).cloned().flatten())
            .collect();
        for i in 0..pool.servers.len() {
            let Some(catalog) = pool.catalogs[i].clone() else {
                continue;
            };
            let server = pool.servers[i].clone();
            let (root, package_id) = {
                let active = &pool.packages[server.package];
                (active.package.root.clone(), active.package.id.clone())
            };
            let spec = &pool.packages[server.package].package.mcp_servers[server.server];
            let server_name = spec.name.clone();
            let include = spec.include_tools.clone();
            let exclude = spec.exclude_tools.clone();
            let claim_child =
                |names: &mut Names, diagnostics: &mut Vec<Diagnostic>, item: &str, what: &str| {
                    let Ok((item, _)) = names::sanitize_item(item) else {
                        diagnostics.push(
                            Diagnostic::warning(
                                &root,
                                format!(
                                    "server `{}`: {what} `{item}` has no usable name; not served",
                                    server.label
                                ),
                            )
                            .in_package(package_id.clone()),
                        );
                        return None;
                    };
                    match names.insert(QualifiedName::new(&server.namespace, &item)) {
                        Ok(public) => Some(public),
                        Err(first) => match names.insert(QualifiedName::new(
                            &server.namespace,
                            format!("{server_name}{}{item}", names::SEPARATOR),
                        )) {
                            Ok(public) => Some(public),
                            Err(_) => {
                                diagnostics.push(Diagnostic::error(&root, format!(
                                "server `{}`: {what} `{item}` is not served: `{}` is taken by `{}`",
                                server.label, first.public, first.taken_by
                            )).in_package(package_id.clone()));
                                None
                            }
                        },
                    }
                };
            let listed = |name: &str| {
                include
                    .as_ref()
                    .is_none_or(|only| only.iter().any(|n| n == name))
                    && !exclude.iter().any(|n| n == name)
            };
            for (t, tool) in catalog.tools.iter().enumerate() {
                if !listed(&tool.name) {
                    continue;
                }
                let Some(public) = claim_child(
                    &mut pool.tool_names,
                    &mut pool.diagnostics,
                    &tool.name,
                    "tool",
                ) else {
                    continue;
                };
                let mut item = tool.clone();
                item.name = public.clone().into();
                pool.tools.insert(
                    public,
                    Entry {
                        item,
                        route: ToolRoute::Child { server: i, tool: t },
                    },
                );
            }
            for (n, prompt) in catalog.prompts.iter().enumerate() {
                let Some(public) = claim_child(
                    &mut pool.prompt_names,
                    &mut pool.diagnostics,
                    &prompt.name,
                    "prompt",
                ) else {
                    continue;
                };
                let mut item = prompt.clone();
                item.name = public.clone();
                pool.prompts.insert(
                    public,
                    Entry {
                        item,
                        route: PromptRoute::Child {
                            server: i,
                            prompt: n,
                        },
                    },
                );
            }
            for (r, resource) in catalog.resources.iter().enumerate() {
                if let Some(taken) = pool.resources.get(&resource.uri) {
                    let holder = match taken.route {
                        ResourceRoute::Child { server, .. } => {
                            format!("server `{}`", pool.servers[server].label)
                        }
                        _ => "capmux".to_owned(),
                    };
                    pool.diagnostics.push(Diagnostic::warning(&root, format!(
                        "server `{}`: resource `{}` is also offered by {holder}, which serves it",
                        server.label, resource.uri
                    )).in_package(package_id.clone()));
                    continue;
                }
                pool.resources.insert(
                    resource.uri.clone(),
                    Entry {
                        item: resource.clone(),
                        route: ResourceRoute::Child {
                            server: i,
                            resource: r,
                        },
                    },
                );
            }
            pool.templates
                .extend(catalog.templates.iter().map(|t| (i, t.clone())));
            if let Some(text) = catalog
                .instructions
                .as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
            {
                pool.system_prompt.parts.push(Part {
                    origin: format!("{package_id}: server {server_name}"),
                    heading: format!("Server {}", server.label),
                    text: text.to_owned(),
                    providers: None,
                    brief: None,
                });
            }
        }
        pool
    }

    /// The running child server whose resource templates match `uri`, first by server order.
    pub fn template_for(&self, uri: &str) -> Option<usize> {
        self.templates
            .iter()
            .find(|(_, t)| crate::child::template_matches(&t.uri_template, uri))
            .map(|(server, _)| *server)
    }

    /// Every diagnostic of the merge, for `list` and `check`.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }
}

/// Claims a public name for an item, reporting a collision as an error.
fn claim(
    names: &mut Names,
    diagnostics: &mut Vec<Diagnostic>,
    active: &Active,
    qualified: QualifiedName,
    what: &str,
) -> Option<String> {
    let item = qualified.item.clone();
    match names.insert(qualified) {
        Ok(public) => Some(public),
        Err(collision) => {
            diagnostics.push(
                Diagnostic::error(
                    &active.package.root,
                    format!(
                        "{what} `{item}` is not served: {collision}; rename it or set another `namespace` for one of the packages"
                    ),
                )
                .in_package(active.package.id.clone()),
            );
            None
        }
    }
}

/// The merged system prompt of the enabled packages, after the host's rules.
fn system_prompt_of(
    packages: &[Active],
    config: &Config,
    diagnostics: &mut Vec<Diagnostic>,
) -> SystemPrompt {
    let mut parts: Vec<Part> = config
        .rules
        .iter()
        .map(|rule| Part {
            origin: "config: rules".into(),
            heading: "Rules".into(),
            text: rule.trim().to_owned(),
            providers: None,
            brief: None,
        })
        .collect();
    if let Some(file) = &config.rules_file {
        let path = config.resolve(file);
        match std::fs::read_to_string(&path) {
            Ok(text) => parts.push(Part {
                origin: format!("config: {}", path.display()),
                heading: "Rules".into(),
                text: text.trim().to_owned(),
                providers: None,
                brief: None,
            }),
            Err(err) => diagnostics.push(Diagnostic::error(
                &path,
                format!("cannot read rules_file: {err}"),
            )),
        }
    }
    // Ordered by the part's own priority, then the package's, then id and position: a
    // package's priority decides between parts that rank the same.
    type Rank<'a> = (i64, i64, &'a str, usize);
    let mut package_parts: Vec<(Rank<'_>, Part)> = Vec::new();
    for active in packages.iter().filter(|a| a.enabled) {
        let package = &active.package;
        for (position, prompt) in package.system_prompts.iter().enumerate() {
            let from = prompt.file.as_ref().map_or_else(
                || format!("capmux.systemPrompts[{position}]"),
                |f| f.display().to_string(),
            );
            package_parts.push((
                (prompt.priority, package.priority, &package.id, position),
                Part {
                    origin: format!("{}: {from}", package.id),
                    heading: package.title().to_owned(),
                    text: prompt.content.clone(),
                    providers: prompt.providers.clone(),
                    brief: None,
                },
            ));
        }
    }
    package_parts.sort_by(|a, b| a.0.cmp(&b.0));
    parts.extend(package_parts.into_iter().map(|(_, part)| part));
    SystemPrompt { parts }
}
