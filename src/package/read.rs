//! Reading files named by a package: paths confined to the package root, sizes capped.
//!
//! A path from a manifest is relative to the package root. It may not be absolute, may not
//! climb out with `..`, and may not reach outside through a symbolic link: the file is
//! canonicalized and must still lie below the canonical root.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use super::MAX_FILE_BYTES;

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
