//! The driver: runs a [`StepGraph`] on a rayon pool.
//!
//! The main thread owns the [`ReadyQueue`] and every result; workers only
//! run one step each and send back a [`StepOutcome`]. For each step a
//! worker computes the key from the input digests (shard listings and
//! upstream output digests: early cutoff falls out of this), asks the
//! action cache, and on a miss runs the action in a scratch folder, moves
//! each output into the CAS, then commits the action-cache entry and the
//! step record, in that order.
//!
//! A step with an output named `rejected` lists invalid documents; unless
//! invalid input is allowed, a non-empty list fails the step with
//! [`StepFailure::Invalid`] (exit 2). A corrupt or missing blob met while
//! reading inputs fails the step with [`StepFailure::Corrupt`]; the caller
//! re-runs the whole graph, where the producer now misses and rebuilds.
//!
//! The driver never panics on its environment: a pool that cannot start
//! fails every step (exit 1), and `--explain` lines ignore write errors
//! (a closed stderr must not stop a build). Names from input in its lines
//! and failure texts go through [`crate::shown`].

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::mpsc;

use petgraph::graph::NodeIndex;
use serde::Serialize;

use super::queue::ReadyQueue;
use super::reason::Reason;
use crate::actions::{ActionCx, ActionError, InputData};
use crate::cache::action::{AcEntry, Lookup, OutputRef, StepRecord};
use crate::cache::{Cache, CacheError};
use crate::digest::Digest;
use crate::formats::manifest::Rejected;
use crate::graph::{Input, Step, StepGraph};
use crate::key::{self, KeyInput};
use crate::shown;
use crate::signing::Keyring;
use crate::sources::{Snapshot, SourceError};

#[derive(Clone, Debug)]
pub struct ExecOptions {
    pub jobs: usize,
    pub keep_going: bool,
    pub allow_invalid: bool,
    /// Print each executed step and its reason on stderr.
    pub explain: bool,
    pub progress: bool,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum StepStatus {
    Executed { reason: Reason },
    Cached,
    Failed { error: String },
    Skipped,
}

#[derive(Clone, Debug)]
pub enum StepFailure {
    /// Invalid input documents (exit 2).
    Invalid(Vec<Rejected>),
    /// A cache blob was corrupt or missing: rebuild its producer.
    Corrupt(String),
    /// Refused or unreadable source content (exit 2).
    Source(String),
    /// The action failed (exit 1).
    Action(String),
}

impl std::fmt::Display for StepFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepFailure::Invalid(list) => {
                write!(f, "{} invalid document(s):", list.len())?;
                for r in list {
                    write!(f, "\n  {}: {}", shown::name(&r.path), shown::name(&r.reason))?;
                }
                Ok(())
            }
            StepFailure::Corrupt(m) | StepFailure::Source(m) | StepFailure::Action(m) => f.write_str(m),
        }
    }
}

pub struct StepOutcome {
    pub status: StepStatus,
    pub outputs: BTreeMap<String, OutputRef>,
    pub rejected: Vec<Rejected>,
    pub failure: Option<StepFailure>,
}

pub struct RunReport {
    pub outcomes: Vec<Option<StepOutcome>>,
}

impl RunReport {
    pub fn count(&self, f: impl Fn(&StepStatus) -> bool) -> usize {
        self.outcomes.iter().flatten().filter(|o| f(&o.status)).count()
    }
    pub fn failures(&self) -> impl Iterator<Item = (usize, &StepFailure)> {
        self.outcomes.iter().enumerate().filter_map(|(i, o)| o.as_ref()?.failure.as_ref().map(|f| (i, f)))
    }
}

/// The digests feeding each input group of `step`, given upstream outputs.
pub fn input_digests(
    step: &Step,
    snaps: &BTreeMap<String, Snapshot>,
    outputs: &dyn Fn(NodeIndex) -> Option<BTreeMap<String, OutputRef>>,
) -> Option<BTreeMap<String, Vec<Digest>>> {
    let mut m = BTreeMap::new();
    for (name, list) in &step.inputs {
        let mut ds = Vec::with_capacity(list.len());
        for i in list {
            ds.push(match i {
                Input::Shard { source, index } => {
                    snaps[source].shards.iter().find(|s| s.index == *index)?.digest
                }
                Input::Output { node, output } => outputs(*node)?.get(output)?.digest,
            });
        }
        m.insert(name.clone(), ds);
    }
    Some(m)
}

/// The key and the record of what went into it.
pub fn key_of(step: &Step, inputs: &BTreeMap<String, Vec<Digest>>) -> StepRecord {
    let key_inputs: Vec<KeyInput<'_>> =
        inputs.iter().map(|(n, ds)| KeyInput { name: n.as_str(), digests: ds.clone() }).collect();
    let action = key::ActionId {
        id: step.action.id(),
        version: step.action.version(),
        code: step.action.fingerprint(),
    };
    StepRecord {
        step: step.id.clone(),
        key: key::step_key(action, &step.params, &key_inputs),
        action: step.action.id().to_string(),
        version: step.action.version(),
        code: Some(action.code),
        params: key::params_digest(&step.params),
        inputs: inputs.iter().map(|(n, ds)| (n.clone(), key::group_digest(ds))).collect(),
    }
}

fn failure_of(e: ActionError) -> StepFailure {
    match e {
        ActionError::Cache(c @ (CacheError::Corrupt { .. } | CacheError::Missing { .. })) => {
            StepFailure::Corrupt(c.to_string())
        }
        ActionError::Cache(c) => StepFailure::Action(c.to_string()),
        ActionError::Source(s @ SourceError::Refused { .. }) => StepFailure::Source(s.to_string()),
        ActionError::Source(s) => StepFailure::Action(s.to_string()),
        ActionError::Failed(m) => StepFailure::Action(m),
    }
}

fn run_one(
    step: &Step,
    inputs: BTreeMap<String, Vec<Digest>>,
    snaps: &BTreeMap<String, Snapshot>,
    cache: &Cache,
    keys: &Keyring,
    allow_invalid: bool,
) -> StepOutcome {
    let fail = |f: StepFailure| StepOutcome {
        status: StepStatus::Failed { error: f.to_string() },
        outputs: BTreeMap::new(),
        rejected: Vec::new(),
        failure: Some(f),
    };
    let rec = key_of(step, &inputs);
    let (status, outputs) = match cache.lookup(&rec.key) {
        Lookup::Hit(entry) => (StepStatus::Cached, entry.outputs),
        miss => {
            let reason = match miss {
                Lookup::OutputMissing(output) => Reason::OutputMissing { output },
                _ => Reason::diff(cache.last_record(&step.id).as_ref(), &rec),
            };
            match execute_action(step, &inputs, snaps, cache, keys, &rec) {
                Ok(outputs) => (StepStatus::Executed { reason }, outputs),
                Err(f) => {
                    if matches!(f, StepFailure::Corrupt(_)) {
                        // Check every input blob now (a bad one is deleted), so the
                        // next attempt rebuilds all bad producers at once, not one each.
                        for (name, list) in &step.inputs {
                            for (i, d) in list.iter().zip(&inputs[name]) {
                                if matches!(i, Input::Output { .. }) {
                                    let _ = cache.read(d);
                                }
                            }
                        }
                    }
                    return fail(f);
                }
            }
        }
    };
    let mut rejected = Vec::new();
    if let Some(r) = outputs.get("rejected") {
        match cache.read(&r.digest) {
            Ok(bytes) => match crate::actions::parse_rejected(&bytes) {
                Ok(list) => rejected = list,
                Err(m) => return fail(StepFailure::Action(m)),
            },
            Err(e) => return fail(failure_of(ActionError::Cache(e))),
        }
        if !rejected.is_empty() && !allow_invalid {
            return StepOutcome {
                status: StepStatus::Failed { error: StepFailure::Invalid(rejected.clone()).to_string() },
                outputs,
                failure: Some(StepFailure::Invalid(rejected.clone())),
                rejected,
            };
        }
    }
    StepOutcome { status, outputs, rejected, failure: None }
}

fn execute_action(
    step: &Step,
    inputs: &BTreeMap<String, Vec<Digest>>,
    snaps: &BTreeMap<String, Snapshot>,
    cache: &Cache,
    keys: &Keyring,
    rec: &StepRecord,
) -> Result<BTreeMap<String, OutputRef>, StepFailure> {
    let scratch = cache.scratch().map_err(|e| StepFailure::Action(e.to_string()))?;
    let mut data: BTreeMap<String, Vec<InputData<'_>>> = BTreeMap::new();
    for (name, list) in &step.inputs {
        let ds = &inputs[name];
        let v = list
            .iter()
            .zip(ds)
            .map(|(i, d)| match i {
                Input::Shard { source, index } => {
                    let snap = &snaps[source];
                    let shard = snap.shards.iter().find(|s| s.index == *index).expect("digest found above");
                    InputData::Shard { snap, shard }
                }
                Input::Output { .. } => InputData::Blob(*d),
            })
            .collect();
        data.insert(name.clone(), v);
    }
    let cx = ActionCx { params: &step.params, inputs: data, cache, out: scratch.path(), keys };
    step.action.run(&cx).map_err(failure_of)?;
    let mut outputs = BTreeMap::new();
    for name in step.action.outputs() {
        let p = scratch.path().join(name);
        if !p.is_file() {
            return Err(StepFailure::Action(format!(
                "step {}: action {} wrote no output {name:?}",
                step.id,
                step.action.id()
            )));
        }
        let (digest, size) = cache.put_file(&p).map_err(|e| StepFailure::Action(e.to_string()))?;
        outputs.insert(name.to_string(), OutputRef { digest, size });
    }
    let entry = AcEntry { key: rec.key, step: step.id.clone(), outputs: outputs.clone() };
    cache.commit(&entry).map_err(|e| StepFailure::Action(e.to_string()))?;
    cache.save_record(rec).map_err(|e| StepFailure::Action(e.to_string()))?;
    crate::crashpoint::hit("after-step");
    Ok(outputs)
}

/// Every step failed with `why`, none run: the pool could not start.
fn not_started(n: usize, why: &str) -> RunReport {
    let outcomes = (0..n)
        .map(|_| {
            let f = StepFailure::Action(why.to_string());
            Some(StepOutcome {
                status: StepStatus::Failed { error: f.to_string() },
                outputs: BTreeMap::new(),
                rejected: Vec::new(),
                failure: Some(f),
            })
        })
        .collect();
    RunReport { outcomes }
}

/// Run every step of `graph`.
pub fn execute(
    graph: &StepGraph,
    snaps: &BTreeMap<String, Snapshot>,
    cache: &Cache,
    keys: &Keyring,
    opts: &ExecOptions,
) -> RunReport {
    let g = &graph.g;
    let n = g.node_count();
    let edges: Vec<(usize, usize)> = g
        .edge_indices()
        .map(|e| {
            let (a, b) = g.edge_endpoints(e).expect("edge");
            (a.index(), b.index())
        })
        .collect();
    let mut queue = ReadyQueue::new(n, &edges);
    let mut outcomes: Vec<Option<StepOutcome>> = (0..n).map(|_| None).collect();
    let bar = if opts.progress {
        let b = indicatif::ProgressBar::new(n as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {wide_msg}",
            )
            .expect("template"),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let pool = match rayon::ThreadPoolBuilder::new().num_threads(opts.jobs.max(1)).build() {
        Ok(p) => p,
        Err(e) => {
            bar.finish_and_clear();
            return not_started(n, &format!("cannot start {} worker thread(s): {e}", opts.jobs));
        }
    };
    let (tx, rx) = mpsc::channel::<(usize, StepOutcome)>();
    pool.in_place_scope(|scope| {
        let mut running = 0usize;
        loop {
            while let Some(i) = queue.pop() {
                let step = &g[NodeIndex::new(i)];
                let lookup = |node: NodeIndex| outcomes[node.index()].as_ref().map(|o| o.outputs.clone());
                let inputs = input_digests(step, snaps, &lookup).expect("inputs of a ready step are known");
                let tx = tx.clone();
                let allow = opts.allow_invalid;
                running += 1;
                scope.spawn(move |_| {
                    // a panicking action must still report, or the driver would wait forever
                    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        run_one(step, inputs, snaps, cache, keys, allow)
                    }))
                    .unwrap_or_else(|_| {
                        let f = StepFailure::Action(format!(
                            "step {}: internal error (panic); please report",
                            step.id
                        ));
                        StepOutcome {
                            status: StepStatus::Failed { error: f.to_string() },
                            outputs: BTreeMap::new(),
                            rejected: Vec::new(),
                            failure: Some(f),
                        }
                    });
                    let _ = tx.send((i, out));
                });
            }
            if running == 0 {
                break;
            }
            let (i, out) = rx.recv().expect("workers send before exiting");
            running -= 1;
            let step = &g[NodeIndex::new(i)];
            bar.inc(1);
            bar.set_message(shown::name(&step.id).into_owned());
            if let StepStatus::Executed { reason } = &out.status {
                if opts.explain {
                    // ignore errors: the build goes on without its log reader
                    let line = format!("ran {}: {reason}\n", shown::name(&step.id));
                    bar.suspend(|| {
                        let _ = std::io::stderr().write_all(line.as_bytes());
                    });
                }
            }
            if out.failure.is_some() {
                for s in queue.fail(i) {
                    outcomes[s] = Some(StepOutcome {
                        status: StepStatus::Skipped,
                        outputs: BTreeMap::new(),
                        rejected: Vec::new(),
                        failure: None,
                    });
                }
                if !opts.keep_going {
                    queue.stop();
                }
            } else {
                queue.complete(i);
            }
            outcomes[i] = Some(out);
        }
    });
    for i in queue.not_started() {
        outcomes[i] = Some(StepOutcome {
            status: StepStatus::Skipped,
            outputs: BTreeMap::new(),
            rejected: Vec::new(),
            failure: None,
        });
    }
    bar.finish_and_clear();
    RunReport { outcomes }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_documents_are_shown_escaped() {
        let r = Rejected {
            source: "s".into(),
            path: "x\nerror: none\u{1b}[31m.json".into(),
            reason: "$.id: bad\nvalue".into(),
        };
        let text = StepFailure::Invalid(vec![r]).to_string();
        assert_eq!(text, "1 invalid document(s):\n  x\\nerror: none\\u{1b}[31m.json: $.id: bad\\nvalue");
    }

    #[test]
    fn a_pool_that_cannot_start_fails_every_step() {
        let r = not_started(3, "cannot start 9 worker thread(s): no");
        assert_eq!(r.failures().count(), 3);
        assert_eq!(r.count(|s| matches!(s, StepStatus::Failed { .. })), 3);
    }
}
