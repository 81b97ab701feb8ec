//! export-center: reproducible, incremental, verifiable exports of security
//! evidence.
//!
//! Modules read as the pipeline: [`profile`] (workspace file) → [`rules`]
//! (step templates) → [`graph`] (expansion into a DAG) → [`key`] (step
//! keys) → [`cache`] (CAS, action cache, stat cache) → [`exec`] (ready
//! queue, driver, reasons) → [`actions`] (what steps do) using
//! [`sources`], [`adapters`] and [`formats`]; [`kinds`] are the profile
//! kinds, one folder each (options, rule, own actions, verify hook), the
//! only place a kind is named; [`ops`] are the shared operations and
//! [`cli`] a thin shell over them. Imports flow one way.

pub mod actions;
pub mod adapters;
pub mod bounded;
pub mod cache;
pub mod canon;
pub mod cli;
pub mod code;
pub mod crashpoint;
pub mod digest;
pub mod error;
pub mod exec;
pub mod formats;
pub mod graph;
pub mod key;
pub mod kinds;
pub mod ops;
pub mod policy;
pub mod profile;
pub mod registry;
pub mod rules;
pub mod select;
pub mod shown;
pub mod signing;
pub mod sources;
pub mod timefmt;
pub mod versions;

pub use error::Error;

#[cfg(test)]
mod layering {
    //! Imports flow one way: a module may use only modules of a lower layer.

    const LAYERS: &[(&str, u32)] = &[
        ("digest", 0),
        ("canon", 0),
        ("timefmt", 0),
        ("crashpoint", 0),
        ("shown", 0),
        ("bounded", 0),
        ("select", 1),
        ("key", 1),
        ("code", 1),
        ("formats", 1),
        ("versions", 1),
        ("signing", 2),
        ("registry", 2),
        ("policy", 2),
        ("adapters", 2),
        ("profile", 3),
        ("cache", 3),
        ("sources", 4),
        ("actions", 5),
        ("kinds", 6),
        ("rules", 7),
        ("graph", 8),
        ("exec", 9),
        ("error", 10),
        ("ops", 11),
        ("cli", 12),
    ];

    fn rank(m: &str) -> Option<u32> {
        LAYERS.iter().find(|(n, _)| *n == m).map(|(_, r)| *r)
    }

    #[test]
    fn imports_go_down_the_pipeline() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut bad = Vec::new();
        for e in walkdir::WalkDir::new(&src) {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(&src).unwrap().to_string_lossy().into_owned();
            if !rel.ends_with(".rs") || rel == "lib.rs" || rel == "main.rs" {
                continue;
            }
            let module = rel.split(['/', '.']).next().unwrap().to_string();
            let own = rank(&module).unwrap_or_else(|| panic!("src/{rel}: module {module} has no layer"));
            let text = std::fs::read_to_string(e.path()).unwrap();
            for (i, _) in text.match_indices("crate::") {
                let used: String =
                    text[i + 7..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if used == module || used.is_empty() {
                    continue;
                }
                match rank(&used) {
                    Some(r) if r < own => {}
                    Some(_) => bad.push(format!("src/{rel} ({module}) uses crate::{used}")),
                    None => {}
                }
            }
        }
        assert!(bad.is_empty(), "imports against the pipeline:\n{}", bad.join("\n"));
    }

    /// Environment variables are read once, at the CLI edge: the library
    /// (what a service would call) reads none, but for the test-only crash
    /// hook and the signing key a profile names by `key-env`.
    #[test]
    fn the_library_reads_no_environment_variable() {
        const ALLOWED: &[&str] = &["crashpoint.rs", "signing/keys.rs"];
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut bad = Vec::new();
        for e in walkdir::WalkDir::new(&src) {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(&src).unwrap().to_string_lossy().into_owned();
            if !rel.ends_with(".rs") || rel == "lib.rs" || rel == "main.rs" || rel.starts_with("cli/") {
                continue;
            }
            if ALLOWED.contains(&rel.as_str()) {
                continue;
            }
            let text = std::fs::read_to_string(e.path()).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap();
            for pat in ["env::var(", "env::var_os(", "env::vars("] {
                if code.contains(pat) {
                    bad.push(format!("src/{rel} calls {pat}"));
                }
            }
        }
        assert!(bad.is_empty(), "environment read outside the CLI edge:\n{}", bad.join("\n"));
    }
}
