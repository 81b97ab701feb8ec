//! Steps that read their own live export (`{export.previous}`, e.g. a
//! mirror's generation and TUF roots) would see the export they just
//! published on the next build, and re-run only to make the same bytes:
//! a no-op build after every published change would not be a no-op.
//!
//! After such a profile is published, when its kind vouches that its
//! steps given the state of the export they just made make that export
//! again (`Kind::previous_is_fixpoint`), each executed step reading
//! `{export.previous}` has its outputs also recorded under the key the
//! next build will ask for: the same step with the new export's
//! `{generation, state}`. Invariant: only ever an extra action-cache
//! entry naming blobs already stored; `build --check` re-executes steps
//! and compares, so a wrong fixpoint claim is caught there.

use std::collections::BTreeMap;

use petgraph::graph::NodeIndex;

use super::build::Prepared;
use super::generations;
use crate::cache::action::{AcEntry, OutputRef};
use crate::cache::CacheError;
use crate::exec::driver::{self, RunReport, StepStatus};
use crate::profile::ProfileDef;

/// The rule variable whose steps this is about.
const PREVIOUS: &str = "export.previous";

/// Record the next build's keys of `profile`'s steps that read
/// `{export.previous}` (after `profile` was published). Returns how many
/// entries were written.
pub(crate) fn record_next_keys(
    prep: &Prepared<'_>,
    report: &RunReport,
    profile: &ProfileDef,
) -> Result<usize, CacheError> {
    let Some(kind) = crate::kinds::lookup(&profile.kind) else { return Ok(0) };
    let export = prep.ws.out_dir.join(&profile.name);
    if !kind.previous_is_fixpoint(&export) {
        return Ok(0);
    }
    let Some(now) = generations::carried(prep.ws, &[profile]).remove(&profile.name) else { return Ok(0) };
    let outputs = |node: NodeIndex| -> Option<BTreeMap<String, OutputRef>> {
        let out = report.outcomes[node.index()].as_ref()?;
        (out.failure.is_none() && matches!(out.status, StepStatus::Executed { .. } | StepStatus::Cached))
            .then(|| out.outputs.clone())
    };
    let mut written = 0;
    for node in prep.graph.g.node_indices() {
        let step = &prep.graph.g[node];
        if !step.profiles.iter().any(|p| p == &profile.name) {
            continue;
        }
        let reads: Vec<&String> = step
            .param_vars
            .iter()
            .filter(|(_, vars)| vars.iter().map(String::as_str).eq([PREVIOUS]))
            .map(|(k, _)| k)
            .collect();
        let executed = report.outcomes[node.index()]
            .as_ref()
            .is_some_and(|o| o.failure.is_none() && matches!(o.status, StepStatus::Executed { .. }));
        if reads.is_empty() || !executed {
            continue;
        }
        let (Some(done), Some(inputs)) = (outputs(node), driver::input_digests(step, &prep.snaps, &outputs))
        else {
            continue;
        };
        let mut next = step.clone();
        for k in reads {
            next.params[k.as_str()] = now.clone();
        }
        if next.params == step.params {
            continue;
        }
        let rec = driver::key_of(&next, &inputs);
        prep.cache.commit(&AcEntry { key: rec.key, step: step.id.clone(), outputs: done })?;
        written += 1;
    }
    Ok(written)
}
