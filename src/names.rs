//! Public names: the one place that formats, parses and shortens what clients see.
//!
//! Every item a client sees is `<namespace>__<item>`. A namespace never contains `__` and
//! never starts or ends with `_`, so the first `__` of a public name is always the separator
//! and an item name may itself contain `__` (a child server's tool under its server, later).
//! Names use `[A-Za-z0-9_-]` and start with a letter: the strictest rule among the clients
//! (Claude's API and Gemini's both accept it). A name longer than the budget is cut and ends
//! in `_` plus eight hex digits of the SHA-256 of the full name, so it is deterministic and
//! stable across runs; [`Names`] keeps the reverse map for those.
//!
//! The collision rule, in one place: items are registered in package order, then in the
//! order the package lists them; the first item to claim a public name keeps it, and a later
//! one is refused with [`Collision`], which the pool turns into an error diagnostic naming
//! both. Nothing is ever renamed silently.

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};

/// Separator between namespace and item.
pub const SEPARATOR: &str = "__";

/// Longest public name by default: 64 (what Claude's API accepts) minus the 13 bytes of the
/// prefix Claude Code adds (`mcp__capmux__`).
pub const DEFAULT_BUDGET: usize = 64 - "mcp__capmux__".len();

/// The shortest budget that still leaves room for a namespace, the separator and the hash.
pub const MIN_BUDGET: usize = 24;

/// The namespace capmux keeps for its own items; a package that asks for it is renamed.
pub const RESERVED_NAMESPACE: &str = "capmux";

const HASH_LEN: usize = 8;

/// A name as a package sees it: its namespace and the item's own name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QualifiedName {
    pub namespace: String,
    pub item: String,
}

impl QualifiedName {
    pub fn new(namespace: impl Into<String>, item: impl Into<String>) -> Self {
        QualifiedName {
            namespace: namespace.into(),
            item: item.into(),
        }
    }
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{SEPARATOR}{}", self.namespace, self.item)
    }
}

/// Why a raw name could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("`{0}` has no ASCII letter or digit to build a name from")]
    Unusable(String),
}

/// A public name that is already taken by an earlier item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("public name `{public}` is already taken by `{taken_by}`")]
pub struct Collision {
    pub public: String,
    pub taken_by: QualifiedName,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// True when `name` is a valid public name of any length: `^[A-Za-z][A-Za-z0-9_-]*$`.
pub fn is_valid(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic()) && chars.all(is_name_char)
}

/// The namespace a package id gets by default: the npm scope and the `capmux-plugin-` /
/// `aionui-plugin-` prefixes dropped, then sanitized.
///
/// ```
/// assert_eq!(capmux::names::namespace_for_package("@acme/capmux-plugin-jira").as_deref(), Ok("jira"));
/// ```
pub fn namespace_for_package(id: &str) -> Result<String, NameError> {
    let unscoped = match id.strip_prefix('@') {
        Some(rest) => rest.split_once('/').map_or(rest, |(_, name)| name),
        None => id,
    };
    let short = ["capmux-plugin-", "aionui-plugin-", "capmux-"]
        .iter()
        .find_map(|prefix| {
            unscoped
                .strip_prefix(prefix)
                .filter(|rest| !rest.is_empty())
        })
        .unwrap_or(unscoped);
    sanitize_namespace(short)
}

/// Makes a namespace out of `raw`: characters outside `[A-Za-z0-9_-]` become `-`, runs of
/// `_` become one, leading characters up to the first letter and trailing `_`/`-` go.
pub fn sanitize_namespace(raw: &str) -> Result<String, NameError> {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = if is_name_char(c) { c } else { '-' };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        if out.is_empty() && !c.is_ascii_alphabetic() {
            continue;
        }
        out.push(c);
    }
    let out = out.trim_end_matches(['_', '-']).to_owned();
    if out.is_empty() {
        return Err(NameError::Unusable(raw.to_owned()));
    }
    Ok(out)
}

/// Makes an item name out of `raw`: characters outside `[A-Za-z0-9_-]` become `_`, leading
/// and trailing `_` go. Returns the name and whether it differs from `raw`.
pub fn sanitize_item(raw: &str) -> Result<(String, bool), NameError> {
    let replaced: String = raw
        .chars()
        .map(|c| if is_name_char(c) { c } else { '_' })
        .collect();
    let out = replaced.trim_matches('_').to_owned();
    if !out.chars().any(|c| c.is_ascii_alphanumeric()) {
        return Err(NameError::Unusable(raw.to_owned()));
    }
    let changed = out != raw;
    Ok((out, changed))
}

/// The public name of `name` within `budget` bytes: `ns__item`, or its shortened form.
///
/// ```
/// use capmux::names::{QualifiedName, format};
///
/// let name = QualifiedName::new("jira", "create_issue");
/// assert_eq!(format(&name, 51), "jira__create_issue");
/// let long = QualifiedName::new("jira", "a".repeat(60));
/// assert_eq!(format(&long, 51).len(), 51);
/// ```
pub fn format(name: &QualifiedName, budget: usize) -> String {
    let full = name.to_string();
    if full.len() <= budget {
        return full;
    }
    let digest = Sha256::digest(full.as_bytes());
    let hash: String = digest
        .iter()
        .take(HASH_LEN / 2)
        .map(|b| format!("{b:02x}"))
        .collect();
    // Names are ASCII, so byte slicing is char slicing.
    let keep = budget.saturating_sub(HASH_LEN + 1).max(1);
    format!("{}_{hash}", &full[..keep])
}

/// The registry of public names handed out, with the reverse map for shortened ones.
#[derive(Debug, Clone)]
pub struct Names {
    budget: usize,
    by_public: BTreeMap<String, QualifiedName>,
}

impl Default for Names {
    fn default() -> Self {
        Names::new(DEFAULT_BUDGET)
    }
}

impl Names {
    pub fn new(budget: usize) -> Self {
        Names {
            budget: budget.max(MIN_BUDGET),
            by_public: BTreeMap::new(),
        }
    }

    /// Claims the public name of `name`; refused when an earlier item holds it.
    pub fn insert(&mut self, name: QualifiedName) -> Result<String, Collision> {
        let public = format(&name, self.budget);
        if let Some(taken_by) = self.by_public.get(&public) {
            return Err(Collision {
                public,
                taken_by: taken_by.clone(),
            });
        }
        self.by_public.insert(public.clone(), name);
        Ok(public)
    }

    /// The item behind a public name handed out by [`Names::insert`].
    pub fn parse(&self, public: &str) -> Option<&QualifiedName> {
        self.by_public.get(public)
    }
}

/// Splits a public name at its separator without the registry: right for every name that
/// was not shortened, and the way to name an unknown item in an error message.
pub fn split(public: &str) -> Option<(&str, &str)> {
    public.split_once(SEPARATOR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn package_ids_lose_scope_and_plugin_prefix() {
        assert_eq!(
            namespace_for_package("@acme/capmux-plugin-jira").as_deref(),
            Ok("jira")
        );
        assert_eq!(
            namespace_for_package("aionui-plugin-pdf").as_deref(),
            Ok("pdf")
        );
        assert_eq!(
            namespace_for_package("capmux-plugin-").as_deref(),
            Ok("plugin")
        );
        assert_eq!(namespace_for_package("my.tools").as_deref(), Ok("my-tools"));
        assert_eq!(
            namespace_for_package("9lives__x_").as_deref(),
            Ok("lives_x")
        );
        assert!(namespace_for_package("日本語").is_err());
    }

    #[test]
    fn items_are_sanitized_and_report_the_change() {
        assert_eq!(
            sanitize_item("create_issue"),
            Ok(("create_issue".into(), false))
        );
        assert_eq!(
            sanitize_item("create issue"),
            Ok(("create_issue".into(), true))
        );
        assert_eq!(
            sanitize_item("plugin:pdf:read"),
            Ok(("plugin_pdf_read".into(), true))
        );
        assert!(sanitize_item("!!!").is_err());
        assert!(sanitize_item("").is_err());
    }

    #[test]
    fn long_names_are_shortened_deterministically_and_map_back() {
        let name = QualifiedName::new("jira", "a".repeat(80));
        let public = format(&name, DEFAULT_BUDGET);
        assert_eq!(public.len(), DEFAULT_BUDGET);
        assert_eq!(public, format(&name, DEFAULT_BUDGET));
        let mut names = Names::new(DEFAULT_BUDGET);
        assert_eq!(names.insert(name.clone()), Ok(public.clone()));
        assert_eq!(names.parse(&public), Some(&name));
    }

    #[test]
    fn a_second_claim_on_a_name_is_a_collision() {
        let mut names = Names::new(DEFAULT_BUDGET);
        names.insert(QualifiedName::new("a", "b__c")).ok();
        let err = names.insert(QualifiedName::new("a", "b__c")).unwrap_err();
        assert_eq!(err.public, "a__b__c");
    }

    fn raw_name() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[ -~]{1,90}").expect("valid regex")
    }

    proptest! {
        #[test]
        fn parse_of_format_is_identity(ns in raw_name(), item in raw_name(), budget in MIN_BUDGET..100usize) {
            let (Ok(ns), Ok((item, _))) = (sanitize_namespace(&ns), sanitize_item(&item)) else {
                return Ok(());
            };
            let name = QualifiedName::new(ns, item);
            let mut names = Names::new(budget);
            let public = names.insert(name.clone()).expect("empty registry");
            prop_assert_eq!(names.parse(&public), Some(&name));
            if public.len() < name.to_string().len() {
                prop_assert_eq!(public.len(), budget);
            } else {
                let (ns, item) = split(&public).expect("separator");
                prop_assert_eq!(ns, name.namespace.as_str());
                prop_assert_eq!(item, name.item.as_str());
            }
        }

        #[test]
        fn every_public_name_is_valid_and_fits(ns in raw_name(), item in raw_name(), budget in MIN_BUDGET..100usize) {
            let (Ok(ns), Ok((item, _))) = (sanitize_namespace(&ns), sanitize_item(&item)) else {
                return Ok(());
            };
            let public = format(&QualifiedName::new(ns, item), budget);
            prop_assert!(is_valid(&public), "{public}");
            prop_assert!(public.len() <= budget);
        }

        #[test]
        fn namespaces_never_contain_the_separator(raw in raw_name()) {
            if let Ok(ns) = sanitize_namespace(&raw) {
                prop_assert!(!ns.contains(SEPARATOR));
                prop_assert!(is_valid(&ns));
                prop_assert!(!ns.ends_with('_'));
            }
        }
    }
}
