//! Kind `devportal:offline`: a developer portal as an offline kit,
//! `devportal-offline-bundle.tgz` (docs/FORMATS.md §15; issue 13).
//!
//! Owns its option (`allow-external`), its rule (`rule.toml`:
//! `scan-portal` per shard → `assemble-devportal` → seal), its actions
//! ([`scan`], [`assemble`]), what a portal file is ([`tree`]: categories,
//! content types, external references) and its verify hook (one gzip
//! stream; members are not re-counted). It applies no selectors.
//!
//! How the `tree` source format fits the engine: a `tree` source is an
//! ordinary source (a folder or an archive) whose documents are arbitrary
//! files rather than JSON evidence, like `maven-repo`'s jars. It reuses
//! everything `src/sources` guarantees: the walk, the stat cache, the
//! refusal of symbolic links, special files and (in archives) absolute or
//! `..` paths, exit 2 naming them; dot-folders skipped; shards of path
//! neighbours, so one changed file re-runs one `scan-portal` step, then
//! the assembly and the seal. `adapters::Format::Tree` holds no adapter
//! (`parse-documents` refuses it) and its default include is `**` (every
//! file); `Format::is_evidence` is false for it, so the evidence kinds
//! refuse a `tree` input and this kind accepts nothing else (exit 2
//! naming the profiles.toml line, like every kind/format mismatch). File
//! bytes are streamed (`ShardReader::stream`); the source's
//! `max-document-bytes` still bounds one file.
//!
//! Option `allow-external`: an array of URLs the portal may reference
//! ([`tree::AllowList`]: an entry ending in `*` is a prefix that must name
//! a host and a `/`, any other entry is exact), checked when the profile
//! loads; default empty (every external reference is refused).

pub mod assemble;
pub mod scan;
pub mod tree;

use serde_json::Value;

use super::{BuiltinRule, BundleCheck, Codec, Kind, Members, OptionSpec};
use crate::actions::Action;
use crate::adapters::Format;

#[derive(Debug)]
pub struct DevportalOffline;

/// `allow-external`: an array of strings, each a valid entry.
fn parse_allow(v: Option<&toml::Value>) -> Result<Value, String> {
    let Some(v) = v else { return Ok(Value::Array(Vec::new())) };
    let arr =
        v.as_array().ok_or("must be an array of http(s) URLs, e.g. [\"https://fonts.example/css/*\"]")?;
    let mut out = Vec::new();
    for (i, e) in arr.iter().enumerate() {
        let s = e.as_str().ok_or_else(|| format!("entry {i} is not a string"))?;
        tree::AllowList::check_entry(s).map_err(|m| format!("entry {i}: {m}"))?;
        out.push(Value::String(s.to_string()));
    }
    Ok(Value::Array(out))
}

impl Kind for DevportalOffline {
    fn name(&self) -> &'static str {
        "devportal:offline"
    }
    fn rule(&self) -> BuiltinRule {
        BuiltinRule { path: "src/kinds/devportal/rule.toml", text: include_str!("rule.toml") }
    }
    fn actions(&self) -> &'static [&'static dyn Action] {
        &[&scan::ScanPortal, &assemble::AssembleDevportal]
    }
    fn accepts(&self, format: Format) -> bool {
        format == Format::Tree
    }
    fn options(&self) -> &'static [OptionSpec] {
        &[OptionSpec::Custom { key: "allow-external", parse: parse_allow }]
    }
    fn applies_select(&self) -> bool {
        false
    }
    fn bundle(&self) -> BundleCheck {
        BundleCheck { codec: Codec::Gzip, members: Members::Opaque }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_external_is_checked_when_the_profile_loads() {
        let v = |s: &str| toml::from_str::<toml::Table>(&format!("x = {s}")).unwrap()["x"].clone();
        assert_eq!(parse_allow(None).unwrap(), serde_json::json!([]));
        assert_eq!(
            parse_allow(Some(&v(r#"["https://a.example/x.js", "https://b.example/*"]"#))).unwrap(),
            serde_json::json!(["https://a.example/x.js", "https://b.example/*"])
        );
        assert!(parse_allow(Some(&v(r#""https://a.example/""#))).unwrap_err().contains("array"));
        assert!(parse_allow(Some(&v("[1]"))).unwrap_err().contains("entry 0"));
        assert!(parse_allow(Some(&v(r#"["https://b.example*"]"#))).unwrap_err().contains("prefix"));
    }
}
