//! The run log: `cache/runs/last.json`, what the last build ran and why.
//! Read by `explain`. Not an output: nothing in it enters a key or an export.

use serde::{Deserialize, Serialize};

use crate::cache::{Cache, CacheError};
use crate::exec::driver::{RunReport, StepStatus};
use crate::graph::StepGraph;

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
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunLog {
    pub profiles: Vec<String>,
    pub steps: Vec<StepLog>,
}

pub fn step_log(graph: &StepGraph, report: &RunReport) -> Vec<StepLog> {
    graph
        .g
        .node_indices()
        .map(|n| {
            let step = &graph.g[n];
            let (status, reason, error) = match report.outcomes[n.index()].as_ref().map(|o| &o.status) {
                Some(StepStatus::Executed { reason }) => ("executed", Some(reason.clone()), None),
                Some(StepStatus::Cached) => ("cached", None, None),
                Some(StepStatus::Failed { error }) => ("failed", None, Some(error.clone())),
                Some(StepStatus::Skipped) | None => ("skipped", None, None),
            };
            StepLog {
                id: step.id.clone(),
                action: step.action.id().into(),
                status: status.into(),
                reason,
                error,
            }
        })
        .collect()
}

pub fn save(cache: &Cache, log: &RunLog) -> Result<(), CacheError> {
    let path = cache.runs_dir().join("last.json");
    cache.write_atomic(&path, &serde_json::to_vec_pretty(log).expect("serialisable"))
}

pub fn load(cache: &Cache) -> Option<RunLog> {
    let bytes = std::fs::read(cache.runs_dir().join("last.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}
