//! Adapters: parse and validate one evidence document of a given format.
//!
//! Owns the mapping `bytes → Parsed { meta, document }` for every input
//! format, and the record type each format feeds (`advisories`, `vex`,
//! `sboms`). An adapter checks just enough schema to be sure the document
//! is what its source claims (required fields and their types) and returns
//! a reason string naming the JSON path when it is not. It never rewrites
//! facts: the document travels on as parsed, re-serialised canonically by
//! the caller.

mod alpine_secdb;
mod csaf;
mod cyclonedx;
mod nodejs;
mod openvex;
mod osv;
mod spdx;

use serde_json::Value;

use crate::select::RecordMeta;

/// Input document formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    Osv,
    OpenVex,
    Csaf,
    CycloneDx,
    Spdx,
    /// Node.js security-wg npm advisories (`vuln/npm/<id>.json`).
    NodejsAdvisory,
    /// A Maven repository tree: `group/path/artifact/version/artifact-version.jar`.
    MavenRepo,
    /// Alpine secdb, one package per file (`<release>/<repository>/<package>.json`).
    AlpineSecdb,
    /// A folder of arbitrary files (a developer portal: HTML, specs, SDKs),
    /// not evidence: no adapter parses it, every file is a document
    /// (default include `**`), and only kinds that read files as bytes
    /// (`devportal:offline`) accept it.
    Tree,
}

/// Output record types (one JSONL family per type in the bundle).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordType {
    Advisories,
    Vex,
    Sboms,
    /// Jars of a Maven repository (not JSON: no `parse-documents`).
    Artifacts,
    /// Files of a `tree` source, carried as bytes (not JSON: no `parse-documents`).
    Files,
}

impl RecordType {
    const ALL: [RecordType; 5] = [
        RecordType::Advisories,
        RecordType::Vex,
        RecordType::Sboms,
        RecordType::Artifacts,
        RecordType::Files,
    ];
    /// The type named `s` (as [`RecordType::as_str`] writes it).
    pub fn parse(s: &str) -> Option<RecordType> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
    /// Whether profile selectors narrow records of this type: advisories
    /// only (`crate::select`); VEX statements and SBOMs are carried whole.
    pub fn selectable(self) -> bool {
        self == RecordType::Advisories
    }
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::Advisories => "advisories",
            RecordType::Vex => "vex",
            RecordType::Sboms => "sboms",
            RecordType::Artifacts => "artifacts",
            RecordType::Files => "files",
        }
    }
}

const FORMATS: &[(&str, Format)] = &[
    ("osv", Format::Osv),
    ("openvex", Format::OpenVex),
    ("csaf", Format::Csaf),
    ("cyclonedx", Format::CycloneDx),
    ("spdx", Format::Spdx),
    ("nodejs-advisory", Format::NodejsAdvisory),
    ("maven-repo", Format::MavenRepo),
    ("alpine-secdb", Format::AlpineSecdb),
    ("tree", Format::Tree),
];

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        FORMATS.iter().find(|(n, _)| *n == s).map(|(_, f)| *f)
    }
    pub fn names() -> Vec<&'static str> {
        FORMATS.iter().map(|(n, _)| *n).collect()
    }
    pub fn as_str(self) -> &'static str {
        FORMATS.iter().find(|(_, f)| *f == self).map(|(n, _)| *n).unwrap()
    }
    /// Default include and exclude globs of a source of this format.
    pub fn default_globs(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            Format::MavenRepo => (&["**/*.jar", "**/*.aar"], &[]),
            Format::Tree => (&["**"], &[]),
            // the security-wg folder holds an index.json of every advisory
            Format::NodejsAdvisory => (&["**/*.json"], &["**/index.json", "index.json"]),
            _ => (&["**/*.json"], &[]),
        }
    }
    /// Whether the source holds JSON evidence documents an adapter parses
    /// (false for `maven-repo` jars and `tree` files).
    pub fn is_evidence(self) -> bool {
        !matches!(self, Format::MavenRepo | Format::Tree)
    }
    pub fn record_type(self) -> RecordType {
        match self {
            Format::Osv | Format::NodejsAdvisory | Format::AlpineSecdb => RecordType::Advisories,
            Format::MavenRepo => RecordType::Artifacts,
            Format::Tree => RecordType::Files,
            Format::OpenVex | Format::Csaf => RecordType::Vex,
            Format::CycloneDx | Format::Spdx => RecordType::Sboms,
        }
    }
}

/// A validated document.
pub struct Parsed {
    pub meta: RecordMeta,
    pub document: Value,
}

/// Parse and validate `bytes` as `format`. The error is a human reason that
/// names the JSON location (`$.affected[0].package`).
/// `fallback_id` names documents whose format has no mandatory identifier
/// (a CycloneDX BOM without `serialNumber`): callers pass `sha256:<hex>`.
pub fn parse(format: Format, bytes: &[u8], fallback_id: &str) -> Result<Parsed, String> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err("empty document".into());
    }
    let document: Value = serde_json::from_slice(bytes).map_err(|e| format!("malformed JSON: {e}"))?;
    check_duplicate_keys(bytes)?;
    if !document.is_object() {
        return Err(format!("$: expected a JSON object, found {}", kind(&document)));
    }
    let mut meta = match format {
        Format::Osv => osv::meta(&document)?,
        Format::OpenVex => openvex::meta(&document)?,
        Format::Csaf => csaf::meta(&document)?,
        Format::CycloneDx => cyclonedx::meta(&document)?,
        Format::Spdx => spdx::meta(&document)?,
        Format::NodejsAdvisory => nodejs::meta(&document)?,
        Format::AlpineSecdb => alpine_secdb::meta(&document)?,
        Format::MavenRepo => return Err("maven-repo sources hold jars, not JSON documents".into()),
        Format::Tree => return Err("tree sources hold files, not JSON documents".into()),
    };
    if meta.id.is_empty() {
        meta.id = fallback_id.to_string();
    }
    Ok(Parsed { meta, document })
}

/// Bytes charged per JSON value by [`estimate_memory`]: a `Value` (32),
/// its slot in a growing `Vec` or `BTreeMap` node, a key or number
/// `String` and the allocator's rounding (measured: about 124 for an
/// array of small numbers, the worst case).
pub const BYTES_PER_VALUE: u64 = 128;

/// A cheap upper estimate of the memory parsing `bytes` takes: the bytes
/// three times (input, string contents, canonical output) plus
/// [`BYTES_PER_VALUE`] per value, values counted by one pass over the
/// bytes (every value but the root follows a `[`, `,` or `:`; `{` counts
/// its object). JSON amplifies: `[0,0,...]` costs ~50× its size parsed,
/// so callers check this before parsing.
pub fn estimate_memory(bytes: &[u8]) -> u64 {
    let mut values = 1u64;
    let mut in_str = false;
    let mut esc = false;
    for &b in bytes {
        if in_str {
            if esc {
                esc = false;
            } else if b == b'\\' {
                esc = true;
            } else if b == b'"' {
                in_str = false;
            }
        } else {
            match b {
                b'"' => in_str = true,
                b'[' | b'{' | b',' | b':' => values += 1,
                _ => {}
            }
        }
    }
    3 * bytes.len() as u64 + BYTES_PER_VALUE * values
}

/// Refuse objects with a repeated key: JSON leaves their meaning undefined
/// and a parser keeps one of them silently. Numbers keep their text
/// (serde_json `arbitrary_precision`), so `1e400` or a 30-digit integer are
/// carried exactly, not rounded.
pub fn check_duplicate_keys(bytes: &[u8]) -> Result<(), String> {
    use serde::de::{Deserialize, Deserializer, Error, MapAccess, SeqAccess, Visitor};

    struct Check;
    impl<'de> Deserialize<'de> for Check {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(Check)
        }
    }
    impl<'de> Visitor<'de> for Check {
        type Value = Check;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<Check, E> {
            Ok(Check)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Check, E> {
            Ok(Check)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Check, E> {
            Ok(Check)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Check, E> {
            Ok(Check)
        }
        fn visit_str<E>(self, _: &str) -> Result<Check, E> {
            Ok(Check)
        }
        fn visit_unit<E>(self) -> Result<Check, E> {
            Ok(Check)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Check, A::Error> {
            while seq.next_element::<Check>()?.is_some() {}
            Ok(Check)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Check, A::Error> {
            let mut keys = std::collections::HashSet::new();
            while let Some(k) = map.next_key::<String>()? {
                if keys.contains(&k) {
                    return Err(A::Error::custom(format!("duplicate key {k:?}")));
                }
                map.next_value::<Check>()?;
                keys.insert(k);
            }
            Ok(Check)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Check::deserialize(&mut de).map(|_| ()).map_err(|e| format!("malformed JSON: {e}"))
}

#[cfg(test)]
mod estimate_tests {
    #[test]
    fn values_are_counted_outside_strings() {
        let e =
            |s: &str| (super::estimate_memory(s.as_bytes()) - 3 * s.len() as u64) / super::BYTES_PER_VALUE;
        assert_eq!(e("[0,0,0]"), 4);
        assert_eq!(e(r#"{"a,[:":"\",:{"}"#), 3);
        assert_eq!(e("1"), 1);
    }
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Typed field access with JSON-path error messages.
pub(crate) struct At<'a> {
    pub v: &'a Value,
    pub path: String,
}

impl<'a> At<'a> {
    pub fn root(v: &'a Value) -> Self {
        At { v, path: "$".into() }
    }
    pub fn get(&self, key: &str) -> Option<At<'a>> {
        self.v.get(key).filter(|x| !x.is_null()).map(|v| At { v, path: format!("{}.{key}", self.path) })
    }
    pub fn req(&self, key: &str) -> Result<At<'a>, String> {
        self.get(key).ok_or_else(|| format!("{}: missing required field {key:?}", self.path))
    }
    pub fn str(&self) -> Result<&'a str, String> {
        self.v.as_str().ok_or_else(|| format!("{}: expected a string, found {}", self.path, kind(self.v)))
    }
    pub fn req_str(&self, key: &str) -> Result<&'a str, String> {
        self.req(key)?.str()
    }
    pub fn opt_str(&self, key: &str) -> Result<Option<&'a str>, String> {
        self.get(key).map(|a| a.str()).transpose()
    }
    pub fn obj(&self) -> Result<&'a serde_json::Map<String, Value>, String> {
        self.v.as_object().ok_or_else(|| format!("{}: expected an object, found {}", self.path, kind(self.v)))
    }
    pub fn arr(&self) -> Result<Vec<At<'a>>, String> {
        let a = self
            .v
            .as_array()
            .ok_or_else(|| format!("{}: expected an array, found {}", self.path, kind(self.v)))?;
        Ok(a.iter().enumerate().map(|(i, v)| At { v, path: format!("{}[{i}]", self.path) }).collect())
    }
    pub fn opt_arr(&self, key: &str) -> Result<Vec<At<'a>>, String> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(a) => a.arr(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_malformed_are_named() {
        assert_eq!(parse(Format::Osv, b"", "x").err().unwrap(), "empty document");
        assert!(parse(Format::Osv, b"{\"id\":", "x").err().unwrap().starts_with("malformed JSON"));
        assert!(parse(Format::Osv, b"[1]", "x").err().unwrap().contains("expected a JSON object"));
        let dup = br#"{"id":"A","modified":"2024-01-01T00:00:00Z","x":{"k":1,"k":2}}"#;
        let e = parse(Format::Osv, dup, "x").err().unwrap();
        assert!(e.contains("duplicate key \"k\"") && e.contains("line 1"), "{e}");
    }

    #[test]
    fn numbers_keep_their_text() {
        let doc = br#"{"id":"A","modified":"2024-01-01T00:00:00Z","big":123456789012345678901234567890,"f":9007199254740993.0,"e":1E+2}"#;
        let p = parse(Format::Osv, doc, "x").unwrap();
        let canon = String::from_utf8(crate::canon::to_vec(&p.document)).unwrap();
        assert!(canon.contains(r#""big":123456789012345678901234567890"#), "{canon}");
        assert!(canon.contains(r#""f":9007199254740993.0"#), "{canon}");
        assert!(canon.contains(r#""e":1e+2"#), "exponent kept, letter case normalised: {canon}");
    }
}
