//! The ready queue: which steps may start now. Pure: no I/O, no threads,
//! no clock; the driver feeds it completions and failures.
//!
//! Invariants (property-tested): every step is popped at most once; a step
//! is popped only after all its dependencies completed; after a failure no
//! transitive dependent is ever popped; with no failures every step is
//! popped. Ready steps pop in index order, so a run with `--jobs 1` is
//! deterministic.

use std::collections::BTreeSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Waiting,
    Ready,
    Running,
    Done,
    Failed,
    Skipped,
}

pub struct ReadyQueue {
    deps_left: Vec<usize>,
    dependents: Vec<Vec<usize>>,
    ready: BTreeSet<usize>,
    state: Vec<State>,
    stopped: bool,
}

impl ReadyQueue {
    /// `edges` are (dependency, dependent) pairs over steps `0..n`.
    pub fn new(n: usize, edges: &[(usize, usize)]) -> Self {
        let mut deps_left = vec![0; n];
        let mut dependents = vec![Vec::new(); n];
        for &(from, to) in edges {
            deps_left[to] += 1;
            dependents[from].push(to);
        }
        let ready: BTreeSet<usize> = (0..n).filter(|&i| deps_left[i] == 0).collect();
        let mut state = vec![State::Waiting; n];
        for &i in &ready {
            state[i] = State::Ready;
        }
        ReadyQueue { deps_left, dependents, ready, state, stopped: false }
    }

    /// Next step to start, if any may start now.
    pub fn pop(&mut self) -> Option<usize> {
        if self.stopped {
            return None;
        }
        let i = self.ready.pop_first()?;
        self.state[i] = State::Running;
        Some(i)
    }

    pub fn complete(&mut self, i: usize) {
        assert_eq!(self.state[i], State::Running, "completing a step that is not running");
        self.state[i] = State::Done;
        for &d in &self.dependents[i] {
            self.deps_left[d] -= 1;
            if self.deps_left[d] == 0 && self.state[d] == State::Waiting {
                self.state[d] = State::Ready;
                self.ready.insert(d);
            }
        }
    }

    /// Mark `i` failed; returns the transitive dependents now skipped.
    pub fn fail(&mut self, i: usize) -> Vec<usize> {
        assert_eq!(self.state[i], State::Running, "failing a step that is not running");
        self.state[i] = State::Failed;
        let mut skipped = Vec::new();
        let mut stack = self.dependents[i].clone();
        while let Some(d) = stack.pop() {
            if matches!(self.state[d], State::Waiting | State::Ready) {
                self.state[d] = State::Skipped;
                self.ready.remove(&d);
                skipped.push(d);
                stack.extend(self.dependents[d].iter().copied());
            }
        }
        skipped.sort_unstable();
        skipped
    }

    /// Stop handing out steps (a failure without `--keep-going`).
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    /// Steps never started (after a stop), for reporting.
    pub fn not_started(&self) -> Vec<usize> {
        (0..self.state.len()).filter(|&i| matches!(self.state[i], State::Waiting | State::Ready)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dag() -> impl Strategy<Value = (usize, Vec<(usize, usize)>)> {
        (1usize..40).prop_flat_map(|n| {
            let edges = proptest::collection::vec((0..n, 0..n), 0..(n * 3)).prop_map(|raw| {
                let mut e: Vec<(usize, usize)> =
                    raw.into_iter().filter(|(a, b)| a != b).map(|(a, b)| (a.min(b), a.max(b))).collect();
                e.sort();
                e.dedup();
                e
            });
            (Just(n), edges)
        })
    }

    proptest! {
        #[test]
        fn each_step_once_after_its_inputs((n, edges) in dag(), picks in proptest::collection::vec(any::<u16>(), 0..200), fail_at in proptest::option::of(0usize..40)) {
            let mut q = ReadyQueue::new(n, &edges);
            let mut popped = vec![false; n];
            let mut done = vec![false; n];
            let mut failed = vec![false; n];
            let mut running: Vec<usize> = Vec::new();
            let mut pick = picks.into_iter();
            loop {
                // start everything ready, then finish one running step chosen at random
                while let Some(i) = q.pop() {
                    prop_assert!(!popped[i], "step {} popped twice", i);
                    for &(a, b) in &edges {
                        if b == i { prop_assert!(done[a], "step {} before its input {}", i, a); }
                    }
                    popped[i] = true;
                    running.push(i);
                }
                if running.is_empty() { break; }
                let k = pick.next().unwrap_or(0) as usize % running.len();
                let i = running.swap_remove(k);
                if Some(i) == fail_at {
                    failed[i] = true;
                    q.fail(i);
                } else {
                    done[i] = true;
                    q.complete(i);
                }
            }
            // the failed step's transitive dependents never ran; all else did
            let mut tainted = failed.clone();
            for &(a, b) in &edges { if tainted[a] { tainted[b] = true; } }
            for i in 0..n {
                if tainted[i] && !failed[i] { prop_assert!(!popped[i], "dependent {} of a failure ran", i); }
                if !tainted[i] { prop_assert!(done[i], "step {} never ran", i); }
            }
        }
    }

    #[test]
    fn stop_hands_out_nothing_more() {
        let mut q = ReadyQueue::new(3, &[]);
        assert_eq!(q.pop(), Some(0));
        q.stop();
        assert_eq!(q.pop(), None);
        assert_eq!(q.not_started(), vec![1, 2]);
    }
}
