//! `export-center explain`: why each step of a build ran (the latest, or
//! `--run ID` from `build --json`'s `runId`), how long it took, and the
//! warnings of its steps.

use std::path::Path;

use crate::cache::Cache;
use crate::error::Error;
use crate::ops::runlog::{self, RunId};
use crate::shown;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only steps whose id contains one of these strings.
    pub filter: Vec<String>,
    /// Include cached steps.
    #[arg(long)]
    pub all: bool,
    #[arg(long)]
    pub json: bool,
    /// The run to explain (its `runId`; default: the latest).
    #[arg(long, value_name = "ID")]
    pub run: Option<String>,
}

pub fn run(dir: &Path, a: Args) -> Result<i32, Error> {
    let ws = super::load(dir)?;
    let cache = Cache::open(&ws.cache_dir)?;
    let log = match &a.run {
        Some(given) => {
            let id = RunId::parse(given).ok_or_else(|| {
                Error::Usage(format!("--run {}: not a run id (letters, digits and '-')", shown::name(given)))
            })?;
            runlog::load(&cache, &id).ok_or_else(|| {
                Error::Usage(format!(
                    "--run {id}: no such run in {} (it may have been removed; the newest {} are kept)",
                    shown::path(&ws.cache_dir),
                    runlog::KEEP_RUNS
                ))
            })?
        }
        None => runlog::latest(&cache).ok_or_else(|| {
            Error::Usage(format!("{}: no build has run on this cache yet", shown::path(&ws.cache_dir)))
        })?,
    };
    let steps: Vec<_> = log
        .steps
        .into_iter()
        .filter(|s| a.filter.is_empty() || a.filter.iter().any(|f| s.id.contains(f.as_str())))
        .filter(|s| a.all || s.status != "cached")
        .collect();
    if a.json {
        super::out_json(&serde_json::json!({"runId": log.id, "profiles": log.profiles, "steps": steps,
                                           "warnings": log.warnings}))?;
    } else {
        for s in &steps {
            let (status, id) = (shown::name(&s.status), shown::name(&s.id));
            match (&s.reason, &s.error) {
                (Some(r), _) => outln!("{status:<9}{id}: {r}")?,
                // a message: its layer escaped the names in it
                (None, Some(e)) => outln!("{status:<9}{id}: {}", e.lines().next().unwrap_or(""))?,
                _ => outln!("{status:<9}{id}")?,
            }
        }
        for w in &log.warnings {
            let (path, step) = (shown::name(&w.warning.path), shown::name(&w.step));
            // a message: the action escaped the names in it
            outln!("warning  {path} ({step}): {}", w.warning.message)?;
        }
        if steps.is_empty() {
            outln!(
                "nothing ran in the last build ({}); --all lists cached steps",
                shown::name(&log.profiles.join(", "))
            )?;
        }
    }
    Ok(0)
}
