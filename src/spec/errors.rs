//! Validation errors that point at `file:line:col` and the offending key, and the
//! "did you mean" helper used to suggest close names.

use super::yaml::Loc;
use std::fmt;
use std::path::PathBuf;

/// One problem found in a pipeline file.
#[derive(Debug, Clone)]
pub struct SpecError {
    /// The pipeline file.
    pub file: PathBuf,
    /// Where the problem is.
    pub loc: Loc,
    /// Dotted path of the offending key, e.g. `stages.ode.with.q`.
    pub key: String,
    /// What is wrong and, where possible, how to fix it.
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.loc)?;
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in a pipeline file (never empty).
#[derive(Debug, Clone)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        if n > 1 {
            write!(f, "\n{n} problems in the pipeline file")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}

/// Collects errors for one file.
pub(crate) struct Collector {
    pub file: PathBuf,
    pub errors: Vec<SpecError>,
}

impl Collector {
    pub fn new(file: PathBuf) -> Self {
        Collector {
            file,
            errors: Vec::new(),
        }
    }

    pub fn push(&mut self, loc: Loc, key: impl Into<String>, message: impl Into<String>) {
        self.errors.push(SpecError {
            file: self.file.clone(),
            loc,
            key: key.into(),
            message: message.into(),
        });
    }

    pub fn finish<T>(mut self, value: T) -> Result<T, SpecErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            self.errors
                .sort_by_key(|e| (e.loc.line, e.loc.col, e.key.clone()));
            Err(SpecErrors(self.errors))
        }
    }
}

/// Edit distance between two strings (for suggestions).
pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// " (did you mean `x`?)" for the closest candidates, or a list of all candidates.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let all: Vec<&str> = candidates.into_iter().collect();
    let mut scored: Vec<(usize, &str)> = all.iter().map(|c| (levenshtein(word, c), *c)).collect();
    scored.sort();
    let limit = (word.chars().count() / 3).max(2);
    let best = scored.first().map_or(0, |(d, _)| *d);
    let close: Vec<String> = scored
        .iter()
        .filter(|(d, _)| *d <= limit && *d == best)
        .take(3)
        .map(|(_, c)| format!("`{c}`"))
        .collect();
    if !close.is_empty() {
        format!(" (did you mean {}?)", close.join(" or "))
    } else if all.is_empty() {
        String::new()
    } else {
        format!(" (expected one of: {})", all.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_pick_close_names() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        let s = suggest("cost_oed", ["cost_ode", "describe", "load_table"]);
        assert!(s.contains("`cost_ode`"), "{s}");
        let s = suggest("zzzzzzzz", ["ab", "cd"]);
        assert!(s.contains("expected one of: ab, cd"), "{s}");
    }
}
