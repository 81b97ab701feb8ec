//! Directory sources: walk, filter, stat-cache, digest.
//!
//! The walk is parallel over folders (rayon) and stats each entry relative
//! to its folder's descriptor (`DirEntry::metadata` is `statx(dirfd, name)`
//! on Linux), so a no-op build costs about what `find -printf '%s %T@'`
//! does. The sorted listing is merged with the sorted stat table in one
//! pass; files whose stat matches are not opened.
//!
//! The walk is iterative (a work-list of folders, one level at a time, each
//! level listed in parallel), so nesting depth costs heap, not stack; a
//! path too long for the OS is refused naming it.
//!
//! Refuses symbolic links and special files inside the tree (an export must
//! not depend on what a link points to), and documents over the source's
//! `max-document-bytes` by their stat size, before reading them; skips
//! dot-folders.

use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{into_shards, tree_digest, DocEntry, Filter, Origin, Snapshot, SourceError};
use crate::cache::stat::{Lookup, StatKey};
use crate::cache::Cache;
use crate::digest::Sha256;
use crate::profile::SourceDef;
use crate::shown;

struct Found {
    rel: String,
    key: StatKey,
}

/// A folder to list: its absolute path and its source-relative path.
type Folder = (PathBuf, String);

struct Walk<'a> {
    def: &'a SourceDef,
    filter: Filter,
}

impl Walk<'_> {
    fn refuse(&self, path: &Path, reason: &str) -> SourceError {
        SourceError::Refused {
            source_name: self.def.name.clone(),
            path: shown::path(path),
            reason: reason.into(),
        }
    }

    fn io(&self, path: &Path, err: std::io::Error) -> SourceError {
        if err.raw_os_error() == Some(libc::ENAMETOOLONG) {
            return self.refuse(path, "path too long for the operating system (folders nested too deep)");
        }
        SourceError::Io { source_name: self.def.name.clone(), path: shown::path(path), err }
    }

    /// Every file under the root: folders are listed a level at a time,
    /// each level in parallel, so depth needs no stack.
    fn walk(&self) -> Result<Vec<Found>, SourceError> {
        let mut files = Vec::new();
        let mut level: Vec<Folder> = vec![(self.def.path.clone(), String::new())];
        while !level.is_empty() {
            let listed: Vec<(Vec<Found>, Vec<Folder>)> =
                level.par_iter().map(|(a, r)| self.dir(a, r)).collect::<Result<_, _>>()?;
            level = Vec::new();
            for (found, subdirs) in listed {
                files.extend(found);
                level.extend(subdirs);
            }
        }
        Ok(files)
    }

    /// Files directly in `abs` (whose source-relative path is `rel`, "" for
    /// the root), and its sub-folders to list next.
    fn dir(&self, abs: &Path, rel: &str) -> Result<(Vec<Found>, Vec<Folder>), SourceError> {
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
                    shown::path(&entry.path())
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
                if md.len() > self.def.limits.max_document_bytes {
                    return Err(super::too_big(self.def, shown::path(&entry.path()), md.len()));
                }
                files.push(Found { rel: child, key: StatKey::of(&md) });
            }
        }
        Ok((files, subdirs))
    }

    /// The SHA-256 and size of a listed file: opened without following
    /// links or blocking, checked to still be a regular file within the
    /// limit, read up to the limit.
    fn hash(&self, abs: &Path) -> Result<(Sha256, u64), SourceError> {
        let max = self.def.limits.max_document_bytes;
        let (file, md) = match super::open_regular(abs, false).map_err(|e| self.io(abs, e))? {
            Ok(x) => x,
            Err(reason) => return Err(self.refuse(abs, reason)),
        };
        if md.len() > max {
            return Err(super::too_big(self.def, shown::path(abs), md.len()));
        }
        // streamed: a document (a `tree` source's file) may be large
        let mut sha = <sha2::Sha256 as sha2::Digest>::new();
        let mut r = file.take(max + 1);
        let mut buf = vec![0u8; (md.len() as usize).clamp(1, 1 << 16) + 1];
        let mut len = 0u64;
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.io(abs, e)),
            };
            sha2::Digest::update(&mut sha, &buf[..n]);
            len += n as u64;
        }
        if len > max {
            return Err(super::too_big(self.def, shown::path(abs), len));
        }
        Ok((Sha256(sha2::Digest::finalize(sha).into()), len))
    }
}

/// Most entries kept in a stat overlay before the table is rewritten.
fn overlay_limit(files: usize) -> usize {
    (files / 16).max(64)
}

pub fn snapshot(def: &SourceDef, cache: &Cache) -> Result<Snapshot, SourceError> {
    let walk = Walk { def, filter: Filter::new(def) };
    let taken_ns = crate::cache::stat::now_ns();
    let mut found = walk.walk()?;
    found.par_sort_unstable_by(|a, b| a.rel.as_bytes().cmp(b.rel.as_bytes()));
    let scope = format!("dir\0{}\0{}", def.name, def.path.display());
    let table = cache.load_stats(&scope);
    let mut cursor = table.cursor();
    // one merge pass: a digest for unchanged files, None for files to read
    let known: Vec<Lookup> = found.iter().map(|f| cursor.lookup(&f.rel, &f.key)).collect();
    let same_paths = cursor.absent() == 0 && found.len() == table.len();
    let hashed: Vec<Result<(Sha256, u64), SourceError>> = found
        .par_iter()
        .zip(known.par_iter())
        .map(|(f, k)| match k.digest {
            Some(d) => Ok((d, f.key.size)),
            None => walk.hash(&def.path.join(&f.rel)),
        })
        .collect();
    let files_read = known.iter().filter(|k| k.digest.is_none()).count();
    let mut docs = Vec::with_capacity(found.len());
    for (f, h) in found.iter().zip(hashed) {
        let (sha256, size) = h?;
        docs.push(DocEntry { path: f.rel.clone(), sha256, size });
    }
    // a few changed files of the same paths: only they are written (the
    // overlay); else the whole table
    let off_table: Vec<usize> = (0..found.len()).filter(|i| !known[*i].in_table).collect();
    let entry = |i: usize| (found[i].rel.as_str(), found[i].key, docs[i].sha256);
    if same_paths && files_read > 0 && off_table.len() <= overlay_limit(found.len()) {
        cache.save_stat_overlay(&scope, taken_ns, off_table.iter().map(|i| entry(*i)))?;
    } else if files_read > 0 || !same_paths {
        cache.save_stats(&scope, taken_ns, (0..found.len()).map(entry))?;
    }
    drop(found);
    let documents = docs.len();
    if documents == 0 {
        tracing::warn!(
            "source {}: no document under {} matches the include/exclude globs",
            def.name,
            shown::path(&def.path)
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
