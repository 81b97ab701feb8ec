//! `plan`: what a build would run and why, without running anything.
//!
//! Walks the graph in dependency order. A step whose input digests are all
//! known (sources, or upstream steps that would be cached) gets its real
//! key: `cached` on a hit, `run` with its reason on a miss. A step below a
//! step that would run is `pending`: it runs unless early cutoff finds the
//! upstream output unchanged.
//!
//! A profile whose publishing steps would all be cached is still work when
//! its export under `out/` differs from those outputs (edited, deleted, or
//! published from other inputs since): it gets a `publish` item, so
//! "nothing to do" means the build would change nothing at all.

use std::collections::BTreeMap;

use petgraph::graph::NodeIndex;
use serde::Serialize;

use super::build::{prepare, published_files};
use super::publish;
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
#[serde(untagged)]
pub enum PlanItem {
    Step {
        id: String,
        #[serde(flatten)]
        plan: StepPlan,
    },
    /// The profile's steps are all cached, but `out/<profile>` does not
    /// hold their outputs: the build republishes it from the cache.
    Publish {
        profile: String,
        /// always `"publish"`
        plan: &'static str,
        out: std::path::PathBuf,
    },
}

impl PlanItem {
    /// Whether a build would do something for this item.
    pub fn is_work(&self) -> bool {
        !matches!(self, PlanItem::Step { plan: StepPlan::Cached, .. })
    }
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
                        reason: Reason::diff(
                            prep.cache.last_record(&step.id).as_ref(),
                            &rec,
                            &step.param_vars,
                        ),
                    },
                }
            }
        };
        items.insert(n, PlanItem::Step { id: step.id.clone(), plan });
    }
    let mut list: Vec<PlanItem> = items.into_values().collect();
    for p in &prep.profiles {
        let outputs = |node: NodeIndex| known.get(&node).cloned();
        // a corrupt names blob: the build would rebuild and publish
        let files = published_files(&prep.graph, &p.name, &prep.cache, &outputs).unwrap_or(None);
        let out = ws.out_dir.join(&p.name);
        if let Some(files) = files {
            if !publish::up_to_date(&out, &files) {
                list.push(PlanItem::Publish { profile: p.name.clone(), plan: "publish", out });
            }
        }
    }
    Ok(list)
}
