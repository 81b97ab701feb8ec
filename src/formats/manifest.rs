//! `manifest.json` and `checksums.txt` of an export.
//!
//! `contents[].records` counts JSONL lines for `json:raw` members; for a
//! database member it counts the rows of its kind (advisories in
//! `trivy.db`, jars in `trivy-java.db`, 1 for `metadata.json`).
//! The manifest is pretty, sorted-key JSON (see `canon::to_pretty`), with
//! every time derived from the pinned epoch. `contents[]` lists each member
//! of the bundle `{path, sha256, bytes, records}` in path order; `rerunHash`
//! is SHA-256 over the members' sha256 hex digests, sorted and joined with
//! `\n` (no trailing newline): two exports with the same content have the
//! same `rerunHash` whatever their compression. `checksums.txt` is
//! `sha256sum` text (`<hex>  <name>\n`) over the published files except
//! itself, in lexical order.

use serde::{Deserialize, Serialize};

use crate::digest::Sha256;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub path: String,
    pub sha256: Sha256,
    pub bytes: u64,
    pub records: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, PartialOrd, Eq, Ord)]
pub struct Rejected {
    pub source: String,
    pub path: String,
    pub reason: String,
}

/// Something a step noticed in a document it still used (part of an
/// advisory Trivy cannot read, left out): listed in `warnings[]`, never
/// fatal. `message` is shown as written: its writer escapes the names from
/// input in it (`crate::shown::name`); `path` is a raw name.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, PartialOrd, Eq, Ord)]
pub struct Warning {
    pub source: String,
    pub path: String,
    pub message: String,
}

impl Warning {
    /// A `warnings` step output: canonical JSON array of warnings.
    pub fn read_list(bytes: &[u8]) -> Result<Vec<Warning>, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("warnings list: {e}"))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FileRef {
    pub path: String,
    pub sha256: Sha256,
    pub bytes: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    pub profile: String,
    pub kind: String,
    pub selectors: serde_json::Value,
    pub sources: serde_json::Value,
    pub created_at: String,
    pub tool: serde_json::Value,
    pub bundle: FileRef,
    pub contents: Vec<Entry>,
    pub rejected: Vec<Rejected>,
    /// Warnings of the steps feeding the export (replayed from the cache).
    #[serde(default)]
    pub warnings: Vec<Warning>,
    pub rerun_hash: Sha256,
    /// Other published artifacts (an OCI layout of the bundle), by path
    /// relative to the export folder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileRef>,
    /// The policy a json:policy export was evaluated with: `{path, sha256}`
    /// (`path` null for the built-in default policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<serde_json::Value>,
}

pub fn rerun_hash(contents: &[Entry]) -> Sha256 {
    let mut hexes: Vec<String> = contents.iter().map(|e| e.sha256.hex()).collect();
    hexes.sort();
    Sha256::of(hexes.join("\n").as_bytes())
}

pub fn checksums(files: &[(String, Sha256)]) -> String {
    let mut sorted: Vec<&(String, Sha256)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    sorted.iter().map(|(n, d)| format!("{d}  {n}\n")).collect()
}

/// Parse `sha256sum` text; errors name the line.
pub fn parse_checksums(text: &str) -> Result<Vec<(String, Sha256)>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, l)| {
            let (hex, name) =
                l.split_once("  ").ok_or_else(|| format!("line {}: not '<sha256>  <name>'", i + 1))?;
            let d = Sha256::parse_hex(hex).ok_or_else(|| format!("line {}: bad sha256", i + 1))?;
            Ok((name.to_string(), d))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_roundtrip_sorted() {
        let a = Sha256::of(b"a");
        let b = Sha256::of(b"b");
        let text = checksums(&[("z.txt".into(), a), ("m.json".into(), b)]);
        assert!(text.starts_with(&format!("{b}  m.json\n")));
        assert_eq!(parse_checksums(&text).unwrap(), vec![("m.json".into(), b), ("z.txt".into(), a)]);
        assert!(parse_checksums("nope").is_err());
    }

    #[test]
    fn rerun_hash_ignores_order() {
        let e = |p: &str| Entry { path: p.into(), sha256: Sha256::of(p.as_bytes()), bytes: 1, records: 1 };
        assert_eq!(rerun_hash(&[e("a"), e("b")]), rerun_hash(&[e("b"), e("a")]));
    }
}
