//! Reading files named by a package: paths confined to the package root, sizes capped.
//!
//! A path from a manifest is relative to the package root. It may not be absolute, may not
//! climb out with `..`, and may not reach outside through a symbolic link: the file is
//! canonicalized and must still lie below the canonical root.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use super::{MAX_FILE_BYTES, MAX_ITEMS};
use crate::diagnostic::{Diagnostic, Severity};
use crate::names;

/// Resolves `rel` inside `root`; the error says why it may not be used.
pub(crate) fn resolve(root: &Path, rel: &str) -> Result<PathBuf, String> {
    let rel_path = Path::new(rel);
    if rel.is_empty() {
        return Err("path is empty".into());
    }
    let mut depth = 0usize;
    for component in rel_path.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir if depth > 0 => depth -= 1,
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(format!("path `{rel}` leaves the package root"));
            }
        }
    }
    let joined = root.join(rel_path);
    let canonical = joined
        .canonicalize()
        .map_err(|_| format!("`{rel}` does not exist"))?;
    let canonical_root = root
        .canonicalize()
        .map_err(|err| format!("cannot read the package root: {err}"))?;
    if !canonical.starts_with(&canonical_root) {
        return Err(format!(
            "path `{rel}` leaves the package root through a link"
        ));
    }
    Ok(canonical)
}

/// Reads a UTF-8 text file of at most [`MAX_FILE_BYTES`].
pub(crate) fn read_text(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|err| format!("cannot open: {err}"))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > MAX_FILE_BYTES {
        return Err(format!(
            "file is {len} bytes; package files are capped at {MAX_FILE_BYTES} bytes"
        ));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| format!("cannot read: {err}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("file is over the cap of {MAX_FILE_BYTES} bytes"));
    }
    let text = String::from_utf8(bytes).map_err(|_| "file is not valid UTF-8".to_owned())?;
    // Editors on Windows start files with a byte order mark; npm ignores it, and so do we.
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_owned(),
        None => text,
    })
}

/// Resolves `rel` inside `root` and reads it as text.
pub(crate) fn read_in_root(root: &Path, rel: &str) -> Result<(PathBuf, String), String> {
    let path = resolve(root, rel)?;
    if !path.is_file() {
        return Err(format!("`{rel}` is not a file"));
    }
    let text = read_text(&path).map_err(|err| format!("`{rel}`: {err}"))?;
    Ok((path, text))
}

/// Marker for "an error was already reported; drop this item".
pub(crate) struct Bad;

pub(crate) type Parsed<T> = Result<T, Bad>;

/// The loader's state while reading one manifest.
pub(crate) struct Reader<'a> {
    pub(crate) root: &'a Path,
    pub(crate) manifest: PathBuf,
    pub(crate) package: String,
    /// The manifest object's key (`capmux` or `aionui`), the first part of every JSON path.
    pub(crate) key: &'static str,
    /// Programs already looked up on `PATH`: a package of 500 tools asks for `python3` once.
    pub(crate) on_path: HashMap<String, bool>,
    pub(crate) diagnostics: Vec<Diagnostic>,
}

impl Reader<'_> {
    pub(crate) fn push(&mut self, severity: Severity, path: &Path, message: String) {
        self.diagnostics
            .push(Diagnostic::new(severity, path, message).in_package(self.package.clone()));
    }

    pub(crate) fn error(&mut self, message: impl Into<String>) -> Bad {
        let manifest = self.manifest.to_path_buf();
        self.push(Severity::Error, &manifest, message.into());
        Bad
    }

    pub(crate) fn warn(&mut self, message: impl Into<String>) {
        let manifest = self.manifest.to_path_buf();
        self.push(Severity::Warning, &manifest, message.into());
    }

    pub(crate) fn info(&mut self, message: impl Into<String>) {
        let manifest = self.manifest.to_path_buf();
        self.push(Severity::Info, &manifest, message.into());
    }

    pub(crate) fn unknown_keys(&mut self, obj: &Map<String, Value>, known: &[&str], at: &str) {
        for key in obj.keys() {
            if !known.contains(&key.as_str()) {
                let hint = closest(key, known)
                    .map(|k| format!(" (did you mean `{k}`?)"))
                    .unwrap_or_default();
                self.warn(format!("{at}: unknown key `{key}` is ignored{hint}"));
            }
        }
    }

    pub(crate) fn opt_str(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        at: &str,
    ) -> Parsed<Option<String>> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.error(format!(
                "{at}.{key}: expected a string, found {}",
                kind(other)
            ))),
        }
    }

    pub(crate) fn req_str(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        at: &str,
    ) -> Parsed<String> {
        match self.opt_str(obj, key, at)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            Some(_) => Err(self.error(format!("{at}.{key}: must not be empty"))),
            None => Err(self.error(format!("{at}: `{key}` is required"))),
        }
    }

    pub(crate) fn opt_bool(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        at: &str,
    ) -> Parsed<Option<bool>> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.error(format!(
                "{at}.{key}: expected true or false, found {}",
                kind(other)
            ))),
        }
    }

    pub(crate) fn opt_int(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        at: &str,
    ) -> Parsed<Option<i64>> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
            Some(other) => Err(self.error(format!(
                "{at}.{key}: expected a whole number, found {}",
                kind(other)
            ))),
        }
    }

    pub(crate) fn str_list(&mut self, value: &Value, at: &str) -> Parsed<Vec<String>> {
        let Value::Array(items) = value else {
            return Err(self.error(format!(
                "{at}: expected an array of strings, found {}",
                kind(value)
            )));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(self.error(format!(
                    "{at}[{i}]: expected a string, found {}",
                    kind(other)
                ))),
            })
            .collect()
    }

    pub(crate) fn str_map(&mut self, value: &Value, at: &str) -> Parsed<BTreeMap<String, String>> {
        let Value::Object(obj) = value else {
            return Err(self.error(format!(
                "{at}: expected an object of strings, found {}",
                kind(value)
            )));
        };
        obj.iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(self.error(format!(
                    "{at}.{k}: expected a string, found {}",
                    kind(other)
                ))),
            })
            .collect()
    }

    /// The array under `key`, capped at [`MAX_ITEMS`]; a wrong type is an error.
    pub(crate) fn items<'v>(
        &mut self,
        obj: &'v Map<String, Value>,
        key: &str,
    ) -> Parsed<&'v [Value]> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(&[]),
            Some(Value::Array(items)) if items.len() > MAX_ITEMS => Err(self.error(format!(
                "{}.{key}: {} items; a package may declare at most {MAX_ITEMS}",
                self.key,
                items.len()
            ))),
            Some(Value::Array(items)) => Ok(items),
            Some(other) => Err(self.error(format!(
                "{}.{key}: expected an array, found {}",
                self.key,
                kind(other)
            ))),
        }
    }

    /// An item name, sanitized; a change is a warning, an unusable name an error.
    pub(crate) fn item_name(&mut self, raw: &str, what: &str, at: &str) -> Parsed<String> {
        match names::sanitize_item(raw) {
            Ok((name, false)) => Ok(name),
            Ok((name, true)) => {
                self.warn(format!(
                    "{at}: {what} name `{raw}` may only use A-Z a-z 0-9 _ -; it is served as `{name}`"
                ));
                Ok(name)
            }
            Err(err) => Err(self.error(format!("{at}: {what} name cannot be made valid: {err}"))),
        }
    }

    /// Reads `rel` from the package; a problem is an error at `at`.
    pub(crate) fn file(&mut self, rel: &str, at: &str) -> Parsed<(PathBuf, String)> {
        read_in_root(self.root, rel).map_err(|err| self.error(format!("{at}.file: {err}")))
    }
}

/// A JSON value's kind, for messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The known key closest to `key` when it is plausibly a typo.
pub(crate) fn closest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| {
            (
                edit_distance(&key.to_ascii_lowercase(), &k.to_ascii_lowercase()),
                *k,
            )
        })
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_climb_out_are_refused_before_touching_the_disk() {
        let root = Path::new("/nonexistent-root");
        assert!(
            resolve(root, "../x")
                .unwrap_err()
                .contains("leaves the package root")
        );
        assert!(resolve(root, "a/../../x").unwrap_err().contains("leaves"));
        assert!(resolve(root, "/etc/passwd").unwrap_err().contains("leaves"));
        assert!(
            resolve(root, "a/../b")
                .unwrap_err()
                .contains("does not exist")
        );
    }
}
