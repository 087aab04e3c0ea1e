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

use crate::config::Config;
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
    /// The pool being served. Written only by a reload, which swaps in a new `Arc`; every
    /// request clones the `Arc` once and works on that snapshot.
    pool: RwLock<Arc<Pool>>,
    runner: Runner,
    page_size: usize,
    instructions_budget: usize,
}

impl Server {
    pub fn new(pool: Pool, config: &Config, workspace: PathBuf) -> Self {
        Server {
            inner: Arc::new(Inner {
                pool: RwLock::new(Arc::new(pool)),
                runner: Runner::new(config, workspace),
                page_size: config.page_size(),
                instructions_budget: config.instructions_budget(),
            }),
        }
    }

    /// The pool as it is now.
    pub fn pool(&self) -> Arc<Pool> {
        match self.inner.pool.read() {
            Ok(pool) => pool.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The runner command tools go through.
    pub fn runner(&self) -> &Runner {
        &self.inner.runner
    }

    /// Calls the tool with public name `name`; `None` when there is no such tool. This is
    /// `tools/call` without the protocol, for the CLI and for library users.
    pub async fn call(
        &self,
        name: &str,
        arguments: Option<serde_json::Map<String, serde_json::Value>>,
        cancel: tokio_util::sync::CancellationToken,
    ) -> Option<CallToolResult> {
        let pool = self.pool();
        let entry = pool.tools.get(name)?;
        Some(match entry.route {
            ToolRoute::Command { package, tool } => {
                let active = &pool.packages[package];
                let tool = &active.package.tools[tool];
                self.inner
                    .runner
                    .call(active, tool, name, arguments, cancel)
                    .await
            }
            route => Self::skill_tool(&pool, route, arguments.as_ref()),
        })
    }

    fn provider(cx: &RequestContext<RoleServer>) -> Option<&'static str> {
        cx.peer
            .peer_info()
            .and_then(|info| provider_for_client(&info.client_info.name))
    }

    /// What this pool serves; the skills extension (SEP-2640) only when there are skills.
    fn capabilities(pool: &Pool) -> ServerCapabilities {
        let builder = ServerCapabilities::builder()
            .enable_tools()
            .enable_prompts()
            .enable_resources();
        if pool.skills.is_empty() {
            builder.build()
        } else {
            builder.enable_skills().build()
        }
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
    let declared = |name: &str| prompt.arguments.iter().any(|a| a.name == name);
    Ok(fill_placeholders(&prompt.template, |name| {
        declared(name).then(|| values.get(name).map_or("", String::as_str))
    }))
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
        let provider = provider_for_client(&request.client_info.name);
        let instructions = self
            .pool()
            .system_prompt
            .instructions(provider, self.inner.instructions_budget);
        result.instructions = (!instructions.is_empty()).then_some(instructions);
        Ok(result)
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
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
        match self
            .call(&request.name, request.arguments, context.ct.clone())
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
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
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
        let pool = self.pool();
        let Some(entry) = pool.prompts.get(&request.name) else {
            return Err(ErrorData::invalid_params(
                format!("unknown prompt `{}`", request.name),
                None,
            ));
        };
        let (description, text) = match entry.route {
            PromptRoute::System => (
                entry.item.description.clone(),
                pool.system_prompt.render(Self::provider(&context)),
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
            PromptRoute::Package { package, prompt } => {
                let prompt = &pool.packages[package].package.prompts[prompt];
                let text = render_prompt(&request.name, prompt, request.arguments.as_ref())
                    .map_err(|message| ErrorData::invalid_params(message, None))?;
                (prompt.description.clone(), text)
            }
        };
        let mut result = GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)]);
        result.description = description;
        Ok(result.into())
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
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
        let pool = self.pool();
        let Some(entry) = pool.resources.get(&request.uri) else {
            return Err(ErrorData::resource_not_found(
                format!("unknown resource `{}`", request.uri),
                None,
            ));
        };
        let contents = match entry.route {
            ResourceRoute::SystemPrompt => ResourceContents::text(
                pool.system_prompt.render(Self::provider(&context)),
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
                        ResourceContents::text(text, &request.uri)
                    }
                    Ok(text) => {
                        ResourceContents::blob(BASE64.encode(text.as_bytes()), &request.uri)
                    }
                    Err(err) => ResourceContents::blob(BASE64.encode(err.as_bytes()), &request.uri),
                };
                let mut meta = rmcp::model::MetaObject::new();
                meta.0.insert("digest".into(), digest.into());
                contents.with_mime_type(file.mime).with_meta(meta)
            }
        };
        Ok(ReadResourceResult::new(vec![contents]).into())
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
