//! `seal-export` v2: provenance, signatures and checksums of one export.
//!
//! Input: `manifest` (the `manifest.json` of `assemble-bundle`; the
//! bundle's digest is read from it, so the bundle itself is not re-read).
//! Parameters: `profile`, `kind`, `select`, `sources`, `epoch`, `tool`,
//! `rule` (`{kind, version, actions}`), `signing` (the public key as
//! `PublicKey::describe`, or null when the profile is unsigned: the keyid
//! re-keys this step when the key changes; the private key comes from the
//! run's keyring and never enters a key or the cache).
//! Outputs: `provenance` (`provenance.json`, the canonical in-toto
//! statement), `manifest-dsse` and `provenance-dsse` (DSSE envelopes; empty
//! and not published when unsigned), `detached` (with the optional input
//! `artifact` = the bundle and a `detached` parameter naming the file, e.g.
//! `signatures/trivy-db.sig`: the base64 Ed25519 signature of the bundle's
//! bytes, for tools that check a file against a public key directly;
//! signed as a stream, so a bundle of any size is never held in memory),
//! `checksums` (`checksums.txt` over
//! every other published file of the export). Subjects are the bundle,
//! `manifest.json` and the manifest's `files[]`.

use base64::Engine as _;
use serde_json::Value;

use super::{Action, ActionCx, ActionError};
use crate::canon;
use crate::digest::Sha256;
use crate::formats::dsse::{INTOTO_PAYLOAD_TYPE, MANIFEST_PAYLOAD_TYPE};
use crate::formats::manifest::{self, Manifest};
use crate::formats::provenance;
use crate::signing;
use crate::timefmt;

#[derive(Debug)]
pub struct SealExport;

fn signed(params: &Value) -> bool {
    params.get("signing").is_some_and(|s| !s.is_null())
}

impl Action for SealExport {
    fn id(&self) -> &'static str {
        "seal-export"
    }
    fn version(&self) -> u32 {
        2 // v2: detached signature of the bundle
    }
    fn inputs(&self) -> &'static [&'static str] {
        &["manifest"]
    }
    fn required_params(&self) -> &'static [&'static str] {
        &["profile", "kind", "epoch", "tool", "rule", "signing"]
    }
    fn optional_inputs(&self) -> &'static [&'static str] {
        &["artifact"]
    }
    fn code(&self) -> &'static [&'static str] {
        &[
            file!(),
            "src/actions/mod.rs",
            "src/canon.rs",
            "src/digest.rs",
            "src/timefmt.rs",
            "src/formats/manifest.rs",
            "src/formats/dsse.rs",
            "src/formats/provenance.rs",
            "src/formats/tuf.rs",
            "src/signing/",
            "src/shown.rs",
        ]
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["provenance", "manifest-dsse", "provenance-dsse", "detached", "checksums"]
    }
    fn publishes(&self) -> bool {
        true
    }
    fn published_name(&self, output: &str, params: &Value) -> Option<String> {
        match output {
            "provenance" => Some("provenance.json".into()),
            "checksums" => Some("checksums.txt".into()),
            "manifest-dsse" if signed(params) => Some("manifest.dsse.json".into()),
            "provenance-dsse" if signed(params) => Some("provenance.dsse.json".into()),
            "detached" if signed(params) => {
                params.get("detached").and_then(Value::as_str).map(str::to_string)
            }
            _ => None,
        }
    }
    fn run(&self, cx: &ActionCx<'_>) -> Result<(), ActionError> {
        let blob = cx.blobs("manifest");
        let [manifest_blob] = blob.as_slice() else {
            return Err(ActionError::Failed("expected exactly one manifest input".into()));
        };
        let manifest_bytes = cx.cache.read(manifest_blob)?;
        // parsed once: the typed manifest is read from the tree the envelope signs
        let manifest_value: Value = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| ActionError::Failed(format!("manifest.json: {e}")))?;
        let m = <Manifest as serde::Deserialize>::deserialize(&manifest_value)
            .map_err(|e| ActionError::Failed(format!("manifest.json: {e}")))?;
        let manifest_sha = Sha256::of(&manifest_bytes);
        let time = timefmt::format_utc(cx.param_i64("epoch")?);
        let null = Value::Null;
        let mut subjects =
            vec![(m.bundle.path.clone(), m.bundle.sha256), ("manifest.json".to_string(), manifest_sha)];
        subjects.extend(m.files.iter().map(|f| (f.path.clone(), f.sha256)));
        let statement = provenance::statement(&provenance::Input {
            profile: cx.param_str("profile")?,
            kind: cx.param_str("kind")?,
            select: cx.params.get("select").unwrap_or(&null),
            sources: cx.params.get("sources").unwrap_or(&null),
            tool_version: cx.param_str("tool")?,
            rule: cx.params.get("rule").unwrap_or(&null),
            policy: cx.params.get("policy").unwrap_or(&null),
            time: &time,
            manifest_sha256: manifest_sha,
            rerun_hash: m.rerun_hash,
            subjects: subjects.clone(),
        });
        let mut files = subjects;
        files.push(("provenance.json".to_string(), Sha256::of(&statement)));
        if signed(cx.params) {
            let keyid = cx.params["signing"]
                .get("keyid")
                .and_then(Value::as_str)
                .ok_or_else(|| ActionError::Failed("parameter signing has no keyid".into()))?;
            let signer = cx.keys.get(keyid).ok_or_else(|| {
                ActionError::Failed(format!("signing key {keyid} is not loaded in this run"))
            })?;
            let sign = |ty: &str, payload: Vec<u8>| {
                signing::sign_envelope(signer, ty, payload)
                    .map(|e| e.to_json())
                    .map_err(|e| ActionError::Failed(e.to_string()))
            };
            let menv = sign(MANIFEST_PAYLOAD_TYPE, canon::to_vec(&manifest_value))?;
            let penv = sign(INTOTO_PAYLOAD_TYPE, statement.clone())?;
            files.push(("manifest.dsse.json".into(), Sha256::of(&menv)));
            files.push(("provenance.dsse.json".into(), Sha256::of(&penv)));
            cx.write("manifest-dsse", &menv)?;
            cx.write("provenance-dsse", &penv)?;
            match (cx.blobs("artifact").first(), cx.params.get("detached").and_then(Value::as_str)) {
                (Some(artifact), Some(name)) => {
                    // streamed: the bundle is read three times, never held
                    let mut hashed = super::Sha256Writer::new(std::io::sink());
                    cx.cache.copy_to(artifact, &mut hashed)?;
                    if hashed.digest() != m.bundle.sha256 {
                        return Err(ActionError::Failed(
                            "input artifact is not the manifest's bundle".into(),
                        ));
                    }
                    let feed = |w: &mut dyn std::io::Write| {
                        cx.cache.copy_to(artifact, w).map(drop).map_err(std::io::Error::other)
                    };
                    let sig = signer.sign_stream(&feed).map_err(|e| ActionError::Failed(e.to_string()))?;
                    let text = format!("{}\n", base64::engine::general_purpose::STANDARD.encode(sig));
                    files.push((name.to_string(), Sha256::of(text.as_bytes())));
                    cx.write("detached", text.as_bytes())?;
                }
                _ => cx.write("detached", b"")?,
            }
        } else {
            cx.write("manifest-dsse", b"")?;
            cx.write("provenance-dsse", b"")?;
            cx.write("detached", b"")?;
        }
        cx.write("provenance", &statement)?;
        cx.write("checksums", manifest::checksums(&files).as_bytes())?;
        Ok(())
    }
}
