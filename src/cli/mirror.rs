//! `export-center mirror apply BASE DELTA [--out DIR] [--json]` and
//! `export-center mirror diff A B [--json]`: thin shells over
//! `crate::ops::mirror` (paths are relative to the current folder, not
//! `-C`: a site applying a delta needs no workspace).

use std::path::PathBuf;

use crate::error::Error;
use crate::ops::mirror;
use crate::shown;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Check a delta and apply it to the export it was made from: the
    /// result is the full export of the new generation, byte for byte.
    Apply {
        /// The mirror export the delta starts from (replaced unless --out).
        base: PathBuf,
        /// The delta export (`out/<delta profile>/`).
        delta: PathBuf,
        /// Write the new generation to this new folder instead of replacing BASE.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Record ids added, changed and removed from export A to export B.
    Diff {
        a: PathBuf,
        b: PathBuf,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
}

fn report_error(json: bool, e: Error) -> Result<i32, Error> {
    if json {
        let code = e.exit_code();
        super::out_json(&serde_json::json!({"ok": false, "exitCode": code, "error": e.to_string()}))?;
        errln!("error: {e}");
        return Ok(code);
    }
    Err(e)
}

pub fn run(c: Command) -> Result<i32, Error> {
    match c {
        Command::Apply { base, delta, out, json } => match mirror::apply(&base, &delta, out.as_deref()) {
            Err(e) => report_error(json, e),
            Ok(r) if json => {
                super::out_json(&serde_json::json!({"ok": true, "applied": r}))?;
                Ok(0)
            }
            Ok(r) => {
                outln!(
                    "applied: {} generation {} -> {} at {} ({} files, {} rebuilt from records)",
                    shown::name(&r.profile),
                    r.base_generation,
                    r.generation,
                    shown::path(&r.out),
                    r.files,
                    r.rebuilt.len()
                )?;
                Ok(0)
            }
        },
        Command::Diff { a, b, json } => match mirror::diff(&a, &b) {
            Err(e) => report_error(json, e),
            Ok(r) if json => {
                super::out_json(&r)?;
                Ok(0)
            }
            Ok(r) => {
                for (sign, list) in [("+", &r.added), ("~", &r.updated), ("-", &r.removed)] {
                    for id in list {
                        outln!("{sign} {}", shown::name(id))?;
                    }
                }
                outln!(
                    "generation {} -> {}: {} added, {} changed, {} removed",
                    r.from,
                    r.to,
                    r.added.len(),
                    r.updated.len(),
                    r.removed.len()
                )?;
                Ok(0)
            }
        },
    }
}
