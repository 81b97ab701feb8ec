//! `export-center build --check [PROFILE...] [--json]`: print the
//! comparison of a from-scratch rebuild with what is published (see
//! [`crate::ops::check`]); exit 3 when anything differs.

use std::path::Path;

use crate::error::Error;
use crate::exec::driver::ExecOptions;
use crate::ops::check::{check, CheckOptions};
use crate::profile::Workspace;
use crate::shown;

pub fn run(ws: &Workspace, profiles: Vec<String>, exec: ExecOptions, json: bool) -> Result<i32, Error> {
    let report = check(ws, &CheckOptions { profiles, exec })?;
    let n: usize = report.profiles.iter().map(|p| p.differences.len()).sum();
    let verdict = if report.identical {
        0
    } else {
        Error::Verify(format!("{n} difference(s) between a rebuild and what is published")).exit_code()
    };
    if json {
        super::out_json(&report)?;
        return Ok(verdict);
    }
    for p in &report.profiles {
        let out: &Path = &ws.out_dir.join(&p.profile);
        if p.identical {
            errln!("{}: identical to {}", shown::name(&p.profile), shown::path(out));
            continue;
        }
        errln!("{}: differs from {}:", shown::name(&p.profile), shown::path(out));
        for d in &p.differences {
            match &d.member {
                Some(m) => outln!(
                    "{}: {}: member {}: {}",
                    shown::name(&p.profile),
                    shown::name(&d.file),
                    shown::name(m),
                    d.what
                )?,
                None => outln!("{}: {}: {}", shown::name(&p.profile), shown::name(&d.file), d.what)?,
            }
        }
    }
    if !report.identical {
        errln!("error: verification failed: {n} difference(s) between a rebuild without the cache and out/");
    }
    Ok(verdict)
}
