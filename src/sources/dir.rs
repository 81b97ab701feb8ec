//! Directory sources: walk, filter, stat-cache, digest.
//!
//! Refuses symbolic links and special files inside the tree (an export must
//! not depend on what a link points to), skips dot-folders. Files whose
//! stat matches the stat cache are not opened.

use std::os::unix::fs::FileTypeExt;

use rayon::prelude::*;

use super::{into_shards, tree_digest, DocEntry, Filter, Origin, Snapshot, SourceError};
use crate::cache::stat::StatKey;
use crate::cache::Cache;
use crate::digest::Sha256;
use crate::profile::SourceDef;

pub fn snapshot(def: &SourceDef, cache: &Cache) -> Result<Snapshot, SourceError> {
    let filter = Filter::new(def);
    let scope = format!("dir\0{}\0{}", def.name, def.path.display());
    let table = cache.load_stats(&scope);
    let refuse = |path: String, reason: &str| SourceError::Refused {
        source_name: def.name.clone(),
        path,
        reason: reason.to_string(),
    };
    let mut found: Vec<(String, std::path::PathBuf, StatKey)> = Vec::new();
    let walker =
        walkdir::WalkDir::new(&def.path).follow_links(false).sort_by_file_name().into_iter().filter_entry(
            |e| {
                e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.') || e.file_type().is_file()
            },
        );
    for entry in walker {
        let entry = entry.map_err(|e| SourceError::Io {
            source_name: def.name.clone(),
            path: e.path().map(|p| p.display().to_string()).unwrap_or_default(),
            err: e.into_io_error().unwrap_or_else(|| std::io::Error::other("walk error")),
        })?;
        if entry.depth() == 0 {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(&def.path)
            .expect("walkdir yields paths under its root")
            .to_str()
            .ok_or_else(|| refuse(entry.path().display().to_string(), "path is not UTF-8"))?
            .to_string();
        let ft = entry.file_type();
        if ft.is_dir() {
            continue;
        }
        if ft.is_symlink() {
            if filter.accepts(&rel) {
                return Err(refuse(
                    entry.path().display().to_string(),
                    "is a symbolic link; sources must hold regular files",
                ));
            }
            continue;
        }
        if ft.is_block_device() || ft.is_char_device() || ft.is_fifo() || ft.is_socket() {
            return Err(refuse(entry.path().display().to_string(), "is a special file"));
        }
        if !filter.accepts(&rel) {
            continue;
        }
        let md = entry.metadata().map_err(|e| SourceError::Io {
            source_name: def.name.clone(),
            path: entry.path().display().to_string(),
            err: e.into_io_error().unwrap_or_else(|| std::io::Error::other("stat error")),
        })?;
        found.push((rel, entry.path().to_path_buf(), StatKey::of(&md)));
    }
    let hashed: Vec<Result<(DocEntry, StatKey, bool), SourceError>> = found
        .into_par_iter()
        .map(|(rel, abs, key)| {
            if let Some(d) = table.get(&rel, &key) {
                return Ok((DocEntry { path: rel, sha256: d, size: key.size }, key, false));
            }
            let bytes = std::fs::read(&abs).map_err(|err| SourceError::Io {
                source_name: def.name.clone(),
                path: abs.display().to_string(),
                err,
            })?;
            Ok((DocEntry { path: rel, sha256: Sha256::of(&bytes), size: bytes.len() as u64 }, key, true))
        })
        .collect();
    let mut docs = Vec::with_capacity(hashed.len());
    let mut stats = Vec::with_capacity(hashed.len());
    let mut files_read = 0;
    for r in hashed {
        let (doc, key, read) = r?;
        files_read += read as usize;
        stats.push((doc.path.clone(), key, doc.sha256));
        docs.push(doc);
    }
    if files_read > 0 || stats.len() != table.len() {
        cache.save_stats(&scope, &stats)?;
    }
    let documents = docs.len();
    let shards = into_shards(docs, def.shards);
    Ok(Snapshot {
        def: def.clone(),
        origin: Origin::Dir(def.path.clone()),
        tree: tree_digest(&shards),
        shards,
        documents,
        files_read,
    })
}
