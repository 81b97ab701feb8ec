//! Rules: declarative, versioned step templates (`rules/*.toml`).
//!
//! Owns parsing and validating rule files. A rule declares, for one profile
//! kind, the steps its profiles expand into: each step names a built-in
//! action, whether it runs once per source shard (`for-each = "shard"`) or
//! once per profile (`"profile"`), its inputs and its parameters.
//!
//! Input references: `source.shard` (the shard's documents),
//! `<step>.<output>` (the same shard's instance of `<step>`, or the
//! profile's, between two per-profile steps), and
//! `<step>[*].<output>` (every instance, gathered in shard order).
//! Parameters are TOML values; a string that is exactly `"{var}"` becomes
//! that variable's JSON value, and `{var}` inside a longer string is
//! interpolated. The variables are declared once, in [`VARS`] (and, for
//! `profile.<option>`, by the rule's kind: `crate::kinds`); a parameter is
//! checked into a typed [`Param`] tree when the rule loads, so an unknown
//! variable is an error naming the rule file and step, and instantiation
//! can leave no `{var}` text behind.
//!
//! The last step must run once per profile with an action that publishes;
//! the files of `out/<profile>/` are the published outputs of every
//! publishing step of the profile. A rule that publishes nothing is an
//! error, not a silent empty export.
//!
//! Built-in rules ship inside the binary, one per kind (`crate::kinds`). A
//! workspace `rules/*.toml` file replaces the rule of a registered kind
//! (the one it declares); it cannot add a kind, since a kind also needs
//! code (its options, actions and verify hook): a rule for an unregistered
//! kind is an error naming the file. Each rule carries the SHA-256 of its
//! text (`{rule.sha256}`, recorded in provenance), so two different rule
//! files with one version never attest the same. Unknown actions or
//! outputs, dangling references and cycles are errors naming the rule file
//! and step.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use petgraph::graph::DiGraph;
use serde::Deserialize;

use serde_json::Value;

use crate::actions;
use crate::digest::Sha256;
use crate::kinds;

#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: step {step:?}: {message}")]
    Invalid { path: PathBuf, step: String, message: String },
    #[error("{path}: cycle between steps: {cycle}")]
    Cycle { path: PathBuf, cycle: String },
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    kind: String,
    version: u32,
    #[serde(default)]
    description: String,
    step: Vec<RawStep>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawStep {
    name: String,
    action: String,
    for_each: String,
    #[serde(default)]
    inputs: BTreeMap<String, String>,
    #[serde(default)]
    params: toml::Table,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForEach {
    Shard,
    Profile,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputSpec {
    /// The shard's documents.
    Shard,
    /// Output of the same shard's instance of a step.
    Same { step: String, output: String },
    /// Output of every instance of a step.
    All { step: String, output: String },
}

#[derive(Clone, Debug)]
pub struct StepTemplate {
    pub name: String,
    pub action: &'static dyn actions::Action,
    pub for_each: ForEach,
    pub inputs: Vec<(String, InputSpec)>,
    pub params: Param,
    /// True when nothing profile-specific reaches the step: its instances
    /// are shared by every profile reading the same shard.
    pub shared: bool,
}

#[derive(Clone, Debug)]
pub struct Rule {
    /// Where the rule was read (for errors).
    pub path: PathBuf,
    /// The path recorded in provenance: the repository path of a built-in
    /// rule, `rules/<file>` of a workspace one.
    pub shown: String,
    /// SHA-256 of the rule's text.
    pub sha256: Sha256,
    pub kind: String,
    pub version: u32,
    pub description: String,
    /// In dependency order.
    pub steps: Vec<StepTemplate>,
}

/// All rules by kind: the built-in ones, each replaced by a workspace
/// `rules/*.toml` that declares its kind.
pub fn load(workspace: &Path) -> Result<BTreeMap<String, Rule>, RuleError> {
    let mut rules = BTreeMap::new();
    for k in kinds::KINDS {
        let b = k.rule();
        let r = parse(Path::new(b.path), b.text)?;
        rules.insert(r.kind.clone(), r);
    }
    let dir = workspace.join("rules");
    if let Ok(read) = std::fs::read_dir(&dir) {
        let mut files: Vec<PathBuf> = read
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for path in files {
            let text = crate::bounded::read_text(&path, crate::bounded::MAX_CONFIG_BYTES)
                .map_err(|source| RuleError::Read { path: path.clone(), source })?;
            let mut r = parse(&path, &text)?;
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            r.shown = format!("rules/{name}");
            rules.insert(r.kind.clone(), r);
        }
    }
    Ok(rules)
}

fn parse_ref(s: &str) -> Option<InputSpec> {
    if s == "source.shard" {
        return Some(InputSpec::Shard);
    }
    let (step, output) = s.split_once('.')?;
    match step.strip_suffix("[*]") {
        Some(step) => Some(InputSpec::All { step: step.into(), output: output.into() }),
        None => Some(InputSpec::Same { step: step.into(), output: output.into() }),
    }
}

pub fn parse(path: &Path, text: &str) -> Result<Rule, RuleError> {
    let raw: RawRule = toml::from_str(text).map_err(|e| RuleError::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().replace('\n', "\n  "),
    })?;
    let kind = kinds::lookup(&raw.kind).ok_or_else(|| RuleError::Parse {
        path: path.to_path_buf(),
        message: format!(
            "kind {:?} is not a registered kind (known: {}): a rules/ file can replace the rule of a \
             registered kind, but a new kind needs code (its options, actions and verify hook, \
             src/kinds/)",
            crate::shown::name(&raw.kind),
            kinds::names().join(", ")
        ),
    })?;
    let invalid = |step: &str, message: String| RuleError::Invalid {
        path: path.to_path_buf(),
        step: step.into(),
        message,
    };
    let mut by_name: BTreeMap<String, usize> = BTreeMap::new();
    for (i, s) in raw.step.iter().enumerate() {
        if by_name.insert(s.name.clone(), i).is_some() {
            return Err(invalid(&s.name, "defined twice".into()));
        }
    }
    let mut g = DiGraph::<usize, ()>::new();
    let nodes: Vec<_> = (0..raw.step.len()).map(|i| g.add_node(i)).collect();
    let mut templates = Vec::new();
    for (i, s) in raw.step.iter().enumerate() {
        let action = kinds::action(&s.action).ok_or_else(|| {
            invalid(
                &s.name,
                format!("unknown action {:?} (known: {})", s.action, kinds::action_names().join(", ")),
            )
        })?;
        let for_each = match s.for_each.as_str() {
            "shard" => ForEach::Shard,
            "profile" => ForEach::Profile,
            other => {
                return Err(invalid(
                    &s.name,
                    format!("for-each must be \"shard\" or \"profile\", not {other:?}"),
                ))
            }
        };
        let mut inputs = Vec::new();
        for (name, r) in &s.inputs {
            let spec = parse_ref(r)
                .ok_or_else(|| invalid(&s.name, format!("input {name}: cannot read reference {r:?}")))?;
            match &spec {
                InputSpec::Shard if for_each != ForEach::Shard => {
                    return Err(invalid(
                        &s.name,
                        format!("input {name}: source.shard needs for-each = \"shard\""),
                    ))
                }
                InputSpec::Shard => {}
                InputSpec::Same { step, output } | InputSpec::All { step, output } => {
                    let &j = by_name.get(step).ok_or_else(|| {
                        invalid(&s.name, format!("input {name}: dangling reference to unknown step {step:?}"))
                    })?;
                    let up = &raw.step[j];
                    let up_action = kinds::action(&up.action);
                    if let Some(a) = up_action {
                        if !a.outputs().contains(&output.as_str()) {
                            return Err(invalid(
                                &s.name,
                                format!("input {name}: step {step:?} ({}) has no output {output:?}", a.id()),
                            ));
                        }
                    }
                    let up_each = if up.for_each == "shard" { ForEach::Shard } else { ForEach::Profile };
                    if matches!(spec, InputSpec::Same { .. }) && for_each != up_each {
                        return Err(invalid(
                            &s.name,
                            format!("input {name}: {r:?} pairs instances, so both steps need the same for-each (use {step}[*].{output} to gather)"),
                        ));
                    }
                    g.add_edge(nodes[j], nodes[i], ());
                }
            }
            inputs.push((name.clone(), spec));
        }
        for name in s.inputs.keys() {
            if !action.inputs().contains(&name.as_str()) && !action.optional_inputs().contains(&name.as_str())
            {
                return Err(invalid(&s.name, format!("action {} has no input {name:?}", action.id())));
            }
        }
        for want in action.inputs() {
            if !s.inputs.contains_key(*want) {
                return Err(invalid(&s.name, format!("action {} needs input {want:?}", action.id())));
            }
        }
        let params = serde_json::to_value(&s.params).map_err(|e| invalid(&s.name, e.to_string()))?;
        for want in action.required_params() {
            if params.get(*want).is_none() {
                return Err(invalid(&s.name, format!("action {} needs parameter {want:?}", action.id())));
            }
        }
        let params = Param::check(&params, kind, for_each).map_err(|m| invalid(&s.name, m))?;
        templates.push(StepTemplate {
            name: s.name.clone(),
            action,
            for_each,
            inputs,
            shared: !params.uses(&|v| v.per_profile()) && for_each == ForEach::Shard,
            params,
        });
    }
    let order = petgraph::algo::toposort(&g, None).map_err(|c| {
        let start = g[c.node_id()];
        let mut names = vec![raw.step[start].name.clone()];
        // walk predecessors inside the strongly connected component for a readable cycle
        for scc in petgraph::algo::kosaraju_scc(&g) {
            if scc.contains(&c.node_id()) && scc.len() > 1 {
                names = scc.iter().map(|n| raw.step[g[*n]].name.clone()).collect();
                names.sort();
            }
        }
        RuleError::Cycle { path: path.to_path_buf(), cycle: names.join(" -> ") }
    })?;
    // shared only if every upstream step is shared too
    let mut sorted: Vec<StepTemplate> = order.iter().map(|n| templates[g[*n]].clone()).collect();
    for i in 0..sorted.len() {
        let ups_shared = sorted[i].inputs.iter().all(|(_, spec)| match spec {
            InputSpec::Shard => true,
            InputSpec::Same { step, .. } | InputSpec::All { step, .. } => {
                sorted.iter().find(|t| &t.name == step).is_some_and(|t| t.shared)
            }
        });
        sorted[i].shared &= ups_shared;
    }
    // the profile's final (publishing) step comes last in dependency order
    match sorted.last() {
        Some(t) if t.for_each == ForEach::Profile && t.action.publishes() => {}
        Some(t) => {
            return Err(invalid(
                &t.name,
                "the last step must be for-each = \"profile\" with an action that publishes (e.g. assemble-bundle)".into(),
            ))
        }
        None => return Err(RuleError::Parse { path: path.to_path_buf(), message: "no steps".into() }),
    }
    Ok(Rule {
        path: path.to_path_buf(),
        shown: path.display().to_string(),
        sha256: Sha256::of(text.as_bytes()),
        kind: raw.kind,
        version: raw.version,
        description: raw.description,
        steps: sorted,
    })
}

/// A rule variable. Its value comes from the graph (`src/graph.rs`, one
/// function `value` matching on every variable), so a variable declared
/// here cannot go without a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Var {
    ProfileName,
    ProfileKind,
    /// The selectors as canonical JSON.
    ProfileSelect,
    /// The manifest's `sources[]` of the profile.
    ProfileSources,
    /// The names of the profile's inputs, in the order the profile lists
    /// them (no digests: a changed source does not change it).
    ProfileInputs,
    /// The public key (`{keyid, ...}`), or null when unsigned.
    ProfileSigning,
    /// A kind-specific option, `{profile.<key>}`, declared by the kind.
    ProfileOption(&'static str),
    WorkspaceSourceDateEpoch,
    /// What the profile's live export carries into the next build
    /// (`{generation, state}`, or null): see `Kind::carried_state`.
    ExportPrevious,
    /// What a derived kind reads from other exports (`Derived::input`).
    ExportDerived,
    ShardSource,
    /// The shard index, zero-padded to 4 digits.
    ShardIndex,
    ShardFormat,
    /// The record type of the shard's format (`advisories`, `vex`, ...).
    ShardType,
    /// The source path as declared.
    ShardPath,
    /// `dir` or `archive`.
    ShardOrigin,
    /// `{ID, Name, URL}`.
    ShardDataSource,
    ToolVersion,
    RuleVersion,
    /// `{action id: version}` of every step of the rule.
    RuleActions,
    /// Where the rule comes from (see [`Rule::shown`]).
    RulePath,
    /// SHA-256 (hex) of the rule's text.
    RuleSha256,
}

/// Every variable (but the kinds' options) by name: the one declaration.
pub const VARS: &[(&str, Var)] = &[
    ("profile.name", Var::ProfileName),
    ("profile.kind", Var::ProfileKind),
    ("profile.select", Var::ProfileSelect),
    ("profile.sources", Var::ProfileSources),
    ("profile.inputs", Var::ProfileInputs),
    ("profile.signing", Var::ProfileSigning),
    ("workspace.source-date-epoch", Var::WorkspaceSourceDateEpoch),
    ("export.previous", Var::ExportPrevious),
    ("export.derived", Var::ExportDerived),
    ("shard.source", Var::ShardSource),
    ("shard.index", Var::ShardIndex),
    ("shard.format", Var::ShardFormat),
    ("shard.type", Var::ShardType),
    ("shard.path", Var::ShardPath),
    ("shard.origin", Var::ShardOrigin),
    ("shard.data-source", Var::ShardDataSource),
    ("tool.version", Var::ToolVersion),
    ("rule.version", Var::RuleVersion),
    ("rule.actions", Var::RuleActions),
    ("rule.path", Var::RulePath),
    ("rule.sha256", Var::RuleSha256),
];

impl Var {
    /// The name a rule writes (`profile.compression-level`, `shard.index`).
    pub fn name(self) -> String {
        match self {
            Var::ProfileOption(key) => format!("profile.{key}"),
            v => VARS.iter().find(|(_, x)| *x == v).map(|(n, _)| n.to_string()).unwrap_or_default(),
        }
    }
    /// The variable named `name` in a rule of `kind`.
    fn lookup(name: &str, kind: &dyn kinds::Kind) -> Option<Var> {
        if let Some((_, v)) = VARS.iter().find(|(n, _)| *n == name) {
            return Some(*v);
        }
        let key = name.strip_prefix("profile.")?;
        kind.options().iter().find(|o| o.key() == key).map(|o| Var::ProfileOption(o.key()))
    }
    /// Names of every variable a rule of `kind` may use.
    fn names(kind: &dyn kinds::Kind) -> Vec<String> {
        let mut n: Vec<String> = VARS.iter().map(|(n, _)| n.to_string()).collect();
        n.extend(kind.options().iter().map(|o| format!("profile.{}", o.key())));
        n
    }
    /// Takes a shard's value: only in `for-each = "shard"` steps.
    pub fn per_shard(self) -> bool {
        matches!(
            self,
            Var::ShardSource
                | Var::ShardIndex
                | Var::ShardFormat
                | Var::ShardType
                | Var::ShardPath
                | Var::ShardOrigin
                | Var::ShardDataSource
        )
    }
    /// Differs between profiles reading one shard (the step is not shared).
    pub fn per_profile(self) -> bool {
        matches!(
            self,
            Var::ProfileName
                | Var::ProfileKind
                | Var::ProfileSelect
                | Var::ProfileSources
                | Var::ProfileInputs
                | Var::ProfileSigning
                | Var::ProfileOption(_)
                | Var::ExportPrevious
                | Var::ExportDerived
        )
    }
}

/// A checked parameter template: literal values and variables, no text
/// left to interpret.
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    /// A value holding no variable.
    Lit(Value),
    /// `"{var}"`: the variable's JSON value.
    Var(Var),
    /// A string with `{var}` inside: the parts, concatenated.
    Text(Vec<Piece>),
    List(Vec<Param>),
    Map(Vec<(String, Param)>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Piece {
    Lit(String),
    /// A string value is inserted as is, any other as its JSON text.
    Var(Var),
}

impl Param {
    /// Names of the variables this parameter reads, sorted, each once.
    pub fn vars(&self) -> Vec<String> {
        fn walk(p: &Param, out: &mut Vec<String>) {
            match p {
                Param::Lit(_) => {}
                Param::Var(v) => out.push(v.name()),
                Param::Text(parts) => out.extend(parts.iter().filter_map(|x| match x {
                    Piece::Var(v) => Some(v.name()),
                    Piece::Lit(_) => None,
                })),
                Param::List(l) => l.iter().for_each(|x| walk(x, out)),
                Param::Map(m) => m.iter().for_each(|(_, x)| walk(x, out)),
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out.sort();
        out.dedup();
        out
    }
    /// Check a parameter of a step of a `kind` rule into a template.
    fn check(v: &Value, kind: &dyn kinds::Kind, for_each: ForEach) -> Result<Param, String> {
        let var = |name: &str, whole: &str| -> Result<Var, String> {
            let v = Var::lookup(name, kind).ok_or_else(|| {
                format!("unknown variable {{{name}}} in {whole:?} (known: {})", Var::names(kind).join(", "))
            })?;
            if v.per_shard() && for_each != ForEach::Shard {
                return Err(format!("{{{name}}} needs for-each = \"shard\""));
            }
            Ok(v)
        };
        Ok(match v {
            Value::String(s) => {
                let mut pieces = Vec::new();
                let mut rest = s.as_str();
                while let Some(start) = rest.find('{') {
                    let end =
                        rest[start..].find('}').ok_or_else(|| format!("unclosed '{{' in {s:?}"))? + start;
                    if start > 0 {
                        pieces.push(Piece::Lit(rest[..start].to_string()));
                    }
                    pieces.push(Piece::Var(var(&rest[start + 1..end], s)?));
                    rest = &rest[end + 1..];
                }
                if !rest.is_empty() {
                    pieces.push(Piece::Lit(rest.to_string()));
                }
                match pieces.as_slice() {
                    [] => Param::Lit(v.clone()),
                    [Piece::Lit(_)] => Param::Lit(v.clone()),
                    [Piece::Var(x)] => Param::Var(*x),
                    _ => Param::Text(pieces),
                }
            }
            Value::Array(a) => {
                let items =
                    a.iter().map(|x| Param::check(x, kind, for_each)).collect::<Result<Vec<_>, _>>()?;
                if items.iter().all(|i| matches!(i, Param::Lit(_))) {
                    Param::Lit(v.clone())
                } else {
                    Param::List(items)
                }
            }
            Value::Object(m) => {
                let items = m
                    .iter()
                    .map(|(k, x)| Ok((k.clone(), Param::check(x, kind, for_each)?)))
                    .collect::<Result<Vec<_>, String>>()?;
                if items.iter().all(|(_, i)| matches!(i, Param::Lit(_))) {
                    Param::Lit(v.clone())
                } else {
                    Param::Map(items)
                }
            }
            other => Param::Lit(other.clone()),
        })
    }

    /// True when some variable of the template satisfies `f`.
    pub fn uses(&self, f: &dyn Fn(Var) -> bool) -> bool {
        match self {
            Param::Lit(_) => false,
            Param::Var(v) => f(*v),
            Param::Text(p) => p.iter().any(|p| matches!(p, Piece::Var(v) if f(*v))),
            Param::List(l) => l.iter().any(|p| p.uses(f)),
            Param::Map(m) => m.iter().any(|(_, p)| p.uses(f)),
        }
    }

    /// The parameter with every variable replaced by its value; `Err(var)`
    /// when `value` has none for a variable.
    pub fn instantiate(&self, value: &dyn Fn(Var) -> Option<Value>) -> Result<Value, Var> {
        Ok(match self {
            Param::Lit(v) => v.clone(),
            Param::Var(v) => value(*v).ok_or(*v)?,
            Param::Text(pieces) => {
                let mut out = String::new();
                for p in pieces {
                    match p {
                        Piece::Lit(s) => out.push_str(s),
                        Piece::Var(v) => match value(*v).ok_or(*v)? {
                            Value::String(x) => out.push_str(&x),
                            other => out.push_str(&other.to_string()),
                        },
                    }
                }
                Value::String(out)
            }
            Param::List(l) => Value::Array(l.iter().map(|p| p.instantiate(value)).collect::<Result<_, _>>()?),
            Param::Map(m) => Value::Object(
                m.iter().map(|(k, p)| Ok((k.clone(), p.instantiate(value)?))).collect::<Result<_, Var>>()?,
            ),
        })
    }
}

impl std::fmt::Display for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Var::ProfileOption(k) => write!(f, "{{profile.{k}}}"),
            v => match VARS.iter().find(|(_, x)| x == v) {
                Some((n, _)) => write!(f, "{{{n}}}"),
                None => write!(f, "{v:?}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(Path::new("rules/t.toml"), text).unwrap_err().to_string()
    }

    const HEAD: &str = "kind = \"json:raw\"\nversion = 1\n";

    #[test]
    fn builtin_rules_parse_in_order() {
        let b = kinds::lookup("json:raw").unwrap().rule();
        let r = parse(Path::new(b.path), b.text).unwrap();
        let names: Vec<_> = r.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["parse", "encode", "bundle", "seal"]);
        assert!(r.steps[0].shared && !r.steps[1].shared);
    }

    #[test]
    fn unknown_action_is_named() {
        let e = err(&format!("{HEAD}[[step]]\nname = \"a\"\naction = \"nope\"\nfor-each = \"shard\"\n"));
        assert!(
            e.contains("rules/t.toml") && e.contains("\"a\"") && e.contains("unknown action \"nope\""),
            "{e}"
        );
    }

    #[test]
    fn dangling_input_is_named() {
        let e = err(&format!(
            "{HEAD}[[step]]\nname = \"e\"\naction = \"encode-member\"\nfor-each = \"shard\"\ninputs = {{ records = \"ghost.records\" }}\n"
        ));
        assert!(e.contains("dangling") && e.contains("ghost"), "{e}");
    }

    #[test]
    fn cycle_is_named() {
        let e = err(&format!(
            "{HEAD}[[step]]\nname = \"a\"\naction = \"encode-member\"\nfor-each = \"shard\"\ninputs = {{ records = \"b.rows\" }}\n\
             params = {{ member = \"m\", type = \"advisories\", level = 3 }}\n[[step]]\nname = \"b\"\naction = \"trivy-convert\"\nfor-each = \"shard\"\ninputs = {{ records = \"a.frame\" }}\n\
             params = {{ format = \"osv\", source = \"s\", path = \"p\", origin = \"dir\", data-source = \"d\" }}\n"
        ));
        assert!(e.contains("rules/t.toml: cycle between steps: a -> b"), "{e}");
    }

    #[test]
    fn undeclared_input_is_named() {
        let e = err(&format!(
            "{HEAD}[[step]]\nname = \"p\"\naction = \"parse-documents\"\nfor-each = \"shard\"\ninputs = {{ docs = \"source.shard\", extra = \"source.shard\" }}\n\
             params = {{ format = \"osv\", source = \"s\", path = \"p\", origin = \"dir\" }}\n"
        ));
        assert!(e.contains("has no input \"extra\""), "{e}");
    }

    #[test]
    fn instantiate_replaces_whole_and_inline_vars() {
        let kind = kinds::lookup("json:raw").unwrap();
        let t = serde_json::json!({"m": "a/{shard.index}.jsonl", "s": "{profile.select}", "k": 3});
        let t = Param::check(&t, kind, ForEach::Shard).unwrap();
        let value = |v: Var| match v {
            Var::ShardIndex => Some(serde_json::json!("0007")),
            Var::ProfileSelect => Some(serde_json::json!({"ids": ["X"]})),
            _ => None,
        };
        let got = t.instantiate(&value).unwrap();
        assert_eq!(got, serde_json::json!({"m": "a/0007.jsonl", "s": {"ids": ["X"]}, "k": 3}));
        // a variable without a value is an error, never literal text
        let t = Param::check(&serde_json::json!("x-{tool.version}"), kind, ForEach::Profile).unwrap();
        assert_eq!(t.instantiate(&value), Err(Var::ToolVersion));
        // a kind's option is a variable of its rules only
        let opt = serde_json::json!("{profile.compression-level}");
        assert_eq!(
            Param::check(&opt, kind, ForEach::Profile),
            Ok(Param::Var(Var::ProfileOption("compression-level")))
        );
        let e = Param::check(&opt, kinds::lookup("trivy:db").unwrap(), ForEach::Profile).unwrap_err();
        assert!(e.contains("unknown variable {profile.compression-level}"), "{e}");
    }

    #[test]
    fn every_builtin_rule_parses_for_its_kind() {
        for k in kinds::KINDS {
            let b = k.rule();
            let rule = parse(Path::new(b.path), b.text).unwrap_or_else(|e| panic!("{}: {e}", k.name()));
            assert_eq!(rule.kind, k.name(), "{}", b.path);
            assert_eq!(rule.sha256, Sha256::of(b.text.as_bytes()));
            assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join(b.path).is_file(), "{}", b.path);
        }
    }

    #[test]
    fn a_rule_for_an_unregistered_kind_is_refused() {
        let e = err("kind = \"json:cooked\"\nversion = 1\n[[step]]\nname = \"p\"\naction = \"parse-documents\"\nfor-each = \"shard\"\n");
        assert!(e.starts_with("rules/t.toml: kind \"json:cooked\" is not a registered kind"), "{e}");
    }
}
