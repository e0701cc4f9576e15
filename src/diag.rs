//! Problems found while reading configuration and zones, each with the
//! place it was found (`file:line`), collected so that `lbdns check` can
//! print every one of them instead of stopping at the first.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// How bad a problem is: errors stop a load, warnings are only reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// Where a problem was found: a file, and a line in it when known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loc {
    pub file: Arc<Path>,
    /// 1-based; 0 when the problem concerns the whole file.
    pub line: usize,
}

/// One problem, with its place.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    pub severity: Severity,
    pub loc: Option<Loc>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.loc {
            Some(loc) if loc.line > 0 => write!(f, "{}:{}: ", loc.file.display(), loc.line)?,
            Some(loc) => write!(f, "{}: ", loc.file.display())?,
            None => {}
        }
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}: {}", self.message)
    }
}

/// The problems found so far.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Records an error at `loc`.
    pub fn error(&mut self, loc: Option<Loc>, message: impl Into<String>) {
        self.push(Severity::Error, loc, message.into());
    }

    /// Records a warning at `loc`.
    pub fn warning(&mut self, loc: Option<Loc>, message: impl Into<String>) {
        self.push(Severity::Warning, loc, message.into());
    }

    fn push(&mut self, severity: Severity, loc: Option<Loc>, message: String) {
        self.items.push(Diagnostic { severity, loc, message });
    }

    /// Whether any error (not just warnings) was recorded.
    pub fn has_errors(&self) -> bool {
        self.error_count() > 0
    }

    /// How many errors were recorded.
    pub fn error_count(&self) -> usize {
        self.items.iter().filter(|d| d.severity == Severity::Error).count()
    }

    /// Appends every problem of `other`.
    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for item in &self.items {
            writeln!(f, "{item}")?;
        }
        Ok(())
    }
}
