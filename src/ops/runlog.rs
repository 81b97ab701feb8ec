//! Run records: `cache/runs/<id>.json`, what one build ran, why, and how
//! long each step took. Read by `explain` (`--run ID`, default the latest).
//! Not an output: nothing in it enters a key or an export.
//!
//! Invariants: each build writes its own record under a fresh id
//! (`<unix ms, 13 digits>-<pid>-<8 random hex>`: unique across concurrent
//! builds and processes, and sorting by id sorts by start time), so two
//! builds on one cache never overwrite each other's record. `runs/latest`
//! names the record written last (replaced atomically: the last writer
//! wins); without it the newest id is the latest. Only the newest
//! [`KEEP_RUNS`] records are kept. The cache layout is reached only
//! through [`runs_dir`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cache::{Cache, CacheError};
use crate::exec::driver::{RunReport, StepStatus};
use crate::exec::events::Finish;
use crate::formats::manifest::Warning;
use crate::graph::StepGraph;

/// How many run records a cache keeps (older ones are removed by `save`).
pub const KEEP_RUNS: usize = 64;

/// A run id: safe as a file name, ordered by start time.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(String);

impl RunId {
    /// A fresh id for a run starting now.
    pub fn new() -> RunId {
        let ms =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let mut r = [0u8; 4];
        // no randomness available: time and pid still tell processes apart
        let _ = getrandom::getrandom(&mut r);
        RunId(format!("{ms:013}-{}-{}", std::process::id(), hex(&r)))
    }

    /// An id as given on the command line: letters, digits and `-` only.
    pub fn parse(s: &str) -> Option<RunId> {
        let ok = !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        ok.then(|| RunId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for RunId {
    fn default() -> Self {
        RunId::new()
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepLog {
    pub id: String,
    pub action: String,
    /// executed | cached | failed | skipped
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<crate::exec::reason::Reason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Wall time of the step (cache check included); 0 if it never started.
    #[serde(rename = "durationMs", default)]
    pub duration_ms: u64,
}

/// A warning and the step that wrote it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StepWarning {
    pub step: String,
    #[serde(flatten)]
    pub warning: Warning,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunLog {
    /// Absent in records written before run ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RunId>,
    pub profiles: Vec<String>,
    pub steps: Vec<StepLog>,
    #[serde(default)]
    pub warnings: Vec<StepWarning>,
}

pub fn step_log(graph: &StepGraph, report: &RunReport) -> Vec<StepLog> {
    graph
        .g
        .node_indices()
        .map(|n| {
            let step = &graph.g[n];
            let out = report.outcomes[n.index()].as_ref();
            let (status, reason, error) = match out.map(|o| &o.status) {
                Some(StepStatus::Executed { reason }) => (Finish::Executed, Some(reason.clone()), None),
                Some(StepStatus::Cached) => (Finish::Cached, None, None),
                Some(StepStatus::Failed { error }) => (Finish::Failed, None, Some(error.clone())),
                Some(StepStatus::Skipped) | None => (Finish::Skipped, None, None),
            };
            StepLog {
                id: step.id.clone(),
                action: step.action.id().into(),
                status: status.as_str().into(),
                reason,
                error,
                duration_ms: out.map_or(0, |o| o.duration_ms),
            }
        })
        .collect()
}

/// Every warning of the run's steps, sorted.
pub fn warnings(graph: &StepGraph, report: &RunReport) -> Vec<StepWarning> {
    let mut all: Vec<StepWarning> = graph
        .g
        .node_indices()
        .filter_map(|n| Some((&graph.g[n].id, report.outcomes[n.index()].as_ref()?)))
        .flat_map(|(id, o)| o.warnings.iter().map(|w| StepWarning { step: id.clone(), warning: w.clone() }))
        .collect();
    all.sort();
    all
}

/// The one place that knows where run records live in the cache.
fn runs_dir(cache: &Cache) -> PathBuf {
    cache.runs_dir()
}

/// Write `log` as `runs/<id>.json`, point `runs/latest` at it, and remove
/// records beyond the newest [`KEEP_RUNS`].
pub fn save(cache: &Cache, id: &RunId, log: &RunLog) -> Result<(), CacheError> {
    let dir = runs_dir(cache);
    cache.write_atomic(
        &dir.join(format!("{id}.json")),
        &serde_json::to_vec_pretty(log).expect("serialisable"),
    )?;
    cache.write_atomic(&dir.join("latest"), id.as_str().as_bytes())?;
    let ids = list(cache);
    if ids.len() > KEEP_RUNS {
        for old in &ids[..ids.len() - KEEP_RUNS] {
            // another build may have removed it first
            let _ = std::fs::remove_file(dir.join(format!("{old}.json")));
        }
    }
    Ok(())
}

/// The ids of every run record, oldest first.
pub fn list(cache: &Cache) -> Vec<RunId> {
    let Ok(rd) = std::fs::read_dir(runs_dir(cache)) else { return Vec::new() };
    let mut ids: Vec<RunId> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".json").and_then(RunId::parse))
        .filter(|id| id.as_str() != "last")
        .collect();
    ids.sort();
    ids
}

/// The latest run: the one `runs/latest` names, else the newest id, else
/// a `last.json` written before run ids.
pub fn latest(cache: &Cache) -> Option<RunLog> {
    let dir = runs_dir(cache);
    let named = std::fs::read_to_string(dir.join("latest")).ok().and_then(|s| RunId::parse(s.trim()));
    if let Some(log) = named.and_then(|id| load(cache, &id)) {
        return Some(log);
    }
    if let Some(log) = list(cache).last().and_then(|id| load(cache, id)) {
        return Some(log);
    }
    serde_json::from_slice(&std::fs::read(dir.join("last.json")).ok()?).ok()
}

/// The record of run `id`, if the cache still holds it.
pub fn load(cache: &Cache, id: &RunId) -> Option<RunLog> {
    let bytes = std::fs::read(runs_dir(cache).join(format!("{id}.json"))).ok()?;
    let mut log: RunLog = serde_json::from_slice(&bytes).ok()?;
    log.id.get_or_insert_with(|| id.clone());
    Some(log)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_file_names_in_time_order() {
        let a = RunId::new();
        let b = RunId::new();
        assert_ne!(a, b, "random part");
        assert_eq!(RunId::parse(a.as_str()), Some(a.clone()));
        assert!(
            RunId::parse("../x").is_none() && RunId::parse("").is_none() && RunId::parse("a/b").is_none()
        );
        let old = RunId::parse("0000000000001-1-00000000").unwrap();
        assert!(old < a);
    }
}
