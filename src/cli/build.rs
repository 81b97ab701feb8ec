//! `export-center build`.

use std::io::IsTerminal;
use std::path::Path;

use crate::error::Error;
use crate::exec::driver::ExecOptions;
use crate::ops::build::{build, BuildOptions};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Profiles to build (default: every profile).
    pub profiles: Vec<String>,
    /// Parallel steps (default: number of CPUs).
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Print each step that runs and why, on stderr.
    #[arg(long)]
    pub explain: bool,
    /// Keep running independent steps after a failure.
    #[arg(long)]
    pub keep_going: bool,
    /// Skip invalid documents, listing them in the manifest's rejected[].
    #[arg(long)]
    pub allow_invalid: bool,
}

pub fn run(dir: &Path, a: Args) -> Result<i32, Error> {
    let json = a.json;
    match run_inner(dir, a) {
        // --json promises one object on stdout, failures included
        Err(e) if json => {
            let code = e.exit_code();
            super::print_json(&serde_json::json!({"ok": false, "exitCode": code, "error": e.to_string()}));
            eprintln!("error: {e}");
            Ok(code)
        }
        other => other,
    }
}

fn run_inner(dir: &Path, a: Args) -> Result<i32, Error> {
    let ws = super::load(dir)?;
    let jobs = a.jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    if jobs == 0 {
        return Err(Error::Usage("--jobs must be at least 1".into()));
    }
    let opts = BuildOptions {
        profiles: a.profiles,
        exec: ExecOptions {
            jobs,
            keep_going: a.keep_going,
            allow_invalid: a.allow_invalid,
            explain: a.explain,
            progress: !a.json && std::io::stderr().is_terminal(),
        },
    };
    let report = build(&ws, &opts)?;
    if a.json {
        super::print_json(&report);
    } else {
        for (name, p) in &report.profiles {
            let extra = if p.rejected > 0 { format!(" ({} rejected)", p.rejected) } else { String::new() };
            eprintln!("{name}: {} {}{extra}", p.status, p.out.display());
        }
        eprintln!(
            "steps: {} total, {} executed, {} cached, {} failed, {} skipped; {} documents, {} files read",
            report.steps.total,
            report.steps.executed,
            report.steps.cached,
            report.steps.failed,
            report.steps.skipped,
            report.inputs.documents,
            report.inputs.files_read
        );
    }
    if let Some(e) = &report.error {
        eprintln!("error: {e}");
    }
    Ok(report.exit_code)
}
