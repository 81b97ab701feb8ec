//! `build`: snapshot sources, expand the graph, execute, publish.
//!
//! A corrupt blob found while running (or publishing) restarts the run
//! (at most the graph's depth + 2 times): the blob is gone by then, so its
//! producer misses the cache and rebuilds. A profile is published only if
//! every step feeding it succeeded.
//!
//! Before anything runs, [`super::layout::check`] refuses a layout where
//! publishing could replace or feed something else (exit 2).
//!
//! Once the profiles are picked, every exit returns a [`BuildReport`]
//! naming each profile's status (published, up-to-date, not-published,
//! failed with its error), so a partly failed publish is reported as such:
//! a failure to publish one profile does not stop the others.
//!
//! Nothing here prints: progress goes to the caller's [`EventSink`] (steps
//! from the driver, then one `published` event per profile published or
//! found up to date). Each run that gets as far as executing writes its own
//! run record ([`runlog`]); its id and the run's warnings (replayed from the
//! cache for cached steps) are in the report.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use petgraph::graph::NodeIndex;
use serde::Serialize;

use super::layout;
use super::publish::{self, Published};
use super::runlog::{self, RunId, RunLog, StepLog, StepWarning};
use crate::cache::action::OutputRef;
use crate::cache::{Cache, CacheError};
use crate::error::Error;
use crate::exec::driver::{self, ExecOptions, RunReport, StepFailure, StepStatus};
use crate::exec::events::{Event, EventSink, PublishOutcome};
use crate::graph::{self, StepGraph};
use crate::profile::{KeySpec, ProfileDef, Workspace};
use crate::rules;
use crate::shown;
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

#[derive(Debug, Default, Serialize)]
pub struct StepCounts {
    pub total: usize,
    pub executed: usize,
    pub cached: usize,
    pub failed: usize,
    pub skipped: usize,
}

/// What this run did to a profile's export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProfileStatus {
    /// The export was replaced (or created) in this run.
    Published,
    /// The live export already held these files; left untouched.
    UpToDate,
    /// Not attempted: a step feeding it failed, or the run stopped first.
    NotPublished,
    /// Publishing was attempted and failed (see `error`); the previous
    /// export, if any, is still live.
    Failed,
    /// A derived profile (a mirror delta) with nothing to derive from
    /// yet, such as the first build of its base: not an error.
    NoBase,
}

impl fmt::Display for ProfileStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProfileStatus::Published => "published",
            ProfileStatus::UpToDate => "up-to-date",
            ProfileStatus::NotPublished => "not-published",
            ProfileStatus::Failed => "failed",
            ProfileStatus::NoBase => "no-base",
        })
    }
}

#[derive(Debug, Serialize)]
pub struct ProfileResult {
    pub out: PathBuf,
    pub status: ProfileStatus,
    pub rejected: usize,
    /// Why publishing failed (only with status `failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct BuildReport {
    /// The run record of this build (`explain --run ID`); absent when the
    /// build stopped before running any step.
    #[serde(rename = "runId", skip_serializing_if = "Option::is_none")]
    pub run_id: Option<RunId>,
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
    /// Every warning of the run's steps, executed or cached.
    pub warnings: Vec<StepWarning>,
}

#[derive(Debug, Default, Serialize)]
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
    /// Derived profiles left out: nothing to derive them from yet (why).
    pub no_base: Vec<(String, String)>,
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

/// Which profiles a [`prepare_phase`] covers: a build runs in two phases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Profiles made from sources: the picked ones, and the bases of the
    /// picked derived ones (`kinds::Derived`).
    Sources,
    /// The picked derived profiles, once their bases are published.
    Derived,
}

/// The profiles of `phase` among `picked`, in pick order.
fn phase_profiles<'w>(
    ws: &'w Workspace,
    picked: &[&'w ProfileDef],
    phase: Phase,
) -> Result<Vec<&'w ProfileDef>, Error> {
    let derived = |p: &ProfileDef| crate::kinds::lookup(&p.kind).and_then(|k| k.derived());
    let mut out: Vec<&ProfileDef> = Vec::new();
    for p in picked {
        match (phase, derived(p)) {
            (Phase::Sources, None) | (Phase::Derived, Some(_)) => out.push(p),
            _ => {}
        }
    }
    if phase == Phase::Sources {
        for p in picked {
            let Some(d) = derived(p) else { continue };
            for b in d.bases(ws, p).map_err(|e| Error::Usage(format!("profile {}: {e}", p.name)))? {
                let base = ws.profiles.get(&b).ok_or_else(|| {
                    Error::Usage(format!(
                        "profile {}: its base names no profile {b:?} of this workspace",
                        p.name
                    ))
                })?;
                if derived(base).is_some() {
                    return Err(Error::Usage(format!(
                        "profile {}: its base {b:?} is itself made from exports",
                        p.name
                    )));
                }
                if !out.iter().any(|q| q.name == base.name) {
                    out.push(base);
                }
            }
        }
    }
    Ok(out)
}

/// Replace every `{"key-file": path}` in `v` by the public key of that
/// file, loaded into `keys` (see `kinds::OptionSpec::Custom`); whether any was.
fn resolve_key_files(
    ws: &Workspace,
    keys: &mut Keyring,
    profile: &str,
    v: &mut serde_json::Value,
) -> Result<bool, Error> {
    use serde_json::Value;
    match v {
        Value::Object(m) if m.len() == 1 && m.contains_key("key-file") => {
            let rel = m["key-file"].as_str().unwrap_or_default().to_string();
            let signer = signing::keys::load_file(&ws.root.join(&rel))
                .map_err(|e| Error::Key(format!("profile {profile}: {e}")))?;
            *v = keys.add(Arc::new(signer)).describe();
            Ok(true)
        }
        Value::Object(m) => {
            let mut any = false;
            for x in m.values_mut() {
                any |= resolve_key_files(ws, keys, profile, x)?;
            }
            Ok(any)
        }
        Value::Array(a) => {
            let mut any = false;
            for x in a {
                any |= resolve_key_files(ws, keys, profile, x)?;
            }
            Ok(any)
        }
        _ => Ok(false),
    }
}

pub fn prepare<'w>(ws: &'w Workspace, names: &[String]) -> Result<Prepared<'w>, Error> {
    prepare_phase(ws, names, Phase::Sources)
}

pub fn prepare_phase<'w>(ws: &'w Workspace, names: &[String], phase: Phase) -> Result<Prepared<'w>, Error> {
    let rules = rules::load(&ws.root)?;
    let picked = ws.pick(names).map_err(Error::Usage)?;
    let mut profiles = phase_profiles(ws, &picked, phase)?;
    let cache = Cache::open(&ws.cache_dir)?;
    let mut exports =
        graph::ExportVars { previous: super::generations::carried(ws, &profiles), ..Default::default() };
    let mut no_base = Vec::new();
    for p in &profiles {
        let Some(d) = crate::kinds::lookup(&p.kind).and_then(|k| k.derived()) else { continue };
        match d.input(ws, p, &cache) {
            Ok(v) => {
                exports.derived.insert(p.name.clone(), v);
            }
            Err(crate::kinds::DeriveError::NoBase(why)) => no_base.push((p.name.clone(), why)),
            Err(e) => return Err(Error::Usage(format!("profile {}: {e}", p.name))),
        }
    }
    profiles.retain(|p| !no_base.iter().any(|(n, _)| *n == p.name));
    let needed: BTreeSet<&String> = profiles.iter().flat_map(|p| &p.inputs).collect();
    // sources are snapshotted side by side (each walk is parallel too): a
    // nightly that touched every source rewrites each one's stat table
    let snaps: BTreeMap<String, Snapshot> = {
        use rayon::prelude::*;
        let needed: Vec<&String> = needed.into_iter().collect();
        needed
            .par_iter()
            .map(|name| sources::snapshot(&ws.sources[*name], &cache).map(|s| ((*name).clone(), s)))
            .collect::<Result<_, _>>()?
    };
    let (mut keys, signing) = load_keys(&profiles)?;
    for p in &profiles {
        let Some(kind) = crate::kinds::lookup(&p.kind) else { continue };
        let Ok(mut values) = crate::kinds::option_values(kind, p, &ws.root) else { continue };
        let mut changed = false;
        for v in values.values_mut() {
            changed |= resolve_key_files(ws, &mut keys, &p.name, v)?;
        }
        if changed {
            exports.options.insert(p.name.clone(), values);
        }
    }
    let graph = graph::expand(ws, &profiles, &rules, &snaps, &signing, &exports)?;
    Ok(Prepared { ws, profiles, cache, snaps, graph, keys, no_base })
}

/// The published files of a profile, `Ok(None)` unless every publishing
/// step of it succeeded. Names that depend on content come from the
/// step's names output (a cache read that may find a corrupt blob).
pub(crate) fn final_files(
    graph: &StepGraph,
    report: &RunReport,
    profile: &str,
    cache: &Cache,
) -> Result<Option<Vec<(String, OutputRef)>>, CacheError> {
    let outputs = |node: NodeIndex| {
        let out = report.outcomes[node.index()].as_ref()?;
        let ok =
            out.failure.is_none() && !matches!(out.status, StepStatus::Skipped | StepStatus::Failed { .. });
        ok.then(|| out.outputs.clone())
    };
    published_files(graph, profile, cache, &outputs)
}

/// The files a profile's export would hold, given the outputs of its
/// publishing steps (`None` for a step without outputs yet): `Ok(None)`
/// when one is missing. Also used by `plan`.
pub(crate) fn published_files(
    graph: &StepGraph,
    profile: &str,
    cache: &Cache,
    outputs: &dyn Fn(NodeIndex) -> Option<BTreeMap<String, OutputRef>>,
) -> Result<Option<Vec<(String, OutputRef)>>, CacheError> {
    let mut files = Vec::new();
    let Some(nodes) = graph.finals.get(profile) else { return Ok(None) };
    for node in nodes {
        let step = &graph.g[*node];
        let Some(out_outputs) = outputs(*node) else { return Ok(None) };
        let names: serde_json::Map<String, serde_json::Value> = match step.action.names_output() {
            Some(n) => match out_outputs.get(n) {
                Some(o) => serde_json::from_slice(&cache.read(&o.digest)?).unwrap_or_default(),
                None => Default::default(),
            },
            None => Default::default(),
        };
        for (name, o) in &out_outputs {
            let tree = if step.action.tree() { name.strip_prefix(crate::actions::TREE_PREFIX) } else { None };
            let published = tree
                .map(str::to_string)
                .or_else(|| step.action.published_name(name, &step.params))
                .or_else(|| names.get(name).and_then(|v| v.as_str()).map(str::to_string));
            if let Some(published) = published {
                files.push((published, o.clone()));
            }
        }
    }
    Ok(Some(files))
}

/// Exit codes of several failures together: a retryable failure (1) wins,
/// then the lowest.
fn combine(a: i32, b: i32) -> i32 {
    [a, b].into_iter().filter(|c| *c != 0).min().unwrap_or(0)
}

/// Run `opts` on `ws`, reporting progress to `events`. `Err` only when the
/// profiles cannot be picked; every later failure is a report with each
/// profile's status.
pub fn build(ws: &Workspace, opts: &BuildOptions, events: &dyn EventSink) -> Result<BuildReport, Error> {
    let picked = ws.pick(&opts.profiles).map_err(Error::Usage)?;
    let mut profiles: BTreeMap<String, ProfileResult> = picked
        .iter()
        .map(|p| {
            let r = ProfileResult {
                out: ws.out_dir.join(&p.name),
                status: ProfileStatus::NotPublished,
                rejected: 0,
                error: None,
            };
            (p.name.clone(), r)
        })
        .collect();
    let mut attempts = 0;
    match run(ws, opts, &picked, &mut profiles, &mut attempts, events) {
        Ok(report) => Ok(report),
        Err(e) => Ok(BuildReport {
            run_id: None,
            ok: false,
            exit_code: e.exit_code(),
            error: Some(e.to_string()),
            steps: StepCounts::default(),
            profiles,
            inputs: InputCounts::default(),
            attempts,
            step_log: Vec::new(),
            warnings: Vec::new(),
        }),
    }
}

/// What one phase of a build did.
struct PhaseOut {
    steps: StepCounts,
    step_log: Vec<StepLog>,
    warnings: Vec<StepWarning>,
    exit_code: i32,
    errors: Vec<String>,
    inputs: InputCounts,
    profiles: Vec<String>,
}

fn run(
    ws: &Workspace,
    opts: &BuildOptions,
    picked: &[&ProfileDef],
    profiles: &mut BTreeMap<String, ProfileResult>,
    attempts: &mut usize,
    events: &dyn EventSink,
) -> Result<BuildReport, Error> {
    layout::check(ws, picked)?;
    let run_id = RunId::new();
    let jobs = opts.exec.jobs.max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| Error::StepsFailed(format!("cannot start {jobs} worker thread(s): {e}")))?;
    let any_derived =
        picked.iter().any(|p| crate::kinds::lookup(&p.kind).and_then(|k| k.derived()).is_some());
    // old generations are removed while the build goes on (see publish::Background)
    let bg = publish::Background::default();
    let workers = Workers { pool: &pool, bg: &bg };
    let mut phases = vec![run_phase(ws, opts, Phase::Sources, &workers, profiles, attempts, events)?];
    if any_derived {
        phases.push(run_phase(ws, opts, Phase::Derived, &workers, profiles, attempts, events)?);
    }
    bg.wait();
    let mut exit_code = 0;
    let mut errors = Vec::new();
    let mut steps = StepCounts::default();
    let mut inputs = InputCounts::default();
    let (mut step_log, mut warnings, mut names) = (Vec::new(), Vec::new(), Vec::new());
    for ph in phases {
        exit_code = combine(exit_code, ph.exit_code);
        errors.extend(ph.errors);
        steps.total += ph.steps.total;
        steps.executed += ph.steps.executed;
        steps.cached += ph.steps.cached;
        steps.failed += ph.steps.failed;
        steps.skipped += ph.steps.skipped;
        inputs.documents += ph.inputs.documents;
        inputs.files_read += ph.inputs.files_read;
        step_log.extend(ph.step_log);
        warnings.extend(ph.warnings);
        names.extend(ph.profiles);
    }
    let log = RunLog {
        id: Some(run_id.clone()),
        profiles: names,
        steps: step_log.clone(),
        warnings: warnings.clone(),
    };
    let saved = runlog::save(&Cache::open(&ws.cache_dir)?, &run_id, &log).map_err(Error::Cache);
    if let Err(e) = &saved {
        exit_code = combine(exit_code, e.exit_code());
        errors.push(e.to_string());
    }
    Ok(BuildReport {
        // only an id `explain --run` can find
        run_id: saved.is_ok().then_some(run_id),
        ok: exit_code == 0,
        exit_code,
        error: if errors.is_empty() { None } else { Some(errors.join("\n")) },
        steps,
        profiles: std::mem::take(profiles),
        inputs,
        attempts: *attempts,
        step_log,
        warnings,
    })
}

/// Where a build's work runs: the step pool, and the publishers'
/// background cleanup.
#[derive(Clone, Copy)]
struct Workers<'a> {
    pool: &'a rayon::ThreadPool,
    bg: &'a publish::Background,
}

/// One phase: prepare, execute (again while blobs are found corrupt),
/// publish each profile.
fn run_phase(
    ws: &Workspace,
    opts: &BuildOptions,
    phase: Phase,
    workers: &Workers<'_>,
    profiles: &mut BTreeMap<String, ProfileResult>,
    attempts: &mut usize,
    events: &dyn EventSink,
) -> Result<PhaseOut, Error> {
    let Workers { pool, bg } = *workers;
    loop {
        *attempts += 1;
        // re-snapshot on every attempt: a corrupt archive pack is re-read
        let started = std::time::Instant::now();
        let prep = pool.install(|| prepare_phase(ws, &opts.profiles, phase))?;
        tracing::debug!("{phase:?}: sources snapshotted and graph expanded in {:?}", started.elapsed());
        for p in &prep.profiles {
            profiles.entry(p.name.clone()).or_insert_with(|| ProfileResult {
                out: ws.out_dir.join(&p.name),
                status: ProfileStatus::NotPublished,
                rejected: 0,
                error: None,
            });
        }
        for (name, why) in &prep.no_base {
            if let Some(r) = profiles.get_mut(name) {
                r.status = ProfileStatus::NoBase;
                r.error = Some(why.clone());
            }
        }
        let max = max_attempts(&prep.graph);
        events.emit(Event::RunStarted { attempt: *attempts, steps: prep.graph.g.node_count() });
        // one pool per build: sources are scanned and steps run on it
        let started = std::time::Instant::now();
        let report =
            driver::execute(&prep.graph, &prep.snaps, &prep.cache, &prep.keys, &opts.exec, events, pool);
        tracing::debug!("{phase:?}: steps executed in {:?}", started.elapsed());
        let corrupt = report.failures().any(|(_, f)| matches!(f, StepFailure::Corrupt(_)));
        if corrupt && *attempts < max {
            tracing::warn!(
                "a cache blob was corrupt or missing; rebuilding its producer (attempt {})",
                *attempts + 1
            );
            continue;
        }
        // make the run's cache writes durable before anything is published
        prep.cache.sync()?;
        let mut corrupt_profiles = Vec::new();
        let mut failed: Vec<(String, Error)> = Vec::new();
        for p in &prep.profiles {
            let files = final_files(&prep.graph, &report, &p.name, &prep.cache);
            let published = match files {
                Err(e) => Err(Error::Cache(e)),
                Ok(None) => Ok(None),
                Ok(Some(files)) => {
                    let started = std::time::Instant::now();
                    let r = publish::publish(
                        &ws.out_dir,
                        &p.name,
                        &p.kind,
                        p.keep_generations,
                        &files,
                        &prep.cache,
                        bg,
                    );
                    tracing::debug!("{}: published in {:?}", p.name, started.elapsed());
                    r.map(Some)
                }
            };
            let (status, error) = match published {
                Ok(None) => (ProfileStatus::NotPublished, None),
                Ok(Some(Published::Published)) => {
                    // the next build's key of steps reading this export (see ops::fixpoint)
                    if let Err(e) = super::fixpoint::record_next_keys(&prep, &report, p) {
                        tracing::warn!("{}: recording the next build's cache keys: {e}", p.name);
                    }
                    (ProfileStatus::Published, None)
                }
                Ok(Some(Published::UpToDate)) => (ProfileStatus::UpToDate, None),
                Err(Error::Cache(CacheError::Corrupt { .. } | CacheError::Missing { .. })) => {
                    corrupt_profiles.push(p.name.clone());
                    (ProfileStatus::NotPublished, None)
                }
                Err(e) => (ProfileStatus::Failed, Some(e)),
            };
            let r = profiles.get_mut(&p.name).expect("entered above");
            let outcome = match status {
                ProfileStatus::Published => Some(PublishOutcome::Published),
                ProfileStatus::UpToDate => Some(PublishOutcome::UpToDate),
                _ => None,
            };
            if let Some(outcome) = outcome {
                events.emit(Event::Published { profile: p.name.clone(), out: r.out.clone(), outcome });
            }
            // published by an earlier attempt of this run, found up to date now
            if !(status == ProfileStatus::UpToDate && r.status == ProfileStatus::Published) {
                r.status = status;
            }
            r.rejected = rejected_for(&prep, &report, &p.name);
            r.error = error.as_ref().map(|e| e.to_string());
            if let Some(e) = error {
                failed.push((p.name.clone(), e));
            }
        }
        if !corrupt_profiles.is_empty() && *attempts < max {
            continue;
        }
        for name in corrupt_profiles {
            let e =
                Error::Publish(format!("cache blobs kept failing verification after {attempts} attempts"));
            let r = profiles.get_mut(&name).expect("a picked profile");
            r.status = ProfileStatus::Failed;
            r.error = Some(e.to_string());
            failed.push((name, e));
        }
        let step_log = runlog::step_log(&prep.graph, &report);
        let warnings = runlog::warnings(&prep.graph, &report);
        let (mut exit_code, summary) = summarise(&prep, &report);
        let mut errors: Vec<String> = summary.into_iter().collect();
        for (name, e) in &failed {
            exit_code = combine(exit_code, e.exit_code());
            errors.push(format!("profile {name}: publishing failed: {e}"));
        }
        return Ok(PhaseOut {
            steps: StepCounts {
                total: prep.graph.g.node_count(),
                executed: report.count(|s| matches!(s, StepStatus::Executed { .. })),
                cached: report.count(|s| matches!(s, StepStatus::Cached)),
                failed: report.count(|s| matches!(s, StepStatus::Failed { .. })),
                skipped: report.count(|s| matches!(s, StepStatus::Skipped)),
            },
            step_log,
            warnings,
            exit_code,
            errors,
            inputs: InputCounts {
                documents: prep.snaps.values().map(|s| s.documents).sum(),
                files_read: prep.snaps.values().map(|s| s.files_read).sum(),
            },
            profiles: prep.profiles.iter().map(|p| p.name.clone()).collect(),
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
            StepFailure::Invalid(list) => invalid
                .extend(list.iter().map(|r| format!("{}: {}", shown::name(&r.path), shown::name(&r.reason)))),
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
