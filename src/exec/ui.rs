//! What a run shows a person: one progress bar per running stage (indicatif, terminals only),
//! one line per finished stage on stderr, and the summary table.

use crate::stage::Progress;
use crate::store::{RunLog, RunStage};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// Progress display for one run.
pub struct Ui {
    multi: MultiProgress,
    bars: bool,
}

impl Ui {
    /// Bars are drawn only when `progress` is set and stderr is a terminal.
    pub fn new(progress: bool) -> Ui {
        let bars = progress && std::io::stderr().is_terminal();
        let target = if bars {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Ui {
            multi: MultiProgress::with_draw_target(target),
            bars,
        }
    }

    /// Whether bars are drawn (a terminal, and progress wanted).
    pub fn draws(&self) -> bool {
        self.bars
    }

    /// A bar for a stage that starts computing.
    pub fn start(&self, stage: &str, kind: &str) -> Progress {
        if !self.bars {
            crate::errln!("  run     {stage} ({kind})");
            return Progress::hidden();
        }
        let bar = self.multi.add(ProgressBar::new(0));
        let style = ProgressStyle::with_template(
            "{spinner} {prefix:<24} [{bar:30}] {pos}/{len} {elapsed:>4} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(format!("{stage} ({kind})"));
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        Progress::new(bar)
    }

    /// Reports a finished (or cached, failed, skipped) stage.
    pub fn finished(&self, o: &RunStage) {
        let line = match &o.error {
            Some(e) if o.status == super::status::FAILED => format!(
                "  {:<7} {} ({})\n          error: {}",
                o.status,
                o.stage,
                o.kind,
                e.replace('\n', "\n          ")
            ),
            Some(e) => format!("  {:<7} {} ({}): {e}", o.status, o.stage, o.kind),
            None => format!(
                "  {:<7} {} ({}) {:.2}s",
                o.status, o.stage, o.kind, o.seconds
            ),
        };
        self.println(&line);
    }

    /// Prints a warning above the bars.
    pub fn warn(&self, msg: &str) {
        self.println(&format!("warning: {msg}"));
    }

    fn println(&self, line: &str) {
        if self.bars {
            let _ = self.multi.println(line);
        } else {
            crate::errln!("{line}");
        }
    }

    /// Removes all bars.
    pub fn clear(&self) {
        let _ = self.multi.clear();
    }
}

/// `n` and the noun, plural unless `n` is 1 ("1 job", "3 jobs", "2 array tasks").
pub fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The end-of-run table: stage, kind, status, time; then totals.
pub fn summary(log: &RunLog) -> String {
    let w = log
        .stages
        .iter()
        .map(|s| s.stage.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let k = log
        .stages
        .iter()
        .map(|s| s.kind.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut s = format!(
        "{:<w$}  {:<k$}  {:<11}  {:>9}\n",
        "stage", "kind", "status", "time"
    );
    for st in &log.stages {
        let t = if st.status == super::status::CACHED {
            "-".to_owned()
        } else {
            format!("{:.2}s", st.seconds)
        };
        s.push_str(&format!(
            "{:<w$}  {:<k$}  {:<11}  {:>9}\n",
            st.stage, st.kind, st.status, t
        ));
    }
    let count = |x: &str| log.stages.iter().filter(|s| s.status == x).count();
    // Only runs with a remote cache pull; other summaries keep their familiar shape.
    let pulled = match count(super::status::PULLED) {
        0 => String::new(),
        n => format!(", {n} pulled"),
    };
    s.push_str(&format!(
        "{}: {} ran, {} cached{pulled}, {} failed, {} skipped, {} interrupted ({:.2}s)\n",
        counted(log.stages.len(), "stage"),
        count(super::status::RAN),
        count(super::status::CACHED),
        count(super::status::FAILED),
        count(super::status::SKIPPED),
        count(super::status::INTERRUPTED),
        log.seconds
    ));
    s
}
