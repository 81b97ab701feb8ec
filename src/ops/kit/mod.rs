//! Offline kits: `kit stage` copies published exports, byte for byte, into
//! `DIR/offline-kit/` for removable media; `kit verify` re-checks a kit.
//!
//! Layout (a contract; names never change):
//!
//! | path                              | what                                                       |
//! |-----------------------------------|------------------------------------------------------------|
//! | `offline-kit/<profile>/…`         | the export folder's files and sub-folders, byte for byte, files 0644 |
//! | `offline-kit/manifest.json`       | [`KitManifest`]: pretty JSON, keys sorted, no staging time |
//! | `offline-kit/checksums.txt`       | `sha256sum` text over every other file of the kit, lexical order |
//! | `offline-kit/verify-offline.sh`   | [`SCRIPT_TEXT`], mode 0755, listed in `checksums.txt`      |
//!
//! Invariants:
//! - Never rebuilds: a kit holds exports as `out/` published them (or a
//!   kept generation, [`crate::ops::generations::export_dir`]). Each copied file
//!   is hashed while it is copied (streamed, bounded memory) and must match
//!   the export's own `checksums.txt`, and the export's root digest must
//!   be the one resolved before copying, else nothing is staged (an export
//!   damaged or republished meanwhile).
//! - Write-once: `DIR/offline-kit/` holds one kit. If it exists at all (the
//!   same kit version or another) staging refuses (exit 2) and touches
//!   nothing; a kit is never overwritten, replaced or added to.
//! - Atomic: the kit is built in `DIR/.offline-kit.tmp-*`, every file and
//!   folder fsynced, then renamed to `offline-kit` without replacing
//!   (`RENAME_NOREPLACE`), so a crash never leaves a half-staged kit under
//!   the final name (only a temp folder, which a later stage ignores).
//! - Deterministic: the same exports and kit version give the same bytes.
//!   The default kit version is `kit-` + 16 hex digits of the SHA-256 over
//!   each staged export's `profile`, `generation` and `rootDigest`: the
//!   same exports name the same kit.
//!
//! `verify` treats the kit as hostile input: it opens files as `verify`
//! does (no symlinks, regular files only, size caps) and runs
//! [`crate::ops::verify::verify`] on each staged export.

mod script;
mod stage;
mod verify;

pub use script::SCRIPT_TEXT;
pub use stage::stage;
pub use verify::{locate, verify, KitReport, KitVerifyOptions};

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::Sha256;
use crate::error::Error;
use crate::ops::verify::{read, Problem, VerifyOptions, VerifyReport};
use crate::profile::Workspace;
use crate::shown;

/// The kit's folder in `DIR`.
pub const KIT_DIR: &str = "offline-kit";
/// `schemaVersion` of [`KitManifest`].
pub const SCHEMA: &str = "export-center-offline-kit/v1";
pub const MANIFEST: &str = "manifest.json";
pub const CHECKSUMS: &str = "checksums.txt";
pub const SCRIPT: &str = "verify-offline.sh";
/// Names at the top of the kit that cannot be profiles.
const RESERVED: [&str; 3] = [MANIFEST, CHECKSUMS, SCRIPT];
/// Prefix of the folder a kit is built in, inside `DIR`.
const TMP_PREFIX: &str = ".offline-kit.tmp-";
/// Largest kit `manifest.json` or `checksums.txt` read (~150 bytes a file).
const MAX_KIT_TEXT: u64 = 256 << 20;
/// Files listed in a kit folder before `verify` gives up on it.
const MAX_KIT_FILES: usize = 4 * crate::ops::verify::MAX_LISTED;
/// Longest `--kit-version`.
const MAX_VERSION_LEN: usize = 128;

/// What `kit stage` is asked to do.
#[derive(Clone, Debug, Default)]
pub struct StageOptions {
    /// `DIR`: the kit goes to `DIR/offline-kit/`.
    pub out: PathBuf,
    /// `--kit-version`; `None` derives one (see the module doc).
    pub kit_version: Option<String>,
    /// `--generation N` of each named profile (`None`: the live export).
    pub generation: Option<u64>,
    /// The profiles to stage; empty: every profile with a published export.
    pub profiles: Vec<String>,
}

/// `offline-kit/manifest.json`. Fields are declared in key order, so the
/// JSON's keys are sorted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KitManifest {
    pub exports: Vec<KitExport>,
    #[serde(rename = "kitVersion")]
    pub kit_version: String,
    #[serde(rename = "schemaVersion")]
    pub schema_version: String,
}

/// One staged export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KitExport {
    #[serde(rename = "createdAt")]
    pub created_at: Option<String>,
    /// Every file of the export, by path in the kit, in path order.
    pub files: Vec<KitFile>,
    pub generation: u64,
    pub kind: String,
    pub profile: String,
    /// `sha256:<hex>`: the generations module's root digest.
    #[serde(rename = "rootDigest")]
    pub root_digest: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KitFile {
    /// Relative to `offline-kit/`: `<profile>/<path in the export>`.
    pub path: String,
    /// Lower-case hex.
    pub sha256: String,
    pub size: u64,
}

/// What `kit stage` did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Staged {
    /// `DIR/offline-kit`.
    pub kit: PathBuf,
    pub kit_version: String,
    pub exports: Vec<StagedExport>,
    /// Every file of the kit, `checksums.txt` included.
    pub files: u64,
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StagedExport {
    pub profile: String,
    pub kind: String,
    pub generation: u64,
    pub root_digest: String,
    pub created_at: Option<String>,
    /// Where it was copied from.
    pub source: PathBuf,
    pub files: usize,
}

/// A `--kit-version`: 1 to 128 of `A-Z a-z 0-9 . _ + -`, not starting with `.` or `-`.
pub fn check_kit_version(v: &str) -> Result<(), Error> {
    let ok = !v.is_empty()
        && v.len() <= MAX_VERSION_LEN
        && !v.starts_with(['.', '-'])
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "--kit-version {}: use 1 to {MAX_VERSION_LEN} letters, digits, '.', '_', '+' or '-', not starting with '.' or '-'",
            shown::name(v)
        )))
    }
}

/// The kit version of the kit at `kit`, if its manifest says.
fn existing_version(kit: &Path) -> Option<String> {
    let bytes = read::read(kit, MANIFEST, MAX_KIT_TEXT).ok()?;
    #[derive(Deserialize)]
    struct Head {
        #[serde(rename = "kitVersion")]
        kit_version: String,
    }
    serde_json::from_slice::<Head>(&bytes).ok().map(|h| h.kit_version)
}

/// The default kit version of these exports (see the module doc), from
/// each one's profile, generation and root digest, in profile order.
fn default_version(exports: &[(&str, u64, Sha256)]) -> String {
    let mut text = String::new();
    for (profile, generation, root) in exports {
        text += &format!("{profile}\t{generation}\tsha256:{root}\n");
    }
    format!("kit-{}", &Sha256::of(text.as_bytes()).hex()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_keys_are_sorted() {
        let m = KitManifest {
            exports: vec![KitExport {
                created_at: Some("2025-01-01T00:00:00Z".into()),
                files: vec![KitFile { path: "p/a".into(), sha256: "00".into(), size: 1 }],
                generation: 1,
                kind: "json:raw".into(),
                profile: "p".into(),
                root_digest: "sha256:00".into(),
            }],
            kit_version: "v".into(),
            schema_version: SCHEMA.into(),
        };
        let text = serde_json::to_string_pretty(&m).unwrap();
        // serde_json's Map is a BTreeMap here: a round trip sorts keys
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string_pretty(&v).unwrap(), text);
    }

    #[test]
    fn kit_versions() {
        for ok in ["1", "2025.01.02", "kit-abc_1+x", "V-1"] {
            assert!(check_kit_version(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "a b", "ä", &"x".repeat(129), "..", "a\nb"] {
            assert!(check_kit_version(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_kit_is_renamed_into_place_but_never_over_another() {
        let d = tempfile::tempdir().unwrap();
        let (a, b, to) = (d.path().join("a"), d.path().join("b"), d.path().join("kit"));
        for x in [&a, &b] {
            fs::create_dir(x).unwrap();
            fs::write(x.join("f"), x.to_str().unwrap()).unwrap();
        }
        assert!(stage::rename_noreplace(&a, &to).unwrap());
        assert!(!stage::rename_noreplace(&b, &to).unwrap());
        assert_eq!(fs::read_to_string(to.join("f")).unwrap(), a.to_str().unwrap());
        assert!(b.join("f").exists());
    }
}
