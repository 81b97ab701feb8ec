//! `export-center plan`.

use std::path::Path;

use crate::error::Error;
use crate::ops::plan::{plan, StepPlan};
use crate::shown;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Profiles to plan (default: every profile).
    pub profiles: Vec<String>,
    #[arg(long)]
    pub json: bool,
}

pub fn run(dir: &Path, a: Args) -> Result<i32, Error> {
    let ws = super::load(dir)?;
    let items = plan(&ws, &a.profiles)?;
    if a.json {
        super::out_json(&items)?;
    } else {
        for i in &items {
            let id = shown::name(&i.id);
            match &i.plan {
                StepPlan::Cached => outln!("cached   {id}")?,
                StepPlan::Run { reason } => outln!("run      {id}: {reason}")?,
                StepPlan::Pending { after } => outln!(
                    "pending  {id}: runs unless {} output is unchanged",
                    shown::name(&after.join(", "))
                )?,
            }
        }
        let run = items.iter().filter(|i| !matches!(i.plan, StepPlan::Cached)).count();
        outln!("{} steps, {} to run or pending, {} cached", items.len(), run, items.len() - run)?;
    }
    Ok(0)
}
