//! The driver: runs a [`StepGraph`] on the caller's rayon pool (one pool
//! per build, started by `ops::build`). The calling thread drives the
//! queue and must not be a worker of that pool (a one-thread pool would
//! wait on itself).
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
//! A step with an output named `warnings` lists parts of documents it left
//! out; the driver reads it whether the step executed or was cached (as
//! cargo replays a cached crate's compiler warnings), keeps it in the
//! outcome and emits one [`Event::Warning`] each.
//!
//! The driver never prints: it reports to an [`EventSink`] (step started
//! on a worker, step finished with its duration and reason on the main
//! thread, in completion order). It never panics on its environment (a
//! pool that cannot start is the caller's error, exit 1). Names from input in
//! failure texts go through [`crate::shown`].

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Instant;

use petgraph::graph::NodeIndex;
use serde::Serialize;

use super::events::{Event, EventSink, Finish};
use super::queue::ReadyQueue;
use super::reason::Reason;
use crate::actions::{ActionCx, ActionError, InputData};
use crate::cache::action::{AcEntry, Lookup, OutputRef, StepRecord};
use crate::cache::{Cache, CacheError};
use crate::digest::Digest;
use crate::formats::manifest::{Rejected, Warning};
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
    /// The step's `warnings` output (executed or cached alike).
    pub warnings: Vec<Warning>,
    pub failure: Option<StepFailure>,
    /// Wall time of the step on its worker (cache check included); 0 when it never started.
    pub duration_ms: u64,
}

impl StepStatus {
    pub fn finish(&self) -> Finish {
        match self {
            StepStatus::Executed { .. } => Finish::Executed,
            StepStatus::Cached => Finish::Cached,
            StepStatus::Failed { .. } => Finish::Failed,
            StepStatus::Skipped => Finish::Skipped,
        }
    }
}

impl StepOutcome {
    /// A step that ends without outputs: failed with `f`, or skipped (`None`).
    fn empty(failure: Option<StepFailure>) -> StepOutcome {
        StepOutcome {
            status: match &failure {
                Some(f) => StepStatus::Failed { error: f.to_string() },
                None => StepStatus::Skipped,
            },
            outputs: BTreeMap::new(),
            rejected: Vec::new(),
            warnings: Vec::new(),
            failure,
            duration_ms: 0,
        }
    }
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
        param_digests: step
            .params
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), key::params_digest(v))).collect())
            .unwrap_or_default(),
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
    let fail = |f: StepFailure| StepOutcome::empty(Some(f));
    let rec = key_of(step, &inputs);
    let (status, outputs) = match cache.lookup(&rec.key) {
        Lookup::Hit(entry) => (StepStatus::Cached, entry.outputs),
        miss => {
            let reason = match miss {
                Lookup::OutputMissing(output) => Reason::OutputMissing { output },
                _ => Reason::diff(cache.last_record(&step.id).as_ref(), &rec, &step.param_vars),
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
    let mut warnings = Vec::new();
    if let Some(w) = outputs.get("warnings") {
        match cache.read(&w.digest) {
            Ok(bytes) => match Warning::read_list(&bytes) {
                Ok(list) => warnings = list,
                Err(m) => return fail(StepFailure::Action(m)),
            },
            Err(e) => return fail(failure_of(ActionError::Cache(e))),
        }
    }
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
                warnings,
                duration_ms: 0,
            };
        }
    }
    StepOutcome { status, outputs, rejected, warnings, failure: None, duration_ms: 0 }
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
    let cx = ActionCx {
        params: &step.params,
        inputs: data,
        cache,
        out: scratch.path(),
        keys,
        hashed: Default::default(),
    };
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
        let put = match cx.hashed_at(&p) {
            Some(h) => cache.put_hashed(&h),
            None => cache.put_file(&p),
        };
        let (digest, size) = put.map_err(|e| StepFailure::Action(e.to_string()))?;
        outputs.insert(name.to_string(), OutputRef { digest, size });
    }
    if step.action.tree() {
        tree_outputs(step, &cx, scratch.path(), &mut outputs)?;
    }
    let entry = AcEntry { key: rec.key, step: step.id.clone(), outputs: outputs.clone() };
    cache.commit(&entry).map_err(|e| StepFailure::Action(e.to_string()))?;
    cache.save_record(rec).map_err(|e| StepFailure::Action(e.to_string()))?;
    crate::crashpoint::hit("after-step");
    Ok(outputs)
}

/// The outputs of a tree action (see [`crate::actions::Action::tree`]):
/// every file under `out/tree/`, put into the CAS, and every input blob
/// named in `out/links.json`. A link to a blob that is not one of the
/// step's inputs, or a name outside the tree, fails the step.
fn tree_outputs(
    step: &crate::graph::Step,
    cx: &ActionCx<'_>,
    scratch: &std::path::Path,
    outputs: &mut BTreeMap<String, OutputRef>,
) -> Result<(), StepFailure> {
    use crate::actions::TREE_PREFIX;
    let fail = |m: String| StepFailure::Action(format!("step {}: {m}", step.id));
    let root = scratch.join("tree");
    if root.is_dir() {
        for e in walkdir::WalkDir::new(&root).sort_by_file_name() {
            let e = e.map_err(|e| fail(e.to_string()))?;
            if !e.file_type().is_file() {
                continue;
            }
            let rel = e.path().strip_prefix(&root).expect("below root").to_string_lossy().into_owned();
            let put = match cx.hashed_at(e.path()) {
                Some(h) => cx.cache.put_hashed(&h),
                None => cx.cache.put_file(e.path()),
            };
            let (digest, size) = put.map_err(|e| fail(e.to_string()))?;
            outputs.insert(format!("{TREE_PREFIX}{rel}"), OutputRef { digest, size });
        }
    }
    let links = scratch.join("links.json");
    if links.is_file() {
        let bytes = std::fs::read(&links).map_err(|e| fail(format!("links.json: {e}")))?;
        let map: BTreeMap<String, String> =
            serde_json::from_slice(&bytes).map_err(|e| fail(format!("links.json: {e}")))?;
        let inputs: std::collections::HashSet<Digest> = cx
            .inputs
            .values()
            .flatten()
            .filter_map(|i| if let InputData::Blob(d) = i { Some(*d) } else { None })
            .collect();
        for (path, hex) in map {
            let digest = Digest::parse_hex(&hex)
                .filter(|d| inputs.contains(d))
                .ok_or_else(|| fail(format!("links.json: {path} names {hex}, not an input blob")))?;
            let blob = cx.cache.open_blob(&digest).map_err(|e| fail(e.to_string()))?;
            let size = blob.metadata().map_err(|e| fail(format!("{path}: {e}")))?.len();
            outputs.insert(format!("{TREE_PREFIX}{path}"), OutputRef { digest, size });
        }
    }
    Ok(())
}

/// Run every step of `graph`, reporting to `events`.
pub fn execute(
    graph: &StepGraph,
    snaps: &BTreeMap<String, Snapshot>,
    cache: &Cache,
    keys: &Keyring,
    opts: &ExecOptions,
    events: &dyn EventSink,
    pool: &rayon::ThreadPool,
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
    let (tx, rx) = mpsc::channel::<(usize, StepOutcome)>();
    // the caller's pool (one per build); this thread drives, never a worker
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
                    events.emit(Event::StepStarted {
                        step: step.id.clone(),
                        action: step.action.id().to_string(),
                    });
                    let started = Instant::now();
                    // a panicking action must still report, or the driver would wait forever
                    let mut out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        run_one(step, inputs, snaps, cache, keys, allow)
                    }))
                    .unwrap_or_else(|_| {
                        StepOutcome::empty(Some(StepFailure::Action(format!(
                            "step {}: internal error (panic); please report",
                            step.id
                        ))))
                    });
                    out.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                    let _ = tx.send((i, out));
                });
            }
            if running == 0 {
                break;
            }
            let (i, out) = rx.recv().expect("workers send before exiting");
            running -= 1;
            finished(events, &g[NodeIndex::new(i)], &out);
            if out.failure.is_some() {
                for s in queue.fail(i) {
                    let skipped = StepOutcome::empty(None);
                    finished(events, &g[NodeIndex::new(s)], &skipped);
                    outcomes[s] = Some(skipped);
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
        let skipped = StepOutcome::empty(None);
        finished(events, &g[NodeIndex::new(i)], &skipped);
        outcomes[i] = Some(skipped);
    }
    RunReport { outcomes }
}

/// The events of a step that ended: its warnings, then `step-finished`.
fn finished(events: &dyn EventSink, step: &Step, out: &StepOutcome) {
    for w in &out.warnings {
        events.emit(Event::Warning { step: step.id.clone(), warning: w.clone() });
    }
    let (reason, error) = match &out.status {
        StepStatus::Executed { reason } => (Some(reason.clone()), None),
        StepStatus::Failed { error } => (None, Some(error.clone())),
        StepStatus::Cached | StepStatus::Skipped => (None, None),
    };
    events.emit(Event::StepFinished {
        step: step.id.clone(),
        action: step.action.id().to_string(),
        status: out.status.finish(),
        reason,
        error,
        duration_ms: out.duration_ms,
    });
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
}
