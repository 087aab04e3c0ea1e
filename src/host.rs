//! The host API: what an agent host that is not an MCP client uses. `compose` turns a
//! user's message into the first message of a conversation in the AionUi RFC's layout,
//! after the `beforeMessage` hooks (which may rewrite or cancel it); `after_response` runs
//! the `afterResponse` hooks over the model's reply.
//!
//! The layout: `[Assistant Rules - You MUST follow these instructions]`, the host's rules,
//! the package system prompts for the provider, the skills index, context the hooks added,
//! then `[User Request]` and the message. The same parts come back as data.

use serde::Serialize;
use serde_json::Value;

use crate::hooks::{Blocked, HookEvent};
use crate::server::Server;

/// The name of the `compose` prompt of the MCP front end.
pub const COMPOSE_PROMPT: &str = "compose";

const RULES_HEADER: &str = "[Assistant Rules - You MUST follow these instructions]";
const REQUEST_HEADER: &str = "[User Request]";

/// A composed first message.
#[derive(Debug, Clone, Serialize)]
pub struct Composed {
    /// The whole first message, in the RFC layout.
    pub text: String,
    /// The message after the hooks.
    pub message: String,
    /// Set when a hook cancelled the message; `text` is then empty.
    #[serde(serialize_with = "blocked_json")]
    pub cancelled: Option<Blocked>,
    /// The host's rules, then the packages' system prompts for the provider, each with its
    /// origin.
    pub parts: Vec<ComposedPart>,
    /// Context the `beforeMessage` hooks added.
    pub context: Vec<String>,
    pub provider: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ComposedPart {
    pub origin: String,
    pub text: String,
}

/// A reply after the `afterResponse` hooks.
#[derive(Debug, Clone, Serialize)]
pub struct Responded {
    pub response: String,
    #[serde(serialize_with = "blocked_json")]
    pub blocked: Option<Blocked>,
    pub context: Vec<String>,
}

fn blocked_json<S: serde::Serializer>(blocked: &Option<Blocked>, s: S) -> Result<S::Ok, S::Error> {
    match blocked {
        Some(b) => serde_json::json!({ "package": b.package, "reason": b.reason }).serialize(s),
        None => s.serialize_none(),
    }
}

impl Server {
    /// Composes the first message for `message` in `conversation`, for `provider`.
    pub async fn compose(
        &self,
        message: &str,
        conversation: Option<&str>,
        provider: Option<&str>,
    ) -> Composed {
        let served = self.served();
        let mut event = self.event(HookEvent::BeforeMessage);
        event["prompt"] = message.into();
        if let Some(conversation) = conversation {
            event["session_id"] = conversation.into();
        }
        event["provider"] = provider.map_or(Value::Null, Into::into);
        let outcome = served.hooks.run(HookEvent::BeforeMessage, &[], event).await;
        let message = outcome
            .event
            .get("prompt")
            .and_then(Value::as_str)
            .unwrap_or(message)
            .to_owned();
        let parts: Vec<ComposedPart> = served
            .pool
            .system_prompt
            .parts_for(provider)
            .filter(|p| !p.text.is_empty())
            .map(|p| ComposedPart {
                origin: p.origin.clone(),
                text: p.text.clone(),
            })
            .collect();
        let text = if outcome.blocked.is_some() {
            String::new()
        } else {
            let mut blocks: Vec<&str> = vec![RULES_HEADER];
            blocks.extend(parts.iter().map(|p| p.text.as_str()));
            blocks.extend(outcome.context.iter().map(String::as_str));
            blocks.push(REQUEST_HEADER);
            blocks.push(&message);
            blocks.join("\n\n")
        };
        Composed {
            text,
            message,
            cancelled: outcome.blocked,
            parts,
            context: outcome.context,
            provider: provider.map(str::to_owned),
        }
    }

    /// Runs the `afterResponse` hooks over the model's `response`.
    pub async fn after_response(&self, response: &str, conversation: Option<&str>) -> Responded {
        let served = self.served();
        let mut event = self.event(HookEvent::AfterResponse);
        event["response"] = response.into();
        event["last_assistant_message"] = response.into();
        if let Some(conversation) = conversation {
            event["session_id"] = conversation.into();
        }
        let outcome = served.hooks.run(HookEvent::AfterResponse, &[], event).await;
        let response = match outcome.event.get("response") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => response.to_owned(),
        };
        Responded {
            response,
            blocked: outcome.blocked,
            context: outcome.context,
        }
    }
}
