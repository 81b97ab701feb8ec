//! Packaging shared by the Trivy DB actions: `<name>.tar.gz`, its OCI
//! layout, and the manifest.
//!
//! Given the DB files (in the scratch folder, or a kept scratch file of
//! the cache), writes the outputs `bundle`
//! (`db.tar.gz` / `javadb.tar.gz`: `metadata.json` and the DB, in name
//! order), `oci-layout`, `oci-index`, `oci-manifest`, `oci-config`,
//! `oci-layer` (the bundle again, hard-linked: the CAS stores it once),
//! `names` (published paths of the digest-named OCI blobs) and `manifest`
//! (`contents[]` = the DB files, `files[]` = the OCI layout under `oci/`).

use std::io::Write as _;
use std::path::PathBuf;

use serde_json::{json, Value};

use super::{parse::read_rejected, ActionCx, ActionError, Sha256Writer};
use crate::canon;
use crate::digest::Sha256;
use crate::formats::manifest::{self, Entry, FileRef, Manifest, Warning};
use crate::formats::{oci, tar};
use crate::timefmt;

pub const OUTPUTS: &[&str] =
    &["bundle", "manifest", "oci-layout", "oci-index", "oci-manifest", "oci-config", "oci-layer", "names"];

pub fn published_name(output: &str, archive: &str) -> Option<String> {
    match output {
        "bundle" => Some(archive.to_string()),
        "manifest" => Some("manifest.json".into()),
        "oci-layout" => Some("oci/oci-layout".into()),
        "oci-index" => Some("oci/index.json".into()),
        _ => None,
    }
}

pub struct DbFiles {
    /// `db.tar.gz` or `javadb.tar.gz`.
    pub archive: &'static str,
    pub layer_media_type: &'static str,
    pub tag: &'static str,
    /// (member name, file it is read from, rows it holds)
    pub members: Vec<(&'static str, PathBuf, u64)>,
    /// Warnings of the assembly itself, beside the converters' (`warnings` inputs).
    pub warnings: Vec<Warning>,
}

/// `metadata.json` of a Trivy DB: `Version`, and every time derived from the pinned time.
pub fn metadata(version: u32, epoch: i64, next_update_hours: i64) -> Vec<u8> {
    canon::to_vec(&json!({
        "Version": version,
        "NextUpdate": timefmt::format_utc(epoch + next_update_hours * 3600),
        "UpdatedAt": timefmt::format_utc(epoch),
        "DownloadedAt": timefmt::format_utc(epoch),
    }))
}

pub fn package(cx: &ActionCx<'_>, db: DbFiles) -> Result<(), ActionError> {
    let epoch = cx.param_i64("epoch")?;
    let mut members = db.members;
    members.sort_by(|a, b| a.0.cmp(b.0));
    let bundle_path = cx.out.join("bundle");
    let file = std::fs::File::create(&bundle_path).map_err(|e| ActionError::io(&bundle_path, e))?;
    let list: Vec<(&str, &std::path::Path)> = members.iter().map(|(n, p, _)| (*n, p.as_path())).collect();
    let started = std::time::Instant::now();
    let pieces = cx.cache.gzip_pieces();
    let (w, member_digests) =
        tar::write_tar_gz(Sha256Writer::new(std::io::BufWriter::new(file)), &list, epoch, Some(&pieces))
            .map_err(|e| ActionError::io(&bundle_path, e))?;
    let (bundle_sha, bundle_len) = (w.digest(), w.len);
    let mut inner = w.inner;
    inner.flush().map_err(|e| ActionError::io(&bundle_path, e))?;
    drop(inner);
    let contents: Vec<Entry> = members
        .iter()
        .zip(member_digests)
        .map(|((name, _, rows), (sha256, bytes))| Entry {
            path: name.to_string(),
            sha256,
            bytes,
            records: *rows,
        })
        .collect();
    tracing::debug!("{}: archived in {:?}", db.archive, started.elapsed());
    // the OCI layout of the same bytes
    let created = timefmt::format_utc(epoch);
    let small = oci::layout_files(&oci::Artifact {
        layer_media_type: db.layer_media_type,
        layer_sha256: bundle_sha,
        layer_size: bundle_len,
        title: db.archive,
        tag: db.tag,
        created: &created,
    });
    let layer_out = cx.out.join("oci-layer");
    std::fs::hard_link(&bundle_path, &layer_out).map_err(|e| ActionError::io(&layer_out, e))?;
    let mut files = Vec::new();
    let mut names = serde_json::Map::new();
    for ((path, bytes), output) in small.iter().zip(["oci-layout", "oci-index", "oci-manifest", "oci-config"])
    {
        cx.write(output, bytes)?;
        let published = format!("oci/{path}");
        names.insert(output.to_string(), json!(published));
        files.push(FileRef { path: published, sha256: Sha256::of(bytes), bytes: bytes.len() as u64 });
    }
    let layer_name = format!("oci/{}", oci::blob_path(&bundle_sha));
    names.insert("oci-layer".into(), json!(layer_name));
    files.push(FileRef { path: layer_name, sha256: bundle_sha, bytes: bundle_len });
    files.sort_by(|a, b| a.path.cmp(&b.path));
    cx.write("names", &canon::to_vec(&Value::Object(names)))?;
    let mut rejected = Vec::new();
    for r in cx.blobs("rejected").into_iter().chain(cx.blobs("unconverted")) {
        rejected.extend(read_rejected(&cx.cache.read(&r)?).map_err(ActionError::Failed)?);
    }
    rejected.sort();
    rejected.dedup();
    let mut warnings = db.warnings;
    for w in cx.blobs("warnings") {
        warnings.extend(Warning::read_list(&cx.cache.read(&w)?).map_err(ActionError::Failed)?);
    }
    warnings.sort();
    warnings.dedup();
    let m = Manifest {
        schema_version: manifest::SCHEMA_VERSION,
        profile: cx.param_str("profile")?.to_string(),
        kind: cx.param_str("kind")?.to_string(),
        selectors: cx.params.get("select").cloned().unwrap_or(json!({})),
        sources: cx.params.get("sources").cloned().unwrap_or(json!([])),
        created_at: created,
        tool: json!({"name": "export-center", "version": cx.param_str("tool")?}),
        bundle: FileRef { path: db.archive.to_string(), sha256: bundle_sha, bytes: bundle_len },
        rerun_hash: manifest::rerun_hash(&contents),
        contents,
        rejected,
        warnings,
        files,
        policy: None,
    };
    cx.write("manifest", &canon::to_pretty(&serde_json::to_value(&m).expect("serialisable")))
}
