//! Kinds: what a profile can export, one folder per kind.
//!
//! Owns the [`Kind`] trait and the registry [`KINDS`]. A kind is a unit:
//! its folder holds its typed options ([`OptionSpec`]), its built-in rule
//! (`rule.toml`, compiled in), its own actions and its verify hook
//! ([`BundleCheck`]). The engine (profile, rules, graph, exec, ops) reaches
//! a kind only through this registry and never names one; adding a kind is
//! one folder and one line in [`KINDS`] (see docs/ARCHITECTURE.md).
//!
//! Invariants: kind names are unique; every kind's rule parses, declares
//! that kind and uses only actions of [`actions`] (the shared ones and the
//! kinds'); profile options are checked here against the kind
//! ([`check_workspace`]), so an option a kind does not take, or a `select`
//! a kind does not apply, is refused naming the file and line (exit 2)
//! instead of being ignored or recorded in provenance as if it ran.

pub mod devportal;
pub mod json_policy;
pub mod json_raw;
pub mod mirror;
pub mod trivy_db;
pub mod trivy_java_db;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::actions::{self, Action};
use crate::adapters::Format;
use crate::profile::{ProfileError, Workspace};

/// Every kind, in the order `--help` and errors list them.
pub static KINDS: &[&dyn Kind] = &[
    &json_raw::JsonRaw,
    &json_policy::JsonPolicy,
    &trivy_db::TrivyDb,
    &trivy_java_db::TrivyJavaDb,
    &mirror::MirrorFull,
    &mirror::MirrorDelta,
    &devportal::DevportalOffline,
];

/// A kind's built-in rule: the repository path it is shown under and its text.
#[derive(Clone, Copy, Debug)]
pub struct BuiltinRule {
    pub path: &'static str,
    pub text: &'static str,
}

/// One kind-specific profile option (`profiles.<name>.<key>`), typed.
#[derive(Clone, Copy, Debug)]
pub enum OptionSpec {
    /// An integer in `min..=max`, `default` when absent.
    Int { key: &'static str, min: i64, max: i64, default: i64 },
    /// Any TOML value (a table, a string) checked by the kind: `parse`
    /// gets the value as written, or `None` when absent, and returns the
    /// rule variable's JSON value or why it is refused. An object
    /// `{"key-file": path}` anywhere in that value names a private key
    /// (relative to the workspace): the build loads it into the run's
    /// keyring and puts its public key (`{keyid, keytype, scheme, public}`)
    /// there instead, so steps name keys by keyid, never by path.
    Custom { key: &'static str, parse: fn(Option<&toml::Value>) -> Result<Value, String> },
    /// A workspace file the option names (a path relative to the
    /// workspace), read whole (at most [`MAX_OPTION_FILE`] bytes) when the
    /// profile loads: `parse` gets the path (`None` when the option is
    /// absent: then the text is `default_text`) and the text, and returns
    /// the rule variable's value or why it is refused (naming the line).
    /// So the file's content, not its name, keys the steps.
    File {
        key: &'static str,
        default_text: &'static str,
        parse: fn(Option<&str>, &str) -> Result<Value, String>,
    },
}

/// The largest file an [`OptionSpec::File`] option may name.
pub const MAX_OPTION_FILE: u64 = 1 << 20;

impl OptionSpec {
    pub fn key(&self) -> &'static str {
        match self {
            OptionSpec::Int { key, .. } | OptionSpec::Custom { key, .. } | OptionSpec::File { key, .. } => {
                key
            }
        }
    }
    /// The option's value (the rule variable `{profile.<key>}`) when absent.
    pub fn default_value(&self) -> Value {
        match self {
            OptionSpec::Int { default, .. } => Value::from(*default),
            OptionSpec::Custom { parse, .. } => parse(None).unwrap_or(Value::Null),
            OptionSpec::File { default_text, parse, .. } => parse(None, default_text).unwrap_or(Value::Null),
        }
    }
    /// The value of a given option, or why it is not accepted; `root` is
    /// the workspace folder (what a file option's path is relative to).
    pub fn parse(&self, v: &toml::Value, root: &std::path::Path) -> Result<Value, String> {
        match self {
            OptionSpec::Int { min, max, .. } => match v.as_integer() {
                Some(n) if (*min..=*max).contains(&n) => Ok(Value::from(n)),
                _ => Err(format!("must be between {min} and {max}")),
            },
            OptionSpec::Custom { parse, .. } => parse(Some(v)),
            OptionSpec::File { parse, .. } => {
                let rel = v.as_str().ok_or("must be a path (a string), relative to the workspace")?;
                let path = root.join(rel);
                let text = read_option_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                parse(Some(rel), &text).map_err(|e| format!("{}: {e}", path.display()))
            }
        }
    }
}

fn read_option_file(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    f.take(MAX_OPTION_FILE + 1).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_OPTION_FILE {
        return Err(format!("larger than {MAX_OPTION_FILE} bytes"));
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())
}

impl OptionSpec {
    /// Whether the option names a workspace file.
    pub fn is_file(&self) -> bool {
        matches!(self, OptionSpec::File { .. })
    }
}

/// How a codec compresses a kind's bundle (a typed fact of the kind, not
/// read from the bundle's file name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// Concatenated zstd frames (`.tar.zst`).
    Zstd,
    /// One gzip stream (`.tar.gz`).
    Gzip,
    /// Not an archive (a mirror delta's `manifest.diff.json`): no members.
    Plain,
}

/// What a bundle's members hold, for `verify`'s record count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Members {
    /// JSONL: `contents[].records` is the member's line count.
    JsonLines,
    /// Files (a database, metadata) whose records are not re-counted.
    Opaque,
}

/// The kind's verify hook: how `verify` decodes the bundle and checks members.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BundleCheck {
    pub codec: Codec,
    pub members: Members,
}

/// A profile kind.
pub trait Kind: Sync {
    /// The name profiles write as `kind = "..."` and the manifest records.
    fn name(&self) -> &'static str;
    /// The built-in rule (a workspace `rules/*.toml` declaring this kind replaces it).
    fn rule(&self) -> BuiltinRule;
    /// The kind's own actions (the shared ones are [`actions::SHARED`]).
    fn actions(&self) -> &'static [&'static dyn Action];
    /// Whether a source of this format can feed a profile of this kind.
    fn accepts(&self, format: Format) -> bool;
    /// The kind-specific options a profile may set; any other is refused.
    fn options(&self) -> &'static [OptionSpec];
    /// Whether the kind's steps apply `[profiles.X.select]`; a kind that
    /// does not refuses it.
    fn applies_select(&self) -> bool;
    /// How `verify` reads the bundle of an export of this kind.
    fn bundle(&self) -> BundleCheck;
    /// What the next build of a profile carries over from its live export
    /// `export` (the rule variable `{export.previous}`, with the live
    /// generation beside it): `None` for kinds whose bytes depend on
    /// their inputs alone (the default).
    fn carried_state(&self, _export: &std::path::Path) -> Option<Value> {
        None
    }
    /// Whether the steps reading `{export.previous}` make the live export
    /// `export` again when given its own carried state (a mirror keeps its
    /// generation when nothing changed), so the build records their outputs
    /// under that key too (`ops::fixpoint`) and the next no-op build runs
    /// nothing. False (the default) when unsure: that only costs a re-run.
    fn previous_is_fixpoint(&self, _export: &std::path::Path) -> bool {
        false
    }
    /// Whether an unsigned profile of this kind is refused (a TUF
    /// repository cannot be unsigned).
    fn needs_signing(&self) -> bool {
        false
    }
    /// For an export whose bytes a rebuild cannot reproduce by design (an
    /// encrypted mirror: age encryption is randomised), what `build
    /// --check` compares instead: the differences (file, what) between the
    /// published export in `published` and the rebuilt one (`rebuilt`
    /// reads a rebuilt file by its published name). `None`: compare bytes.
    fn content_differences(
        &self,
        _published: &std::path::Path,
        _rebuilt: &dyn Fn(&str) -> Option<Vec<u8>>,
    ) -> Option<Vec<(String, &'static str)>> {
        None
    }
    /// `Some` for a kind made from other profiles' published exports
    /// rather than from sources (a mirror delta): see [`Derived`].
    fn derived(&self) -> Option<&'static dyn Derived> {
        None
    }
}

/// A kind whose export is made from other exports. Its profiles take no
/// `inputs`; a build first builds and publishes the profiles it names
/// ([`Derived::bases`]), then expands its rule with `{export.derived}`
/// ([`Derived::input`]) and runs it: the second phase of the build.
pub trait Derived: Sync {
    /// The profiles to build before this one (its base).
    fn bases(&self, ws: &Workspace, p: &crate::profile::ProfileDef) -> Result<Vec<String>, DeriveError>;
    /// The value of `{export.derived}`, read from the published exports
    /// (blobs it names are put into `cache` first).
    fn input(
        &self,
        ws: &Workspace,
        p: &crate::profile::ProfileDef,
        cache: &crate::cache::Cache,
    ) -> Result<Value, DeriveError>;
}

/// Why a derived profile cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum DeriveError {
    /// Nothing to derive from yet (a first build): not an error.
    #[error("{0}")]
    NoBase(String),
    /// A base named by path that is missing or not an export (exit 2).
    #[error("ERR_EXPORT_BASE_MISSING: {0}")]
    BaseMissing(String),
    #[error("{0}")]
    Invalid(String),
}

/// The kind named `name`.
pub fn lookup(name: &str) -> Option<&'static dyn Kind> {
    KINDS.iter().copied().find(|k| k.name() == name)
}

/// Every kind name, for messages.
pub fn names() -> Vec<&'static str> {
    KINDS.iter().map(|k| k.name()).collect()
}

/// Every action a rule may name: the shared ones, then each kind's.
pub fn all_actions() -> impl Iterator<Item = &'static dyn Action> {
    actions::SHARED.iter().copied().chain(KINDS.iter().flat_map(|k| k.actions().iter().copied()))
}

/// The action with id `id`.
pub fn action(id: &str) -> Option<&'static dyn Action> {
    all_actions().find(|a| a.id() == id)
}

/// Every action id, for messages.
pub fn action_names() -> Vec<&'static str> {
    all_actions().map(|a| a.id()).collect()
}

/// Check every profile against its kind: a known kind, inputs of formats
/// it accepts, only the options it takes (each valid), `select` only where
/// it applies. Errors name the workspace file, line and key (exit 2).
pub fn check_workspace(ws: &Workspace) -> Result<(), ProfileError> {
    for p in ws.profiles.values() {
        let key = |k: &str| format!("profiles.{}.{k}", p.name);
        let Some(kind) = lookup(&p.kind) else {
            return Err(ws.invalid(
                p.kind_at,
                &key("kind"),
                format!("unknown kind {:?} (known: {})", p.kind, names().join(", ")),
            ));
        };
        for (i, at) in p.inputs.iter().zip(&p.inputs_at) {
            let format = ws.sources[i].format;
            if !kind.accepts(format) {
                return Err(ws.invalid(
                    *at,
                    &key("inputs"),
                    format!(
                        "source {:?} has format {:?}, which a {} profile cannot use",
                        i,
                        format.as_str(),
                        kind.name()
                    ),
                ));
            }
        }
        option_values(kind, p, &ws.root).map_err(|(at, k, m)| ws.invalid(at, &key(&k), m))?;
        match (kind.derived().is_some(), p.inputs.is_empty()) {
            (false, true) => return Err(ws.invalid(p.kind_at, &key("inputs"), "no inputs".to_string())),
            (true, false) => {
                return Err(ws.invalid(
                    p.inputs_at[0],
                    &key("inputs"),
                    format!(
                        "{} profiles take no inputs: they are made from their base's export",
                        kind.name()
                    ),
                ))
            }
            _ => {}
        }
        if kind.needs_signing() && p.signing.is_none() {
            return Err(ws.invalid(
                p.kind_at,
                &key("signing"),
                format!(
                    "{} profiles are signed TUF repositories: set a workspace [signing] key (or profiles.{}.signing)",
                    kind.name(),
                    p.name
                ),
            ));
        }
        if let Some(at) = p.select_at {
            if !kind.applies_select() {
                return Err(ws.invalid(
                    at,
                    &key("select"),
                    format!("{} profiles do not apply selectors: remove select", kind.name()),
                ));
            }
        }
    }
    Ok(())
}

/// The profile's kind-specific option values by key (defaults filled in):
/// the rule variables `{profile.<key>}`. Errors: (place, key, message).
pub fn option_values(
    kind: &dyn Kind,
    p: &crate::profile::ProfileDef,
    root: &std::path::Path,
) -> Result<BTreeMap<&'static str, Value>, (crate::profile::Place, String, String)> {
    let specs = kind.options();
    for (k, (_, at)) in &p.options {
        if !specs.iter().any(|s| s.key() == k) {
            let known: Vec<&str> = specs.iter().map(|s| s.key()).collect();
            let theirs = if known.is_empty() { "none".to_string() } else { known.join(", ") };
            return Err((
                *at,
                k.clone(),
                format!("{} profiles take no {k} (their options: {theirs})", kind.name()),
            ));
        }
    }
    specs
        .iter()
        .map(|s| {
            let v = match p.options.get(s.key()) {
                None => s.default_value(),
                Some((v, at)) => s.parse(v, root).map_err(|m| (*at, s.key().to_string(), m))?,
            };
            Ok((s.key(), v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_and_action_names_are_unique() {
        // (each kind's rule parses for it: `rules::tests::every_builtin_rule_parses_for_its_kind`)
        let mut names = names();
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate kind names: {names:?}");
        let mut ids = action_names();
        ids.sort();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n, "duplicate action ids: {ids:?}");
    }

    /// The engine names no kind: outside `src/kinds`, no source file holds a
    /// kind name as a string literal (tests and comments aside).
    #[test]
    fn no_kind_name_outside_the_kinds_folder() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut bad = Vec::new();
        for e in walkdir::WalkDir::new(&src) {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(&src).unwrap().to_string_lossy().into_owned();
            if !rel.ends_with(".rs") || rel.starts_with("kinds/") {
                continue;
            }
            let text = std::fs::read_to_string(e.path()).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (n, line) in code.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                for k in KINDS {
                    if line.contains(&format!("\"{}\"", k.name())) {
                        bad.push(format!("src/{rel}:{}: {}", n + 1, line.trim()));
                    }
                }
            }
        }
        assert!(bad.is_empty(), "kind names outside src/kinds:\n{}", bad.join("\n"));
    }
}
