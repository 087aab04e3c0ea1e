//! The lifecycle commands on installed packages: enable, disable, grant, revoke, settings,
//! info. Each is one locked registry update; a running `capmux serve` sees it and reloads.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::package::{self, Package, Permission, Source};
use crate::registry::{Entry, Home};

/// The installed package `id` as loaded from its files.
pub fn load_installed(entry: &Entry, id: &str) -> Result<Package, String> {
    package::load_all(&entry.path, Source::User, Some(id))
        .into_iter()
        .filter_map(|l| l.package)
        .find(|p| entry.entry.as_deref().is_none_or(|e| e == p.id))
        .ok_or_else(|| {
            format!(
                "`{id}` no longer loads from {}; run `capmux check` on it",
                entry.path.display()
            )
        })
}

fn entry(home: &Home, id: &str) -> Result<Entry, String> {
    home.read()?
        .packages
        .get(id)
        .cloned()
        .ok_or_else(|| format!("no installed package `{id}` (see `capmux list`)"))
}

/// `enable` / `disable`. Enabling a held package needs what held it to be resolved: the
/// permissions it asked for granted.
pub fn set_enabled(home: &Home, id: &str, enabled: bool) -> Result<String, String> {
    home.update(|reg| {
        let e = reg
            .packages
            .get_mut(id)
            .ok_or_else(|| format!("no installed package `{id}`"))?;
        if enabled {
            let missing: Vec<&String> = e.requested.difference(&e.grants).collect();
            if e.held
                .as_deref()
                .is_some_and(|h| h.contains("more permissions"))
                && !missing.is_empty()
            {
                return Err(format!(
                    "`{id}` asks for {} first: `capmux grant {id} {}`",
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                ));
            }
            e.held = None;
        }
        e.enabled = enabled;
        Ok(format!(
            "{} {id}",
            if enabled { "enabled" } else { "disabled" }
        ))
    })
}

/// `grant` / `revoke` permissions. A grant of something the package does not declare is
/// refused: it would do nothing and hide a mistake.
pub fn set_grants(
    home: &Home,
    id: &str,
    permissions: &[String],
    grant: bool,
) -> Result<String, String> {
    let mut parsed = BTreeSet::new();
    for p in permissions {
        let perm = Permission::parse(p).ok_or_else(|| {
            format!(
                "`{p}` is not a permission; they are: {}",
                Permission::ALL.map(|p| p.as_str()).join(", ")
            )
        })?;
        parsed.insert(perm.as_str().to_owned());
    }
    home.update(|reg| {
        let e = reg
            .packages
            .get_mut(id)
            .ok_or_else(|| format!("no installed package `{id}`"))?;
        if grant {
            let undeclared: Vec<&String> = parsed.difference(&e.requested).collect();
            if !undeclared.is_empty() {
                return Err(format!(
                    "`{id}` does not ask for {}",
                    undeclared
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            e.grants.extend(parsed.iter().cloned());
            if e.requested.is_subset(&e.grants) && e.held.is_some() {
                e.held = None;
                e.enabled = true;
            }
        } else {
            for p in &parsed {
                e.grants.remove(p);
            }
        }
        Ok(format!(
            "{id}: granted {}",
            if e.grants.is_empty() {
                "nothing".to_owned()
            } else {
                e.grants.iter().cloned().collect::<Vec<_>>().join(", ")
            }
        ))
    })
}

/// `config set PKG KEY VALUE`: checked against the package's settings; `VALUE` is JSON
/// when it parses as JSON, else a string.
pub fn config_set(home: &Home, id: &str, key: &str, value: &str) -> Result<String, String> {
    let e = entry(home, id)?;
    let package = load_installed(&e, id)?;
    let Some(setting) = package.settings.get(key) else {
        let known: Vec<&str> = package.settings.keys().map(String::as_str).collect();
        return Err(format!(
            "`{id}` has no setting `{key}`; its settings are: {}",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ));
    };
    let parsed: Value =
        serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    let value = if setting.kind.accepts(&parsed, &setting.options) {
        parsed
    } else if setting
        .kind
        .accepts(&Value::String(value.to_owned()), &setting.options)
    {
        Value::String(value.to_owned())
    } else {
        return Err(format!(
            "`{key}` of `{id}` takes a {}{}",
            setting.kind.as_str(),
            if setting.options.is_empty() {
                String::new()
            } else {
                format!(" among {}", Value::Array(setting.options.clone()))
            }
        ));
    };
    let secret = setting.secret;
    home.update(|reg| {
        let e = reg
            .packages
            .get_mut(id)
            .ok_or_else(|| format!("no installed package `{id}`"))?;
        e.settings.insert(key.to_owned(), value.clone());
        Ok(())
    })?;
    Ok(if secret {
        format!("{id}: {key} set (secret; not shown)")
    } else {
        format!("{id}: {key} = {value}")
    })
}

/// `config get PKG KEY`: the value, else the default; a secret is never printed.
pub fn config_get(home: &Home, id: &str, key: &str) -> Result<String, String> {
    let e = entry(home, id)?;
    let package = load_installed(&e, id)?;
    let setting = package
        .settings
        .get(key)
        .ok_or_else(|| format!("`{id}` has no setting `{key}`"))?;
    Ok(match (e.settings.get(key), setting.secret) {
        (Some(_), true) => "(secret, set)".to_owned(),
        (None, true) => "(secret, not set)".to_owned(),
        (Some(v), false) => v.to_string(),
        (None, false) => match &setting.default {
            Some(d) => format!("{d} (default)"),
            None => "(not set)".to_owned(),
        },
    })
}

/// `info PKG`: the registry's record and what the package holds.
pub fn info(home: &Home, id: &str) -> Result<String, String> {
    let e = entry(home, id)?;
    let mut out = format!(
        "{id} {}\n  source: {} ({:?})\n  path: {}\n",
        e.version.as_deref().unwrap_or("-"),
        e.source,
        e.kind,
        e.path.display()
    );
    for (label, value) in [
        ("commit", &e.commit),
        ("integrity", &e.integrity),
        ("digest", &e.digest),
    ] {
        if let Some(v) = value {
            out.push_str(&format!("  {label}: {v}\n"));
        }
    }
    out.push_str(&format!(
        "  state: {}{}\n  asks for: {}\n  granted: {}\n",
        if e.enabled { "enabled" } else { "disabled" },
        e.held
            .as_ref()
            .map(|h| format!(" (held: {h})"))
            .unwrap_or_default(),
        list(&e.requested),
        list(&e.grants)
    ));
    if let Ok(package) = load_installed(&e, id) {
        for (key, setting) in &package.settings {
            let shown = match (e.settings.get(key), setting.secret) {
                (Some(_), true) => "(secret, set)".to_owned(),
                (Some(v), false) => v.to_string(),
                (None, _) => "(not set)".to_owned(),
            };
            out.push_str(&format!("  setting {key}: {shown}\n"));
        }
        out.push_str(&crate::install::summary(&package, &e.source, &e.path));
    }
    Ok(out)
}

fn list(set: &BTreeSet<String>) -> String {
    if set.is_empty() {
        "nothing".to_owned()
    } else {
        set.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}
