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
//! interpolated. Variables: `profile.name|kind|select|sources|compression-level`,
//! `profile.signing` (the public key, or null when unsigned),
//! `profile.next-update-hours`, `shard.data-source` (`{ID, Name, URL}`),
//! `workspace.source-date-epoch`, `shard.source|index|format|type|path|origin`
//! (`path` as declared, `origin` `dir` or `archive`), `tool.version`,
//! `rule.version` and `rule.actions` (`{action id: version}` of the rule).
//!
//! The last step must run once per profile with an action that publishes;
//! the files of `out/<profile>/` are the published outputs of every
//! publishing step of the profile. A rule that publishes nothing is an
//! error, not a silent empty export.
//!
//! Built-in rules ship inside the binary; a workspace `rules/` folder adds
//! or replaces them by kind. Unknown actions or outputs, dangling
//! references and cycles are errors naming the rule file and step.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use petgraph::graph::DiGraph;
use serde::Deserialize;

use crate::actions;

const BUILTIN: &[(&str, &str)] = &[
    ("rules/json-raw.toml", include_str!("../rules/json-raw.toml")),
    ("rules/trivy-db.toml", include_str!("../rules/trivy-db.toml")),
    ("rules/trivy-java-db.toml", include_str!("../rules/trivy-java-db.toml")),
];

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
    pub params: serde_json::Value,
    /// True when nothing profile-specific reaches the step: its instances
    /// are shared by every profile reading the same shard.
    pub shared: bool,
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub path: PathBuf,
    pub kind: String,
    pub version: u32,
    pub description: String,
    /// In dependency order.
    pub steps: Vec<StepTemplate>,
}

/// All rules by kind.
pub fn load(workspace: &Path) -> Result<BTreeMap<String, Rule>, RuleError> {
    let mut rules = BTreeMap::new();
    for (path, text) in BUILTIN {
        let r = parse(Path::new(path), text)?;
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
            let r = parse(&path, &text)?;
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
        let action = actions::lookup(&s.action).ok_or_else(|| {
            invalid(
                &s.name,
                format!("unknown action {:?} (known: {})", s.action, actions::names().join(", ")),
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
                    let up_action = actions::lookup(&up.action);
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
        check_vars(&params, for_each).map_err(|m| invalid(&s.name, m))?;
        templates.push(StepTemplate {
            name: s.name.clone(),
            action,
            for_each,
            inputs,
            shared: !params.to_string().contains("{profile.") && for_each == ForEach::Shard,
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
        kind: raw.kind,
        version: raw.version,
        description: raw.description,
        steps: sorted,
    })
}

const VARS: &[&str] = &[
    "profile.name",
    "profile.kind",
    "profile.select",
    "profile.sources",
    "profile.compression-level",
    "profile.signing",
    "profile.next-update-hours",
    "workspace.source-date-epoch",
    "shard.source",
    "shard.index",
    "shard.format",
    "shard.type",
    "shard.path",
    "shard.origin",
    "shard.data-source",
    "tool.version",
    "rule.version",
    "rule.actions",
];

fn check_vars(v: &serde_json::Value, for_each: ForEach) -> Result<(), String> {
    match v {
        serde_json::Value::String(s) => {
            let mut rest = s.as_str();
            while let Some(start) = rest.find('{') {
                let end = rest[start..].find('}').ok_or_else(|| format!("unclosed '{{' in {s:?}"))? + start;
                let var = &rest[start + 1..end];
                if !VARS.contains(&var) {
                    return Err(format!("unknown variable {{{var}}} (known: {})", VARS.join(", ")));
                }
                if var.starts_with("shard.") && for_each != ForEach::Shard {
                    return Err(format!("{{{var}}} needs for-each = \"shard\""));
                }
                rest = &rest[end + 1..];
            }
            Ok(())
        }
        serde_json::Value::Array(a) => a.iter().try_for_each(|x| check_vars(x, for_each)),
        serde_json::Value::Object(m) => m.values().try_for_each(|x| check_vars(x, for_each)),
        _ => Ok(()),
    }
}

/// Substitute variables in a parameter template.
pub fn instantiate(v: &serde_json::Value, vars: &BTreeMap<&str, serde_json::Value>) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => {
            if let Some(var) = s.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
                if !var.contains('{') {
                    if let Some(val) = vars.get(var) {
                        return val.clone();
                    }
                }
            }
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(start) = rest.find('{') {
                let end = rest[start..].find('}').map(|e| e + start).unwrap_or(rest.len() - 1);
                out.push_str(&rest[..start]);
                match vars.get(&rest[start + 1..end]) {
                    Some(Value::String(x)) => out.push_str(x),
                    Some(other) => out.push_str(&other.to_string()),
                    None => out.push_str(&rest[start..=end]),
                }
                rest = &rest[end + 1..];
            }
            out.push_str(rest);
            Value::String(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| instantiate(x, vars)).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, x)| (k.clone(), instantiate(x, vars))).collect()),
        other => other.clone(),
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
        let r = parse(Path::new("rules/json-raw.toml"), BUILTIN[0].1).unwrap();
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
             params = {{ member = \"m\", level = 3 }}\n[[step]]\nname = \"b\"\naction = \"trivy-convert\"\nfor-each = \"shard\"\ninputs = {{ records = \"a.frame\" }}\n\
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
        let mut vars = BTreeMap::new();
        vars.insert("shard.index", serde_json::json!("0007"));
        vars.insert("profile.select", serde_json::json!({"ids": ["X"]}));
        let t = serde_json::json!({"m": "a/{shard.index}.jsonl", "s": "{profile.select}"});
        assert_eq!(instantiate(&t, &vars), serde_json::json!({"m": "a/0007.jsonl", "s": {"ids": ["X"]}}));
    }
}
