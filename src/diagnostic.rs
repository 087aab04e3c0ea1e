//! Diagnostics: what a loader found wrong with a package, said so that its author can fix it.
//!
//! Loading never aborts because of one bad package. Every loader returns what it could load
//! plus a list of `Diagnostic`s; `serve` logs them and goes on, `check` prints them and exits
//! non-zero when one is an error. The rule of severities: an **error** means something was not
//! loaded (a package, a tool, a prompt); a **warning** means it was loaded but not as written
//! (a name changed, a key ignored); **info** is a fact worth knowing (a feature capmux does not
//! serve yet).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// How bad a problem is; ordered so that `Error < Warning < Info` sorts errors first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        })
    }
}

/// One problem, with the file it is in and the package it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// The file (or folder) the problem is in.
    pub path: PathBuf,
    /// 1-based line in `path`, when the problem has one (syntax errors do).
    pub line: Option<usize>,
    /// The package id, when the problem is inside a package.
    pub package: Option<String>,
    /// What is wrong and what to do about it; lowercase, no trailing period.
    pub message: String,
}

impl Diagnostic {
    pub fn new(severity: Severity, path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity,
            path: path.into(),
            line: None,
            package: None,
            message: message.into(),
        }
    }

    pub fn error(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, path, message)
    }

    pub fn warning(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, path, message)
    }

    pub fn info(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::new(Severity::Info, path, message)
    }

    pub fn at_line(mut self, line: usize) -> Self {
        self.line = Some(line);
        self
    }

    pub fn in_package(mut self, package: impl Into<String>) -> Self {
        self.package = Some(package.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.severity, self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(package) = &self.package {
            write!(f, ": [{package}]")?;
        }
        write!(f, " {}", self.message)
    }
}

/// Sorts diagnostics for display: by path, then line, then severity, then message.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        (&a.path, a.line, a.severity, &a.message).cmp(&(&b.path, b.line, b.severity, &b.message))
    });
}

/// `path` shown relative to `base` when it lies below it, for shorter messages.
pub fn relative_to(path: &Path, base: &Path) -> PathBuf {
    path.strip_prefix(base)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.to_path_buf())
}
