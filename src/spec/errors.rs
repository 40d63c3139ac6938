//! Validation errors that point at `file:line:col` (or at the command-line argument they are
//! in) and the offending key, and the "did you mean" helper used to suggest close names.

use super::yaml::Loc;
use std::cell::Cell;
use std::fmt;
use std::path::PathBuf;

/// The most problems printed; the rest are counted.
const MAX_SHOWN: usize = 200;

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
    /// The command-line argument (or environment variable) the problem is in, e.g.
    /// `--set a.rows=x`; then `file` and `loc` are not shown.
    pub arg: Option<String>,
}

impl SpecError {
    /// Whether the problem is in the pipeline file (not on the command line).
    pub fn in_file(&self) -> bool {
        self.arg.is_none()
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.arg {
            Some(arg) => write!(f, "{arg}")?,
            None => write!(f, "{}:{}", self.file.display(), self.loc)?,
        }
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
        for (i, e) in self.0.iter().take(MAX_SHOWN).enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        if n > MAX_SHOWN {
            write!(f, "\n… and {} more", n - MAX_SHOWN)?;
        }
        let in_file = self.0.iter().filter(|e| e.in_file()).count();
        let on_line = n - in_file;
        let plural = |k: usize| if k == 1 { "problem" } else { "problems" };
        if n > 1 {
            match (on_line, in_file) {
                (0, k) => write!(f, "\n{k} problems in the pipeline file")?,
                (k, 0) => write!(f, "\n{k} problems on the command line")?,
                (a, b) => write!(
                    f,
                    "\n{a} {} on the command line, {b} {} in the pipeline file",
                    plural(a),
                    plural(b)
                )?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}

/// Collects errors for one file and its command-line overrides.
pub(crate) struct Collector {
    /// The pipeline file.
    pub file: PathBuf,
    /// The `--set` arguments as given (`KEY=VALUE`), for locations made with [`Loc::arg`].
    pub args: Vec<String>,
    /// The problems so far.
    pub errors: Vec<SpecError>,
}

impl Collector {
    /// A collector for `file` with no command-line arguments.
    pub fn new(file: PathBuf) -> Self {
        Collector {
            file,
            args: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// The command-line argument a location stands for, if any.
    fn arg_at(&self, loc: Loc) -> Option<String> {
        let i = loc.arg_index()?;
        Some(match self.args.get(i) {
            Some(a) => format!("--set {a}"),
            None => "--set".to_owned(),
        })
    }

    /// Records a problem at `loc` (in the file, or a `--set` value).
    pub fn push(&mut self, loc: Loc, key: impl Into<String>, message: impl Into<String>) {
        self.errors.push(SpecError {
            file: self.file.clone(),
            loc,
            key: key.into(),
            message: message.into(),
            arg: self.arg_at(loc),
        });
    }

    /// Records a problem in a command-line argument or environment variable `arg`.
    pub fn push_arg(
        &mut self,
        arg: impl Into<String>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.errors.push(SpecError {
            file: self.file.clone(),
            loc: Loc::default(),
            key: key.into(),
            message: message.into(),
            arg: Some(arg.into()),
        });
    }

    /// `Ok(value)` when nothing was found, else every problem once, command line first, then in
    /// file order.
    pub fn finish<T>(mut self, value: T) -> Result<T, SpecErrors> {
        if self.errors.is_empty() {
            return Ok(value);
        }
        self.errors.sort_by(|a, b| {
            (a.arg.is_none(), a.loc.line, a.loc.col, &a.key, &a.arg).cmp(&(
                b.arg.is_none(),
                b.loc.line,
                b.loc.col,
                &b.key,
                &b.arg,
            ))
        });
        let mut seen = std::collections::HashSet::new();
        self.errors
            .retain(|e| seen.insert((e.arg.clone(), e.loc, e.key.clone(), e.message.clone())));
        Err(SpecErrors(self.errors))
    }
}

/// Edit-distance cells that suggestions may still compute on this thread (see
/// [`reset_suggestion_budget`]): a hostile file with thousands of misspelt names must not make
/// "did you mean" quadratic.
const SUGGESTION_BUDGET: u64 = 20_000_000;
/// Names longer than this get no edit-distance suggestion.
const MAX_SUGGESTED_LEN: usize = 64;
/// The most names listed in "expected one of".
const MAX_LISTED: usize = 12;

thread_local! {
    static SUGGESTION_CELLS: Cell<u64> = const { Cell::new(SUGGESTION_BUDGET) };
}

/// Restores the edit-distance budget of [`suggest`] (done once per pipeline file).
pub fn reset_suggestion_budget() {
    SUGGESTION_CELLS.with(|c| c.set(SUGGESTION_BUDGET));
}

/// Takes `cells` from the budget; false when it is spent.
fn spend(cells: u64) -> bool {
    SUGGESTION_CELLS.with(|c| {
        let left = c.get();
        c.set(left.saturating_sub(cells));
        left >= cells
    })
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
    let wlen = word.chars().count();
    let limit = (wlen / 3).max(2);
    let mut scored: Vec<(usize, &str)> = Vec::new();
    if wlen <= MAX_SUGGESTED_LEN {
        for c in &all {
            let clen = c.chars().count();
            if clen > MAX_SUGGESTED_LEN || clen.abs_diff(wlen) > limit {
                continue;
            }
            if !spend(((wlen + 1) * (clen + 1)) as u64) {
                break;
            }
            scored.push((levenshtein(word, c), *c));
        }
    }
    scored.sort();
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
    } else if all.len() > MAX_LISTED {
        format!(
            " (expected one of: {}, … {} more)",
            all[..MAX_LISTED].join(", "),
            all.len() - MAX_LISTED
        )
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
