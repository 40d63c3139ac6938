//! The ready queue of a run: which stage may start next. Stages are numbered by their position
//! in the topological order; a stage becomes ready when every stage it needs has settled (finished
//! or failed), and ready stages start lowest number first, so the order is deterministic.
//!
//! Every operation is O(log n) (a binary heap) and each dependency edge is visited once, so a
//! whole run costs O((n + e) log n) scheduler steps — counted in [`Scheduler::steps`] so that a
//! test can guard the complexity without timing anything. What a stage does is not known here.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Ready queue and dependency counts of one run.
#[derive(Debug)]
pub struct Scheduler {
    needs: Vec<Vec<usize>>,
    dependents: Vec<Vec<usize>>,
    waiting: Vec<usize>,
    settled: Vec<Option<bool>>,
    ready: BinaryHeap<Reverse<usize>>,
    steps: u64,
}

impl Scheduler {
    /// A scheduler for stages `0..needs.len()`; `needs[i]` lists the stages `i` needs (each
    /// smaller than `i`, as in a topological order; others are ignored).
    pub fn new(needs: Vec<Vec<usize>>) -> Scheduler {
        let n = needs.len();
        let mut dependents = vec![Vec::new(); n];
        let mut waiting = vec![0; n];
        let mut steps = 0;
        for (i, ns) in needs.iter().enumerate() {
            for &j in ns.iter().filter(|&&j| j < i) {
                dependents[j].push(i);
                waiting[i] += 1;
                steps += 1;
            }
        }
        let ready = (0..n)
            .filter(|&i| waiting[i] == 0)
            .map(Reverse)
            .collect::<BinaryHeap<_>>();
        Scheduler {
            needs,
            dependents,
            waiting,
            settled: vec![None; n],
            ready,
            steps: steps + n as u64,
        }
    }

    /// The lowest-numbered ready stage, if any.
    pub fn pop_ready(&mut self) -> Option<usize> {
        self.steps += 1;
        self.ready.pop().map(|Reverse(i)| i)
    }

    /// A stage that `i` needs and that did not finish, if any (then `i` must be skipped).
    pub fn failed_need(&self, i: usize) -> Option<usize> {
        self.needs
            .get(i)?
            .iter()
            .copied()
            .find(|&j| self.settled.get(j).copied().flatten() == Some(false))
    }

    /// Records that stage `i` finished (`ok`) or did not; stages waiting only for it become ready.
    pub fn settle(&mut self, i: usize, ok: bool) {
        if self.settled[i].is_some() {
            return;
        }
        self.settled[i] = Some(ok);
        for k in 0..self.dependents[i].len() {
            let d = self.dependents[i][k];
            self.steps += 1;
            self.waiting[d] -= 1;
            if self.waiting[d] == 0 {
                self.ready.push(Reverse(d));
            }
        }
    }

    /// Scheduler operations so far: queue pushes and pops and dependency-edge visits.
    pub fn steps(&self) -> u64 {
        self.steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs every stage to completion in scheduler order; returns the order and the steps.
    fn drain(mut s: Scheduler, fail: &[usize]) -> (Vec<usize>, u64) {
        let mut order = Vec::new();
        while let Some(i) = s.pop_ready() {
            let ok = s.failed_need(i).is_none() && !fail.contains(&i);
            order.push(i);
            s.settle(i, ok);
        }
        (order, s.steps())
    }

    /// A sweep of n points, each a chain of 2, then a collect of all of them.
    fn sweep(n: usize) -> Vec<Vec<usize>> {
        let mut needs = Vec::new();
        for i in 0..n {
            needs.push(Vec::new());
            needs.push(vec![2 * i]);
        }
        needs.push((0..n).map(|i| 2 * i + 1).collect());
        needs
    }

    #[test]
    fn order_is_topological_and_failures_skip_dependents() {
        let needs = vec![vec![], vec![0], vec![], vec![1, 2], vec![3]];
        let (order, _) = drain(Scheduler::new(needs.clone()), &[]);
        assert_eq!(order, [0, 1, 2, 3, 4]);
        let mut s = Scheduler::new(needs);
        assert_eq!(s.pop_ready(), Some(0));
        s.settle(0, false);
        assert_eq!(s.pop_ready(), Some(1));
        assert_eq!(s.failed_need(1), Some(0));
        s.settle(1, false);
        assert_eq!(s.pop_ready(), Some(2));
        s.settle(2, true);
        assert_eq!(s.pop_ready(), Some(3));
        assert_eq!(s.failed_need(3), Some(1));
    }

    /// The complexity guard: steps grow like n (+ edges), far below n log n · constant, for
    /// sweeps and chains from 10³ to 10⁵ stages.
    #[test]
    fn scheduler_steps_grow_linearly() {
        for n in [1_000usize, 10_000, 100_000] {
            let (order, steps) = drain(Scheduler::new(sweep(n)), &[]);
            assert_eq!(order.len(), 2 * n + 1);
            let stages = (2 * n + 1) as f64;
            assert!(
                (steps as f64) <= 6.0 * stages,
                "{n}-point sweep: {steps} steps for {stages} stages"
            );
            let chain: Vec<Vec<usize>> = (0..n)
                .map(|i| if i == 0 { vec![] } else { vec![i - 1] })
                .collect();
            let (_, steps) = drain(Scheduler::new(chain), &[]);
            assert!(steps as f64 <= 4.0 * n as f64, "{n}-chain: {steps} steps");
        }
    }
}
