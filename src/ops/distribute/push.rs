//! `push`: send a published export to a registry (see the parent module
//! for what travels). Order, so a consumer following the tag never sees a
//! half-pushed export: blobs, the artifact by digest, the referrers (and
//! the fallback index), and only then the tags: `gen-<N>` for the
//! export's generation (immutable in practice: a generation's bytes never
//! change), then the moving one. First every file is checked against
//! `checksums.txt` ([`ExportArtifact::check_files`]: what `verify` checks
//! of a folder without a trust root, but the bundle's insides), so a
//! tampered folder is never pushed; a blob that is uploaded is hashed
//! again as it is offered.

use rayon::prelude::*;
use serde::Serialize;

use super::{registry_error, same_slot, ExportArtifact};
use crate::digest::Sha256;
use crate::error::Error;
use crate::formats::oci::{self, ImageIndex};
use crate::registry::client::Stats;
use crate::registry::{BlobSource, Client, Options, Reference};

/// Uploads at once.
const PARALLEL_UPLOADS: usize = 4;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushedReferrer {
    /// The export file it carries; absent for the companion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    pub artifact_type: String,
    pub digest: String,
}

/// What one `push` did (`--json`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pushed {
    pub profile: String,
    pub kind: String,
    pub generation: u64,
    /// Where it went, with its tag.
    pub reference: String,
    /// The tags now naming it: the one given (or the layout's) and
    /// `gen-<N>`, which `pull --generation N` reads.
    pub tags: Vec<String>,
    /// The artifact's manifest digest (what the tag names).
    pub digest: String,
    pub referrers: Vec<PushedReferrer>,
    /// Whether the registry serves the referrers API (else the
    /// `sha256-<hex>` fallback tag was written).
    pub referrers_api: bool,
    pub blobs_uploaded: u64,
    pub blobs_present: u64,
    pub bytes_uploaded: u64,
    pub manifests_uploaded: u64,
    pub manifests_present: u64,
    pub requests: u64,
    pub retries: u64,
}

/// Push the export in `dir` (generation `generation` of its profile) to
/// `to` (its tag, or the layout's when `to` has none).
/// Progress of a push: blobs checked or sent so far, of how many.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

pub fn push(
    dir: &std::path::Path,
    generation: u64,
    to: &Reference,
    opts: &Options,
    progress: Option<Progress<'_>>,
) -> Result<Pushed, Error> {
    let art = ExportArtifact::read(dir)?;
    art.check_files()?;
    let target = match &to.tag {
        Some(_) => to.clone(),
        None => to.with_tag(&art.tag),
    };
    let tag = target.tag.clone().expect("a tag was set");
    let client = Client::new(&target, Options { push: true, ..opts.clone() });
    let referrers = art.referrers();
    // blobs: the artifact's, the empty config, every file; once each
    let mut blobs: Vec<(Sha256, u64, Source)> = Vec::new();
    for d in &art.blobs {
        let sha = d.sha256().map_err(|e| Error::Verify(format!("{}: oci manifest: {e}", dir.display())))?;
        blobs.push((sha, d.size, Source::File(dir.join("oci").join(oci::blob_path(&sha)))));
    }
    blobs.push((Sha256::of(oci::EMPTY_CONFIG), oci::EMPTY_CONFIG.len() as u64, Source::Empty));
    for f in &art.files {
        blobs.push((f.sha256, f.size, Source::File(dir.join(&f.path))));
    }
    blobs.sort_by_key(|b| b.0);
    blobs.dedup_by(|a, b| a.0 == b.0);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(PARALLEL_UPLOADS)
        .build()
        .map_err(|e| Error::Publish(format!("upload threads: {e}")))?;
    let total = blobs.len() as u64;
    let done = std::sync::atomic::AtomicU64::new(0);
    pool.install(|| {
        blobs.par_iter().try_for_each(|(sha, size, src)| {
            let s = match src {
                Source::Empty => BlobSource::Bytes(oci::EMPTY_CONFIG),
                Source::File(p) => BlobSource::File(p),
            };
            client.push_blob(sha, *size, s)?;
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if let Some(p) = progress {
                p(n, total);
            }
            Ok(())
        })
    })
    .map_err(registry_error)?;
    let by_digest = |b: &[u8]| format!("sha256:{}", Sha256::of(b));
    client
        .put_manifest(&by_digest(&art.manifest), oci::MANIFEST_MEDIA_TYPE, &art.manifest)
        .map_err(registry_error)?;
    for r in &referrers {
        client
            .put_manifest(&by_digest(&r.manifest), oci::MANIFEST_MEDIA_TYPE, &r.manifest)
            .map_err(registry_error)?;
    }
    let api = client.referrers_api(&art.digest).map_err(registry_error)?.is_some();
    if !api {
        let fallback = oci::referrers_tag(&art.digest);
        let mut entries = match client.get_manifest(&fallback).map_err(registry_error)? {
            Some((_, bytes, _)) => {
                serde_json::from_slice::<ImageIndex>(&bytes).map(|i| i.manifests).map_err(|e| {
                    Error::Publish(format!("{target}: the referrers tag {fallback} is not an index: {e}"))
                })?
            }
            None => Vec::new(),
        };
        let ours: Vec<_> = referrers.iter().map(|r| r.descriptor()).collect();
        entries.retain(|e| !ours.iter().any(|o| same_slot(e, o)));
        entries.extend(ours);
        let index = oci::referrers_index(entries);
        client.put_manifest(&fallback, oci::INDEX_MEDIA_TYPE, &index).map_err(registry_error)?;
    }
    // the generation's own tag first, then the moving one
    let gen_tag = generation_tag(generation);
    client.put_manifest(&gen_tag, oci::MANIFEST_MEDIA_TYPE, &art.manifest).map_err(registry_error)?;
    client.put_manifest(&tag, oci::MANIFEST_MEDIA_TYPE, &art.manifest).map_err(registry_error)?;
    let s = &client.stats;
    Ok(Pushed {
        profile: art.profile.clone(),
        kind: art.kind.clone(),
        generation,
        reference: target.to_string(),
        tags: if tag == gen_tag { vec![tag.clone()] } else { vec![tag.clone(), gen_tag.clone()] },
        digest: format!("sha256:{}", art.digest),
        referrers: referrers
            .iter()
            .map(|r| PushedReferrer {
                file: r.file.clone(),
                artifact_type: r.artifact_type.to_string(),
                digest: by_digest(&r.manifest),
            })
            .collect(),
        referrers_api: api,
        blobs_uploaded: Stats::get(&s.blobs_uploaded),
        blobs_present: Stats::get(&s.blobs_present),
        bytes_uploaded: Stats::get(&s.bytes_uploaded),
        manifests_uploaded: Stats::get(&s.manifests_uploaded),
        manifests_present: Stats::get(&s.manifests_present),
        requests: Stats::get(&s.requests),
        retries: Stats::get(&s.retries),
    })
}

enum Source {
    Empty,
    File(std::path::PathBuf),
}

/// The tag every push also writes for the export's generation.
pub fn generation_tag(generation: u64) -> String {
    format!("gen-{generation}")
}
