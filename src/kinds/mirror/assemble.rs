//! `assemble-mirror` v1: a mirror generation from its shards' files.
//!
//! Inputs (gathered per shard, paired by position): `raw`, `normalized`,
//! `index`, their tar members `raw-member`, `normalized-member`,
//! `index-member`, and `entries` (from `mirror-shard`); `rejected`
//! (from `parse-documents`). Parameters: `profile`, `kind`, `select`,
//! `sources`, `epoch`, `tool`, `level` (the data files' zstd level,
//! recorded in `export.json`), `signing` (the key that signs every TUF
//! role), `expires` (days per role) and `previous` (`{export.previous}`:
//! the live generation and its [`Carried`] state).
//!
//! A tree action ([`crate::actions::Action::tree`]): it publishes the
//! mirror tree ([`super::tree`]), `tuf/metadata/` and `tuf/targets/`
//! (consistent snapshots), `oci/` (one artifact, a layer per tree file,
//! `export.json` as config, tag = generation) and
//! `mirror-<generation>.tar.zst` (the tree's files as tar members, one
//! zstd frame each, in path order). Data files are linked from the shard
//! steps' blobs, never copied. Output `manifest` is `manifest.json`.
//!
//! Generation: the identity of a build is the SHA-256 over everything
//! its bytes depend on but the number (files, pinned time, expiries,
//! key, roots, sources, selectors, tool). The same identity as the live
//! export keeps its generation (the same bytes: publishing changes
//! nothing); another identity is the live generation + 1; no live export
//! is generation 1. TUF `version`s of targets, snapshot and timestamp are
//! the generation. Root: the live export's `N.root.json` files are carried
//! verbatim; without any, `1.root.json` is made, expiring at the pinned
//! time + `expires.root` days and fixed from then on.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::shard::{member_frame, MEMBER_LEVEL};
use super::tree::{self, ExportJson, ShardEntry, TopIndex, TreeFile};
use crate::actions::{read_rejected, Action, ActionCx, ActionError};
use crate::canon;
use crate::digest::{Digest, Sha256};
use crate::formats::manifest::{self, Entry, FileRef, Manifest};
use crate::formats::{oci, tar, tuf};
use crate::timefmt;

#[derive(Debug)]
pub struct AssembleMirror;

/// Media types of the mirror's OCI artifact.
pub const ARTIFACT_TYPE: &str = "application/vnd.export-center.mirror.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.export-center.mirror.config.v1+json";

/// The OCI layer media type of a tree file, by its name.
pub fn layer_media_type(path: &str) -> &'static str {
    if path.ends_with(".age") {
        "application/vnd.age"
    } else if path.ends_with(".zst") {
        "application/zstd"
    } else {
        "application/json"
    }
}

/// The OCI layout's small files of a mirror generation: every tree file
/// (`files`, in path order, `export.json` among them) a layer titled by its
/// path, `export.json` also the config, tagged with the generation.
pub fn oci_files(
    files: &[TreeFile],
    export_json: &[u8],
    generation: u64,
    created: &str,
) -> Vec<(String, Vec<u8>)> {
    let layers: Vec<oci::Layer<'_>> = files
        .iter()
        .map(|f| oci::Layer {
            media_type: layer_media_type(&f.path),
            sha256: f.sha256,
            size: f.length,
            title: f.path.clone(),
        })
        .collect();
    let tag = generation.to_string();
    oci::generic_layout(&oci::Generic {
        artifact_type: Some(ARTIFACT_TYPE),
        config_media_type: CONFIG_MEDIA_TYPE,
        config: export_json,
        layers,
        tag: &tag,
        created,
    })
}

/// What a live mirror carries into the next build (`Kind::carried_state`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Carried {
    pub identity: Option<Sha256>,
    /// `N.root.json` texts, N = 1, 2, …
    pub roots: Vec<String>,
}

/// Days each role's metadata stays valid.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct Expires {
    pub timestamp: i64,
    pub snapshot: i64,
    pub targets: i64,
    pub root: i64,
}

impl Default for Expires {
    fn default() -> Self {
        Expires { timestamp: 2, snapshot: 7, targets: 30, root: 365 }
    }
}

/// A tree file and where its bytes are: a blob of an input, or bytes made here.
enum Bytes {
    Blob(Digest),
    Made(Vec<u8>),
}

struct File {
    tf: TreeFile,
    bytes: Bytes,
    /// Its tar member frame, when a shard step made it.
    member: Option<Digest>,
    records: u64,
}

const DAY: i64 = 86_400;

fn failed(m: impl std::fmt::Display) -> ActionError {
    ActionError::Failed(m.to_string())
}

impl Action for AssembleMirror {
    fn id(&self) -> &'static str {
        "assemble-mirror"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [&'static str] {
        &[
            "raw",
            "normalized",
            "index",
            "raw-member",
            "normalized-member",
            "index-member",
            "entries",
            "rejected",
        ]
    }
    fn required_params(&self) -> &'static [&'static str] {
        &["profile", "kind", "epoch", "tool", "signing", "expires", "level"]
    }
    fn code(&self) -> &'static [&'static str] {
        &[
            file!(),
            "src/kinds/mirror/tree.rs",
            "src/kinds/mirror/shard.rs",
            "src/kinds/mirror/normalize.rs",
            "src/actions/mod.rs",
            "src/actions/parse.rs",
            "src/adapters/",
            "src/canon.rs",
            "src/shown.rs",
            "src/digest.rs",
            "src/select.rs",
            "src/timefmt.rs",
            "src/formats/manifest.rs",
            "src/formats/tar.rs",
            "src/formats/gzip.rs",
            "src/formats/oci.rs",
            "src/formats/tuf.rs",
            "src/formats/dsse.rs",
            "src/signing/",
            "src/cache/hashing.rs",
        ]
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["manifest"]
    }
    fn publishes(&self) -> bool {
        true
    }
    fn tree(&self) -> bool {
        true
    }
    fn published_name(&self, output: &str, _params: &Value) -> Option<String> {
        (output == "manifest").then(|| "manifest.json".into())
    }
    fn run(&self, cx: &ActionCx<'_>) -> Result<(), ActionError> {
        let profile = cx.param_str("profile")?.to_string();
        let kind = cx.param_str("kind")?.to_string();
        let epoch = cx.param_i64("epoch")?;
        let tool = cx.param_str("tool")?.to_string();
        let expires: Expires = serde_json::from_value(cx.params["expires"].clone())
            .map_err(|e| failed(format!("expires: {e}")))?;
        let keyid = cx.params["signing"].get("keyid").and_then(Value::as_str).ok_or_else(|| {
            failed(format!("{kind} profiles are TUF repositories and need a signing key: set [signing] or profiles.{profile}.signing"))
        })?;
        let signer = cx
            .keys
            .get(keyid)
            .ok_or_else(|| failed(format!("signing key {keyid} is not loaded in this run")))?;
        let previous = cx.params.get("previous").filter(|v| !v.is_null());
        let carried: Carried = match previous.and_then(|p| p.get("state")) {
            Some(s) => {
                serde_json::from_value(s.clone()).map_err(|e| failed(format!("previous state: {e}")))?
            }
            None => Carried::default(),
        };
        let prev_generation = previous.and_then(|p| p.get("generation")).and_then(Value::as_u64);

        // the shards' files
        let list = |n: &str| cx.blobs(n);
        let (raw, norm, index) = (list("raw"), list("normalized"), list("index"));
        let (raw_m, norm_m, index_m) = (list("raw-member"), list("normalized-member"), list("index-member"));
        let entries = list("entries");
        if [raw.len(), norm.len(), index.len(), raw_m.len(), norm_m.len(), index_m.len()]
            .iter()
            .any(|n| *n != entries.len())
        {
            return Err(failed("shard inputs are not paired"));
        }
        let mut files: Vec<File> = Vec::new();
        let mut counts: std::collections::BTreeMap<String, u64> =
            tree::TYPES.iter().map(|t| (t.to_string(), 0)).collect();
        counts.insert("normalizedRows".into(), 0);
        let mut tops: std::collections::BTreeMap<&str, Vec<TreeFile>> =
            tree::TYPES.iter().map(|t| (*t, Vec::new())).collect();
        for i in 0..entries.len() {
            let e: ShardEntry = serde_json::from_slice(&cx.cache.read(&entries[i])?)
                .map_err(|e| failed(format!("entry: {e}")))?;
            *counts.entry(e.ty.clone()).or_default() += e.records;
            *counts.entry("normalizedRows".into()).or_default() += e.rows;
            if let Some(tf) = e.raw {
                files.push(File {
                    tf,
                    bytes: Bytes::Blob(raw[i]),
                    member: Some(raw_m[i]),
                    records: e.records,
                });
            }
            if let Some(tf) = e.normalized {
                files.push(File {
                    tf,
                    bytes: Bytes::Blob(norm[i]),
                    member: Some(norm_m[i]),
                    records: e.rows,
                });
            }
            if let Some(tf) = e.index {
                let top = tops
                    .get_mut(e.ty.as_str())
                    .ok_or_else(|| failed(format!("unknown record type {}", e.ty)))?;
                top.push(tf.clone());
                files.push(File {
                    tf,
                    bytes: Bytes::Blob(index[i]),
                    member: Some(index_m[i]),
                    records: e.records,
                });
            }
        }
        for (ty, mut shards) in tops {
            shards.sort();
            let records = counts[ty];
            let bytes = canon::to_vec_of(&TopIndex { ty: ty.to_string(), records, shards });
            let tf = TreeFile {
                plaintext: None,
                path: tree::top_index_path(ty),
                sha256: Sha256::of(&bytes),
                length: bytes.len() as u64,
            };
            files.push(File { tf, bytes: Bytes::Made(bytes), member: None, records });
        }
        files.sort_by(|a, b| a.tf.path.cmp(&b.tf.path));
        if let Some(w) = files.windows(2).find(|w| w[0].tf.path == w[1].tf.path) {
            return Err(failed(format!("two files named {}", w[0].tf.path)));
        }
        let mut sizes = std::collections::BTreeMap::new();
        for f in &files {
            let area = if f.tf.path.starts_with("indexes/") {
                "indexes"
            } else if f.tf.path.starts_with("data/normalized/") {
                "normalized"
            } else {
                "raw"
            };
            *sizes.entry(area.to_string()).or_insert(0u64) += f.tf.length;
        }
        let tree_files: Vec<TreeFile> = files.iter().map(|f| f.tf.clone()).collect();

        // roots: carried, or a first one
        // each role's keys: profiles.<p>.tuf, else the signing key (threshold 1)
        let mut roles: Vec<(&str, tuf::RoleKeys, Vec<&dyn crate::signing::Signer>)> = Vec::new();
        for role in tuf::ROLES {
            roles.push(match cx.params.get("tuf").and_then(|t| t.get(role)) {
                None => (
                    role,
                    tuf::RoleKeys { keys: vec![signer.public_key().hex()], threshold: 1 },
                    vec![signer],
                ),
                Some(c) => {
                    let (mut hexes, mut signers) = (Vec::new(), Vec::new());
                    for k in c.get("keys").and_then(Value::as_array).into_iter().flatten() {
                        let id = k
                            .get("keyid")
                            .and_then(Value::as_str)
                            .ok_or_else(|| failed(format!("tuf.{role}: a key without keyid")))?;
                        let s = cx.keys.get(id).ok_or_else(|| {
                            failed(format!("tuf.{role}: key {id} is not loaded in this run"))
                        })?;
                        hexes.push(s.public_key().hex());
                        signers.push(s);
                    }
                    let threshold = c.get("threshold").and_then(Value::as_u64).unwrap_or(1) as u32;
                    (role, tuf::RoleKeys { keys: hexes, threshold }, signers)
                }
            });
        }
        let signers_of =
            |role: &str| roles.iter().find(|r| r.0 == role).map(|r| r.2.clone()).expect("every role");
        let mut roots: Vec<Vec<u8>> = carried.roots.iter().map(|t| t.as_bytes().to_vec()).collect();
        if roots.is_empty() {
            let list: Vec<(&str, &tuf::RoleKeys)> = roles.iter().map(|(r, k, _)| (*r, k)).collect();
            let signed = tuf::root(1, epoch + expires.root * DAY, &list);
            roots.push(crate::signing::tuf::sign(&signed, &signers_of("root")).map_err(failed)?);
        }
        let last_root = tuf::Metadata::parse("root", roots.last().expect("one at least")).map_err(failed)?;
        for (role, rk, _) in &roles {
            let want: std::collections::BTreeSet<String> = rk.keys.iter().map(|h| tuf::keyid(h)).collect();
            let have = tuf::Metadata::role_keys(&last_root.signed, role).map(|(k, t)| {
                (k.into_iter().map(|(id, _)| id).collect::<std::collections::BTreeSet<_>>(), t)
            });
            if have != Some((want.clone(), u64::from(rk.threshold))) {
                return Err(failed(format!(
                    "the {role} keys this build signs with ({}, threshold {}) are not those of the mirror's {}.root.json: sign with the keys that root names, or make a new root (`export-center tuf rotate-root --profile {profile} --new-key K`, then point the profile's signing key at K)",
                    want.into_iter().collect::<Vec<_>>().join(", "),
                    rk.threshold,
                    roots.len()
                )));
            }
        }

        // identity and generation
        let identity = Sha256::of(&canon::to_vec(&json!({
            "files": tree_files, "epoch": epoch, "expires": expires, "keyid": keyid,
            "roots": roots.iter().map(|r| Sha256::of(r).hex()).collect::<Vec<_>>(),
            "profile": profile, "kind": kind, "tool": tool,
            "select": cx.params.get("select"), "sources": cx.params.get("sources"),
            "encryption": cx.params.get("encryption"), "tuf": cx.params.get("tuf"),
        })));
        let generation = match prev_generation {
            None => 1,
            Some(g) if carried.identity == Some(identity) => g,
            Some(g) => g + 1,
        };
        let created = timefmt::format_utc(epoch);
        let export = ExportJson {
            schema_version: 1,
            profile: profile.clone(),
            kind: kind.clone(),
            generation,
            created_at: created.clone(),
            selectors: cx.params.get("select").cloned().unwrap_or(json!({})),
            sources: cx.params.get("sources").cloned().unwrap_or(json!([])),
            counts: counts.clone(),
            sizes,
            compression_level: cx.param_i64("level")?,
            identity,
            recipients: cx
                .params
                .get("encryption")
                .and_then(|e| e.get("recipients"))
                .and_then(|r| serde_json::from_value(r.clone()).ok())
                .unwrap_or_default(),
            files: tree_files,
            tool: json!({"name": "export-center", "version": tool}),
        };
        let export_bytes = canon::to_pretty(&serde_json::to_value(&export).expect("serialisable"));
        let export_tf = TreeFile {
            plaintext: None,
            path: tree::EXPORT_JSON.into(),
            sha256: Sha256::of(&export_bytes),
            length: export_bytes.len() as u64,
        };
        files.push(File {
            tf: export_tf,
            bytes: Bytes::Made(export_bytes.clone()),
            member: None,
            records: 1,
        });
        files.sort_by(|a, b| a.tf.path.cmp(&b.tf.path));

        // publishing: made files written under tree/, blobs linked
        let mut links: std::collections::BTreeMap<String, String> = Default::default();
        let mut published: Vec<FileRef> = Vec::new();
        let place = |links: &mut std::collections::BTreeMap<String, String>,
                     published: &mut Vec<FileRef>,
                     path: &str,
                     f: &File|
         -> Result<(), ActionError> {
            match &f.bytes {
                Bytes::Blob(d) => {
                    links.insert(path.to_string(), d.hex());
                }
                Bytes::Made(b) => cx.write(&format!("tree/{path}"), b)?,
            }
            published.push(FileRef { path: path.to_string(), sha256: f.tf.sha256, bytes: f.tf.length });
            Ok(())
        };
        let mut targets = Map::new();
        for f in &files {
            place(&mut links, &mut published, &f.tf.path, f)?;
            place(&mut links, &mut published, &tree::target_file(&f.tf.path, &f.tf.sha256), f)?;
            targets.insert(f.tf.path.clone(), tuf::target_info(f.tf.length, &f.tf.sha256));
        }
        // OCI: every tree file a layer, export.json also the config
        let listed: Vec<TreeFile> = files.iter().map(|f| f.tf.clone()).collect();
        let small = oci_files(&listed, &export_bytes, generation, &created);
        let mut blob_names = std::collections::BTreeSet::new();
        for (path, bytes) in &small {
            let p = format!("oci/{path}");
            blob_names.insert(p.clone());
            cx.write(&format!("tree/{p}"), bytes)?;
            published.push(FileRef { path: p, sha256: Sha256::of(bytes), bytes: bytes.len() as u64 });
        }
        for f in &files {
            let p = format!("oci/{}", oci::blob_path(&f.tf.sha256));
            if blob_names.insert(p.clone()) {
                place(&mut links, &mut published, &p, f)?;
            }
        }
        // TUF metadata
        let signed_targets = tuf::targets(generation, epoch + expires.targets * DAY, targets);
        let targets_file =
            crate::signing::tuf::sign(&signed_targets, &signers_of("targets")).map_err(failed)?;
        let snapshot_file = crate::signing::tuf::sign(
            &tuf::snapshot(generation, epoch + expires.snapshot * DAY, generation, &targets_file),
            &signers_of("snapshot"),
        )
        .map_err(failed)?;
        let timestamp_file = crate::signing::tuf::sign(
            &tuf::timestamp(generation, epoch + expires.timestamp * DAY, generation, &snapshot_file),
            &signers_of("timestamp"),
        )
        .map_err(failed)?;
        let mut meta: Vec<(String, Vec<u8>)> =
            roots.into_iter().enumerate().map(|(i, r)| (format!("{}.root.json", i + 1), r)).collect();
        meta.push((format!("{generation}.targets.json"), targets_file));
        meta.push((format!("{generation}.snapshot.json"), snapshot_file));
        meta.push(("timestamp.json".into(), timestamp_file));
        for (name, bytes) in &meta {
            let p = format!("tuf/metadata/{name}");
            cx.write(&format!("tree/{p}"), bytes)?;
            published.push(FileRef { path: p, sha256: Sha256::of(bytes), bytes: bytes.len() as u64 });
        }

        // mirror-<generation>.tar.zst: each tree file's member frame, then the end
        let bundle_name = format!("mirror-{generation}.tar.zst");
        let bundle_path = cx.out.join("tree").join(&bundle_name);
        let io = |e: std::io::Error| ActionError::io(&bundle_path, e);
        // hashed as written: the executor and the publisher do not read it back
        let mut w = cx.create_hashed(&format!("tree/{bundle_name}"))?;
        let mut contents = Vec::new();
        for f in &files {
            match (&f.member, &f.bytes) {
                (Some(m), _) => {
                    cx.cache.copy_to(m, &mut w)?;
                }
                (None, Bytes::Made(b)) => {
                    let src = cx.out.join("tree").join(&f.tf.path);
                    let dst =
                        tempfile::NamedTempFile::new_in(cx.out).map_err(|e| ActionError::io(cx.out, e))?;
                    member_frame(&f.tf.path, &src, dst.path()).map_err(|e| ActionError::io(&src, e))?;
                    debug_assert_eq!(b.len() as u64, f.tf.length);
                    std::io::copy(&mut std::fs::File::open(dst.path()).map_err(io)?, &mut w).map_err(io)?;
                }
                (None, Bytes::Blob(_)) => return Err(failed(format!("{}: no tar member", f.tf.path))),
            }
            contents.push(Entry {
                path: f.tf.path.clone(),
                sha256: f.tf.sha256,
                bytes: f.tf.length,
                records: f.records,
            });
        }
        std::io::Write::write_all(&mut w, &tar::end_frame(MEMBER_LEVEL).map_err(failed)?).map_err(io)?;
        let h = cx.finish_hashed(w)?;
        let bundle = FileRef { path: bundle_name, sha256: h.sha256(), bytes: h.size() };
        std::fs::write(cx.out.join("links.json"), canon::to_vec_of(&links))
            .map_err(|e| ActionError::io(cx.out, e))?;

        let mut rejected = Vec::new();
        for r in cx.blobs("rejected") {
            rejected.extend(read_rejected(&cx.cache.read(&r)?).map_err(failed)?);
        }
        rejected.sort();
        published.sort_by(|a, b| a.path.cmp(&b.path));
        published.dedup_by(|a, b| a.path == b.path);
        let m = Manifest {
            schema_version: manifest::SCHEMA_VERSION,
            profile,
            kind,
            selectors: cx.params.get("select").cloned().unwrap_or(json!({})),
            sources: cx.params.get("sources").cloned().unwrap_or(json!([])),
            created_at: created,
            tool: json!({"name": "export-center", "version": tool}),
            bundle,
            rerun_hash: manifest::rerun_hash(&contents),
            contents,
            rejected,
            warnings: Vec::new(),
            files: published,
            policy: None,
        };
        cx.write("manifest", &canon::to_pretty(&serde_json::to_value(&m).expect("serialisable")))
    }
}
