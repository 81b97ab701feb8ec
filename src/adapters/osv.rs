//! OSV advisories (<https://ossf.github.io/osv-schema/>).
//!
//! Required: `id` and `modified` (strings; `modified` RFC 3339). Checked
//! when present: `aliases` (strings), `withdrawn` (string), `affected[]`
//! with `package {ecosystem, name}` strings, `ranges[]` with a `type` and an
//! `events` array of objects, `versions` strings. Unknown fields are kept.

use serde_json::Value;

use super::At;
use crate::select::RecordMeta;
use crate::timefmt;

pub fn meta(doc: &Value) -> Result<RecordMeta, String> {
    let root = At::root(doc);
    let id = root.req_str("id")?.to_string();
    let modified = root.req_str("modified")?;
    if timefmt::parse(modified).is_none() {
        return Err(format!("$.modified: {modified:?} is not an RFC 3339 time"));
    }
    root.opt_str("withdrawn")?;
    root.opt_str("published")?;
    let mut aliases = Vec::new();
    for a in root.opt_arr("aliases")? {
        aliases.push(a.str()?.to_string());
    }
    let mut ecosystems: Vec<String> = Vec::new();
    let mut packages: Vec<String> = Vec::new();
    for aff in root.opt_arr("affected")? {
        aff.obj()?;
        if let Some(pkg) = aff.get("package") {
            pkg.obj()?;
            let eco = pkg.req_str("ecosystem")?;
            let name = pkg.req_str("name")?;
            // "Debian:12" style ecosystems select on their base name.
            let base = eco.split(':').next().unwrap_or(eco).to_string();
            if !ecosystems.contains(&base) {
                ecosystems.push(base);
            }
            if !packages.iter().any(|p| p == name) {
                packages.push(name.to_string());
            }
        }
        for range in aff.opt_arr("ranges")? {
            range.obj()?;
            range.req_str("type")?;
            for ev in range.req("events")?.arr()? {
                ev.obj()?;
            }
        }
        for v in aff.opt_arr("versions")? {
            v.str()?;
        }
    }
    Ok(RecordMeta { id, aliases, ecosystems, packages, modified: Some(modified.to_string()) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn extracts_meta() {
        let d = json!({"id":"GO-1","modified":"2024-01-01T00:00:00Z","aliases":["CVE-1"],
            "affected":[{"package":{"ecosystem":"Go","name":"stdlib"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]});
        let m = meta(&d).unwrap();
        assert_eq!(m.ecosystems, vec!["Go"]);
        assert_eq!(m.packages, vec!["stdlib"]);
        assert_eq!(m.aliases, vec!["CVE-1"]);
    }

    #[test]
    fn wrong_schema_names_the_path() {
        assert_eq!(meta(&json!({"id": 42})).unwrap_err(), "$.id: expected a string, found a number");
        assert_eq!(meta(&json!({"id": "X"})).unwrap_err(), "$: missing required field \"modified\"");
        let d = json!({"id":"X","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"name":"a"}}]});
        assert_eq!(meta(&d).unwrap_err(), "$.affected[0].package: missing required field \"ecosystem\"");
    }
}
