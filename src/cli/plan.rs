//! `export-center plan`.

use std::path::Path;

use crate::error::Error;
use crate::ops::plan::{plan, StepPlan};

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
        super::print_json(&items);
    } else {
        for i in &items {
            match &i.plan {
                StepPlan::Cached => println!("cached   {}", i.id),
                StepPlan::Run { reason } => println!("run      {}: {reason}", i.id),
                StepPlan::Pending { after } => {
                    println!("pending  {}: runs unless {} output is unchanged", i.id, after.join(", "))
                }
            }
        }
        let run = items.iter().filter(|i| !matches!(i.plan, StepPlan::Cached)).count();
        println!("{} steps, {} to run or pending, {} cached", items.len(), run, items.len() - run);
    }
    Ok(0)
}
