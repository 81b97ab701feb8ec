//! `export-center explain`: why each step of the last build ran.

use std::path::Path;

use crate::cache::Cache;
use crate::error::Error;
use crate::ops::runlog;
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
}

pub fn run(dir: &Path, a: Args) -> Result<i32, Error> {
    let ws = super::load(dir)?;
    let cache = Cache::open(&ws.cache_dir)?;
    let Some(log) = runlog::load(&cache) else {
        return Err(Error::Usage(format!(
            "{}: no build has run on this cache yet",
            shown::path(&ws.cache_dir)
        )));
    };
    let steps: Vec<_> = log
        .steps
        .into_iter()
        .filter(|s| a.filter.is_empty() || a.filter.iter().any(|f| s.id.contains(f.as_str())))
        .filter(|s| a.all || s.status != "cached")
        .collect();
    if a.json {
        super::out_json(&serde_json::json!({"profiles": log.profiles, "steps": steps}))?;
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
        if steps.is_empty() {
            outln!(
                "nothing ran in the last build ({}); --all lists cached steps",
                shown::name(&log.profiles.join(", "))
            )?;
        }
    }
    Ok(0)
}
