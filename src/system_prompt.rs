//! The merged system prompt: the host's rules, then every package's system prompts, each
//! part carrying where it came from.
//!
//! Order: the host's rules (config) first, then package parts by (the part's priority, the
//! package's priority, package id, position in the package). The skills index and child
//! servers' instructions join at the end as those parts of capmux land. A part may be
//! limited to some providers (`claude`, `gemini`, …); with no provider known only
//! unrestricted parts are used.
//!
//! Clients get it three ways: the MCP `instructions` (cut to a budget, since Claude Code
//! keeps about 2 KB), the `system` prompt and the `capmux://system-prompt` resource (whole).

use serde::Serialize;

/// The URI of the merged system prompt as a resource.
pub const RESOURCE_URI: &str = "capmux://system-prompt";

/// The name of the merged system prompt as an MCP prompt.
pub const PROMPT_NAME: &str = "system";

/// What the instructions keep for the other parts when a kept part (the skills index) is
/// long: room for a line and the truncation note.
const REST_RESERVE: usize = 120;

/// One part of the merged system prompt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Part {
    /// Where it came from: `config` or `<package id>: <file or "inline">`.
    pub origin: String,
    /// The heading it is shown under: `Rules` or the package's title.
    pub heading: String,
    pub text: String,
    /// Only for these providers; `None` means every provider.
    pub providers: Option<Vec<String>>,
    /// A shorter form for a tight instructions budget. A part that has one is placed in the
    /// instructions before the others are cut (the skills index: without it, a client that
    /// reads only the instructions never learns of the skills).
    pub brief: Option<String>,
}

impl Part {
    fn applies_to(&self, provider: Option<&str>) -> bool {
        match (&self.providers, provider) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(list), Some(p)) => list.iter().any(|x| x.eq_ignore_ascii_case(p)),
        }
    }
}

/// The merged system prompt, its parts in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SystemPrompt {
    pub parts: Vec<Part>,
}

impl SystemPrompt {
    /// The parts that apply to `provider`.
    pub fn parts_for<'a>(&'a self, provider: Option<&'a str>) -> impl Iterator<Item = &'a Part> {
        self.parts.iter().filter(move |p| p.applies_to(provider))
    }

    /// The whole text for `provider`, a heading each time the origin's heading changes.
    pub fn render(&self, provider: Option<&str>) -> String {
        render(self.parts_for(provider))
    }

    /// The text for MCP `instructions`: the whole text when it fits `budget` bytes. Else the
    /// parts that have a brief form come first, whole if they fit in the budget less a small
    /// reserve for the others, else in brief; the others are cut at a line end with a note
    /// that says where the whole text is.
    pub fn instructions(&self, provider: Option<&str>, budget: usize) -> String {
        let whole = self.render(provider);
        if whole.len() <= budget {
            return whole;
        }
        let rest = render(self.parts_for(provider).filter(|p| p.brief.is_none()));
        // The others keep room for a first line and the truncation note at least.
        let room = budget.saturating_sub(rest.len().min(REST_RESERVE) + 2);
        let kept_parts: Vec<&Part> = self
            .parts_for(provider)
            .filter(|p| p.brief.is_some())
            .collect();
        let mut kept = render(kept_parts.iter().copied());
        if kept.len() > room {
            let briefs: Vec<Part> = kept_parts
                .iter()
                .map(|p| Part {
                    text: p.brief.clone().unwrap_or_default(),
                    ..(*p).clone()
                })
                .collect();
            kept = render(briefs.iter());
            if kept.len() > room {
                kept = cut_to_budget(kept, room);
            }
        }
        if kept.is_empty() {
            return cut_to_budget(rest, budget);
        }
        if rest.is_empty() {
            return kept;
        }
        let rest_room = budget.saturating_sub(kept.len() + 2);
        format!("{}\n\n{kept}", cut_to_budget(rest, rest_room))
    }
}

fn render<'a>(parts: impl Iterator<Item = &'a Part>) -> String {
    {
        let mut out = String::new();
        let mut heading: Option<&str> = None;
        for part in parts {
            if part.text.is_empty() {
                continue;
            }
            if !out.is_empty() {
                out.push_str("\n\n");
            }
            if heading != Some(part.heading.as_str()) {
                out.push_str("# ");
                out.push_str(&part.heading);
                out.push_str("\n\n");
                heading = Some(&part.heading);
            }
            out.push_str(&part.text);
        }
        out
    }
}

fn cut_to_budget(text: String, budget: usize) -> String {
    if text.len() <= budget {
        return text;
    }
    let note = format!(
        "\n\n[truncated: the whole system prompt is the MCP prompt `{PROMPT_NAME}` and the resource {RESOURCE_URI}]"
    );
    let mut cut = budget.saturating_sub(note.len());
    while cut > 0 && !text.is_char_boundary(cut) {
        cut -= 1;
    }
    // Prefer a line end, unless that would throw away more than half of what fits.
    if let Some(line_end) = text[..cut].rfind('\n')
        && line_end >= cut / 2
    {
        cut = line_end;
    }
    let mut out = text[..cut].trim_end().to_owned();
    out.push_str(&note);
    out
}

/// The provider a client is, from its `clientInfo.name`: Claude Code says `claude-code`,
/// Gemini CLI `gemini-cli-mcp-client`, Codex `codex-mcp-client`.
pub fn provider_for_client(client_name: &str) -> Option<&'static str> {
    let name = client_name.to_ascii_lowercase();
    ["claude", "gemini", "codex"]
        .into_iter()
        .find(|provider| name.contains(provider))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(heading: &str, text: &str, providers: Option<&[&str]>) -> Part {
        Part {
            origin: heading.into(),
            heading: heading.into(),
            text: text.into(),
            providers: providers.map(|p| p.iter().map(|s| s.to_string()).collect()),
            brief: None,
        }
    }

    #[test]
    fn provider_parts_appear_only_for_their_provider() {
        let prompt = SystemPrompt {
            parts: vec![
                part("Rules", "be kind", None),
                part("A", "claude only", Some(&["claude"])),
                part("A", "all", None),
            ],
        };
        assert_eq!(prompt.render(None), "# Rules\n\nbe kind\n\n# A\n\nall");
        assert_eq!(
            prompt.render(Some("Claude")),
            "# Rules\n\nbe kind\n\n# A\n\nclaude only\n\nall"
        );
    }

    #[test]
    fn instructions_are_cut_at_a_line_with_a_pointer_to_the_whole() {
        let long: String = (0..200).map(|i| format!("line {i}\n")).collect();
        let prompt = SystemPrompt {
            parts: vec![part("Rules", &long, None)],
        };
        let text = prompt.instructions(None, 300);
        assert!(text.len() <= 300, "{}", text.len());
        assert!(text.ends_with("resource capmux://system-prompt]"));
        assert!(text.contains("\n\n[truncated"));
    }

    #[test]
    fn the_index_is_kept_whole_or_brief_when_instructions_are_cut() {
        let rules: String = (0..100).map(|i| format!("rule {i}\n")).collect();
        let index = Part {
            brief: Some("<available_skills>\n<skill>a</skill>\n</available_skills>".into()),
            ..part(
                "Skills",
                &format!(
                    "<available_skills>\n{}</available_skills>",
                    "<skill>a long one</skill>\n".repeat(10)
                ),
                None,
            )
        };
        let prompt = SystemPrompt {
            parts: vec![part("Rules", &rules, None), index],
        };
        let roomy = prompt.instructions(None, 700);
        assert!(roomy.len() <= 700, "{}", roomy.len());
        assert!(
            roomy.ends_with("<skill>a long one</skill>\n</available_skills>"),
            "{roomy}"
        );
        assert!(roomy.contains("[truncated"));
        let tight = prompt.instructions(None, 300);
        assert!(tight.len() <= 300, "{}", tight.len());
        assert!(
            tight.ends_with("<skill>a</skill>\n</available_skills>"),
            "{tight}"
        );
        assert!(tight.starts_with("# Rules\n\nrule 0"));
    }

    #[test]
    fn clients_map_to_providers() {
        assert_eq!(provider_for_client("claude-code"), Some("claude"));
        assert_eq!(provider_for_client("gemini-cli-mcp-client"), Some("gemini"));
        assert_eq!(provider_for_client("mcp-inspector"), None);
    }
}
