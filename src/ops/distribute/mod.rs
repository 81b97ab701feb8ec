//! Distribution: a published export as registry artifacts, and back
//! (docs/FORMATS.md §14). `push` sends, `pull` re-creates the folder,
//! `verify oci://` pulls into a temporary folder and verifies it.
//!
//! An export with an OCI layout (`oci/`: trivy:db, trivy:java-db,
//! mirrors) travels as:
//! - **the artifact** its layout holds (one manifest, config and layers,
//!   byte for byte), tagged with the layout's tag or the one given: what
//!   Trivy's `--db-repository` pulls;
//! - **signature referrers** (OCI 1.1 `subject` = the artifact):
//!   `manifest.dsse.json` and `provenance.dsse.json` each as an artifact of
//!   type `application/vnd.dsse.envelope.v1+json`, `provenance.json` of
//!   type `application/vnd.in-toto+json`; one layer each, titled with the
//!   file name, annotated `dev.export-center.file`;
//! - **the companion** referrer (`application/vnd.export-center.export.v1+json`):
//!   one layer per other file of the folder (`checksums.txt` and every
//!   file it lists but the three above), in path order, titled with its
//!   path. Blobs the artifact already has (the layer, `oci/blobs/…`) are
//!   the same blobs, so nothing is sent twice.
//!
//! Every manifest is canonical JSON without wall-clock values (its only
//! time is the export's pinned `createdAt`), so a re-push sends nothing.
//! Registries without the referrers API get the referrers-tag fallback:
//! an index at tag `sha256-<hex of the artifact>` listing the referrers;
//! `push` replaces there only the entries it owns (same artifact type and
//! file), keeping other tools' referrers.

pub mod pull;
pub mod push;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::digest::Sha256;
use crate::error::Error;
use crate::formats::manifest;
use crate::formats::oci::{self, Descriptor, ImageIndex, ImageManifest};

/// The files that travel as signature referrers, and their artifact types.
pub const REFERRER_FILES: &[(&str, &str)] = &[
    ("manifest.dsse.json", oci::DSSE_ARTIFACT_TYPE),
    ("provenance.dsse.json", oci::DSSE_ARTIFACT_TYPE),
    ("provenance.json", oci::INTOTO_ARTIFACT_TYPE),
];

/// Annotations on the companion naming the export.
pub const PROFILE_ANNOTATION: &str = "dev.export-center.profile";
pub const KIND_ANNOTATION: &str = "dev.export-center.kind";

/// One file of an export.
#[derive(Clone, Debug)]
pub struct ExportFile {
    pub path: String,
    pub sha256: Sha256,
    pub size: u64,
}

/// A published export read as what it pushes.
pub struct ExportArtifact {
    pub dir: PathBuf,
    pub profile: String,
    pub kind: String,
    pub created: Option<String>,
    /// The layout's manifest bytes and digest, and its tag in `oci/index.json`.
    pub manifest: Vec<u8>,
    pub digest: Sha256,
    pub tag: String,
    /// Config and layers of the artifact.
    pub blobs: Vec<Descriptor>,
    /// Every file of the export: `checksums.txt` and what it lists.
    pub files: Vec<ExportFile>,
}

#[derive(serde::Deserialize)]
struct Head {
    profile: String,
    kind: String,
    #[serde(rename = "createdAt")]
    created_at: Option<String>,
}

fn bad(dir: &Path, why: impl std::fmt::Display) -> Error {
    Error::Usage(format!("{}: {why}", crate::shown::path(dir)))
}

impl ExportArtifact {
    /// Read an export folder's layout and file list (sizes from the
    /// folder; digests from `checksums.txt`, which `push` verifies first).
    pub fn read(dir: &Path) -> Result<ExportArtifact, Error> {
        let small = |rel: &str| {
            crate::bounded::read_regular(&dir.join(rel), super::verify::MANIFEST_MAX)
                .map_err(|e| bad(dir, format!("{rel}: {e}")))
        };
        let head: Head = serde_json::from_slice(&small("manifest.json")?)
            .map_err(|e| bad(dir, format!("manifest.json: {e}")))?;
        if !dir.join("oci/index.json").is_file() {
            return Err(bad(
                dir,
                format!("profile {} ({}) has no OCI layout (oci/) to push", head.profile, head.kind),
            ));
        }
        let index: ImageIndex = serde_json::from_slice(&small("oci/index.json")?)
            .map_err(|e| bad(dir, format!("oci/index.json: {e}")))?;
        let [desc] = index.manifests.as_slice() else {
            return Err(bad(dir, "oci/index.json must name exactly one manifest"));
        };
        let digest = desc.sha256().map_err(|e| bad(dir, format!("oci/index.json: {e}")))?;
        let tag = desc
            .annotation("org.opencontainers.image.ref.name")
            .ok_or_else(|| {
                bad(dir, "oci/index.json: the manifest has no tag (org.opencontainers.image.ref.name)")
            })?
            .to_string();
        let manifest = small(&format!("oci/{}", oci::blob_path(&digest)))?;
        if Sha256::of(&manifest) != digest {
            return Err(Error::Verify(format!("{}: oci/ manifest does not match its digest", dir.display())));
        }
        let m: ImageManifest =
            serde_json::from_slice(&manifest).map_err(|e| bad(dir, format!("oci manifest: {e}")))?;
        let mut blobs = vec![m.config.clone()];
        blobs.extend(m.layers.iter().cloned());
        let text = String::from_utf8(
            crate::bounded::read_regular(&dir.join("checksums.txt"), super::verify::CHECKSUMS_MAX)
                .map_err(|e| bad(dir, format!("checksums.txt: {e}")))?,
        )
        .map_err(|_| bad(dir, "checksums.txt is not UTF-8"))?;
        let listed = manifest::parse_checksums(&text).map_err(|e| bad(dir, format!("checksums.txt: {e}")))?;
        let mut files = vec![ExportFile {
            path: "checksums.txt".into(),
            sha256: Sha256::of(text.as_bytes()),
            size: text.len() as u64,
        }];
        for (path, sha256) in listed {
            if !super::verify::safe_path(&path) {
                return Err(bad(dir, format!("checksums.txt names {path:?}, outside the export")));
            }
            let size = std::fs::symlink_metadata(dir.join(&path))
                .map_err(|e| bad(dir, format!("{path}: {e}")))?
                .len();
            files.push(ExportFile { path, sha256, size });
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(ExportArtifact {
            dir: dir.to_path_buf(),
            profile: head.profile,
            kind: head.kind,
            created: head.created_at,
            manifest,
            digest,
            tag,
            blobs,
            files,
        })
    }

    /// Every file matches `checksums.txt` (hashed in parallel, opened
    /// without following symlinks) and the folder holds nothing else;
    /// else a verification failure (exit 3) naming the first problems.
    pub fn check_files(&self) -> Result<(), Error> {
        use rayon::prelude::*;
        use sha2::Digest as _;
        let mut problems: Vec<String> = self
            .files
            .par_iter()
            .filter(|f| f.path != "checksums.txt")
            .filter_map(|f| {
                let (mut file, _) = match super::verify::read::open(&self.dir, &f.path) {
                    Ok(x) => x,
                    Err(e) => return Some(format!("{}: {e}", f.path)),
                };
                let mut h = sha2::Sha256::new();
                match std::io::copy(&mut file, &mut h) {
                    Ok(_) if Sha256(h.finalize().into()) == f.sha256 => None,
                    Ok(_) => Some(format!("{}: does not match checksums.txt", f.path)),
                    Err(e) => Some(format!("{}: {e}", f.path)),
                }
            })
            .collect();
        let known: std::collections::HashSet<&str> = self.files.iter().map(|f| f.path.as_str()).collect();
        for e in walkdir::WalkDir::new(&self.dir).min_depth(1).follow_links(false) {
            let e = e.map_err(|e| bad(&self.dir, e))?;
            if e.file_type().is_dir() {
                continue;
            }
            let rel = e.path().strip_prefix(&self.dir).unwrap_or(e.path()).to_string_lossy().into_owned();
            if !known.contains(rel.as_str()) {
                problems.push(format!("{rel}: not listed in checksums.txt"));
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        problems.sort();
        let n = problems.len();
        problems.truncate(5);
        Err(Error::Verify(format!(
            "{}: the export does not match its checksums.txt ({n} problem(s)), nothing was pushed: {}",
            crate::shown::path(&self.dir),
            problems.join("; ")
        )))
    }

    /// The artifact's descriptor as a referrer's `subject`.
    pub fn subject(&self) -> Descriptor {
        Descriptor::new(oci::MANIFEST_MEDIA_TYPE, &self.digest, self.manifest.len() as u64)
    }

    fn annotations(&self) -> BTreeMap<String, String> {
        let mut a = BTreeMap::new();
        if let Some(c) = &self.created {
            a.insert(oci::CREATED_ANNOTATION.to_string(), c.clone());
        }
        a
    }

    /// The referrer manifests to push: `(file or "" for the companion,
    /// artifact type, manifest bytes, its layers)`.
    pub fn referrers(&self) -> Vec<Referrer> {
        let subject = self.subject();
        let layer = |f: &ExportFile, media: &str| {
            let mut d = Descriptor::new(media, &f.sha256, f.size);
            d.annotations.insert(oci::TITLE_ANNOTATION.into(), f.path.clone());
            d
        };
        let mut out = Vec::new();
        for (name, atype) in REFERRER_FILES {
            if let Some(f) = self.files.iter().find(|f| f.path == *name) {
                let mut ann = self.annotations();
                ann.insert(oci::FILE_ANNOTATION.into(), name.to_string());
                let layers = vec![layer(f, atype)];
                let bytes = oci::artifact_manifest(atype, &layers, Some(&subject), &ann);
                out.push(Referrer {
                    file: Some(name.to_string()),
                    artifact_type: atype,
                    manifest: bytes,
                    layers,
                    annotations: ann,
                });
            }
        }
        let carried = |p: &str| REFERRER_FILES.iter().any(|(n, _)| *n == p);
        let layers: Vec<Descriptor> =
            self.files.iter().filter(|f| !carried(&f.path)).map(|f| layer(f, oci::FILE_MEDIA_TYPE)).collect();
        let mut ann = self.annotations();
        ann.insert(PROFILE_ANNOTATION.into(), self.profile.clone());
        ann.insert(KIND_ANNOTATION.into(), self.kind.clone());
        let bytes = oci::artifact_manifest(oci::EXPORT_ARTIFACT_TYPE, &layers, Some(&subject), &ann);
        out.push(Referrer {
            file: None,
            artifact_type: oci::EXPORT_ARTIFACT_TYPE,
            manifest: bytes,
            layers,
            annotations: ann,
        });
        out
    }
}

/// One referrer manifest `push` sends.
pub struct Referrer {
    /// The export file it carries (`None`: the companion).
    pub file: Option<String>,
    pub artifact_type: &'static str,
    pub manifest: Vec<u8>,
    pub layers: Vec<Descriptor>,
    pub annotations: BTreeMap<String, String>,
}

impl Referrer {
    /// Its entry in a referrers index.
    pub fn descriptor(&self) -> Descriptor {
        let mut d = Descriptor::new(
            oci::MANIFEST_MEDIA_TYPE,
            &Sha256::of(&self.manifest),
            self.manifest.len() as u64,
        );
        d.artifact_type = Some(self.artifact_type.to_string());
        d.annotations = self.annotations.clone();
        d
    }
}

/// Whether two referrers-index entries are the same slot (same artifact
/// type and file): `push` replaces its own slots only.
pub fn same_slot(a: &Descriptor, b: &Descriptor) -> bool {
    a.artifact_type == b.artifact_type
        && a.annotation(oci::FILE_ANNOTATION) == b.annotation(oci::FILE_ANNOTATION)
        && a.annotation(PROFILE_ANNOTATION) == b.annotation(PROFILE_ANNOTATION)
}

/// Map a registry failure to the CLI's errors: bytes that do not match
/// their digest are a verification failure (exit 3), the rest exit 1.
pub fn registry_error(e: crate::registry::RegistryError) -> Error {
    match e {
        crate::registry::RegistryError::Invalid { .. } => Error::Verify(e.to_string()),
        e => Error::Publish(format!("registry: {e}")),
    }
}
