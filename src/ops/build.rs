//! `build`: snapshot sources, expand the graph, execute, publish.
//!
//! A corrupt blob found while running (or publishing) restarts the run
//! (at most the graph's depth + 2 times): the blob is gone by then, so its
//! producer misses the cache and rebuilds. A profile is published only if
//! every step feeding it succeeded.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use super::publish::{self, Published};
use super::runlog::{self, RunLog, StepLog};
use crate::cache::action::OutputRef;
use crate::cache::{Cache, CacheError};
use crate::error::Error;
use crate::exec::driver::{self, ExecOptions, RunReport, StepFailure, StepStatus};
use crate::graph::{self, StepGraph};
use crate::profile::{KeySpec, ProfileDef, Workspace};
use crate::rules;
use crate::signing::{self, Keyring, PublicKey};
use crate::sources::{self, Snapshot};

/// Each attempt repairs at least one level of corrupt blobs, so the
/// bound is the graph's depth plus one (publishing) plus one.
fn max_attempts(graph: &StepGraph) -> usize {
    let g = &graph.g;
    let mut depth = vec![1usize; g.node_count()];
    for n in petgraph::algo::toposort(g, None).expect("acyclic") {
        for m in g.neighbors_directed(n, petgraph::Direction::Outgoing) {
            depth[m.index()] = depth[m.index()].max(depth[n.index()] + 1);
        }
    }
    depth.into_iter().max().unwrap_or(0) + 2
}

#[derive(Clone, Debug)]
pub struct BuildOptions {
    pub profiles: Vec<String>,
    pub exec: ExecOptions,
}

#[derive(Debug, Serialize)]
pub struct StepCounts {
    pub total: usize,
    pub executed: usize,
    pub cached: usize,
    pub failed: usize,
    pub skipped: usize,
}

#[derive(Debug, Serialize)]
pub struct ProfileResult {
    pub out: PathBuf,
    /// "published", "up-to-date" or "not-published"
    pub status: String,
    pub rejected: usize,
}

#[derive(Debug, Serialize)]
pub struct BuildReport {
    pub ok: bool,
    #[serde(rename = "exitCode")]
    pub exit_code: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub steps: StepCounts,
    pub profiles: BTreeMap<String, ProfileResult>,
    pub inputs: InputCounts,
    pub attempts: usize,
    #[serde(rename = "stepLog")]
    pub step_log: Vec<StepLog>,
}

#[derive(Debug, Serialize)]
pub struct InputCounts {
    pub documents: usize,
    /// Files (or archives) read this run: 0 on a no-op.
    #[serde(rename = "filesRead")]
    pub files_read: usize,
}

/// Everything a run needs before executing: also used by `plan` and `graph`.
pub struct Prepared<'w> {
    pub ws: &'w Workspace,
    pub profiles: Vec<&'w ProfileDef>,
    pub cache: Cache,
    pub snaps: BTreeMap<String, Snapshot>,
    pub graph: StepGraph,
    /// The signers of the picked profiles (private keys stay in here).
    pub keys: Keyring,
}

/// Load every signing key the picked profiles use (each key once).
fn load_keys(profiles: &[&ProfileDef]) -> Result<(Keyring, BTreeMap<String, PublicKey>), Error> {
    let mut keys = Keyring::default();
    let mut loaded: BTreeMap<&KeySpec, PublicKey> = BTreeMap::new();
    let mut by_profile = BTreeMap::new();
    for p in profiles {
        let Some(spec) = &p.signing else { continue };
        let public = match loaded.get(spec) {
            Some(k) => *k,
            None => {
                let signer = match spec {
                    KeySpec::File(path) => signing::keys::load_file(path),
                    KeySpec::Env(var) => signing::keys::load_env(var),
                }
                .map_err(|e| Error::Key(format!("profile {}: {e}", p.name)))?;
                let k = keys.add(Arc::new(signer));
                loaded.insert(spec, k);
                k
            }
        };
        by_profile.insert(p.name.clone(), public);
    }
    Ok((keys, by_profile))
}

pub fn prepare<'w>(ws: &'w Workspace, names: &[String]) -> Result<Prepared<'w>, Error> {
    let rules = rules::load(&ws.root)?;
    let profiles = ws.pick(names).map_err(Error::Usage)?;
    let cache = Cache::open(&ws.cache_dir)?;
    let needed: BTreeSet<&String> = profiles.iter().flat_map(|p| &p.inputs).collect();
    let mut snaps = BTreeMap::new();
    for name in needed {
        snaps.insert(name.clone(), sources::snapshot(&ws.sources[name], &cache)?);
    }
    let (keys, signing) = load_keys(&profiles)?;
    let graph = graph::expand(ws, &profiles, &rules, &snaps, &signing)?;
    Ok(Prepared { ws, profiles, cache, snaps, graph, keys })
}

/// The published files of a profile, `Ok(None)` unless every publishing
/// step of it succeeded. Names that depend on content come from the
/// step's names output (a cache read that may find a corrupt blob).
fn final_files(
    graph: &StepGraph,
    report: &RunReport,
    profile: &str,
    cache: &Cache,
) -> Result<Option<Vec<(String, OutputRef)>>, CacheError> {
    let mut files = Vec::new();
    let Some(nodes) = graph.finals.get(profile) else { return Ok(None) };
    for node in nodes {
        let step = &graph.g[*node];
        let Some(out) = report.outcomes[node.index()].as_ref() else { return Ok(None) };
        if out.failure.is_some() || matches!(out.status, StepStatus::Skipped | StepStatus::Failed { .. }) {
            return Ok(None);
        }
        let names: serde_json::Map<String, serde_json::Value> = match step.action.names_output() {
            Some(n) => match out.outputs.get(n) {
                Some(o) => serde_json::from_slice(&cache.read(&o.digest)?).unwrap_or_default(),
                None => Default::default(),
            },
            None => Default::default(),
        };
        for (name, o) in &out.outputs {
            let published = step
                .action
                .published_name(name, &step.params)
                .or_else(|| names.get(name).and_then(|v| v.as_str()).map(str::to_string));
            if let Some(published) = published {
                files.push((published, o.clone()));
            }
        }
    }
    Ok(Some(files))
}

pub fn build(ws: &Workspace, opts: &BuildOptions) -> Result<BuildReport, Error> {
    let pool =
        rayon::ThreadPoolBuilder::new().num_threads(opts.exec.jobs.max(1)).build().expect("thread pool");
    let mut attempts = 0;
    loop {
        attempts += 1;
        // re-snapshot on every attempt: a corrupt archive pack is re-read
        let prep = pool.install(|| prepare(ws, &opts.profiles))?;
        let max = max_attempts(&prep.graph);
        let report = driver::execute(&prep.graph, &prep.snaps, &prep.cache, &prep.keys, &opts.exec);
        let corrupt = report.failures().any(|(_, f)| matches!(f, StepFailure::Corrupt(_)));
        if corrupt && attempts < max {
            tracing::warn!(
                "a cache blob was corrupt or missing; rebuilding its producer (attempt {})",
                attempts + 1
            );
            continue;
        }
        // make the run's cache writes durable before anything is published
        prep.cache.sync()?;
        let mut profiles = BTreeMap::new();
        let mut publish_corrupt = false;
        let mut publish_error = None;
        for p in &prep.profiles {
            let out = ws.out_dir.join(&p.name);
            let rejected = rejected_for(&prep, &report, &p.name);
            let status = match final_files(&prep.graph, &report, &p.name, &prep.cache) {
                Err(CacheError::Corrupt { .. } | CacheError::Missing { .. }) => {
                    publish_corrupt = true;
                    "not-published".into()
                }
                Err(e) => {
                    publish_error = Some(Error::Cache(e));
                    "not-published".into()
                }
                Ok(None) => "not-published".to_string(),
                Ok(Some(files)) => match publish::publish(&ws.out_dir, &p.name, &files, &prep.cache) {
                    Ok(Published::Published) => "published".into(),
                    Ok(Published::UpToDate) => "up-to-date".into(),
                    Err(Error::Cache(CacheError::Corrupt { .. } | CacheError::Missing { .. })) => {
                        publish_corrupt = true;
                        "not-published".into()
                    }
                    Err(e) => {
                        publish_error = Some(e);
                        "not-published".into()
                    }
                },
            };
            profiles.insert(p.name.clone(), ProfileResult { out, status, rejected });
        }
        if publish_corrupt && attempts < max {
            continue;
        }
        if publish_corrupt && publish_error.is_none() {
            publish_error = Some(Error::Publish(format!(
                "cache blobs kept failing verification after {attempts} attempts"
            )));
        }
        let step_log = runlog::step_log(&prep.graph, &report);
        let log = RunLog {
            profiles: prep.profiles.iter().map(|p| p.name.clone()).collect(),
            steps: step_log.clone(),
        };
        runlog::save(&prep.cache, &log)?;
        if let Some(e) = publish_error {
            return Err(e);
        }
        let (exit_code, error) = summarise(&prep, &report);
        return Ok(BuildReport {
            ok: exit_code == 0,
            exit_code,
            error,
            steps: StepCounts {
                total: prep.graph.g.node_count(),
                executed: report.count(|s| matches!(s, StepStatus::Executed { .. })),
                cached: report.count(|s| matches!(s, StepStatus::Cached)),
                failed: report.count(|s| matches!(s, StepStatus::Failed { .. })),
                skipped: report.count(|s| matches!(s, StepStatus::Skipped)),
            },
            profiles,
            inputs: InputCounts {
                documents: prep.snaps.values().map(|s| s.documents).sum(),
                files_read: prep.snaps.values().map(|s| s.files_read).sum(),
            },
            attempts,
            step_log,
        });
    }
}

fn rejected_for(prep: &Prepared<'_>, report: &RunReport, profile: &str) -> usize {
    prep.graph
        .g
        .node_indices()
        .filter(|n| prep.graph.g[*n].profiles.iter().any(|p| p == profile))
        .filter_map(|n| report.outcomes[n.index()].as_ref())
        .map(|o| o.rejected.len())
        .sum()
}

fn summarise(prep: &Prepared<'_>, report: &RunReport) -> (i32, Option<String>) {
    let mut invalid = Vec::new();
    let mut other = Vec::new();
    let mut source = Vec::new();
    for (i, f) in report.failures() {
        let id = &prep.graph.g[petgraph::graph::NodeIndex::new(i)].id;
        match f {
            StepFailure::Invalid(list) => {
                invalid.extend(list.iter().map(|r| format!("{}: {}", r.path, r.reason)))
            }
            StepFailure::Source(m) => source.push(format!("step {id}: {m}")),
            StepFailure::Action(m) | StepFailure::Corrupt(m) => other.push(format!("step {id}: {m}")),
        }
    }
    if !other.is_empty() {
        other.extend(source);
        other.extend(invalid);
        return (1, Some(other.join("\n")));
    }
    if !invalid.is_empty() || !source.is_empty() {
        invalid.sort();
        source.extend(invalid);
        return (
            2,
            Some(format!("invalid input (nothing published for the affected profiles; --allow-invalid skips invalid documents):\n  {}", source.join("\n  "))),
        );
    }
    (0, None)
}
