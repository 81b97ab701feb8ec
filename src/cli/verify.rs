//! `export-center verify PATH [--trust-root PUBKEY...]`.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::ops::verify::{verify, VerifyOptions};
use crate::signing::keys;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// An export folder (out/<profile>/) or its bundle file.
    pub path: PathBuf,
    /// A public key (SubjectPublicKeyInfo PEM, as `keygen` writes
    /// `<name>.pub`) the export must be signed by; repeat the flag or
    /// separate with commas for several (any one suffices). Giving one
    /// makes an unsigned export a failure.
    #[arg(long = "trust-root", value_name = "PUBKEY", action = clap::ArgAction::Append, value_delimiter = ',')]
    pub trust_roots: Vec<PathBuf>,
    /// Fail unless the export is signed and its signatures were checked
    /// (so it needs --trust-root to pass).
    #[arg(long)]
    pub require_signature: bool,
    /// Fail unless the export is of this profile (guards against a whole
    /// export swapped for another).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    #[arg(long)]
    pub json: bool,
}

pub fn run(dir: &Path, a: Args) -> Result<i32, Error> {
    let path = dir.join(&a.path);
    if !path.exists() {
        return Err(Error::Usage(format!("{}: no such export folder or bundle", a.path.display())));
    }
    let mut trust_roots = Vec::new();
    for t in &a.trust_roots {
        trust_roots
            .push(keys::load_public(&dir.join(t)).map_err(|e| Error::Key(format!("--trust-root {e}")))?);
    }
    let mut report = verify(
        &path,
        &VerifyOptions { trust_roots, require_signature: a.require_signature, profile: a.profile.clone() },
    );
    report.path = a.path.display().to_string();
    if a.json {
        super::print_json(&report);
    } else {
        for f in &report.checked {
            if !report.problems.iter().any(|p| &p.file == f) {
                println!("ok   {}", f.escape_debug());
            }
        }
        for p in &report.problems {
            println!("FAIL {}: {}", p.file.escape_debug(), p.reason.escape_debug());
        }
        let sig = match report.signature.as_str() {
            "verified" => format!("signed, verified by {}", report.verified_by.join(", ")),
            "unchecked" => "signed, signatures NOT checked (no --trust-root given)".into(),
            "unsigned" => "unsigned export".into(),
            other => format!("signature {other}"),
        };
        let what = match (&report.profile, &report.created_at) {
            (Some(p), Some(t)) => format!("profile {p}, created {t}, "),
            _ => String::new(),
        };
        if report.ok {
            println!("VERIFIED {}: {what}{} files ({sig})", report.path, report.checked.len());
        } else {
            println!("FAILED {}: {what}{} problem(s) ({sig})", report.path, report.problems.len());
        }
    }
    Ok(if report.ok { 0 } else { 3 })
}
