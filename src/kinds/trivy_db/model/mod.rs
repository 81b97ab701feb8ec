//! The Trivy vulnerability DB model: what our advisories become.
//!
//! Owns the mapping from advisories (OSV, Node.js security-wg, Alpine
//! secdb) to DB rows,
//! the row encoding that per-shard steps write and the assembly step
//! merges, and the merging of rows that land on the same key. docs/FORMATS.md §6
//! lists every fact this follows (bucket names, package-key normalisation,
//! constraint syntax), checked against Trivy 0.76.0.
//!
//! A row is `(bucket, package, key, origin) → value`:
//! - `vulnerability` / `""` / vuln ID: the vulnerability details;
//! - `data-source` / `""` / advisory bucket name: `{ID, Name, URL}`;
//! - `<eco>::<data source name>` / normalised package / vuln ID: the
//!   advisory `{VulnerableVersions, PatchedVersions, VendorIDs}`;
//! - `<distribution> <release>` (`ubuntu 18.04`, [`os_bucket`]) / source
//!   package / vuln ID: `{FixedVersion}` or `{Status: 2}`, and `VendorIDs`.
//!
//! `origin` (`<source>/<document id>`) orders rows that share a key so
//! that merging them is deterministic whatever the shard layout. Rows are
//! encoded one per line as `bucket \t package \t key \t origin \t json`;
//! none of the first four may hold a control character (names that do are
//! rejected as not normalisable), and canonical JSON never holds a raw one.
//!
//! Vulnerability IDs: an advisory is filed under each CVE alias it has, or
//! under its own ID when it has none; its own ID goes in `VendorIDs`.
//!
//! Limits, checked here so that the assembly never fails on input: every
//! name that becomes a bbolt key or bucket name (vulnerability id, package,
//! advisory bucket) is non-empty, free of control characters and at most
//! [`MAX_KEY_BYTES`]; the origin (which holds the advisory's own id) is free
//! of control characters; and one document's encoded rows take at most the
//! byte budget its converter is given ([`row_budget`]), checked before a
//! value is copied under each of its vulnerability ids, so neither a single
//! row nor the fan-out of one document can exhaust memory or exceed bbolt's
//! value limit. A document that breaks one is rejected, naming the JSON path.

pub mod alpine;
pub mod cvss;
pub mod nodejs;
pub mod osv;

use std::cmp::Ordering;

use serde_json::{json, Map, Value};

use crate::canon;
pub use crate::profile::DataSource;
use crate::versions::{self, Scheme};

pub const VULNERABILITY_BUCKET: &str = "vulnerability";
pub const DATA_SOURCE_BUCKET: &str = "data-source";

/// The longest key or bucket name of the DB: bbolt's `MaxKeySize`.
pub const MAX_KEY_BYTES: usize = crate::formats::bbolt::MAX_KEY_SIZE;
/// The encoded rows of one document may take this many bytes per byte of
/// the document (the real corpora stay under 10: one copy per CVE alias) ...
pub const ROW_BYTES_PER_DOCUMENT_BYTE: usize = 32;
/// ... plus this much (a small document's rows outweigh it) ...
pub const ROW_BYTES_FLOOR: usize = 64 << 10;
/// ... and never more than this, which is also the most a row merged
/// from many documents may take ([`RawRow::merge`]).
pub const MAX_ROW_BYTES: usize = 64 << 20;

/// The bytes the rows of a document of `document_bytes` may take.
pub fn row_budget(document_bytes: usize) -> usize {
    document_bytes
        .saturating_mul(ROW_BYTES_PER_DOCUMENT_BYTE)
        .saturating_add(ROW_BYTES_FLOOR)
        .min(MAX_ROW_BYTES)
}

/// Input text for a reason: Debug-quoted, cut after 80 characters (with
/// its size), so a huge name never makes a huge message.
pub fn short(s: &str) -> String {
    if s.chars().count() <= 80 {
        return format!("{s:?}");
    }
    let cut: String = s.chars().take(80).collect();
    format!("{cut:?}… ({} bytes)", s.len())
}

/// Checks text that becomes a DB key or bucket name; `at` names where it
/// came from (a JSON path).
pub fn check_key(at: &str, s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("{at}: empty (it would be a key of the DB)"));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("{at}: {} holds control characters", short(s)));
    }
    if s.len() > MAX_KEY_BYTES {
        return Err(format!(
            "{at}: {} is {} bytes, over the {MAX_KEY_BYTES}-byte key limit of Trivy's DB",
            short(s),
            s.len()
        ));
    }
    Ok(())
}

/// The bytes rows of one document may still take (see [`row_budget`]).
pub struct Budget {
    limit: usize,
    left: usize,
}

impl Budget {
    pub fn new(limit: usize) -> Self {
        Budget { limit, left: limit }
    }

    /// Takes `copies` rows of `names` + `value` bytes each (the data-source
    /// row, sized by the configuration, is not counted).
    pub fn take(&mut self, copies: usize, names: usize, value: &Value) -> Result<(), String> {
        let each = names + 5 + canon::to_vec(value).len();
        let need = copies.saturating_mul(each);
        if need > self.left {
            return Err(format!(
                "$: its DB rows would take more than {} bytes ({copies} vulnerability id(s) × {each} bytes \
                 and more), the limit for a document of this size",
                self.limit
            ));
        }
        self.left -= need;
        Ok(())
    }
}

/// An ecosystem Trivy knows: OSV name, bucket prefix, key normalisation
/// (`true` = lowercase) and version scheme.
pub struct Ecosystem {
    pub osv: &'static str,
    pub prefix: &'static str,
    pub lowercase: bool,
    pub scheme: Scheme,
}

pub const ECOSYSTEMS: &[Ecosystem] = &[
    Ecosystem { osv: "PyPI", prefix: "pip", lowercase: true, scheme: Scheme::Pep440 },
    Ecosystem { osv: "npm", prefix: "npm", lowercase: true, scheme: Scheme::Semver },
    Ecosystem { osv: "crates.io", prefix: "cargo", lowercase: true, scheme: Scheme::Semver },
    Ecosystem { osv: "Go", prefix: "go", lowercase: false, scheme: Scheme::Semver },
    Ecosystem { osv: "Maven", prefix: "maven", lowercase: true, scheme: Scheme::Maven },
    Ecosystem { osv: "RubyGems", prefix: "rubygems", lowercase: true, scheme: Scheme::Token },
    Ecosystem { osv: "NuGet", prefix: "nuget", lowercase: true, scheme: Scheme::Token },
    Ecosystem { osv: "Packagist", prefix: "composer", lowercase: true, scheme: Scheme::Token },
    Ecosystem { osv: "Hex", prefix: "erlang", lowercase: true, scheme: Scheme::Semver },
    Ecosystem { osv: "Pub", prefix: "pub", lowercase: true, scheme: Scheme::Semver },
    // Swift keys are URLs without scheme and `.git`, case kept (trivy-db's NormalizePkgName)
    Ecosystem { osv: "SwiftURL", prefix: "swift", lowercase: false, scheme: Scheme::Semver },
    Ecosystem { osv: "Julia", prefix: "julia", lowercase: false, scheme: Scheme::Semver },
    Ecosystem { osv: "Bitnami", prefix: "bitnami", lowercase: true, scheme: Scheme::Semver },
    Ecosystem { osv: "Kubernetes", prefix: "k8s", lowercase: true, scheme: Scheme::Semver },
];

/// The ecosystem of an OSV `package.ecosystem` (case-insensitive; a
/// `:suffix` such as `Debian:12` is not one of ours).
pub fn ecosystem(osv_name: &str) -> Option<&'static Ecosystem> {
    ECOSYSTEMS.iter().find(|e| e.osv.eq_ignore_ascii_case(osv_name))
}

/// An OS distribution whose packages Trivy matches (docs/FORMATS.md §6):
/// OSV ecosystem name, bucket word, version order. Its buckets are
/// `<word> <release>` (no `::`), keyed by *source* package name, and each
/// value is `{FixedVersion}` or `{Status: 2}` (affected, no fix yet).
pub struct Distro {
    pub osv: &'static str,
    pub word: &'static str,
    pub scheme: Scheme,
}

pub const DISTROS: &[Distro] = &[
    Distro { osv: "Ubuntu", word: "ubuntu", scheme: Scheme::Dpkg },
    Distro { osv: "Debian", word: "debian", scheme: Scheme::Dpkg },
    Distro { osv: "Alpine", word: "alpine", scheme: Scheme::Apk },
];

/// Trivy's `types.Status` for "affected, no fix released" (its enum:
/// unknown 0, not_affected 1, affected 2, fixed 3, ...).
pub const STATUS_AFFECTED: u8 = 2;

/// The OS bucket of an OSV ecosystem (`Ubuntu:18.04:LTS` → `ubuntu 18.04`,
/// `Ubuntu:Pro:16.04:LTS` → `ubuntu 16.04-ESM`, `Ubuntu:23.10` →
/// `ubuntu 23.10`, `Debian:9` → `debian 9`, `Alpine:v3.18` →
/// `alpine 3.18`) with the distribution's version order; `None` when the
/// ecosystem is not a distribution's, `Some(Err)` naming what is wrong
/// when it is one Trivy has no bucket for (`Ubuntu:Pro:FIPS:…`, `Debian:sid`).
pub fn os_bucket(osv_name: &str) -> Option<Result<(String, Scheme), String>> {
    let (head, rest) = osv_name.split_once(':')?;
    let d = DISTROS.iter().find(|d| d.osv.eq_ignore_ascii_case(head))?;
    let numeric = |r: &str| {
        let mut it = r.split('.');
        let ok = |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        ok(it.next()) && ok(it.next()) && it.next().is_none()
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let release = match (d.word, parts.as_slice()) {
        ("ubuntu", [r] | [r, "LTS"]) if numeric(r) => Some(r.to_string()),
        ("ubuntu", ["Pro", r, "LTS"]) if numeric(r) => Some(format!("{r}-ESM")),
        ("debian", [r]) if !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()) => Some(r.to_string()),
        ("alpine", [r]) => r.strip_prefix('v').filter(|r| numeric(r)).map(str::to_string),
        _ => None,
    };
    Some(match release {
        Some(r) => Ok((format!("{} {r}", d.word), d.scheme)),
        None => Err(format!(
            "{osv_name:?} is not a release Trivy has a bucket for (Ubuntu:<YY.MM>[:LTS], \
             Ubuntu:Pro:<YY.MM>:LTS, Debian:<major>, Alpine:v<major.minor>)"
        )),
    })
}

/// The distribution of an OS bucket name (`ubuntu 18.04`), if it is one.
pub fn distro_of_bucket(bucket: &str) -> Option<&'static Distro> {
    let (word, _) = bucket.split_once(' ')?;
    DISTROS.iter().find(|d| d.word == word)
}

/// The DB key of a source package name of a distribution: kept as it is
/// (Trivy looks packages up by the name the package database records).
pub fn os_package_key(name: &str) -> Result<String, String> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "package name {} is not a package name (empty, spaces or control characters)",
            short(name)
        ));
    }
    check_key("package name", name)?;
    Ok(name.to_string())
}

/// An OS advisory value: the highest fixed version, else affected with no
/// fix; the advisories' own ids in `VendorIDs`.
pub fn os_advisory_value(fixed: Option<String>, mut vendor_ids: Vec<String>) -> Value {
    vendor_ids.sort();
    vendor_ids.dedup();
    let mut v = match fixed {
        Some(f) => json!({"FixedVersion": f}),
        None => json!({"Status": STATUS_AFFECTED}),
    };
    if !vendor_ids.is_empty() {
        v["VendorIDs"] = json!(vendor_ids);
    }
    v
}

/// The DB key of a package name, or why there is none.
pub fn normalise_name(eco: &Ecosystem, name: &str) -> Result<String, String> {
    if name.is_empty() || name.trim() != name || name.chars().any(|c| c.is_control()) {
        return Err(format!(
            "package name {} cannot be normalised (empty, padded or control characters)",
            short(name)
        ));
    }
    let mut n = if eco.lowercase { name.to_lowercase() } else { name.to_string() };
    if eco.prefix == "pip" {
        n = n.replace('_', "-");
    }
    if eco.prefix == "swift" {
        n = n.strip_prefix("https://").unwrap_or(&n).to_string();
        n = n.strip_suffix(".git").unwrap_or(&n).to_string();
    }
    if eco.prefix == "maven" && n.split(':').filter(|p| !p.is_empty()).count() != 2 {
        return Err(format!("Maven package name {} is not groupId:artifactId", short(name)));
    }
    check_key("package name", &n)?;
    Ok(n)
}

/// One DB row (see the module doc).
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub bucket: String,
    pub package: String,
    pub key: String,
    pub origin: String,
    pub value: Value,
}

impl Row {
    fn sort_key(&self) -> (&[u8], &[u8], &[u8], &[u8]) {
        (self.bucket.as_bytes(), self.package.as_bytes(), self.key.as_bytes(), self.origin.as_bytes())
    }

    pub fn cmp_key(&self, other: &Row) -> Ordering {
        self.sort_key().cmp(&other.sort_key())
    }

    pub fn same_slot(&self, other: &Row) -> bool {
        self.bucket == other.bucket && self.package == other.package && self.key == other.key
    }

    /// The bytes [`Row::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        self.bucket.len()
            + self.package.len()
            + self.key.len()
            + self.origin.len()
            + 5
            + canon::to_vec(&self.value).len()
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        for f in [&self.bucket, &self.package, &self.key, &self.origin] {
            out.extend_from_slice(f.as_bytes());
            out.push(b'\t');
        }
        canon::write(&self.value, out);
        out.push(b'\n');
    }
}

/// A row as the assembly reads it back: the encoded line itself
/// (`bucket \t package \t key \t origin \t value`), its first four fields
/// located and checked UTF-8 once, so reading a row allocates nothing; the
/// value stays the canonical JSON bytes the shard step wrote, parsed only
/// when two rows share a slot.
#[derive(Clone, Debug, PartialEq)]
pub struct RawRow {
    line: Vec<u8>,
    /// Where each of the first four fields ends (at its tab).
    ends: [usize; 4],
}

impl RawRow {
    pub fn decode(line: Vec<u8>) -> Result<RawRow, String> {
        let mut ends = [0usize; 4];
        let mut at = 0;
        for end in ends.iter_mut() {
            let Some(i) = line[at..].iter().position(|&b| b == b'\t') else {
                return Err(format!("short row {:?}", String::from_utf8_lossy(&line[..line.len().min(80)])));
            };
            *end = at + i;
            at += i + 1;
        }
        std::str::from_utf8(&line[..ends[3]]).map_err(|e| format!("row is not UTF-8: {e}"))?;
        Ok(RawRow { line, ends })
    }

    /// A row from its parts (tests; the assembly decodes lines).
    pub fn new(bucket: &str, package: &str, key: &str, origin: &str, value: &[u8]) -> RawRow {
        let mut line = format!("{bucket}\t{package}\t{key}\t{origin}\t").into_bytes();
        line.extend_from_slice(value);
        RawRow::decode(line).expect("four fields without tabs")
    }

    fn field(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] + 1 };
        &self.line[start..self.ends[i]]
    }
    fn text(&self, i: usize) -> &str {
        std::str::from_utf8(self.field(i)).expect("checked by decode")
    }
    pub fn bucket(&self) -> &str {
        self.text(0)
    }
    pub fn package(&self) -> &str {
        self.text(1)
    }
    pub fn key(&self) -> &str {
        self.text(2)
    }
    pub fn origin(&self) -> &str {
        self.text(3)
    }
    pub fn bucket_bytes(&self) -> &[u8] {
        self.field(0)
    }
    pub fn package_bytes(&self) -> &[u8] {
        self.field(1)
    }
    pub fn key_bytes(&self) -> &[u8] {
        self.field(2)
    }
    pub fn value(&self) -> &[u8] {
        &self.line[self.ends[3] + 1..]
    }

    /// Same bucket, package and key (fields hold no tab, so comparing the
    /// line up to the key's end compares the three).
    pub fn same_slot(&self, other: &RawRow) -> bool {
        self.line[..self.ends[2]] == other.line[..other.ends[2]]
    }

    /// Merge `other` (a later row of the same slot) into this one. A
    /// merged value may not outgrow [`MAX_ROW_BYTES`] (advisories of many
    /// documents filed under one id): refused, naming both origins, so
    /// neither memory nor bbolt's value limit is reached.
    pub fn merge(&mut self, other: &RawRow) -> Result<(), String> {
        if self.value().len().saturating_add(other.value().len()) > MAX_ROW_BYTES {
            return Err(format!(
                "row {}/{}/{}: merging the advisory {} into {} would make a value over the \
                 {MAX_ROW_BYTES}-byte limit (too many advisories for one id)",
                short(self.bucket()),
                short(self.package()),
                short(self.key()),
                short(other.origin()),
                short(self.origin())
            ));
        }
        if self.bucket() == DATA_SOURCE_BUCKET {
            return Ok(()); // the first data source wins: nothing to parse
        }
        let parse = |r: &RawRow| -> Result<Row, String> {
            Ok(Row {
                bucket: r.bucket().to_string(),
                package: r.package().to_string(),
                key: r.key().to_string(),
                origin: r.origin().to_string(),
                value: serde_json::from_slice(r.value()).map_err(|e| format!("row value: {e}"))?,
            })
        };
        let mut mine = parse(self)?;
        merge(&mut mine, &parse(other)?);
        self.line.truncate(self.ends[3] + 1);
        self.line.extend_from_slice(&canon::to_vec(&mine.value));
        Ok(())
    }
}

/// The `data-source` row naming `ds` as the source of `bucket`.
pub fn data_source_row(bucket: &str, origin: &str, ds: &DataSource) -> Row {
    Row {
        bucket: DATA_SOURCE_BUCKET.into(),
        package: String::new(),
        key: bucket.to_string(),
        origin: origin.to_string(),
        value: serde_json::to_value(ds).expect("serialisable"),
    }
}

/// Check the row's names can be encoded (no tab or newline, origin
/// included) and written (keys and bucket names within bbolt's limits):
/// the last line of defence, after the converters' checks that name the
/// JSON path.
pub fn check_names(r: &Row) -> Result<(), String> {
    for (what, s) in [("package", &r.package), ("vulnerability id", &r.key), ("bucket", &r.bucket)] {
        if !(what == "package" && s.is_empty()) {
            check_key(what, s)?;
        }
    }
    if r.origin.chars().any(char::is_control) {
        return Err(format!("origin {} holds control characters", short(&r.origin)));
    }
    Ok(())
}

fn union_sorted(a: &Value, b: &Value) -> Value {
    let mut v: Vec<Value> = a.as_array().into_iter().chain(b.as_array()).flatten().cloned().collect();
    v.sort_by_key(canon::to_vec);
    v.dedup();
    Value::Array(v)
}

/// Merge `b` into `a`, two rows of the same slot with `a.origin < b.origin`.
pub fn merge(a: &mut Row, b: &Row) {
    let (Some(x), Some(y)) = (a.value.as_object_mut(), b.value.as_object()) else { return };
    if a.bucket == DATA_SOURCE_BUCKET {
        return; // the first data source wins
    }
    if a.bucket == VULNERABILITY_BUCKET {
        for (k, v) in y {
            match (k.as_str(), x.get_mut(k)) {
                ("VendorSeverity" | "CVSS", Some(Value::Object(mine))) => {
                    for (s, sv) in v.as_object().into_iter().flatten() {
                        mine.entry(s.clone()).or_insert_with(|| sv.clone());
                    }
                }
                ("CweIDs" | "References", Some(mine)) => *mine = union_sorted(mine, v),
                (_, Some(_)) => {}
                (_, None) => {
                    x.insert(k.clone(), v.clone());
                }
            }
        }
        // the vulnerability's own severity follows Trivy's source order,
        // whichever row came first
        if let Some(s) = x.get("VendorSeverity").and_then(Value::as_object).and_then(top_severity) {
            x.insert("Severity".into(), json!(cvss::SEVERITY_NAMES[s as usize]));
        }
        return;
    }
    let list = |k: &str| -> Vec<String> {
        [x.get(k), y.get(k)]
            .into_iter()
            .flatten()
            .filter_map(Value::as_array)
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    if let Some(d) = distro_of_bucket(&a.bucket) {
        // the highest fixed version; a fix in either wins over "no fix yet"
        // (a later notice releases the fix an earlier record awaited)
        let fixed = [x.get("FixedVersion"), y.get("FixedVersion")]
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .max_by(|p, q| versions::compare(p, q, d.scheme).then_with(|| p.cmp(q)))
            .map(str::to_string);
        a.value = os_advisory_value(fixed, list("VendorIDs"));
        return;
    }
    let prefix = a.bucket.split_once("::").map_or("", |(p, _)| p);
    let scheme = ECOSYSTEMS.iter().find(|e| e.prefix == prefix).map_or(Scheme::Token, |e| e.scheme);
    a.value = advisory_value(list("VulnerableVersions"), list("PatchedVersions"), list("VendorIDs"), scheme);
}

/// Trivy's data-source ids in the order trivy-db picks a vulnerability's
/// own `Severity` when several sources rate it (its `AllSourceIDs`). A
/// finding shows the severity of its advisory's data source first
/// (`VendorSeverity[id]`), then `ghsa` (GHSA ids only), then `nvd`, then
/// this `Severity`.
pub const SEVERITY_SOURCES: &[&str] = &[
    "nvd",
    "redhat",
    "redhat-oval",
    "debian",
    "ubuntu",
    "alpine",
    "amazon",
    "oracle-oval",
    "suse-cvrf",
    "photon",
    "arch-linux",
    "alma",
    "rocky",
    "cbl-mariner",
    "azure",
    "ruby-advisory-db",
    "php-security-advisories",
    "nodejs-security-wg",
    "ghsa",
    "glad",
    "aqua",
    "osv",
    "k8s",
    "wolfi",
    "chainguard",
    "bitnami",
    "govulndb",
    "julia",
    "bottlerocket",
    "echo",
    "minimos",
    "rootio",
];

/// The severity a vulnerability shows as its own: the first rated source
/// of [`SEVERITY_SOURCES`], then other ids (ours) in byte order; UNKNOWN
/// ratings skipped. Depends only on the map, so merging stays
/// order-independent.
pub fn top_severity(vendor: &Map<String, Value>) -> Option<u8> {
    let rated =
        |id: &str| vendor.get(id).and_then(Value::as_u64).filter(|s| (1..=4).contains(s)).map(|s| s as u8);
    SEVERITY_SOURCES
        .iter()
        .find_map(|id| rated(id))
        .or_else(|| vendor.keys().filter(|k| !SEVERITY_SOURCES.contains(&k.as_str())).find_map(|k| rated(k)))
}

/// True for a bare version (no operator): what OSV fixed versions are.
fn is_bare(v: &str) -> bool {
    !v.is_empty() && !v.contains(['<', '>', '=', '^', '~', ' ', ',', '*', '|'])
}

/// An advisory value in its normal form: vulnerable entries sorted and
/// unique, or only `""` when one of them is "every version"; bare patched
/// versions that a vulnerable entry still covers dropped (Trivy subtracts
/// every patched entry, docs/FORMATS.md §6); patched constraints (Node.js
/// ranges) kept as they are. Normalising after every merge keeps merging
/// associative, so the shard layout never changes the result.
pub fn advisory_value(
    mut vulnerable: Vec<String>,
    patched: Vec<String>,
    mut vendor_ids: Vec<String>,
    scheme: Scheme,
) -> Value {
    vulnerable.sort();
    vulnerable.dedup();
    if vulnerable.iter().any(|e| e.is_empty()) {
        vulnerable = vec![String::new()];
    }
    let mut patched: Vec<String> = patched
        .into_iter()
        .filter(|p| !is_bare(p) || !vulnerable.iter().any(|e| versions::satisfies(p, e, scheme)))
        .collect();
    patched.sort_by(|a, b| versions::compare(a, b, scheme).then_with(|| a.cmp(b)));
    patched.dedup();
    vendor_ids.sort();
    vendor_ids.dedup();
    let mut v = json!({"VulnerableVersions": vulnerable, "VendorIDs": vendor_ids});
    if !patched.is_empty() {
        v["PatchedVersions"] = json!(patched);
    }
    v
}

/// Vulnerability details as Trivy's `types.Vulnerability` JSON (empty
/// fields left out, as Go's `omitempty` does).
pub struct VulnDetails {
    pub title: Option<String>,
    pub description: Option<String>,
    /// (severity int) for this data source
    pub severity: Option<u8>,
    pub cvss: Map<String, Value>,
    pub cwe_ids: Vec<String>,
    pub references: Vec<String>,
    pub published: Option<String>,
    pub modified: Option<String>,
}

impl VulnDetails {
    pub fn to_json(&self, source_id: &str) -> Value {
        let mut m = Map::new();
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_string(), v);
        };
        if let Some(t) = self.title.as_ref().filter(|t| !t.is_empty()) {
            put("Title", json!(t));
        }
        if let Some(d) = self.description.as_ref().filter(|t| !t.is_empty()) {
            put("Description", json!(d));
        }
        if let Some(s) = self.severity.filter(|s| (1..=4).contains(s)) {
            put("Severity", json!(cvss::SEVERITY_NAMES[s as usize]));
            put("VendorSeverity", json!({ source_id: s }));
        }
        if !self.cvss.is_empty() {
            put("CVSS", json!({ source_id: Value::Object(self.cvss.clone()) }));
        }
        if !self.cwe_ids.is_empty() {
            put("CweIDs", json!(self.cwe_ids));
        }
        if !self.references.is_empty() {
            put("References", json!(self.references));
        }
        if let Some(p) = &self.published {
            put("PublishedDate", json!(p));
        }
        if let Some(p) = &self.modified {
            put("LastModifiedDate", json!(p));
        }
        Value::Object(m)
    }
}

/// RFC 3339 UTC form Go's `time.Time` parses, or `None` for an
/// unparseable or missing time.
/// Go's zero time (`0001-01-01T00:00:00Z`, which Go vulndb uses for
/// "unknown") is left out like a missing one.
pub fn go_time(s: Option<&str>) -> Option<String> {
    let t = crate::timefmt::parse(s?)?;
    (t.secs > -62135596800).then(|| crate::timefmt::format_utc(t.secs))
}

/// Checks the advisory's own id (`$.id`, always in the origin, a key
/// without CVE aliases) and every CVE alias of the array at `at` (each a
/// key): what [`vuln_ids`] is then given.
pub fn check_ids(id: &str, aliases: Option<&Value>, at: &str) -> Result<(), String> {
    check_key("$.id", id)?;
    for (i, a) in aliases.and_then(Value::as_array).into_iter().flatten().enumerate() {
        if let Some(a) = a.as_str().filter(|a| a.starts_with("CVE-")) {
            check_key(&format!("{at}[{i}]"), a)?;
        }
    }
    Ok(())
}

/// The vulnerability IDs an advisory is filed under: its CVE aliases, or itself.
pub fn vuln_ids(id: &str, aliases: &[String]) -> Vec<String> {
    let mut cves: Vec<String> = aliases.iter().filter(|a| a.starts_with("CVE-")).cloned().collect();
    if id.starts_with("CVE-") {
        cves.push(id.to_string());
    }
    cves.sort();
    cves.dedup();
    if cves.is_empty() {
        vec![id.to_string()]
    } else {
        cves
    }
}

/// Sort rows and merge advisory rows that share a slot (within one
/// shard). Vulnerability and data-source rows are merged "first origin
/// wins, field by field", which only gives the same answer for every
/// shard layout when all rows of a slot are merged at once in origin
/// order: they are left for the assembly.
pub fn sort_and_merge(mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort_by(|a, b| a.cmp_key(b));
    let mut out: Vec<Row> = Vec::with_capacity(rows.len());
    for r in rows {
        match out.last_mut() {
            // the first data source of a slot wins (see `merge`), so the later
            // rows of a shard can go: the one kept is the first across shards
            // too, and the assembly merges one row per shard, not per document
            Some(last) if last.same_slot(&r) && r.bucket == DATA_SOURCE_BUCKET => {}
            Some(last) if last.same_slot(&r) && r.bucket != VULNERABILITY_BUCKET => merge(last, &r),
            _ => out.push(r),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalise_per_ecosystem() {
        let pip = ecosystem("pypi").unwrap();
        assert_eq!(normalise_name(pip, "Django_Rest").unwrap(), "django-rest");
        let go = ecosystem("Go").unwrap();
        assert_eq!(normalise_name(go, "github.com/Foo/Bar").unwrap(), "github.com/Foo/Bar");
        let mvn = ecosystem("Maven").unwrap();
        assert_eq!(normalise_name(mvn, "Org.Foo:Bar").unwrap(), "org.foo:bar");
        assert!(normalise_name(mvn, "bar").is_err());
        assert!(normalise_name(pip, " x").is_err());
        assert!(ecosystem("Debian:12").is_none());
        assert_eq!(ecosystem("kubernetes").unwrap().prefix, "k8s");
        let swift = ecosystem("SwiftURL").unwrap();
        assert_eq!(
            normalise_name(swift, "https://github.com/Example/SwiftKit.git").unwrap(),
            "github.com/Example/SwiftKit"
        );
        assert_eq!(normalise_name(swift, "github.com/example/kit").unwrap(), "github.com/example/kit");
    }

    #[test]
    fn os_releases_map_to_trivys_buckets() {
        let b = |e: &str| os_bucket(e).map(|r| r.map(|(b, _)| b));
        assert_eq!(b("Ubuntu:18.04:LTS"), Some(Ok("ubuntu 18.04".into())));
        assert_eq!(b("Ubuntu:Pro:16.04:LTS"), Some(Ok("ubuntu 16.04-ESM".into())));
        assert_eq!(b("Ubuntu:23.10"), Some(Ok("ubuntu 23.10".into())));
        assert_eq!(b("Debian:9"), Some(Ok("debian 9".into())));
        assert_eq!(b("Alpine:v3.18"), Some(Ok("alpine 3.18".into())));
        for bad in [
            "Debian:sid",
            "Debian:9.13",
            "Alpine:3.18",
            "Alpine:edge",
            "Ubuntu:Pro:FIPS:18.04:LTS",
            "Ubuntu:18.04:ESM",
            "Ubuntu:",
        ] {
            assert!(matches!(b(bad), Some(Err(_))), "{bad}");
        }
        assert_eq!(b("PyPI"), None);
        assert_eq!(b("Fedora:40"), None);
        assert_eq!(os_bucket("Alpine:v3.18").unwrap().unwrap().1, Scheme::Apk);
        assert_eq!(distro_of_bucket("debian 9").unwrap().scheme, Scheme::Dpkg);
        assert!(distro_of_bucket("pip::PyPA").is_none());
        assert!(os_package_key("lib foo").is_err() && os_package_key("").is_err());
        assert_eq!(os_package_key("libXrender").unwrap(), "libXrender");
    }

    #[test]
    fn os_values_merge_to_the_highest_fix_and_severity_follows_trivys_order() {
        let row = |origin: &str, v: Value| Row {
            bucket: "ubuntu 18.04".into(),
            package: "wayland".into(),
            key: "CVE-1".into(),
            origin: origin.into(),
            value: v,
        };
        let mut a = row("s/A", os_advisory_value(Some("1.16.0-1ubuntu1.1~18.04.4".into()), vec!["A".into()]));
        merge(&mut a, &row("s/B", os_advisory_value(Some("1.16.0-1ubuntu1.1".into()), vec!["B".into()])));
        assert_eq!(a.value, json!({"FixedVersion": "1.16.0-1ubuntu1.1", "VendorIDs": ["A", "B"]}));
        // a fix wins over "no fix yet", whichever comes first
        let mut u = row("s/A", os_advisory_value(None, vec!["A".into()]));
        merge(&mut u, &row("s/B", os_advisory_value(Some("2".into()), vec![])));
        assert_eq!(u.value, json!({"FixedVersion": "2", "VendorIDs": ["A"]}));
        let mut f = row("s/A", os_advisory_value(Some("2".into()), vec![]));
        merge(&mut f, &row("s/B", os_advisory_value(None, vec!["A".into()])));
        assert_eq!(f.value, u.value);
        assert_eq!(os_advisory_value(None, vec![]), json!({"Status": 2}));
        // Severity: Trivy's source order, not the order rows arrive in
        let vuln = |origin: &str, src: &str, sev: u8| Row {
            bucket: VULNERABILITY_BUCKET.into(),
            package: String::new(),
            key: "CVE-1".into(),
            origin: origin.into(),
            value: json!({"Severity": cvss::SEVERITY_NAMES[sev as usize], "VendorSeverity": {src: sev}}),
        };
        let mut v = vuln("a/1", "pypa", 1);
        merge(&mut v, &vuln("b/1", "ghsa", 3));
        assert_eq!(v.value["Severity"], "HIGH");
        let mut w = vuln("a/1", "ghsa", 3);
        merge(&mut w, &vuln("b/1", "nvd", 2));
        assert_eq!(w.value["Severity"], "MEDIUM", "nvd comes first in Trivy's order");
        let m = |pairs: &[(&str, u64)]| {
            pairs.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<Map<String, Value>>()
        };
        assert_eq!(top_severity(&m(&[("zz", 4), ("aa", 1)])), Some(1), "our own ids: byte order");
        assert_eq!(top_severity(&m(&[("zz", 4), ("ubuntu", 2)])), Some(2));
        assert_eq!(top_severity(&m(&[("ghsa", 0)])), None, "UNKNOWN is no rating");
    }

    #[test]
    fn rows_roundtrip_and_merge() {
        let r = Row {
            bucket: "pip::x".into(),
            package: "a".into(),
            key: "CVE-1".into(),
            origin: "s/A".into(),
            value: json!({"VulnerableVersions": ["<2"], "VendorIDs": ["A"]}),
        };
        let mut buf = Vec::new();
        r.encode(&mut buf);
        let back = RawRow::decode(buf[..buf.len() - 1].to_vec()).unwrap();
        assert_eq!(
            (back.bucket(), back.package(), back.key(), back.origin()),
            ("pip::x", "a", "CVE-1", "s/A")
        );
        assert_eq!(back.value(), canon::to_vec(&r.value));
        assert!(RawRow::decode(b"a\tb\tc".to_vec()).unwrap_err().contains("short row"));
        assert!(RawRow::decode(b"a\t\xff\tc\td\t{}".to_vec()).unwrap_err().contains("UTF-8"));
        let other = RawRow::new("pip::x", "a", "CVE-1", "s/B", b"{}");
        assert!(
            back.same_slot(&other) && !back.same_slot(&RawRow::new("pip::x", "a", "CVE-12", "s/B", b"{}"))
        );
        let mut r2 = r.clone();
        r2.origin = "s/B".into();
        r2.value = json!({"VulnerableVersions": [">=3, <4"], "PatchedVersions": ["4"], "VendorIDs": ["B"]});
        let merged = sort_and_merge(vec![r2, r]);
        assert_eq!(merged.len(), 1);
        assert_eq!(
            merged[0].value,
            json!({"VulnerableVersions": ["<2", ">=3, <4"], "PatchedVersions": ["4"], "VendorIDs": ["A", "B"]})
        );
        // a merged value may not outgrow the row limit
        let big = |origin: &str| {
            RawRow::new(VULNERABILITY_BUCKET, "", "CVE-1", origin, &vec![b' '; MAX_ROW_BYTES / 2 + 1])
        };
        let e = big("s/A").merge(&big("s/B")).unwrap_err();
        assert!(e.contains("\"s/B\" into \"s/A\"") && e.contains("limit"), "{e}");
        assert_eq!(vuln_ids("GHSA-1", &["CVE-2".into(), "PYSEC-3".into()]), vec!["CVE-2"]);
        assert_eq!(vuln_ids("GO-1", &[]), vec!["GO-1"]);
    }
}
