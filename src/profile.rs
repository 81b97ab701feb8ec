//! `profiles.toml`: the workspace, its sources and its profiles.
//!
//! Owns parsing and validation of the workspace file into a [`Workspace`]
//! with resolved paths. Every error names the file, the line and column,
//! and the key. Relative paths resolve against the folder holding
//! `profiles.toml`, never the process's working directory.
//!
//! Kind-specific options (any profile key but `kind`, `inputs`, `select`
//! and `signing`) are kept generic here, each value with its place
//! ([`ProfileDef::options`]): this layer knows no kind. `src/kinds`
//! checks them against the profile's kind ([`Workspace::invalid`] names
//! the place), before anything is built.
//!
//! Deliberately ignores: the environment, except `SOURCE_DATE_EPOCH`, which
//! overrides the pinned time (read once here and nowhere else). Signing
//! keys are only located here ([`KeySpec`]); they are read by the build.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_spanned::Spanned;

use crate::adapters::Format;
use crate::select::Selectors;

/// The largest pinned time a tar header can hold (8^11 - 1 seconds).
pub const MAX_EPOCH: i64 = 8_589_934_591;

/// Documents per shard that the automatic shard count aims at.
pub const DOCS_PER_SHARD: usize = 512;

/// The automatic shard count of a source holding `docs` documents: the
/// power of two nearest (in log scale) to `docs / 512`, between 1 and 1024.
/// A pure function of the count, so exports stay reproducible; it changes
/// only when a source roughly doubles or halves (then that source's shards
/// are all rebuilt once). Set `shards` on the source to pin it.
pub fn auto_shards(docs: usize) -> u32 {
    let ratio = docs as f64 / DOCS_PER_SHARD as f64;
    if ratio <= 1.0 {
        return 1;
    }
    let exp = ratio.log2().round().clamp(0.0, 10.0) as u32;
    1 << exp
}

/// Where a source's advisories come from, as Trivy shows it (a source's
/// `data-source` option; the trivy:db kind writes it into the DB).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DataSource {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "URL")]
    pub url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}:{line}:{col}: {key}: {message}")]
    Invalid { path: PathBuf, line: usize, col: usize, key: String, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    workspace: RawWorkspace,
    #[serde(default)]
    sources: BTreeMap<String, Spanned<RawSource>>,
    #[serde(default)]
    profiles: BTreeMap<String, Spanned<RawProfile>>,
    signing: Option<Spanned<toml::Value>>,
}

/// The profiles again, every key with its value's place: the source of
/// the kind-specific options (the keys [`RawProfile`] does not name).
#[derive(Deserialize)]
struct RawOptions {
    #[serde(default)]
    profiles: BTreeMap<String, BTreeMap<String, Spanned<toml::Value>>>,
}

/// The profile keys every kind has; any other is a kind-specific option.
const COMMON_KEYS: &[&str] = &["kind", "inputs", "select", "signing", "keep-generations"];

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawWorkspace {
    cache: Option<String>,
    out: Option<String>,
    source_date_epoch: Option<i64>,
    cache_max_size: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSource {
    format: Spanned<String>,
    path: Spanned<String>,
    #[serde(default)]
    include: Vec<Spanned<String>>,
    #[serde(default)]
    exclude: Vec<Spanned<String>>,
    shards: Option<Spanned<u32>>,
    data_source: Option<Spanned<RawDataSource>>,
    max_document_bytes: Option<Spanned<u64>>,
    max_archive_bytes: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDataSource {
    id: Option<String>,
    name: Option<String>,
    url: Option<String>,
}

/// The common profile keys; the others are read by [`RawOptions`].
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawProfile {
    kind: Spanned<String>,
    /// Absent only for kinds made from other exports (checked by the kind).
    inputs: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    select: Option<Spanned<RawSelect>>,
    signing: Option<Spanned<toml::Value>>,
    keep_generations: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSelect {
    #[serde(default)]
    ecosystems: Vec<String>,
    #[serde(default)]
    packages: Vec<String>,
    #[serde(default)]
    ids: Vec<String>,
    modified_since: Option<String>,
    modified_until: Option<String>,
}

/// A named input.
#[derive(Clone, Debug)]
pub struct SourceDef {
    pub name: String,
    pub format: Format,
    /// Absolute path (resolved against the workspace folder).
    pub path: PathBuf,
    /// The path as written in `profiles.toml` (what the manifest shows).
    pub declared_path: String,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// Fixed shard count, or `None` for [`auto_shards`].
    pub shards: Option<u32>,
    /// How Trivy names this source's advisories (`trivy:db`); defaults to
    /// the source name for `ID` and `Name`.
    pub data_source: DataSource,
    pub limits: SourceLimits,
}

/// Size limits of one source (`max-document-bytes`, `max-archive-bytes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceLimits {
    /// Largest document (file or archive member) read, in bytes.
    pub max_document_bytes: u64,
    /// Largest expanded size of an archive (headers and data), in bytes.
    pub max_archive_bytes: u64,
}

impl SourceLimits {
    /// Defaults: 64 MiB per document, 4 GiB expanded per archive.
    pub const DEFAULT: SourceLimits =
        SourceLimits { max_document_bytes: 64 << 20, max_archive_bytes: 4 << 30 };
    /// Highest accepted `max-document-bytes`: one document is held in memory.
    pub const MAX_DOCUMENT_BYTES: u64 = 256 << 20;
}

/// A place in the workspace file (1-based line and column).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    pub line: usize,
    pub col: usize,
}

/// A named export.
#[derive(Clone, Debug)]
pub struct ProfileDef {
    pub name: String,
    /// The kind's name, checked against `src/kinds` (not here).
    pub kind: String,
    pub kind_at: Place,
    pub inputs: Vec<String>,
    /// Where each input is named, in `inputs` order.
    pub inputs_at: Vec<Place>,
    pub select: Selectors,
    /// Where `select` is given; `None` when the profile has none.
    pub select_at: Option<Place>,
    /// The key that signs this profile's export, or `None` when unsigned.
    pub signing: Option<KeySpec>,
    /// Kind-specific options as written (key → value and its place),
    /// validated by the profile's kind.
    pub options: BTreeMap<String, (toml::Value, Place)>,
    /// How many earlier exports `out/.generations/<profile>/` keeps.
    pub keep_generations: u32,
}

/// Where a signing key comes from. Only the location is parsed here; the
/// key itself is read when a build needs it (`signing::keys`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeySpec {
    /// A PKCS#8 PEM file (absolute; resolved against the workspace folder).
    File(PathBuf),
    /// An environment variable holding the PEM.
    Env(String),
}

/// A parsed, validated workspace.
#[derive(Clone, Debug)]
pub struct Workspace {
    pub root: PathBuf,
    pub file: PathBuf,
    pub cache_dir: PathBuf,
    pub out_dir: PathBuf,
    pub source_date_epoch: i64,
    /// `cache-max-size`: `cache gc`'s limit without `--max-size` (bytes).
    pub cache_max_size: Option<u64>,
    pub sources: BTreeMap<String, SourceDef>,
    pub profiles: BTreeMap<String, ProfileDef>,
    /// The workspace `[signing]` key: every profile's default.
    pub signing: Option<KeySpec>,
}

/// Default `keep-generations` of every profile, and its largest value.
pub const DEFAULT_KEEP_GENERATIONS: u32 = 7;
pub const MAX_KEEP_GENERATIONS: u32 = 1000;

struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn place(&self, span: std::ops::Range<usize>) -> Place {
        let (line, col) = line_col(self.text, span.start);
        Place { line, col }
    }
    fn err(&self, span: std::ops::Range<usize>, key: &str, message: impl Into<String>) -> ProfileError {
        let (line, col) = line_col(self.text, span.start);
        ProfileError::Invalid {
            path: self.path.to_path_buf(),
            line,
            col,
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

impl Workspace {
    /// Load `<dir>/profiles.toml`; `env_epoch` is `SOURCE_DATE_EPOCH` as the
    /// caller read it (environment variables are read once, at the CLI edge).
    pub fn load(dir: &Path, env_epoch: Option<&str>) -> Result<Self, ProfileError> {
        let file = dir.join("profiles.toml");
        let text = crate::bounded::read_text(&file, crate::bounded::MAX_CONFIG_BYTES)
            .map_err(|source| ProfileError::Read { path: file.clone(), source })?;
        Self::parse(dir, &file, &text, env_epoch)
    }

    pub fn parse(dir: &Path, file: &Path, text: &str, env_epoch: Option<&str>) -> Result<Self, ProfileError> {
        let parse_err = |e: toml::de::Error| ProfileError::Parse {
            path: file.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', "\n  "),
        };
        let raw: RawFile = toml::from_str(text).map_err(parse_err)?;
        let mut raw_options: RawOptions = toml::from_str(text).map_err(parse_err)?;
        let cx = Ctx { path: file, text };
        let root = absolute(dir);
        let source_date_epoch = match env_epoch {
            Some(v) => v.trim().parse::<i64>().map_err(|_| ProfileError::Parse {
                path: file.to_path_buf(),
                message: format!("environment SOURCE_DATE_EPOCH={v:?} is not an integer"),
            })?,
            None => raw.workspace.source_date_epoch.unwrap_or(0),
        };
        // tar stores mtime in 11 octal digits; keep every timestamp we write representable
        if !(0..=MAX_EPOCH).contains(&source_date_epoch) {
            let from = if env_epoch.is_some() {
                "environment SOURCE_DATE_EPOCH"
            } else {
                "workspace.source-date-epoch"
            };
            return Err(ProfileError::Parse {
                path: file.to_path_buf(),
                message: format!("{from} = {source_date_epoch} is outside 0..={MAX_EPOCH}"),
            });
        }
        let signing = match &raw.signing {
            None => None,
            Some(v) => Some(key_spec(&cx, &root, v, "signing")?),
        };
        let mut sources = BTreeMap::new();
        for (name, spanned) in raw.sources {
            let span = spanned.span();
            let s = spanned.into_inner();
            check_name(&cx, &name, span.clone(), &format!("sources.{name}"))?;
            let format = Format::parse(s.format.get_ref()).ok_or_else(|| {
                cx.err(
                    s.format.span(),
                    &format!("sources.{name}.format"),
                    format!(
                        "unknown format {:?} (known: {})",
                        s.format.get_ref(),
                        Format::names().join(", ")
                    ),
                )
            })?;
            for g in s.include.iter().chain(&s.exclude) {
                if let Err(e) = globset::Glob::new(g.get_ref()) {
                    return Err(cx.err(g.span(), &format!("sources.{name}.include/exclude"), e.to_string()));
                }
            }
            let shards = match &s.shards {
                Some(n) if !(1..=4096).contains(n.get_ref()) => {
                    return Err(cx.err(
                        n.span(),
                        &format!("sources.{name}.shards"),
                        "must be between 1 and 4096",
                    ))
                }
                Some(n) => Some(*n.get_ref()),
                None => None,
            };
            let data_source = match s.data_source.map(|d| d.into_inner()) {
                None => DataSource { id: name.clone(), name: name.clone(), url: String::new() },
                Some(d) => DataSource {
                    id: d.id.unwrap_or_else(|| name.clone()),
                    name: d.name.unwrap_or_else(|| name.clone()),
                    url: d.url.unwrap_or_default(),
                },
            };
            for (k, v) in [("id", &data_source.id), ("name", &data_source.name)] {
                if v.is_empty() || v.chars().any(|c| c.is_control()) {
                    return Err(cx.err(
                        span.clone(),
                        &format!("sources.{name}.data-source.{k}"),
                        "must be a non-empty single-line string",
                    ));
                }
            }
            let mut limits = SourceLimits::DEFAULT;
            if let Some(n) = &s.max_document_bytes {
                if !(1..=SourceLimits::MAX_DOCUMENT_BYTES).contains(n.get_ref()) {
                    return Err(cx.err(
                        n.span(),
                        &format!("sources.{name}.max-document-bytes"),
                        format!("must be between 1 and {}", SourceLimits::MAX_DOCUMENT_BYTES),
                    ));
                }
                limits.max_document_bytes = *n.get_ref();
            }
            if let Some(n) = &s.max_archive_bytes {
                if *n.get_ref() == 0 {
                    return Err(cx.err(
                        n.span(),
                        &format!("sources.{name}.max-archive-bytes"),
                        "must be positive",
                    ));
                }
                limits.max_archive_bytes = *n.get_ref();
            }
            let declared = s.path.get_ref().clone();
            if declared.is_empty() {
                return Err(cx.err(s.path.span(), &format!("sources.{name}.path"), "empty path"));
            }
            sources.insert(
                name.clone(),
                SourceDef {
                    name,
                    format,
                    path: root.join(&declared),
                    declared_path: declared,
                    include: s.include.into_iter().map(|g| g.into_inner()).collect(),
                    exclude: s.exclude.into_iter().map(|g| g.into_inner()).collect(),
                    shards,
                    data_source,
                    limits,
                },
            );
        }
        let mut profiles = BTreeMap::new();
        for (name, spanned) in raw.profiles {
            let span = spanned.span();
            let p = spanned.into_inner();
            check_name(&cx, &name, span, &format!("profiles.{name}"))?;
            if let Some(i) = p.inputs.as_ref().filter(|i| i.get_ref().is_empty()) {
                return Err(cx.err(i.span(), &format!("profiles.{name}.inputs"), "no inputs"));
            }
            let mut inputs = Vec::new();
            let mut inputs_at = Vec::new();
            for i in p.inputs.map(Spanned::into_inner).unwrap_or_default() {
                if !sources.contains_key(i.get_ref()) {
                    return Err(cx.err(
                        i.span(),
                        &format!("profiles.{name}.inputs"),
                        format!("unknown source {:?}", i.get_ref()),
                    ));
                }
                if inputs.contains(i.get_ref()) {
                    return Err(cx.err(
                        i.span(),
                        &format!("profiles.{name}.inputs"),
                        format!("source {:?} listed twice", i.get_ref()),
                    ));
                }
                inputs_at.push(cx.place(i.span()));
                inputs.push(i.into_inner());
            }
            let (select, select_at) = match p.select {
                None => (Selectors::default(), None),
                Some(sel) => {
                    let span = sel.span();
                    let r = sel.into_inner();
                    let s =
                        Selectors::new(r.ecosystems, r.packages, r.ids, r.modified_since, r.modified_until)
                            .map_err(|m| cx.err(span.clone(), &format!("profiles.{name}.select"), m))?;
                    (s, Some(cx.place(span)))
                }
            };
            let signing = match &p.signing {
                None => signing.clone(),
                Some(v) => match v.get_ref() {
                    toml::Value::Boolean(false) => None,
                    toml::Value::Boolean(true) => Some(signing.clone().ok_or_else(|| {
                        cx.err(
                            v.span(),
                            &format!("profiles.{name}.signing"),
                            "signing = true needs a workspace [signing] table with key or key-env",
                        )
                    })?),
                    _ => Some(key_spec(&cx, &root, v, &format!("profiles.{name}.signing"))?),
                },
            };
            let options = raw_options
                .profiles
                .remove(&name)
                .unwrap_or_default()
                .into_iter()
                .filter(|(k, _)| !COMMON_KEYS.contains(&k.as_str()))
                .map(|(k, v)| {
                    let at = cx.place(v.span());
                    (k, (v.into_inner(), at))
                })
                .collect();
            let keep_generations = match &p.keep_generations {
                Some(k) => u32::try_from(*k.get_ref())
                    .ok()
                    .filter(|k| *k <= MAX_KEEP_GENERATIONS)
                    .ok_or_else(|| {
                        let key = format!("profiles.{name}.keep-generations");
                        cx.err(k.span(), &key, format!("must be between 0 and {MAX_KEEP_GENERATIONS}"))
                    })?,
                None => DEFAULT_KEEP_GENERATIONS,
            };
            profiles.insert(
                name.clone(),
                ProfileDef {
                    name,
                    kind_at: cx.place(p.kind.span()),
                    kind: p.kind.into_inner(),
                    inputs,
                    inputs_at,
                    select,
                    select_at,
                    signing,
                    options,
                    keep_generations,
                },
            );
        }
        let cache_max_size = match &raw.workspace.cache_max_size {
            None => None,
            Some(v) => Some(
                match v.get_ref() {
                    toml::Value::Integer(n) if *n >= 0 => Ok(*n as u64),
                    toml::Value::String(t) => crate::bounded::parse_size(t),
                    _ => Err("must be a size such as \"10GiB\", \"500MB\" or bytes".to_string()),
                }
                .map_err(|m| cx.err(v.span(), "workspace.cache-max-size", m))?,
            ),
        };
        Ok(Workspace {
            cache_max_size,
            cache_dir: root.join(raw.workspace.cache.as_deref().unwrap_or("cache")),
            out_dir: root.join(raw.workspace.out.as_deref().unwrap_or("out")),
            root,
            file: file.to_path_buf(),
            source_date_epoch,
            sources,
            profiles,
            signing,
        })
    }

    /// An invalid-input error at `at` in the workspace file (exit 2).
    pub fn invalid(&self, at: Place, key: &str, message: impl Into<String>) -> ProfileError {
        ProfileError::Invalid {
            path: self.file.clone(),
            line: at.line,
            col: at.col,
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// The named profiles, or all of them when `names` is empty.
    pub fn pick(&self, names: &[String]) -> Result<Vec<&ProfileDef>, String> {
        if names.is_empty() {
            return Ok(self.profiles.values().collect());
        }
        names
            .iter()
            .map(|n| {
                self.profiles.get(n).ok_or_else(|| {
                    format!(
                        "{}: no profile named {n:?} (have: {})",
                        self.file.display(),
                        self.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                })
            })
            .collect()
    }
}

/// `{ key = "path" }` or `{ key-env = "VAR" }` (exactly one).
fn key_spec(cx: &Ctx<'_>, root: &Path, v: &Spanned<toml::Value>, key: &str) -> Result<KeySpec, ProfileError> {
    let bad = |m: &str| cx.err(v.span(), key, m.to_string());
    let t = v.get_ref().as_table().ok_or_else(|| {
        bad("expected a table { key = \"path\" } or { key-env = \"VAR\" } (or, on a profile, true/false)")
    })?;
    if let Some(k) = t.keys().find(|k| *k != "key" && *k != "key-env") {
        return Err(bad(&format!("unknown key {k:?} (known: key, key-env)")));
    }
    let get = |k: &str| -> Result<Option<String>, ProfileError> {
        match t.get(k) {
            None => Ok(None),
            Some(toml::Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
            Some(_) => Err(bad(&format!("{k} must be a non-empty string"))),
        }
    };
    match (get("key")?, get("key-env")?) {
        (Some(p), None) => Ok(KeySpec::File(root.join(p))),
        (None, Some(var)) => Ok(KeySpec::Env(var)),
        _ => Err(bad("set exactly one of key (a PEM file) or key-env (a variable holding the PEM)")),
    }
}

fn check_name(cx: &Ctx<'_>, name: &str, span: std::ops::Range<usize>, key: &str) -> Result<(), ProfileError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(cx.err(span, key, "names use only letters, digits, '-', '_' and '.', and do not start with '.'"))
    }
}

fn absolute(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir).unwrap_or_else(|_| {
        if dir.is_absolute() {
            dir.to_path_buf()
        } else {
            std::env::current_dir().map(|c| c.join(dir)).unwrap_or_else(|_| dir.to_path_buf())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Workspace, ProfileError> {
        Workspace::parse(Path::new("/ws"), Path::new("/ws/profiles.toml"), text, None)
    }

    const GOOD: &str = r#"
[workspace]
source-date-epoch = 1735689600

[sources.pypi]
format = "osv"
path = "samples/osv/pypi"

[profiles.json-raw]
kind = "json:raw"
inputs = ["pypi"]
[profiles.json-raw.select]
ecosystems = ["PyPI"]
"#;

    #[test]
    fn parses_good_file() {
        let ws = parse(GOOD).unwrap();
        assert_eq!(ws.source_date_epoch, 1735689600);
        assert_eq!(ws.sources["pypi"].path, Path::new("/ws/samples/osv/pypi"));
        assert!(ws.profiles["json-raw"].options.is_empty());
        assert_eq!(ws.cache_dir, Path::new("/ws/cache"));
    }

    #[test]
    fn auto_shards_are_powers_of_two_near_count_over_512() {
        assert_eq!(auto_shards(0), 1);
        assert_eq!(auto_shards(700), 1);
        assert_eq!(auto_shards(1024), 2);
        assert_eq!(auto_shards(20_000), 32);
        assert_eq!(auto_shards(300_000), 512);
        assert_eq!(auto_shards(100_000_000), 1024);
    }

    #[test]
    fn env_overrides_epoch() {
        let ws = Workspace::parse(Path::new("/ws"), Path::new("/ws/profiles.toml"), GOOD, Some("7")).unwrap();
        assert_eq!(ws.source_date_epoch, 7);
    }

    #[test]
    fn unknown_key_names_line() {
        let text = GOOD.replace("path = \"samples/osv/pypi\"", "path = \"x\"\nflavour = 1");
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("profiles.toml") && e.contains("line 8") && e.contains("flavour"), "{e}");
    }

    #[test]
    fn unknown_source_names_line_and_key() {
        let text = GOOD.replace("inputs = [\"pypi\"]", "inputs = [\"pypi\", \"nope\"]");
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.starts_with("/ws/profiles.toml:11:"), "{e}");
        assert!(e.contains("profiles.json-raw.inputs") && e.contains("\"nope\""), "{e}");
    }

    #[test]
    fn unknown_format_is_an_error_and_options_keep_their_place() {
        // kinds are checked by `kinds::check_workspace` (src/kinds), not here
        let ws = parse(&GOOD.replace("json:raw", "json:cooked")).unwrap();
        assert_eq!(ws.profiles["json-raw"].kind_at, Place { line: 10, col: 8 });
        let ws = parse(&GOOD.replace("inputs = [\"pypi\"]", "inputs = [\"pypi\"]\nlevel-x = 3")).unwrap();
        let (v, at) = &ws.profiles["json-raw"].options["level-x"];
        assert_eq!((v.as_integer(), at.line), (Some(3), 12));
        let e = parse(&GOOD.replace("\"osv\"", "\"yaml\"")).unwrap_err().to_string();
        assert!(e.contains(":6:") && e.contains("format"), "{e}");
    }

    #[test]
    fn signing_defaults_overrides_and_errors() {
        let text = format!("[signing]\nkey = \"keys/k.key\"\n{GOOD}[profiles.other]\nkind = \"json:raw\"\ninputs = [\"pypi\"]\nsigning = false\n[profiles.env]\nkind = \"json:raw\"\ninputs = [\"pypi\"]\nsigning = {{ key-env = \"K\" }}\n");
        let ws = parse(&text).unwrap();
        assert_eq!(ws.profiles["json-raw"].signing, Some(KeySpec::File("/ws/keys/k.key".into())));
        assert_eq!(ws.profiles["other"].signing, None);
        assert_eq!(ws.profiles["env"].signing, Some(KeySpec::Env("K".into())));
        assert_eq!(parse(GOOD).unwrap().profiles["json-raw"].signing, None);
        let e = parse(&format!("[signing]\nkey = \"a\"\nkey-env = \"B\"\n{GOOD}")).unwrap_err().to_string();
        assert!(e.contains(":1:") && e.contains("exactly one"), "{e}");
        let e =
            parse(&GOOD.replace("[profiles.json-raw.select]", "signing = true\n[profiles.json-raw.select]"))
                .unwrap_err()
                .to_string();
        assert!(e.contains("profiles.json-raw.signing") && e.contains("workspace [signing]"), "{e}");
    }

    #[test]
    fn bad_selector_date_is_an_error() {
        let text = GOOD.replace("ecosystems = [\"PyPI\"]", "modified-since = \"last week\"");
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("select") && e.contains("last week"), "{e}");
    }
}
