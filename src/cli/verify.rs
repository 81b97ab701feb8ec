//! `export-center verify PATH [--trust-root PUBKEY...] [--max-age DURATION]`.
//!
//! Prints the report (text or `--json`) to stdout in one write. A closed
//! stdout (`verify ... | head -1`) ends the output quietly: the exit code
//! is still the verdict (0 verified, 3 not), never a panic.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::ops::freshness::MaxAge;
use crate::ops::verify::{verify, Signature, VerifyOptions, VerifyReport};
use crate::shown;
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
    /// An age identity file (`AGE-SECRET-KEY-1…`, as `age-keygen` writes):
    /// decrypt every encrypted (`.age`) file of a mirror and check it against
    /// the plaintext digest its `export.json` lists.
    #[arg(long, value_name = "KEY")]
    pub identity: Option<PathBuf>,
    /// Fail when the export's createdAt is older than DURATION before now
    /// (and, for a mirror, when its TUF timestamp has expired). DURATION is
    /// a whole number and a unit: s, m, h, d or w (`36h`, `1d`, `2w`).
    #[arg(long, value_name = "DURATION")]
    pub max_age: Option<String>,
    #[arg(long)]
    pub json: bool,
    /// For `oci://` references: speak plain HTTP to the registry.
    #[arg(long)]
    pub insecure: bool,
}

pub fn run(dir: &Path, a: Args) -> Result<i32, Error> {
    let max_age = max_age(a.max_age.as_deref())?;
    if let Some(r) = a.path.to_str().filter(|p| p.starts_with("oci://")) {
        return run_oci(dir, r.to_string(), a, max_age);
    }
    let path = dir.join(&a.path);
    match std::fs::metadata(&path) {
        Err(_) => {
            return Err(Error::Usage(format!("{}: no such export folder or bundle", shown::path(&a.path))))
        }
        Ok(m) if !m.is_dir() && !m.is_file() => {
            return Err(Error::Usage(format!(
                "{}: not an export folder or bundle (neither a folder nor a regular file)",
                shown::path(&a.path)
            )))
        }
        Ok(_) => {}
    }
    let trust_roots = trust_roots(dir, &a.trust_roots)?;
    let mut report = verify(
        &path,
        &VerifyOptions {
            trust_roots,
            require_signature: a.require_signature,
            profile: a.profile.clone(),
            max_age,
        },
    );
    report.path = a.path.display().to_string();
    if let Some(id) = &a.identity {
        let text = std::fs::read_to_string(dir.join(id))
            .map_err(|e| Error::Key(format!("--identity {}: {e}", shown::path(id))))?;
        let problems = crate::ops::mirror::check_plaintexts(&path, &text)?;
        report.ok &= problems.is_empty();
        report.problems.extend(problems);
    }
    print(&report, a.json)
}

/// `verify oci://REGISTRY/REPO:TAG`: pull the artifact and its referrers
/// into a temporary folder and verify that as an export folder.
fn run_oci(dir: &Path, reference: String, a: Args, max_age: Option<MaxAge>) -> Result<i32, Error> {
    if a.identity.is_some() {
        return Err(Error::Usage(
            "--identity: pull the mirror first (`export-center pull`), then verify the folder".into(),
        ));
    }
    let r = super::distribute::parse_reference(&reference)?;
    let opts = super::distribute::RegistryArgs { insecure: a.insecure, chunk_size: 32 << 20 }.options(&r)?;
    let roots = trust_roots(dir, &a.trust_roots)?;
    let tmp = tempfile::tempdir().map_err(|e| Error::Publish(format!("a temporary folder: {e}")))?;
    let mut report = match crate::ops::distribute::pull::pull_into(&r, &opts, tmp.path()) {
        Ok(_) => verify(
            tmp.path(),
            &VerifyOptions {
                trust_roots: roots,
                require_signature: a.require_signature,
                profile: a.profile.clone(),
                max_age,
            },
        ),
        Err(Error::Verify(why)) => VerifyReport {
            path: String::new(),
            ok: false,
            checked: Vec::new(),
            problems: vec![crate::ops::verify::Problem { file: ".".into(), reason: why }],
            signed: false,
            signature: Signature::Invalid,
            verified_by: Vec::new(),
            profile: None,
            created_at: None,
        },
        Err(e) => return Err(e),
    };
    report.path = reference;
    print(&report, a.json)
}

/// Print the report; the exit code is the verdict.
fn print(report: &VerifyReport, json: bool) -> Result<i32, Error> {
    let code = if report.ok { 0 } else { 3 };
    let text = if json {
        let mut t = serde_json::to_string_pretty(report).expect("a report serialises");
        t.push('\n');
        t
    } else {
        human(report)
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(code),
        // the reader went away (`| head`): the verdict stands, quietly
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(code),
        Err(e) => Err(Error::StepsFailed(format!("cannot write the report to stdout: {e}"))),
    }
}

/// `--max-age` parsed against the wall clock (a bad value is exit 2).
pub(super) fn max_age(text: Option<&str>) -> Result<Option<MaxAge>, Error> {
    text.map(|t| MaxAge::now(t).map_err(Error::Usage)).transpose()
}

/// The `--trust-root` keys, loaded relative to the workspace folder.
pub(super) fn trust_roots(dir: &Path, paths: &[PathBuf]) -> Result<Vec<crate::signing::PublicKey>, Error> {
    paths
        .iter()
        .map(|t| keys::load_public(&dir.join(t)).map_err(|e| Error::Key(format!("--trust-root {e}"))))
        .collect()
}

/// The text report; every name and reason from the export is escaped.
fn human(report: &VerifyReport) -> String {
    let mut t = String::new();
    for f in &report.checked {
        if !report.problems.iter().any(|p| &p.file == f) {
            t += &format!("ok   {}\n", shown::name(f));
        }
    }
    for p in &report.problems {
        t += &format!("FAIL {}: {}\n", shown::name(&p.file), shown::name(&p.reason));
    }
    let sig = match report.signature {
        Signature::Verified => format!("signed, verified by {}", report.verified_by.join(", ")),
        Signature::Unchecked => "signed, not checked: no trust root given (--trust-root)".into(),
        Signature::Unsigned => "unsigned export".into(),
        Signature::Invalid => "signature invalid".into(),
    };
    let what = match (&report.profile, &report.created_at) {
        (Some(p), Some(c)) => format!("profile {}, created {}, ", shown::name(p), shown::name(c)),
        _ => String::new(),
    };
    let path = shown::name(&report.path);
    if report.ok {
        t += &format!("VERIFIED {path}: {what}{} files ({sig})\n", report.checked.len());
    } else {
        t += &format!("FAILED {path}: {what}{} problem(s) ({sig})\n", report.problems.len());
    }
    t
}
