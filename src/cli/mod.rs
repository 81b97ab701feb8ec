//! The command line: parse and validate arguments, call one operation,
//! print its result (human text, or one JSON object with `--json`). One
//! file per subcommand; no logic here that the HTTP API would need.
//!
//! Output goes through [`out`] / [`err`] (macros `outln!` / `errln!`), never
//! `println!`/`eprintln!`, which panic when the reader is gone (Rust ignores
//! SIGPIPE). A closed stdout (`plan | head -1`) ends a command quietly with
//! exit 0; stderr errors are ignored, so a build never dies from its log
//! reader going away. Names from input are shown through `crate::shown`.

/// One line on stdout: `outln!(...)?` (an [`Error::Stdout`] on failure).
macro_rules! outln {
    ($($t:tt)*) => { $crate::cli::out(format_args!($($t)*)) };
}

/// One line on stderr; write errors are ignored.
macro_rules! errln {
    ($($t:tt)*) => { $crate::cli::err(format_args!($($t)*)) };
}

mod build;
mod cache;
mod check;
mod distribute;
mod explain;
mod exports;
mod graph;
mod keygen;
mod kit;
mod mirror;
mod plan;
mod tuf;
mod verify;

use std::io::Write as _;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::error::Error;
use crate::profile::Workspace;

#[derive(Parser, Debug)]
#[command(
    name = "export-center",
    version,
    about = "Reproducible, incremental, verifiable exports of security evidence"
)]
pub struct Cli {
    /// Run as if started in DIR (the folder holding profiles.toml).
    #[arg(short = 'C', global = true, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build profiles (all when none is named) and publish them under out/.
    Build(build::Args),
    /// Show what a build would run and why, without running it.
    Plan(plan::Args),
    /// Print the step graph of profiles as Graphviz dot or JSON.
    Graph(graph::Args),
    /// Show why each step of the last build ran.
    Explain(explain::Args),
    /// Re-check a published export offline: checksums, manifest, bundle
    /// members, provenance and signatures.
    Verify(verify::Args),
    /// Push published exports with an OCI layout (trivy:db, trivy:java-db,
    /// mirrors) to a registry, with their signatures as referrers.
    Push(distribute::PushArgs),
    /// Re-create an export folder from a registry (then `verify` it).
    Pull(distribute::PullArgs),
    /// Generate an Ed25519 signing key pair.
    Keygen(keygen::Args),
    /// Inspect or trim the cache.
    #[command(subcommand)]
    Cache(cache::Command),
    /// List published exports and their kept generations.
    #[command(subcommand)]
    Exports(exports::Command),
    /// Apply a mirror delta to the export it was made from, or compare two mirror exports.
    #[command(subcommand)]
    Mirror(mirror::Command),
    /// Offline kits: stage published exports for removable media, verify a kit.
    #[command(subcommand)]
    Kit(kit::Command),
    /// Manage a mirror's TUF repository (root key rotation).
    #[command(subcommand)]
    Tuf(tuf::Command),
}

pub(crate) fn load(dir: &std::path::Path) -> Result<Workspace, Error> {
    let ws = Workspace::load(dir, std::env::var("SOURCE_DATE_EPOCH").ok().as_deref())?;
    crate::kinds::check_workspace(&ws)?;
    Ok(ws)
}

/// Print `v` as pretty JSON and a newline on stdout.
pub(crate) fn out_json(v: &impl serde::Serialize) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(v).map_err(|e| Error::Stdout(e.into()))?;
    out(format_args!("{text}"))
}

/// Write `args` and a newline to stdout and flush, so a closed pipe shows
/// up here (as [`Error::Stdout`] of kind `BrokenPipe`), not at exit.
pub fn out(args: std::fmt::Arguments<'_>) -> Result<(), Error> {
    let mut o = std::io::stdout().lock();
    o.write_fmt(args).and_then(|()| o.write_all(b"\n")).and_then(|()| o.flush()).map_err(Error::Stdout)
}

/// Write `args` and a newline to stderr, ignoring errors: nobody is left
/// to tell, and the work must not stop because its log reader went away.
pub fn err(args: std::fmt::Arguments<'_>) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_fmt(args).and_then(|()| e.write_all(b"\n"));
}

/// A closed stdout: the reader has all it wanted (`| head -1`).
pub(crate) fn is_closed_pipe(e: &Error) -> bool {
    matches!(e, Error::Stdout(io) if io.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Run the parsed command; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32, Error> {
    let r = match cli.command {
        Command::Build(a) => build::run(&cli.dir, a),
        Command::Plan(a) => plan::run(&cli.dir, a),
        Command::Graph(a) => graph::run(&cli.dir, a),
        Command::Explain(a) => explain::run(&cli.dir, a),
        Command::Verify(a) => verify::run(&cli.dir, a),
        Command::Push(a) => distribute::run_push(&cli.dir, a),
        Command::Pull(a) => distribute::run_pull(&cli.dir, a),
        Command::Keygen(a) => keygen::run(&cli.dir, a),
        Command::Cache(c) => cache::run(&cli.dir, c),
        Command::Exports(c) => exports::run(&cli.dir, c),
        Command::Kit(c) => kit::run(&cli.dir, c),
        Command::Mirror(c) => mirror::run(c),
        Command::Tuf(c) => tuf::run(&cli.dir, c),
    };
    match r {
        // stop quietly, as `seq 10 | head -1` does
        Err(e) if is_closed_pipe(&e) => Ok(0),
        r => r,
    }
}
