//! `plan`: what a build would run and why, without running anything.
//!
//! Walks the graph in dependency order. A step whose input digests are all
//! known (sources, or upstream steps that would be cached) gets its real
//! key: `cached` on a hit, `run` with its reason on a miss. A step below a
//! step that would run is `pending`: it runs unless early cutoff finds the
//! upstream output unchanged.

use std::collections::BTreeMap;

use petgraph::graph::NodeIndex;
use serde::Serialize;

use super::build::prepare;
use crate::cache::action::{Lookup, OutputRef};
use crate::error::Error;
use crate::exec::driver::{input_digests, key_of};
use crate::exec::reason::Reason;
use crate::profile::Workspace;

#[derive(Debug, Serialize)]
#[serde(tag = "plan", rename_all = "kebab-case")]
pub enum StepPlan {
    Cached,
    Run { reason: Reason },
    Pending { after: Vec<String> },
}

#[derive(Debug, Serialize)]
pub struct PlanItem {
    pub id: String,
    #[serde(flatten)]
    pub plan: StepPlan,
}

pub fn plan(ws: &Workspace, profiles: &[String]) -> Result<Vec<PlanItem>, Error> {
    let prep = prepare(ws, profiles)?;
    let g = &prep.graph.g;
    let order = petgraph::algo::toposort(g, None).expect("expanded graphs are acyclic");
    let mut known: BTreeMap<NodeIndex, BTreeMap<String, OutputRef>> = BTreeMap::new();
    let mut items: BTreeMap<NodeIndex, PlanItem> = BTreeMap::new();
    for n in order {
        let step = &g[n];
        let lookup = |node: NodeIndex| known.get(&node).cloned();
        let plan = match input_digests(step, &prep.snaps, &lookup) {
            None => {
                let mut after: Vec<String> = g
                    .neighbors_directed(n, petgraph::Direction::Incoming)
                    .filter(|u| !known.contains_key(u))
                    .map(|u| g[u].id.clone())
                    .collect();
                after.sort();
                after.dedup();
                StepPlan::Pending { after }
            }
            Some(inputs) => {
                let rec = key_of(step, &inputs);
                match prep.cache.lookup(&rec.key) {
                    Lookup::Hit(entry) => {
                        known.insert(n, entry.outputs);
                        StepPlan::Cached
                    }
                    Lookup::OutputMissing(output) => {
                        StepPlan::Run { reason: Reason::OutputMissing { output } }
                    }
                    Lookup::Miss => StepPlan::Run {
                        reason: Reason::diff(prep.cache.last_record(&step.id).as_ref(), &rec),
                    },
                }
            }
        };
        items.insert(n, PlanItem { id: step.id.clone(), plan });
    }
    Ok(items.into_values().collect())
}
