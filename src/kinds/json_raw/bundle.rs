//! `assemble-bundle` v2: the bundle and manifest of one profile.
//!
//! Inputs: `frames` and `entries` (paired, from `encode-member`),
//! `rejected` (from every `parse-documents` feeding the profile).
//! Parameters: `profile`, `kind`, `select`, `sources`, `epoch`, `level`,
//! `tool` (the tool version written in the manifest: it is a parameter so
//! that a new version re-keys the step instead of serving an old manifest).
//! Outputs: `bundle` (`<profile>.tar.zst`: member frames in path order and
//! the end frame), `manifest` (`manifest.json`). Empty members are left
//! out. `seal-export` adds provenance, signatures and `checksums.txt`.

use std::io::Write;

use serde_json::{json, Value};

use crate::actions::{read_rejected, Action, ActionCx, ActionError, Sha256Writer};
use crate::canon;
use crate::digest::Sha256;
use crate::formats::manifest::{self, Entry, FileRef, Manifest, Warning};
use crate::formats::tar;
use crate::timefmt;

#[derive(Debug)]
pub struct AssembleBundle;

impl Action for AssembleBundle {
    fn id(&self) -> &'static str {
        "assemble-bundle"
    }
    fn version(&self) -> u32 {
        2
    }
    fn inputs(&self) -> &'static [&'static str] {
        &["frames", "entries", "rejected"]
    }
    fn optional_inputs(&self) -> &'static [&'static str] {
        // a kind adding members of its own (json:policy): `more-frames` blobs
        // each holding concatenated member frames, `more-entries` blobs each
        // a JSON array of their entries, in the same order; `unconverted`
        // and `warnings` lists of later steps
        &["more-frames", "more-entries", "unconverted", "warnings"]
    }
    fn required_params(&self) -> &'static [&'static str] {
        &["profile", "kind", "level", "epoch", "tool"]
    }
    fn code(&self) -> &'static [&'static str] {
        &[
            file!(),
            "src/actions/mod.rs",
            "src/canon.rs",
            "src/shown.rs",
            "src/digest.rs",
            "src/adapters/",
            "src/select.rs",
            "src/actions/parse.rs",
            "src/timefmt.rs",
            "src/formats/manifest.rs",
            "src/formats/tar.rs",
            "src/formats/gzip.rs",
        ]
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["bundle", "manifest"]
    }
    fn publishes(&self) -> bool {
        true
    }
    fn published_name(&self, output: &str, params: &Value) -> Option<String> {
        match output {
            "bundle" => Some(format!("{}.tar.zst", params.get("profile")?.as_str()?)),
            "manifest" => Some("manifest.json".into()),
            _ => None,
        }
    }
    fn run(&self, cx: &ActionCx<'_>) -> Result<(), ActionError> {
        let profile = cx.param_str("profile")?.to_string();
        let level = cx.param_i64("level")? as i32;
        let epoch = cx.param_i64("epoch")?;
        let frames = cx.blobs("frames");
        let entries = cx.blobs("entries");
        if frames.len() != entries.len() {
            return Err(ActionError::Failed("frames and entries are not paired".into()));
        }
        let mut members: Vec<(Entry, crate::digest::Digest)> = Vec::new();
        for (f, e) in frames.iter().zip(&entries) {
            let entry: Entry = serde_json::from_slice(&cx.cache.read(e)?)
                .map_err(|e| ActionError::Failed(format!("entry: {e}")))?;
            if entry.records > 0 {
                members.push((entry, *f));
            }
        }
        members.sort_by(|a, b| a.0.path.cmp(&b.0.path));
        let (more_frames, more_entries) = (cx.blobs("more-frames"), cx.blobs("more-entries"));
        if more_frames.len() != more_entries.len() {
            return Err(ActionError::Failed("more-frames and more-entries are not paired".into()));
        }
        let mut more: Vec<Entry> = Vec::new();
        for e in &more_entries {
            let list: Vec<Entry> = serde_json::from_slice(&cx.cache.read(e)?)
                .map_err(|e| ActionError::Failed(format!("more-entries: {e}")))?;
            more.extend(list);
        }
        let mut names: Vec<&str> =
            members.iter().map(|m| m.0.path.as_str()).chain(more.iter().map(|e| e.path.as_str())).collect();
        names.sort();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(ActionError::Failed(format!("two members named {}", w[0])));
        }
        let bundle_name = format!("{profile}.tar.zst");
        let bundle_path = cx.out.join("bundle");
        let file = std::fs::File::create(&bundle_path).map_err(|e| ActionError::io(&bundle_path, e))?;
        let mut w = Sha256Writer { inner: std::io::BufWriter::new(file), sha: Default::default(), len: 0 };
        for (_, f) in &members {
            cx.cache.copy_to(f, &mut w)?;
        }
        for f in &more_frames {
            cx.cache.copy_to(f, &mut w)?;
        }
        w.write_all(&tar::end_frame(level).map_err(ActionError::Failed)?)
            .map_err(|e| ActionError::io(&bundle_path, e))?;
        w.flush().map_err(|e| ActionError::io(&bundle_path, e))?;
        let bundle_sha = {
            use sha2::Digest as _;
            Sha256(w.sha.clone().finalize().into())
        };
        let bundle = FileRef { path: bundle_name.clone(), sha256: bundle_sha, bytes: w.len };
        let mut rejected = Vec::new();
        for r in cx.blobs("rejected").into_iter().chain(cx.blobs("unconverted")) {
            rejected.extend(read_rejected(&cx.cache.read(&r)?).map_err(ActionError::Failed)?);
        }
        rejected.sort();
        let mut warnings = Vec::new();
        for w in cx.blobs("warnings") {
            warnings.extend(Warning::read_list(&cx.cache.read(&w)?).map_err(ActionError::Failed)?);
        }
        warnings.sort();
        let mut contents: Vec<Entry> = members.into_iter().map(|(e, _)| e).chain(more).collect();
        contents.sort_by(|a, b| a.path.cmp(&b.path));
        let m = Manifest {
            schema_version: manifest::SCHEMA_VERSION,
            profile: profile.clone(),
            kind: cx.param_str("kind")?.to_string(),
            selectors: cx.params.get("select").cloned().unwrap_or(json!({})),
            sources: cx.params.get("sources").cloned().unwrap_or(json!([])),
            created_at: timefmt::format_utc(epoch),
            tool: json!({"name": "export-center", "version": cx.param_str("tool")?}),
            bundle,
            rerun_hash: manifest::rerun_hash(&contents),
            contents,
            rejected,
            warnings,
            files: Vec::new(),
            policy: cx
                .params
                .get("policy")
                .filter(|p| !p.is_null())
                .map(|p| json!({"path": p["path"], "sha256": p["sha256"]})),
        };
        let manifest_bytes = canon::to_pretty(&serde_json::to_value(&m).expect("serialisable"));
        cx.write("manifest", &manifest_bytes)?;
        Ok(())
    }
}
