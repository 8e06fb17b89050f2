//! A local cache of a remote repository's objects that never change: index objects (named by
//! the SHA-256 of their bytes). A process opening a repository on S3, Azure or GCS lists
//! `index/` and fetches only the index objects no process on this host fetched before; the
//! rest come from here, each checked against its name before it is used (a damaged or
//! tampered cache entry is dropped and fetched again).
//!
//! Like restic's cache it lives outside the repository, in `$LIGHTRAG_BACKUP_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/lightrag-backup`, else `~/.cache/lightrag-backup`, one folder per
//! repository id (`LIGHTRAG_BACKUP_CACHE=off` turns it off). It is safe to delete at any time;
//! processes share it (entries are written to a temporary name and renamed into place); it is
//! kept under `LIGHTRAG_BACKUP_CACHE_MAX_MB` (default 1024) by dropping the entries read least
//! recently; entries of objects a listing no longer shows are dropped as they are seen. A
//! local repository is not cached: its objects are local files already.

use crate::backend::Backend;
use bytes::Bytes;
use std::collections::HashSet;
use std::path::PathBuf;

/// The default bound of one repository's cache.
const DEFAULT_MAX_BYTES: u64 = 1 << 30;

/// The cache of one repository (see the module documentation).
#[derive(Debug)]
pub struct ObjectCache {
    dir: PathBuf,
    max_bytes: u64,
    /// The bytes the cache holds, as far as this process knows (read once, then counted as
    /// entries are written): the folder is scanned again only when it is over its bound.
    held: std::sync::Mutex<Option<u64>>,
}

impl ObjectCache {
    /// The cache of the repository `repository_id` on `backend`, or `None` for a local
    /// repository, when turned off, or when no cache folder can be made.
    pub fn for_repository(backend: &Backend, repository_id: &str) -> Option<ObjectCache> {
        if !backend.is_remote() {
            return None;
        }
        if std::env::var("LIGHTRAG_BACKUP_CACHE")
            .is_ok_and(|v| matches!(v.trim(), "off" | "0" | "false" | "no"))
        {
            return None;
        }
        let root = std::env::var_os("LIGHTRAG_BACKUP_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("lightrag-backup"))
            })
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/lightrag-backup"))
            })?;
        // A repository id is a UUID; anything else is not a folder name here.
        if repository_id.is_empty()
            || !repository_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return None;
        }
        let max_bytes = std::env::var("LIGHTRAG_BACKUP_CACHE_MAX_MB")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(DEFAULT_MAX_BYTES, |mb| mb.saturating_mul(1 << 20));
        ObjectCache::at(root.join(repository_id), max_bytes)
    }

    /// A cache in `dir` (made, 0700, when missing) bounded to `max_bytes`.
    pub fn at(dir: PathBuf, max_bytes: u64) -> Option<ObjectCache> {
        use std::os::unix::fs::DirBuilderExt;
        let index = dir.join("index");
        if let Err(error) = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&index)
        {
            log::warn!(
                "no local cache for this repository ({}: {error}); every object is fetched",
                index.display()
            );
            return None;
        }
        Some(ObjectCache {
            dir,
            max_bytes,
            held: std::sync::Mutex::new(None),
        })
    }

    /// Where the entry of index object `name` lives (`None` for a name that is not a hash).
    fn index_entry(&self, name: &str) -> Option<PathBuf> {
        (name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| self.dir.join("index").join(name))
    }

    /// The cached bytes of index object `name`, if any and whole (their SHA-256 is the name);
    /// a damaged entry is dropped.
    pub fn index_object(&self, name: &str) -> Option<Bytes> {
        let path = self.index_entry(name)?;
        let bytes = std::fs::read(&path).ok()?;
        if crate::format::ObjectId::of(&bytes).to_hex() != name {
            log::warn!(
                "cache entry {} is damaged: dropped, the object is fetched again",
                path.display()
            );
            let _ = std::fs::remove_file(&path);
            return None;
        }
        Some(Bytes::from(bytes))
    }

    /// Keep index object `name` (whose bytes were checked against it).
    pub fn keep_index_object(&self, name: &str, bytes: &[u8]) {
        let Some(path) = self.index_entry(name) else {
            return;
        };
        let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
        let written =
            std::fs::write(&temporary, bytes).and_then(|()| std::fs::rename(&temporary, &path));
        if let Err(error) = written {
            let _ = std::fs::remove_file(&temporary);
            log::debug!("cache entry {} not written: {error}", path.display());
            return;
        }
        let mut held = self.held.lock().unwrap();
        let total = match *held {
            Some(total) => total + bytes.len() as u64,
            None => self.entries().iter().map(|(_, len, _)| len).sum(),
        };
        *held = Some(if total > self.max_bytes {
            self.trim()
        } else {
            total
        });
    }

    /// Every entry: when it was last read (or written), its size, its path.
    fn entries(&self) -> Vec<(std::time::SystemTime, u64, PathBuf)> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("index")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                let used = meta.accessed().or_else(|_| meta.modified()).ok()?;
                Some((used, meta.len(), e.path()))
            })
            .collect()
    }

    /// Drop the entries of index objects that are not in `listed` (names): gone from the
    /// repository (a prune replaced them).
    pub fn forget_index_objects_but(&self, listed: &HashSet<String>) {
        let Ok(entries) = std::fs::read_dir(self.dir.join("index")) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.len() == 64 && !listed.contains(&name) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        *self.held.lock().unwrap() = None; // counted again at the next write
    }

    /// Bring the cache under its bound, to nine tenths of it (so that the next entries do not
    /// trim again at once): the entries read least recently go first. Returns what it holds.
    fn trim(&self) -> u64 {
        let mut files = self.entries();
        let mut total: u64 = files.iter().map(|(_, len, _)| len).sum();
        let goal = self.max_bytes / 10 * 9;
        files.sort();
        for (_, len, path) in files {
            if total <= goal {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= len;
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_checked_against_their_names_and_the_cache_stays_under_its_bound() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = ObjectCache::at(tmp.path().join("repo-id"), 10_000).unwrap();
        let bytes = vec![7u8; 4000];
        let name = crate::format::ObjectId::of(&bytes).to_hex();
        assert!(cache.index_object(&name).is_none());
        cache.keep_index_object(&name, &bytes);
        assert_eq!(cache.index_object(&name).as_deref(), Some(&bytes[..]));

        // A damaged entry is dropped, never used.
        let entry = tmp.path().join("repo-id/index").join(&name);
        std::fs::write(&entry, b"not the object").unwrap();
        assert!(cache.index_object(&name).is_none());
        assert!(!entry.exists());

        // Names that are not hashes are never paths.
        cache.keep_index_object("../escape", b"x");
        assert!(!tmp.path().join("repo-id/escape").exists());

        // Over its bound, the least recently used go.
        let names: Vec<String> = (0..4u8)
            .map(|n| {
                let bytes = vec![n; 4000];
                let name = crate::format::ObjectId::of(&bytes).to_hex();
                cache.keep_index_object(&name, &bytes);
                name
            })
            .collect();
        let kept: u64 = std::fs::read_dir(tmp.path().join("repo-id/index"))
            .unwrap()
            .flatten()
            .map(|e| e.metadata().unwrap().len())
            .sum();
        assert!(kept <= 10_000, "{kept}");
        assert!(cache.index_object(names.last().unwrap()).is_some());

        // Objects a listing no longer shows are dropped.
        cache.forget_index_objects_but(&HashSet::new());
        assert!(cache.index_object(names.last().unwrap()).is_none());
    }
}
