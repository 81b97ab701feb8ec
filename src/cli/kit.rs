//! `export-center kit stage|verify`: offline kits (`crate::ops::kit` does
//! the work; this parses flags and prints).
//!
//! `kit stage` exits 0 (staged), 2 (a profile without that published
//! export, a bad `--kit-version`, or a kit already in `--out`: nothing is
//! touched), 3 (an export that does not match its own checksums), 1 (I/O).
//! `kit verify` prints its report in one write and exits 0 (verified) or 3;
//! a closed stdout keeps that verdict.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::ops::kit::{self, KitReport, KitVerifyOptions, StageOptions};
use crate::ops::verify::{Signature, VerifyOptions};
use crate::shown;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Copy published exports, byte for byte, into DIR/offline-kit/ with a
    /// manifest, checksums.txt and verify-offline.sh (never overwrites a kit).
    Stage {
        /// The folder to stage into: the kit is DIR/offline-kit/.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// The kit's version (default: kit- and 16 hex digits of a digest
        /// of the staged exports' generations and root digests).
        #[arg(long, value_name = "V")]
        kit_version: Option<String>,
        /// Stage this kept generation of each named PROFILE instead of the
        /// live export (see `exports list`).
        #[arg(long, value_name = "N")]
        generation: Option<u64>,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
        /// Profiles to stage (default: every profile with a published export).
        #[arg(value_name = "PROFILE")]
        profiles: Vec<String>,
    },
    /// Re-check a kit: checksums.txt, manifest.json, and `verify` of every
    /// staged export.
    Verify {
        /// The folder holding offline-kit/, or offline-kit/ itself.
        #[arg(value_name = "DIR")]
        kit: PathBuf,
        /// A public key every export must be signed by (as `verify`).
        #[arg(long = "trust-root", value_name = "PUBKEY", action = clap::ArgAction::Append, value_delimiter = ',')]
        trust_roots: Vec<PathBuf>,
        /// Fail unless every export is signed and its signatures were checked.
        #[arg(long)]
        require_signature: bool,
        /// Fail an export created longer than DURATION ago (s, m, h, d, w:
        /// `36h`, `1d`), or a mirror whose TUF timestamp expired (as `verify`).
        #[arg(long, value_name = "DURATION")]
        max_age: Option<String>,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(dir: &Path, c: Command) -> Result<i32, Error> {
    match c {
        Command::Stage { out, kit_version, generation, json, profiles } => {
            let ws = super::load(dir)?;
            let staged =
                kit::stage(&ws, &StageOptions { out: dir.join(out), kit_version, generation, profiles })?;
            if json {
                super::out_json(&staged)?;
                return Ok(0);
            }
            for e in &staged.exports {
                outln!(
                    "staged {} {} generation {} {} ({} files) from {}",
                    shown::name(&e.profile),
                    shown::name(&e.kind),
                    e.generation,
                    e.root_digest,
                    e.files,
                    shown::path(&e.source)
                )?;
            }
            outln!(
                "kit {} staged at {}: {} exports, {} files, {} bytes",
                shown::name(&staged.kit_version),
                shown::path(&staged.kit),
                staged.exports.len(),
                staged.files,
                staged.bytes
            )?;
            Ok(0)
        }
        Command::Verify { kit: kit_dir, trust_roots, require_signature, max_age, json } => {
            let max_age = super::verify::max_age(max_age.as_deref())?;
            let given = dir.join(&kit_dir);
            let kit = kit::locate(&given)?;
            let trust_roots = super::verify::trust_roots(dir, &trust_roots)?;
            let opts = KitVerifyOptions {
                verify: VerifyOptions { trust_roots, require_signature, profile: None, max_age },
            };
            let mut report = kit::verify(&kit, &opts);
            let shown_path = if kit == given { kit_dir.clone() } else { kit_dir.join(kit::KIT_DIR) };
            report.path = shown_path.display().to_string();
            let code = if report.ok { 0 } else { 3 };
            let text = if json {
                let mut t = serde_json::to_string_pretty(&report).expect("a report serialises");
                t.push('\n');
                t
            } else {
                human(&report)
            };
            let mut out = std::io::stdout().lock();
            match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                Ok(()) => Ok(code),
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(code),
                Err(e) => Err(Error::StepsFailed(format!("cannot write the report to stdout: {e}"))),
            }
        }
    }
}

/// The text report; every name and reason from the kit is escaped.
fn human(r: &KitReport) -> String {
    let mut t = String::new();
    for e in &r.exports {
        let sig = match e.signature {
            Signature::Verified => format!("signed, verified by {}", e.verified_by.join(", ")),
            Signature::Unchecked => "signed, not checked: no trust root given (--trust-root)".into(),
            Signature::Unsigned => "unsigned export".into(),
            Signature::Invalid => "signature invalid".into(),
        };
        let created =
            e.created_at.as_deref().map(|c| format!("created {}, ", shown::name(c))).unwrap_or_default();
        let verdict = if e.ok { "ok  " } else { "FAIL" };
        t += &format!(
            "{verdict} export {}: {created}{} files ({sig})\n",
            shown::name(&e.path),
            e.checked.len()
        );
    }
    for p in &r.problems {
        t += &format!("FAIL {}: {}\n", shown::name(&p.file), shown::name(&p.reason));
    }
    let version = r.kit_version.as_deref().map(shown::name).unwrap_or("?".into());
    let path = shown::name(&r.path);
    if r.ok {
        t += &format!(
            "VERIFIED kit {version} at {path}: {} exports, {} files\n",
            r.exports.len(),
            r.files_checked
        );
    } else {
        t += &format!("FAILED kit {version} at {path}: {} problem(s)\n", r.problems.len());
    }
    t
}
