//! `export-center verify PATH`.

use std::path::PathBuf;

use crate::error::Error;
use crate::ops::verify::verify;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// An export folder (out/<profile>/).
    pub path: PathBuf,
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> Result<i32, Error> {
    if !a.path.is_dir() {
        return Err(Error::Usage(format!("{}: not an export folder", a.path.display())));
    }
    let report = verify(&a.path);
    if a.json {
        super::print_json(&report);
    } else {
        for p in &report.problems {
            println!("FAIL {}: {}", p.file, p.reason);
        }
        if report.ok {
            println!("OK {}: {} files verified (unsigned export)", report.path, report.checked.len());
        } else {
            println!("FAILED {}: {} problem(s)", report.path, report.problems.len());
        }
    }
    Ok(if report.ok { 0 } else { 3 })
}
