//! `export-center exports list [--json]`: each profile's live generation
//! and the earlier ones kept under `out/.generations/` (reads only).

use std::path::Path;

use crate::error::Error;
use crate::ops::generations;
use crate::shown;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Each profile's current generation and the kept earlier ones.
    List {
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(dir: &Path, c: Command) -> Result<i32, Error> {
    let ws = super::load(dir)?;
    match c {
        Command::List { json } => {
            let rows = generations::list(&ws)?;
            if json {
                super::out_json(&serde_json::json!({ "exports": rows }))?;
                return Ok(0);
            }
            if rows.is_empty() {
                outln!("nothing published under {}", shown::path(&ws.out_dir))?;
            }
            for r in &rows {
                let which = if r.current { "current" } else { "kept" };
                outln!(
                    "{} {} generation {} ({which}) {} sha256:{} {}",
                    shown::name(&r.profile),
                    shown::name(&r.kind),
                    r.generation,
                    shown::path(&r.path),
                    r.root_digest,
                    r.created_at.as_deref().map(shown::name).unwrap_or_default()
                )?;
            }
            Ok(0)
        }
    }
}
