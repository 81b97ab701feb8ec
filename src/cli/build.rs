//! `export-center build`.
//!
//! `--jobs` is checked here, before anything runs: 1..=[`MAX_JOBS`]. Once
//! the build has run, its exit code is its own: a closed stdout or stderr
//! (the reader of `build | head -1` went away) changes nothing.
//!
//! The build's events are drawn here ([`Render`]): a progress bar when
//! stderr is a terminal (and not `--json`), `ran <step>: <reason>` lines
//! with `--explain`, and one `warning:` line per step warning (text mode;
//! `--json` lists them in `warnings[]`).

use std::io::IsTerminal;
use std::path::Path;

use crate::error::Error;
use crate::exec::driver::ExecOptions;
use crate::exec::events::{Event, EventSink, Finish};
use crate::ops::build::{build, BuildOptions, ProfileStatus};
use crate::shown;

/// Draws a build's events on stderr.
struct Render {
    bar: indicatif::ProgressBar,
    explain: bool,
    warnings: bool,
}

impl Render {
    fn new(progress: bool, explain: bool, warnings: bool) -> Render {
        let bar = if progress {
            let b = indicatif::ProgressBar::new(0);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {wide_msg}",
                )
                .expect("template"),
            );
            b
        } else {
            indicatif::ProgressBar::hidden()
        };
        Render { bar, explain, warnings }
    }

    /// A line on stderr, above the bar (write errors ignored).
    fn line(&self, text: std::fmt::Arguments<'_>) {
        self.bar.suspend(|| errln!("{text}"));
    }
}

impl EventSink for Render {
    fn emit(&self, e: Event) {
        match e {
            Event::RunStarted { steps, .. } => {
                self.bar.reset();
                self.bar.set_length(steps as u64);
            }
            Event::StepStarted { .. } | Event::Published { .. } => {}
            Event::StepFinished { step, status, reason, .. } => {
                self.bar.inc(1);
                self.bar.set_message(shown::name(&step).into_owned());
                if let (true, Finish::Executed, Some(r)) = (self.explain, status, reason) {
                    self.line(format_args!("ran {}: {r}", shown::name(&step)));
                }
            }
            // a message: the action escaped the names in it
            Event::Warning { step, warning: w } if self.warnings => self.line(format_args!(
                "warning: {} ({}): {}",
                shown::name(&w.path),
                shown::name(&step),
                w.message
            )),
            Event::Warning { .. } => {}
        }
    }
}

/// The most parallel steps a build runs (and worker threads it starts).
pub const MAX_JOBS: usize = 256;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Profiles to build (default: every profile).
    pub profiles: Vec<String>,
    /// Parallel steps, 1 to 256 (default: number of CPUs, at most 256).
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
    /// Re-run every step without the cache and compare with what is
    /// published (exit 3 listing each differing file); publishes nothing.
    #[arg(long)]
    pub check: bool,
}

pub fn run(dir: &Path, a: Args) -> Result<i32, Error> {
    let json = a.json;
    match run_inner(dir, a) {
        // --json promises one object on stdout, failures included
        Err(e) if json => {
            let code = e.exit_code();
            let shown =
                super::out_json(&serde_json::json!({"ok": false, "exitCode": code, "error": e.to_string()}));
            errln!("error: {e}");
            Ok(lost_stdout(shown, code))
        }
        other => other,
    }
}

/// The exit code once the result is known: a closed pipe keeps it, any
/// other failure to write stdout is reported and makes it at least 1.
fn lost_stdout(shown: Result<(), Error>, code: i32) -> i32 {
    match shown {
        Err(e) if !super::is_closed_pipe(&e) => {
            errln!("error: {e}");
            code.max(1)
        }
        _ => code,
    }
}

/// `--jobs`, or the CPU count; refused outside 1..=MAX_JOBS (exit 2).
fn jobs(given: Option<usize>) -> Result<usize, Error> {
    match given {
        Some(n) if (1..=MAX_JOBS).contains(&n) => Ok(n),
        Some(n) => Err(Error::Usage(format!("--jobs {n}: must be between 1 and {MAX_JOBS}"))),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_JOBS)),
    }
}

fn run_inner(dir: &Path, a: Args) -> Result<i32, Error> {
    let jobs = jobs(a.jobs)?;
    let ws = super::load(dir)?;
    let opts = BuildOptions {
        profiles: a.profiles,
        exec: ExecOptions { jobs, keep_going: a.keep_going, allow_invalid: a.allow_invalid },
    };
    if a.check {
        return super::check::run(&ws, opts.profiles, opts.exec, a.json);
    }
    let render = Render::new(!a.json && std::io::stderr().is_terminal(), a.explain, !a.json);
    let report = build(&ws, &opts, &render);
    render.bar.finish_and_clear();
    let report = report?;
    if a.json {
        let shown = super::out_json(&report);
        if let Some(e) = &report.error {
            errln!("error: {e}");
        }
        return Ok(lost_stdout(shown, report.exit_code));
    }
    for (name, p) in &report.profiles {
        let mut extra = if p.rejected > 0 { format!(" ({} rejected)", p.rejected) } else { String::new() };
        if let (ProfileStatus::NoBase, Some(why)) = (p.status, &p.error) {
            extra.push_str(&format!(" ({why})"));
        }
        errln!("{}: {} {}{extra}", shown::name(name), p.status, shown::path(&p.out));
    }
    let run = report.run_id.as_ref().map_or(String::new(), |id| format!("; run {id}"));
    errln!(
        "steps: {} total, {} executed, {} cached, {} failed, {} skipped; {} documents, {} files read{run}",
        report.steps.total,
        report.steps.executed,
        report.steps.cached,
        report.steps.failed,
        report.steps.skipped,
        report.inputs.documents,
        report.inputs.files_read
    );
    if !report.warnings.is_empty() {
        errln!("{} warning(s); `explain` lists them again", report.warnings.len());
    }
    if let Some(e) = &report.error {
        errln!("error: {e}");
    }
    Ok(report.exit_code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_bounded() {
        assert_eq!(jobs(Some(1)).ok(), Some(1));
        assert_eq!(jobs(Some(MAX_JOBS)).ok(), Some(MAX_JOBS));
        assert!(matches!(jobs(Some(0)), Err(Error::Usage(_))));
        assert!(matches!(jobs(Some(10_000)), Err(Error::Usage(_))));
        assert!((1..=MAX_JOBS).contains(&jobs(None).unwrap_or(0)));
    }
}
