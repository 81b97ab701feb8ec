//! `export-center plan`: one line per step (`cached`, `run` with its
//! reason, `pending`) and per profile the build would republish from the
//! cache (`publish`), then the counts.

use std::path::Path;

use crate::error::Error;
use crate::ops::plan::{plan, PlanItem, StepPlan};
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
        let mut steps = 0;
        let mut publish = 0;
        for i in &items {
            match i {
                PlanItem::Step { id, plan } => {
                    steps += 1;
                    let id = shown::name(id);
                    match plan {
                        StepPlan::Cached => outln!("cached   {id}")?,
                        StepPlan::Run { reason } => outln!("run      {id}: {reason}")?,
                        StepPlan::Pending { after } => outln!(
                            "pending  {id}: runs unless {} output is unchanged",
                            shown::name(&after.join(", "))
                        )?,
                    }
                }
                PlanItem::Publish { profile, out, .. } => {
                    publish += 1;
                    outln!(
                        "publish  {}: {} differs from the cached build",
                        shown::name(profile),
                        shown::path(out)
                    )?
                }
            }
        }
        let run = items.iter().filter(|i| matches!(i, PlanItem::Step { .. }) && i.is_work()).count();
        let tail = if publish > 0 { format!("; {publish} profile(s) to republish") } else { String::new() };
        outln!("{steps} steps, {run} to run or pending, {} cached{tail}", steps - run)?;
    }
    Ok(0)
}
