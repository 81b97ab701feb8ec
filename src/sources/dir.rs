//! Directory sources: walk, filter, stat-cache, digest.
//!
//! The walk is parallel over folders (rayon) and stats each entry relative
//! to its folder's descriptor (`DirEntry::metadata` is `statx(dirfd, name)`
//! on Linux), so a no-op build costs about what `find -printf '%s %T@'`
//! does. The sorted listing is merged with the sorted stat table in one
//! pass; files whose stat matches are not opened.
//!
//! Refuses symbolic links and special files inside the tree (an export must
//! not depend on what a link points to), skips dot-folders.

use std::path::Path;

use rayon::prelude::*;

use super::{into_shards, tree_digest, DocEntry, Filter, Origin, Snapshot, SourceError};
use crate::cache::stat::StatKey;
use crate::cache::Cache;
use crate::digest::Sha256;
use crate::profile::SourceDef;

struct Found {
    rel: String,
    key: StatKey,
}

struct Walk<'a> {
    def: &'a SourceDef,
    filter: Filter,
}

impl Walk<'_> {
    fn refuse(&self, path: &Path, reason: &str) -> SourceError {
        SourceError::Refused {
            source_name: self.def.name.clone(),
            path: path.display().to_string(),
            reason: reason.into(),
        }
    }

    fn io(&self, path: &Path, err: std::io::Error) -> SourceError {
        SourceError::Io { source_name: self.def.name.clone(), path: path.display().to_string(), err }
    }

    /// Files under `abs` (whose source-relative path is `rel`, "" for the root).
    fn dir(&self, abs: &Path, rel: &str) -> Result<Vec<Found>, SourceError> {
        let read = std::fs::read_dir(abs).map_err(|e| self.io(abs, e))?;
        let mut files = Vec::new();
        let mut subdirs = Vec::new();
        for entry in read {
            let entry = entry.map_err(|e| self.io(abs, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                tracing::warn!(
                    "source {}: skipping {} (name is not UTF-8)",
                    self.def.name,
                    entry.path().display()
                );
                continue;
            };
            let child = if rel.is_empty() { name.to_string() } else { format!("{rel}/{name}") };
            let ft = entry.file_type().map_err(|e| self.io(&entry.path(), e))?;
            if ft.is_dir() {
                if !name.starts_with('.') {
                    subdirs.push((entry.path(), child));
                }
            } else if ft.is_symlink() {
                // a link to a folder could hold documents: refuse it as well
                let to_dir = std::fs::metadata(entry.path()).is_ok_and(|m| m.is_dir());
                if self.filter.accepts(&child) || to_dir {
                    return Err(
                        self.refuse(&entry.path(), "is a symbolic link; sources must hold regular files")
                    );
                }
            } else if !self.filter.accepts(&child) {
                continue;
            } else if !ft.is_file() {
                return Err(self.refuse(&entry.path(), "is a special file"));
            } else {
                let md = entry.metadata().map_err(|e| self.io(&entry.path(), e))?;
                files.push(Found { rel: child, key: StatKey::of(&md) });
            }
        }
        let nested: Vec<Vec<Found>> =
            subdirs.par_iter().map(|(a, r)| self.dir(a, r)).collect::<Result<_, _>>()?;
        files.extend(nested.into_iter().flatten());
        Ok(files)
    }
}

pub fn snapshot(def: &SourceDef, cache: &Cache) -> Result<Snapshot, SourceError> {
    let walk = Walk { def, filter: Filter::new(def) };
    let taken_ns = crate::cache::stat::now_ns();
    let mut found = walk.dir(&def.path, "")?;
    found.par_sort_unstable_by(|a, b| a.rel.as_bytes().cmp(b.rel.as_bytes()));
    let scope = format!("dir\0{}\0{}", def.name, def.path.display());
    let table = cache.load_stats(&scope);
    let mut cursor = table.cursor();
    // one merge pass: Some(digest) for unchanged files, None for files to read
    let known: Vec<Option<Sha256>> = found.iter().map(|f| cursor.seek(&f.rel, &f.key)).collect();
    let hashed: Vec<Result<(Sha256, u64), SourceError>> = found
        .par_iter()
        .zip(known.par_iter())
        .map(|(f, k)| match k {
            Some(d) => Ok((*d, f.key.size)),
            None => {
                let abs = def.path.join(&f.rel);
                let bytes = std::fs::read(&abs).map_err(|e| walk.io(&abs, e))?;
                Ok((Sha256::of(&bytes), bytes.len() as u64))
            }
        })
        .collect();
    let files_read = known.iter().filter(|k| k.is_none()).count();
    let mut docs = Vec::with_capacity(found.len());
    for (f, h) in found.iter().zip(hashed) {
        let (sha256, size) = h?;
        docs.push(DocEntry { path: f.rel.clone(), sha256, size });
    }
    if files_read > 0 || docs.len() != table.len() {
        cache.save_stats(
            &scope,
            taken_ns,
            found.iter().zip(&docs).map(|(f, d)| (f.rel.as_str(), f.key, d.sha256)),
        )?;
    }
    drop(found);
    let documents = docs.len();
    if documents == 0 {
        tracing::warn!(
            "source {}: no document under {} matches the include/exclude globs",
            def.name,
            def.path.display()
        );
    }
    let tree = tree_digest(cache, &scope, &docs);
    let shards = into_shards(docs, def.shards.unwrap_or_else(|| crate::profile::auto_shards(documents)));
    Ok(Snapshot {
        def: def.clone(),
        origin: Origin::Dir(def.path.clone()),
        tree,
        shards,
        documents,
        files_read,
    })
}
