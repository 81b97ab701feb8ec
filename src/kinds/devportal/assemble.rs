//! `assemble-devportal` v1: the kit `devportal-offline-bundle.tgz` and the
//! export's `manifest.json` (docs/FORMATS.md §15).
//!
//! Inputs: `entries` and `data` (paired, from every `scan-portal`),
//! `rejected` (theirs). Parameters: `profile`, `kind`, `sources`, `epoch`,
//! `tool`, `signing` (the public key, or null when unsigned: the private
//! key comes from the run's keyring by keyid).
//!
//! The kit's `manifest.json` (`devportal-offline/v1`) lists every file
//! `{category, path, sha256, sizeBytes, contentType}` in path order;
//! `checksums.txt` is their `sha256sum` lines in the same order, and
//! `bundleId` is `sha256:` + the SHA-256 of that text: the root digest,
//! which the manifest (and so its signature) carries. When signed,
//! `manifest.dsse.json` is a DSSE envelope whose payload is `manifest.json`
//! byte for byte, payload type [`PAYLOAD_TYPE`], signed like every DSSE
//! envelope of the project (`signing::sign_envelope`: Ed25519 over the
//! PAE, keyid the key's securesystemslib keyid). `instructions-portable.txt`
//! and `verify-offline.sh` are fixed texts of this folder.
//!
//! The tar: ustar members sorted by path, the portal's files and the kit's
//! own, mode 0644 (0755 for `verify-offline.sh`; a source file's own mode
//! is not content and never read), uid/gid 0, mtime = the pinned time
//! ([`crate::formats::tar::header`], mode patched by [`header`]); gzip by
//! [`crate::formats::gzip`] (deterministic, level 6). Memory: the tar is
//! written to a scratch file, each file copied from its shard's `data`
//! blob in 64 KiB pieces and checked against its digest on the way (a
//! blob that no longer matches is reported corrupt, so the driver
//! rebuilds it), then compressed as a stream.
//!
//! Outputs: `bundle` (published as `devportal-offline-bundle.tgz`) and
//! `manifest` (the export's `manifest.json`: `contents[]` lists every tar
//! member, `records` 1 each). `seal-export` adds provenance, signatures
//! and the export's `checksums.txt`.

use std::io::{Read, Seek, Write};
use std::os::unix::fs::FileExt;

use serde_json::{json, Value};

use super::scan::PortalEntry;
use crate::actions::{read_rejected, Action, ActionCx, ActionError, Sha256Writer};
use crate::canon;
use crate::digest::{Digest, Sha256};
use crate::formats::manifest::{self, Entry, FileRef, Manifest};
use crate::formats::{gzip, tar};
use crate::signing;
use crate::timefmt;

/// The published name of the kit.
pub const BUNDLE: &str = "devportal-offline-bundle.tgz";
/// `manifest.json`'s `version`.
pub const VERSION: &str = "devportal-offline/v1";
/// The payload type of the kit's `manifest.dsse.json`.
pub const PAYLOAD_TYPE: &str = "application/vnd.export-center.devportal-manifest+json";
/// The kit's own files besides the portal's.
pub const SCRIPT: &str = "verify-offline.sh";
pub const INSTRUCTIONS: &str = "instructions-portable.txt";
const SCRIPT_TEXT: &str = include_str!("verify-offline.sh");
const INSTRUCTIONS_TEXT: &str = include_str!("instructions-portable.txt");

#[derive(Debug)]
pub struct AssembleDevportal;

/// [`tar::header`] with `mode` instead of 0644 (checksum recomputed).
pub fn header(path: &str, size: u64, mtime: i64, mode: u32) -> Result<[u8; tar::BLOCK], String> {
    let mut h = tar::header(path, size, mtime)?;
    h[100..108].copy_from_slice(format!("{mode:07o}\0").as_bytes());
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    Ok(h)
}

/// Where a member's bytes come from.
enum Body<'a> {
    /// A portal file: its shard's `data` blob and its entry there.
    File(Digest, &'a PortalEntry),
    Bytes(&'a [u8]),
}

/// The kit's `manifest.json`, `checksums.txt` and `bundleId` for `entries`
/// (sorted by path).
pub fn kit_manifest(entries: &[PortalEntry], epoch: i64) -> (Vec<u8>, String, String) {
    let checksums: String = entries.iter().map(|e| format!("{}  {}\n", e.sha256, e.path)).collect();
    let bundle_id = format!("sha256:{}", Sha256::of(checksums.as_bytes()));
    let has = |c: &str| entries.iter().any(|e| e.category == c);
    let mut sdks: Vec<&str> = entries.iter().filter_map(|e| e.sdk.as_deref()).collect();
    sdks.dedup();
    let list: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({
                "category": e.category,
                "path": e.path,
                "sha256": e.sha256.hex(),
                "sizeBytes": e.size_bytes,
                "contentType": e.content_type,
            })
        })
        .collect();
    let m = json!({
        "version": VERSION,
        "bundleId": bundle_id,
        "generatedAt": timefmt::format_utc(epoch),
        "sources": {
            "portalIncluded": has("portal"),
            "specsIncluded": has("specs"),
            "sdkNames": sdks,
            "changelogIncluded": has("changelog"),
        },
        "totals": {
            "entryCount": entries.len(),
            "totalSizeBytes": entries.iter().map(|e| e.size_bytes).sum::<u64>(),
        },
        "entries": list,
    });
    (canon::to_pretty(&m), checksums, bundle_id)
}

impl Action for AssembleDevportal {
    fn id(&self) -> &'static str {
        "assemble-devportal"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [&'static str] {
        &["entries", "data", "rejected"]
    }
    fn required_params(&self) -> &'static [&'static str] {
        &["profile", "kind", "epoch", "tool", "signing"]
    }
    fn code(&self) -> &'static [&'static str] {
        &[
            file!(),
            "src/kinds/devportal/scan.rs",
            "src/kinds/devportal/tree.rs",
            "src/kinds/devportal/verify-offline.sh",
            "src/kinds/devportal/instructions-portable.txt",
            "src/actions/mod.rs",
            "src/actions/parse.rs",
            "src/canon.rs",
            "src/digest.rs",
            "src/shown.rs",
            "src/sources/",
            "src/adapters/",
            "src/select.rs",
            "src/timefmt.rs",
            "src/formats/manifest.rs",
            "src/formats/tar.rs",
            "src/formats/gzip.rs",
            "src/formats/dsse.rs",
            "src/formats/tuf.rs",
            "src/signing/",
        ]
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["bundle", "manifest"]
    }
    fn publishes(&self) -> bool {
        true
    }
    fn published_name(&self, output: &str, _params: &Value) -> Option<String> {
        match output {
            "bundle" => Some(BUNDLE.into()),
            "manifest" => Some("manifest.json".into()),
            _ => None,
        }
    }
    fn run(&self, cx: &ActionCx<'_>) -> Result<(), ActionError> {
        let profile = cx.param_str("profile")?.to_string();
        let epoch = cx.param_i64("epoch")?;
        let lists = cx.blobs("entries");
        let data = cx.blobs("data");
        if lists.len() != data.len() {
            return Err(ActionError::Failed("entries and data are not paired".into()));
        }
        let mut files: Vec<(Digest, PortalEntry)> = Vec::new();
        for (l, d) in lists.iter().zip(&data) {
            let list: Vec<PortalEntry> = serde_json::from_slice(&cx.cache.read(l)?)
                .map_err(|e| ActionError::Failed(format!("entries: {e}")))?;
            files.extend(list.into_iter().map(|e| (*d, e)));
        }
        files.sort_by(|a, b| a.1.path.cmp(&b.1.path));
        if let Some(w) = files.windows(2).find(|w| w[0].1.path == w[1].1.path) {
            return Err(ActionError::Failed(format!("two files named {}", w[0].1.path)));
        }
        let entries: Vec<PortalEntry> = files.iter().map(|(_, e)| e.clone()).collect();
        let (kit_manifest, checksums, _) = kit_manifest(&entries, epoch);
        let envelope = match cx.params.get("signing").filter(|s| !s.is_null()) {
            None => None,
            Some(s) => {
                let keyid = s
                    .get("keyid")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ActionError::Failed("parameter signing has no keyid".into()))?;
                let signer = cx.keys.get(keyid).ok_or_else(|| {
                    ActionError::Failed(format!("signing key {keyid} is not loaded in this run"))
                })?;
                let env = signing::sign_envelope(signer, PAYLOAD_TYPE, kit_manifest.clone())
                    .map_err(|e| ActionError::Failed(e.to_string()))?;
                Some(env.to_json())
            }
        };
        let mut members: Vec<(&str, Body<'_>, u32)> = vec![
            ("checksums.txt", Body::Bytes(checksums.as_bytes()), 0o644),
            (INSTRUCTIONS, Body::Bytes(INSTRUCTIONS_TEXT.as_bytes()), 0o644),
            ("manifest.json", Body::Bytes(&kit_manifest), 0o644),
            (SCRIPT, Body::Bytes(SCRIPT_TEXT.as_bytes()), 0o755),
        ];
        if let Some(env) = &envelope {
            members.push(("manifest.dsse.json", Body::Bytes(env), 0o644));
        }
        members.extend(files.iter().map(|(d, e)| (e.path.as_str(), Body::File(*d, e), 0o644)));
        members.sort_by(|a, b| a.0.cmp(b.0));

        // the tar, to a scratch file
        let scratch = |e: std::io::Error| ActionError::io(cx.out, e);
        let mut tarfile =
            std::io::BufWriter::with_capacity(1 << 16, tempfile::tempfile_in(cx.out).map_err(scratch)?);
        let mut contents = Vec::with_capacity(members.len());
        let mut blobs: std::collections::BTreeMap<Digest, std::fs::File> = Default::default();
        let mut buf = vec![0u8; 1 << 16];
        for (path, body, mode) in &members {
            let (sha, size) = match body {
                Body::Bytes(b) => (Sha256::of(b), b.len() as u64),
                Body::File(_, e) => (e.sha256, e.size_bytes),
            };
            tarfile
                .write_all(&header(path, size, epoch, *mode).map_err(ActionError::Failed)?)
                .map_err(scratch)?;
            match body {
                Body::Bytes(b) => tarfile.write_all(b).map_err(scratch)?,
                Body::File(d, e) => {
                    if !blobs.contains_key(d) {
                        blobs.insert(*d, cx.cache.open_blob(d)?);
                    }
                    let blob = &blobs[d];
                    let mut h = Sha256Writer::new(&mut tarfile);
                    let (mut at, end) = (e.offset, e.offset + e.size_bytes);
                    while at < end {
                        let n = (end - at).min(buf.len() as u64) as usize;
                        if blob.read_exact_at(&mut buf[..n], at).is_err() {
                            return Err(corrupt(cx, d));
                        }
                        h.write_all(&buf[..n]).map_err(scratch)?;
                        at += n as u64;
                    }
                    if h.digest() != e.sha256 {
                        return Err(corrupt(cx, d));
                    }
                }
            }
            let pad = (tar::BLOCK - (size % tar::BLOCK as u64) as usize) % tar::BLOCK;
            tarfile.write_all(&vec![0u8; pad]).map_err(scratch)?;
            contents.push(Entry { path: path.to_string(), sha256: sha, bytes: size, records: 1 });
        }
        tarfile.write_all(&[0u8; 2 * tar::BLOCK]).map_err(scratch)?;
        let mut tarfile = tarfile.into_inner().map_err(|e| scratch(e.into_error()))?;
        tarfile.rewind().map_err(scratch)?;
        drop(blobs);

        let bundle_path = cx.out.join("bundle");
        let io = |e: std::io::Error| ActionError::io(&bundle_path, e);
        let file = std::fs::File::create(&bundle_path).map_err(io)?;
        let mut reader = std::io::BufReader::with_capacity(1 << 16, tarfile);
        let mut w =
            gzip::compress(&mut reader as &mut dyn Read, Sha256Writer::new(std::io::BufWriter::new(file)), 6)
                .map_err(io)?;
        w.flush().map_err(io)?;
        let bundle = FileRef { path: BUNDLE.into(), sha256: w.digest(), bytes: w.len };

        let mut rejected = Vec::new();
        for r in cx.blobs("rejected") {
            rejected.extend(read_rejected(&cx.cache.read(&r)?).map_err(ActionError::Failed)?);
        }
        rejected.sort();
        let m = Manifest {
            schema_version: manifest::SCHEMA_VERSION,
            profile,
            kind: cx.param_str("kind")?.to_string(),
            selectors: json!({}),
            sources: cx.params.get("sources").cloned().unwrap_or(json!([])),
            created_at: timefmt::format_utc(epoch),
            tool: json!({"name": "export-center", "version": cx.param_str("tool")?}),
            bundle,
            rerun_hash: manifest::rerun_hash(&contents),
            contents,
            rejected,
            warnings: Vec::new(),
            files: Vec::new(),
            policy: None,
        };
        cx.write("manifest", &canon::to_pretty(&serde_json::to_value(&m).expect("serialisable")))?;
        Ok(())
    }
}

/// A `data` blob that no longer holds what its entries say: verified in
/// full, which deletes it and reports it corrupt (the driver rebuilds it).
fn corrupt(cx: &ActionCx<'_>, d: &Digest) -> ActionError {
    match cx.cache.copy_to(d, &mut std::io::sink()) {
        Err(e) => ActionError::Cache(e),
        Ok(_) => ActionError::Failed(format!("data blob {d} does not hold the files its entries list")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mode_patch_keeps_a_valid_header() {
        let h = header("verify-offline.sh", 10, 1_735_689_600, 0o755).unwrap();
        let plain = tar::header("verify-offline.sh", 10, 1_735_689_600).unwrap();
        assert_eq!(&h[100..108], b"0000755\0");
        assert_eq!(&h[..100], &plain[..100]);
        assert_eq!(&h[156..], &plain[156..]);
        let mut v = h.to_vec();
        v.extend_from_slice(b"0123456789");
        v.resize(4 * 512, 0);
        let mut a = ::tar::Archive::new(&v[..]);
        let e = a.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(e.header().mode().unwrap(), 0o755);
        assert_eq!(e.header().mtime().unwrap(), 1_735_689_600);
    }

    #[test]
    fn bundle_id_is_the_sha256_of_checksums_txt() {
        let e = |p: &str, c: &str| PortalEntry {
            category: c.into(),
            sdk: p.strip_prefix("sdks/").and_then(|r| r.split('/').next()).map(str::to_string),
            path: p.into(),
            sha256: Sha256::of(p.as_bytes()),
            size_bytes: 3,
            content_type: "text/plain".into(),
            offset: 0,
        };
        let entries = vec![e("portal/a.txt", "portal"), e("sdks/go/x", "sdks"), e("sdks/py/y", "sdks")];
        let (m, sums, id) = kit_manifest(&entries, 0);
        assert_eq!(id, format!("sha256:{}", Sha256::of(sums.as_bytes())));
        let v: Value = serde_json::from_slice(&m).unwrap();
        assert_eq!(v["bundleId"], id.as_str());
        assert_eq!(v["sources"]["sdkNames"], json!(["go", "py"]));
        assert_eq!(v["sources"]["specsIncluded"], false);
        assert_eq!(v["totals"], json!({"entryCount": 3, "totalSizeBytes": 9}));
        assert_eq!(v["generatedAt"], "1970-01-01T00:00:00Z");
        assert!(sums.lines().all(|l| l.len() > 66 && &l[64..66] == "  "));
    }
}
