//! `pull`: re-create an export folder from a registry: the companion's
//! files and the signature referrers' files, each checked against its
//! digest as it streams to disk, written into a temporary folder beside
//! the destination and renamed into place whole. What is pulled is not
//! trusted here: `verify` (or `verify oci://`, which pulls and verifies)
//! decides. Refused, as a verification failure (exit 3): two referrers
//! giving one file different bytes, no or several companions, a path
//! outside the folder, a layout naming another artifact than the tag.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use super::{registry_error, REFERRER_FILES};
use crate::digest::Sha256;
use crate::error::Error;
use crate::formats::oci::{self, Descriptor, ImageIndex, ImageManifest};
use crate::registry::{Client, Options, Reference};

/// Files an export may hold before `pull` refuses it (as `verify` lists).
const MAX_FILES: usize = super::super::verify::MAX_LISTED;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pulled {
    pub reference: String,
    pub digest: String,
    pub out: String,
    pub files: usize,
    pub bytes: u64,
    pub referrers_api: bool,
    /// The companion's profile and kind annotations.
    pub profile: Option<String>,
    pub kind: Option<String>,
}

fn refused(from: &Reference, why: impl std::fmt::Display) -> Error {
    Error::Verify(format!("{from}: {why}"))
}

/// Pull `from` into `out` (which must not exist, or be an empty folder).
pub fn pull(from: &Reference, opts: &Options, out: &Path) -> Result<Pulled, Error> {
    match std::fs::read_dir(out).map(|mut d| d.next().is_some()) {
        Ok(true) => {
            return Err(Error::Usage(format!("--out {}: exists and is not empty", crate::shown::path(out))))
        }
        Ok(false) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::Usage(format!("--out {}: {e}", crate::shown::path(out)))),
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| Error::Publish(format!("{}: {e}", parent.display())))?;
    let tmp = tempfile::Builder::new()
        .prefix(".pull-")
        .tempdir_in(&parent)
        .map_err(|e| Error::Publish(format!("{}: {e}", parent.display())))?;
    let mut pulled = pull_into(from, opts, tmp.path())?;
    // durable before it appears under its name: one syncfs, not one fsync a file
    crate::ops::publish::sync_fs(tmp.path())
        .map_err(|e| Error::Publish(format!("{}: {e}", tmp.path().display())))?;
    if out.exists() {
        std::fs::remove_dir(out).map_err(|e| Error::Publish(format!("{}: {e}", out.display())))?;
    }
    let tmp = tmp.keep();
    std::fs::rename(&tmp, out).map_err(|e| Error::Publish(format!("{}: {e}", out.display())))?;
    crate::ops::publish::sync_dir(&parent);
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::Publish(format!("{}: {e}", out.display())))?;
    }
    pulled.out = out.display().to_string();
    Ok(pulled)
}

/// Pull `from` into the existing empty folder `dir`.
pub fn pull_into(from: &Reference, opts: &Options, dir: &Path) -> Result<Pulled, Error> {
    let Some(want) = from.manifest_ref() else {
        return Err(Error::Usage(format!("{from}: give a tag or a digest (REGISTRY/REPO:TAG)")));
    };
    let client = Client::new(from, Options { push: false, ..opts.clone() });
    let (_, _, digest) = client
        .get_manifest(&want)
        .map_err(registry_error)?
        .ok_or_else(|| Error::Publish(format!("{from}: no such artifact in the registry")))?;
    let (index, api) = match client.referrers_api(&digest).map_err(registry_error)? {
        Some(bytes) => (Some(bytes), true),
        None => (
            client.get_manifest(&oci::referrers_tag(&digest)).map_err(registry_error)?.map(|(_, b, _)| b),
            false,
        ),
    };
    let entries = match index {
        Some(b) => {
            serde_json::from_slice::<ImageIndex>(&b)
                .map_err(|e| refused(from, format!("the referrers index is not an index: {e}")))?
                .manifests
        }
        None => Vec::new(),
    };
    let ours = |t: &Option<String>| {
        t.as_deref()
            .is_some_and(|t| t == oci::EXPORT_ARTIFACT_TYPE || REFERRER_FILES.iter().any(|(_, a)| *a == t))
    };
    let mut companions: BTreeMap<Sha256, ImageManifest> = BTreeMap::new();
    let mut files: BTreeMap<String, Descriptor> = BTreeMap::new();
    let mut signatures: Vec<(String, Descriptor)> = Vec::new();
    for e in entries.iter().filter(|e| ours(&e.artifact_type)) {
        let d = e.sha256().map_err(|why| refused(from, format!("referrers index: {why}")))?;
        let Some((_, bytes, _)) = client.get_manifest(&format!("sha256:{d}")).map_err(registry_error)? else {
            tracing::warn!("{from}: referrer sha256:{d} is listed but missing; ignored");
            continue;
        };
        let m: ImageManifest =
            serde_json::from_slice(&bytes).map_err(|e| refused(from, format!("referrer sha256:{d}: {e}")))?;
        if m.subject.as_ref().and_then(|s| s.sha256().ok()) != Some(digest) {
            tracing::warn!("{from}: referrer sha256:{d} refers to another artifact; ignored");
            continue;
        }
        if m.artifact_type.as_deref() == Some(oci::EXPORT_ARTIFACT_TYPE) {
            companions.insert(d, m);
        } else {
            let [layer] = m.layers.as_slice() else {
                return Err(refused(from, format!("signature referrer sha256:{d} must have one layer")));
            };
            let name = m
                .annotations
                .get(oci::FILE_ANNOTATION)
                .or_else(|| layer.annotations.get(oci::TITLE_ANNOTATION))
                .ok_or_else(|| refused(from, format!("referrer sha256:{d} names no file")))?;
            if !REFERRER_FILES.iter().any(|(n, _)| n == name) {
                return Err(refused(
                    from,
                    format!("referrer sha256:{d} carries {name:?}, not a signature file"),
                ));
            }
            signatures.push((name.clone(), layer.clone()));
        }
    }
    let companion =
        match companions.len() {
            0 => return Err(refused(
                from,
                "no export-center companion refers to this artifact (was it pushed by `export-center push`?)",
            )),
            1 => companions.into_values().next().expect("one"),
            n => {
                return Err(refused(
                    from,
                    format!("{n} different export companions refer to this artifact; refusing to guess"),
                ))
            }
        };
    for l in &companion.layers {
        let path = l
            .annotation(oci::TITLE_ANNOTATION)
            .ok_or_else(|| refused(from, "a companion layer has no title"))?;
        if files.insert(path.to_string(), l.clone()).is_some() {
            return Err(refused(from, format!("the companion lists {path:?} twice")));
        }
    }
    for (name, l) in signatures {
        match files.get(&name) {
            Some(prev) if prev.digest != l.digest => {
                return Err(refused(
                    from,
                    format!(
                        "two referrers give {name} different bytes ({} and {}); refusing to guess",
                        prev.digest, l.digest
                    ),
                ))
            }
            _ => {
                files.insert(name, l);
            }
        }
    }
    if files.len() > MAX_FILES {
        return Err(refused(from, format!("more than {MAX_FILES} files")));
    }
    for p in files.keys() {
        if !super::super::verify::safe_path(p) {
            return Err(refused(from, format!("{p:?} is not a path inside the export")));
        }
        let mut prefix = String::new();
        for c in p.split('/') {
            if !prefix.is_empty() && files.contains_key(prefix.trim_end_matches('/')) {
                return Err(refused(from, format!("{p:?} lies under the file {prefix:?}")));
            }
            prefix.push_str(c);
            prefix.push('/');
        }
    }
    // folders first, then the files in parallel
    let dirs: std::collections::BTreeSet<PathBuf> =
        files.keys().filter_map(|p| Path::new(p).parent().map(|d| dir.join(d))).collect();
    for d in &dirs {
        std::fs::create_dir_all(d).map_err(|e| Error::Publish(format!("{}: {e}", d.display())))?;
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .map_err(|e| Error::Publish(format!("download threads: {e}")))?;
    pool.install(|| files.par_iter().try_for_each(|(p, d)| client.get_blob(d, &dir.join(p))))
        .map_err(registry_error)?;
    // as published: files 0644, folders 0755, whatever the umask
    use std::os::unix::fs::PermissionsExt;
    for (p, mode) in files.keys().map(|p| (dir.join(p), 0o644)).chain(dirs.iter().map(|d| (d.clone(), 0o755)))
    {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::Publish(format!("{}: {e}", p.display())))?;
    }
    // the layout pulled must name the artifact the tag names
    let idx = crate::bounded::read_regular(&dir.join("oci/index.json"), super::super::verify::MANIFEST_MAX)
        .ok()
        .and_then(|b| serde_json::from_slice::<ImageIndex>(&b).ok());
    let named = idx.and_then(|i| i.manifests.first().and_then(|m| m.sha256().ok()));
    if named != Some(digest) {
        return Err(refused(
            from,
            format!("the pulled oci/index.json does not name the artifact sha256:{digest}"),
        ));
    }
    Ok(Pulled {
        reference: from.to_string(),
        digest: format!("sha256:{digest}"),
        out: dir.display().to_string(),
        files: files.len(),
        bytes: files.values().map(|d| d.size).sum(),
        referrers_api: api,
        profile: companion.annotations.get(super::PROFILE_ANNOTATION).cloned(),
        kind: companion.annotations.get(super::KIND_ANNOTATION).cloned(),
    })
}
