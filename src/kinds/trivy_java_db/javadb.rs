//! The Trivy Java DB (docs/FORMATS.md §7): `index-jars` v1 per shard of a
//! `maven-repo` source, `assemble-java-db` v1 per profile.
//!
//! `index-jars`: each jar at `group/path/artifact/version/artifact-version.jar`
//! (or `.aar`) becomes a row `group \t artifact \t version \t sha1 \t type`
//! (SHA-1 of the whole file, hex in the row). Jars with a classifier
//! (`-sources.jar`, `-tests.jar`) are not artifacts Trivy looks up and are
//! not indexed; a path that is not Maven layout is rejected, naming the
//! file, like any bad document.
//!
//! `assemble-java-db`: `trivy-java.db` (SQLite, Trivy's schema, `sha1` a
//! 20-byte BLOB), `metadata.json` (`Version` 1), packaged as
//! `javadb.tar.gz` with its OCI layout (tag `1`). Artifacts get ids in
//! (group, artifact) order and rows are inserted in one transaction in
//! sorted order, so the same repository gives the same bytes (with the
//! SQLite version pinned by the bundled build). A jar whose SHA-1 was
//! already indexed (a copy at two coordinates) keeps the first coordinate.

use serde_json::Value;

use crate::actions::dbexport::{self, DbFiles};
use crate::actions::merge::{pack_rows, Merge};
use crate::actions::{Action, ActionCx, ActionError};
use crate::canon;
use crate::formats::manifest::Rejected;
use crate::formats::oci;

#[derive(Debug)]
pub struct IndexJars;

#[derive(Debug)]
pub struct AssembleJavaDb;

/// (group, artifact, version, archive type) of a repository path, `None`
/// for a classifier jar, or why the path is not Maven layout.
pub fn maven_coordinates(path: &str) -> Result<Option<(String, String, String, &'static str)>, String> {
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() < 4 {
        return Err("not group/.../artifact/version/artifact-version.jar".into());
    }
    let n = parts.len();
    let (file, version, artifact) = (parts[n - 1], parts[n - 2], parts[n - 3]);
    let group = parts[..n - 3].join(".");
    let (stem, kind) = if let Some(s) = file.strip_suffix(".jar") {
        (s, "jar")
    } else if let Some(s) = file.strip_suffix(".aar") {
        (s, "aar")
    } else {
        return Err("not a .jar or .aar".into());
    };
    let base = format!("{artifact}-{version}");
    if stem == base {
        if [&group, artifact, version]
            .iter()
            .any(|s| s.is_empty() || s.chars().any(|c| c.is_control() || c.is_whitespace()))
        {
            return Err("empty or blank group, artifact or version".into());
        }
        return Ok(Some((group, artifact.to_string(), version.to_string(), kind)));
    }
    if stem.starts_with(&format!("{base}-")) {
        return Ok(None);
    }
    Err(format!("file name {file:?} is not {base}.{kind} (artifact-version)"))
}

impl Action for IndexJars {
    fn id(&self) -> &'static str {
        "index-jars"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [&'static str] {
        &["docs"]
    }
    fn required_params(&self) -> &'static [&'static str] {
        &["source", "path", "origin"]
    }
    fn code(&self) -> &'static [&'static str] {
        &[
            file!(),
            "src/actions/mod.rs",
            "src/canon.rs",
            "src/digest.rs",
            "src/adapters/",
            "src/select.rs",
            "src/shown.rs",
            "src/actions/dbexport.rs",
            "src/actions/merge.rs",
            "src/actions/parse.rs",
            "src/sources/",
            "src/timefmt.rs",
            "src/formats/manifest.rs",
            "src/formats/oci.rs",
            "src/formats/tar.rs",
            "src/formats/gzip.rs",
        ]
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["rows", "rejected"]
    }
    fn run(&self, cx: &ActionCx<'_>) -> Result<(), ActionError> {
        use sha1::Digest as _;
        let source = cx.param_str("source")?;
        let declared = cx.param_str("path")?;
        let origin = cx.param_str("origin")?;
        let (shard, reader) = cx.shard("docs")?;
        let mut rows: Vec<String> = Vec::new();
        let mut rejected = Vec::new();
        for doc in &shard.docs {
            match maven_coordinates(&doc.path) {
                Ok(Some((g, a, v, kind))) => {
                    let bytes = reader.read(source, doc)?;
                    let sha1 = hex::encode(sha1::Sha1::digest(&bytes));
                    rows.push(format!("{g}\t{a}\t{v}\t{sha1}\t{kind}\n"));
                }
                Ok(None) => {}
                Err(reason) => {
                    let shown = crate::actions::shown_path(declared, origin, &doc.path);
                    rejected.push(Rejected { source: source.to_string(), path: shown, reason });
                }
            }
        }
        rows.sort();
        cx.write("rows", &pack_rows(rows.concat().as_bytes())?)?;
        rejected.sort();
        cx.write("rejected", &canon::to_vec(&serde_json::to_value(&rejected).expect("serialisable")))?;
        Ok(())
    }
}

fn sql(e: rusqlite::Error) -> ActionError {
    ActionError::Failed(format!("trivy-java.db: {e}"))
}

const SCHEMA: &str = "
CREATE TABLE artifacts(id INTEGER PRIMARY KEY, group_id TEXT, artifact_id TEXT);
CREATE TABLE indices(artifact_id INTEGER, version TEXT, sha1 BLOB, archive_type TEXT,
                     foreign key (artifact_id) references artifacts(id));
CREATE UNIQUE INDEX artifacts_idx ON artifacts(artifact_id, group_id);
CREATE INDEX indices_artifact_idx ON indices(artifact_id);
CREATE UNIQUE INDEX indices_sha1_idx ON indices(sha1);
";

impl Action for AssembleJavaDb {
    fn id(&self) -> &'static str {
        "assemble-java-db"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [&'static str] {
        &["rows", "rejected"]
    }
    fn required_params(&self) -> &'static [&'static str] {
        &["profile", "kind", "epoch", "next-update-hours", "tool"]
    }
    fn code(&self) -> &'static [&'static str] {
        &[
            file!(),
            "src/actions/mod.rs",
            "src/canon.rs",
            "src/digest.rs",
            "src/sources/",
            "src/adapters/",
            "src/select.rs",
            "src/shown.rs",
            "src/actions/dbexport.rs",
            "src/actions/merge.rs",
            "src/actions/parse.rs",
            "src/timefmt.rs",
            "src/formats/manifest.rs",
            "src/formats/oci.rs",
            "src/formats/tar.rs",
            "src/formats/gzip.rs",
        ]
    }
    fn outputs(&self) -> &'static [&'static str] {
        dbexport::OUTPUTS
    }
    fn publishes(&self) -> bool {
        true
    }
    fn published_name(&self, output: &str, _params: &Value) -> Option<String> {
        dbexport::published_name(output, "javadb.tar.gz")
    }
    fn names_output(&self) -> Option<&'static str> {
        Some("names")
    }
    fn run(&self, cx: &ActionCx<'_>) -> Result<(), ActionError> {
        let epoch = cx.param_i64("epoch")?;
        let hours = cx.param_i64("next-update-hours")?;
        let db_path = cx.out.join("trivy-java.db");
        let mut conn = rusqlite::Connection::open(&db_path).map_err(sql)?;
        conn.execute_batch("PRAGMA page_size=4096; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA locking_mode=EXCLUSIVE;")
            .map_err(sql)?;
        let tx = conn.transaction().map_err(sql)?;
        tx.execute_batch(SCHEMA).map_err(sql)?;
        let mut jars = 0u64;
        {
            let mut add_artifact = tx
                .prepare("INSERT INTO artifacts(id, group_id, artifact_id) VALUES (?1, ?2, ?3)")
                .map_err(sql)?;
            let mut add_index = tx
                .prepare("INSERT OR IGNORE INTO indices(artifact_id, version, sha1, archive_type) VALUES (?1, ?2, ?3, ?4)")
                .map_err(sql)?;
            let mut merge = Merge::open(cx.cache, &cx.blobs("rows"), 3)?;
            let mut current: Option<(String, String)> = None;
            let mut id = 0i64;
            while let Some(line) = merge.next_line()? {
                let text = String::from_utf8(line).map_err(|e| ActionError::Failed(e.to_string()))?;
                let f: Vec<&str> = text.split('\t').collect();
                let [g, a, v, sha, kind] = f[..] else {
                    return Err(ActionError::Failed(format!("malformed jar row {text:?}")));
                };
                let ga = (g.to_string(), a.to_string());
                if current.as_ref() != Some(&ga) {
                    id += 1;
                    add_artifact.execute(rusqlite::params![id, g, a]).map_err(sql)?;
                    current = Some(ga);
                }
                let sha1 = hex::decode(sha).map_err(|e| ActionError::Failed(format!("sha1 {sha:?}: {e}")))?;
                jars += add_index.execute(rusqlite::params![id, v, sha1, kind]).map_err(sql)? as u64;
            }
        }
        tx.commit().map_err(sql)?;
        conn.close().map_err(|(_, e)| sql(e))?;
        let meta_path = cx.out.join("metadata.json");
        std::fs::write(&meta_path, dbexport::metadata(1, epoch, hours))
            .map_err(|e| ActionError::io(&meta_path, e))?;
        dbexport::package(
            cx,
            DbFiles {
                archive: "javadb.tar.gz",
                layer_media_type: oci::TRIVY_JAVA_DB_LAYER,
                tag: "1",
                members: vec![("trivy-java.db", db_path, jars), ("metadata.json", meta_path, 1)],
                warnings: Vec::new(),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maven_paths() {
        assert_eq!(
            maven_coordinates("org/apache/commons/commons-lang3/3.12.0/commons-lang3-3.12.0.jar").unwrap(),
            Some(("org.apache.commons".into(), "commons-lang3".into(), "3.12.0".into(), "jar"))
        );
        assert_eq!(maven_coordinates("g/a/1.0/a-1.0-sources.jar").unwrap(), None);
        assert!(maven_coordinates("a/1.0/a-1.0.jar").is_err());
        assert!(maven_coordinates("g/a/1.0/b-1.0.jar").unwrap_err().contains("artifact-version"));
    }
}
