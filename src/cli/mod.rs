//! The command line: parse and validate arguments, call one operation,
//! print its result (human text, or one JSON object with `--json`). One
//! file per subcommand; no logic here that the HTTP API would need.

mod build;
mod cache;
mod explain;
mod graph;
mod keygen;
mod plan;
mod verify;

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
    /// Generate an Ed25519 signing key pair.
    Keygen(keygen::Args),
    /// Inspect or trim the cache.
    #[command(subcommand)]
    Cache(cache::Command),
}

pub(crate) fn load(dir: &std::path::Path) -> Result<Workspace, Error> {
    Ok(Workspace::load(dir)?)
}

pub(crate) fn print_json(v: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(v).expect("serialisable"));
}

/// Run the parsed command; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32, Error> {
    match cli.command {
        Command::Build(a) => build::run(&cli.dir, a),
        Command::Plan(a) => plan::run(&cli.dir, a),
        Command::Graph(a) => graph::run(&cli.dir, a),
        Command::Explain(a) => explain::run(&cli.dir, a),
        Command::Verify(a) => verify::run(&cli.dir, a),
        Command::Keygen(a) => keygen::run(&cli.dir, a),
        Command::Cache(c) => cache::run(&cli.dir, c),
    }
}
