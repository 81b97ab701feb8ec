//! `export-center graph`.

use std::path::Path;

use crate::error::Error;
use crate::ops::build::prepare;

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Format {
    Dot,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Profiles to show (default: every profile).
    pub profiles: Vec<String>,
    #[arg(long, value_enum, default_value = "dot")]
    pub format: Format,
}

pub fn run(dir: &Path, a: Args) -> Result<i32, Error> {
    let ws = super::load(dir)?;
    let prep = prepare(&ws, &a.profiles)?;
    match a.format {
        Format::Dot => {
            let dot = prep.graph.to_dot();
            outln!("{}", dot.strip_suffix('\n').unwrap_or(&dot))?
        }
        Format::Json => super::out_json(&prep.graph.to_json())?,
    }
    Ok(0)
}
