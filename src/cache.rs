//! A local cache of a remote repository's objects that never change: index objects (named by
//! the SHA-256 of their bytes), snapshot manifests and recovery points (create-only, under a
//! fresh UUID). A
//! process opening a repository on S3, Azure or GCS lists `index/` and `snapshots/` and
//! fetches only the objects no process on this host fetched before; the rest come from here,
//! each checked before it is used (an index object against its name, a manifest against the
//! SHA-256 kept with it, then decoded and, when encrypted, authenticated as fetched ones
//! are): a damaged cache entry is dropped and fetched again. Only listed objects are read,
//! so a forgotten snapshot is never served from here.
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

/// The bytes of the cache entry at `path`, when it is a regular file (a link is not followed
/// out of the cache) of at most `limit` bytes: a longer one is no entry the cache wrote, and
/// is dropped unread.
fn read_entry(path: &std::path::Path, limit: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.file_type().is_file() || meta.len() > limit {
        log::warn!(
            "cache entry {} is no entry the cache wrote ({} bytes): dropped",
            path.display(),
            meta.len()
        );
        let _ = std::fs::remove_file(path);
        return None;
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // `take` holds the read to the bound even if the file grew since its length was read.
    std::fs::File::open(path)
        .ok()?
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    (bytes.len() as u64 <= limit).then_some(bytes)
}

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
            .and_then(|()| {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir.join("snapshots"))
            })
            .and_then(|()| {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir.join("recovery"))
            })
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
        let bytes = read_entry(&path, crate::backend::MAX_WHOLE_OBJECT)?;
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
        if let Some(path) = self.index_entry(name) {
            self.write_entry(&path, bytes);
        }
    }

    /// Write an entry under a temporary name and rename it into place (processes share the
    /// cache: a reader sees a whole entry or none); keep the cache under its bound.
    fn write_entry(&self, path: &std::path::Path, bytes: &[u8]) {
        use std::os::unix::fs::DirBuilderExt;
        if let Some(folder) = path.parent() {
            let _ = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(folder);
        }
        let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
        let written =
            std::fs::write(&temporary, bytes).and_then(|()| std::fs::rename(&temporary, path));
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
        let mut folders = vec![self.dir.join("index"), self.dir.join("recovery")];
        for nested in ["snapshots", "recovery"] {
            if let Ok(subfolders) = std::fs::read_dir(self.dir.join(nested)) {
                folders.extend(
                    subfolders
                        .flatten()
                        .map(|e| e.path())
                        .filter(|p| p.is_dir()),
                );
            }
        }
        folders
            .iter()
            .filter_map(|folder| std::fs::read_dir(folder).ok())
            .flat_map(|entries| entries.flatten())
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                let used = meta.accessed().or_else(|_| meta.modified()).ok()?;
                meta.is_file().then(|| (used, meta.len(), e.path()))
            })
            .collect()
    }

    /// Where the entry of manifest `graph_id`/`snapshot_id` lives (`None` unless both are
    /// plain names: a graph id and a UUID).
    fn manifest_entry(&self, graph_id: &str, snapshot_id: &str) -> Option<PathBuf> {
        (plain_name(graph_id) && plain_name(snapshot_id) && snapshot_id.len() == 36)
            .then(|| self.dir.join("snapshots").join(graph_id).join(snapshot_id))
    }

    /// The cached bytes of a manifest, if any and whole (they match the SHA-256 kept before
    /// them); a damaged entry is dropped.
    pub fn manifest(&self, graph_id: &str, snapshot_id: &str) -> Option<Bytes> {
        self.checked(&self.manifest_entry(graph_id, snapshot_id)?)
    }

    /// Keep a manifest's bytes as fetched (with their SHA-256, checked when read back).
    pub fn keep_manifest(&self, graph_id: &str, snapshot_id: &str, bytes: &[u8]) {
        if let Some(path) = self.manifest_entry(graph_id, snapshot_id) {
            self.keep_checked(&path, bytes);
        }
    }

    /// Where the entry of recovery point `checkpoint_id` (a UUID) lives.
    fn point_entry(&self, checkpoint_id: &str) -> Option<PathBuf> {
        (checkpoint_id.len() == 36
            && checkpoint_id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b'-'))
        .then(|| self.dir.join("recovery").join(checkpoint_id))
    }

    /// The cached bytes of a listed recovery point, if any and whole.
    pub fn point(&self, checkpoint_id: &str) -> Option<Bytes> {
        self.checked(&self.point_entry(checkpoint_id)?)
    }

    /// Keep a recovery point's bytes as fetched (once they decoded).
    pub fn keep_point(&self, checkpoint_id: &str, bytes: &[u8]) {
        if let Some(path) = self.point_entry(checkpoint_id) {
            self.keep_checked(&path, bytes);
        }
    }

    /// Where the entry of validation `version` of recovery point `checkpoint_id` lives (beside
    /// the point's own entry: `<id>.validations/<version>`).
    fn validation_entry(&self, checkpoint_id: &str, version: &str) -> Option<PathBuf> {
        let point = self.point_entry(checkpoint_id)?;
        plain_name(version).then(|| {
            point
                .with_file_name(format!("{checkpoint_id}.validations"))
                .join(version)
        })
    }

    /// The cached bytes of a listed validation of a recovery point, if any and whole.
    pub fn validation(&self, checkpoint_id: &str, version: &str) -> Option<Bytes> {
        self.checked(&self.validation_entry(checkpoint_id, version)?)
    }

    /// Keep a validation's bytes as fetched (once they decoded).
    pub fn keep_validation(&self, checkpoint_id: &str, version: &str, bytes: &[u8]) {
        if let Some(path) = self.validation_entry(checkpoint_id, version) {
            self.keep_checked(&path, bytes);
        }
    }

    /// Drop a recovery point's entry (it did not decode: fetched again next time).
    pub fn forget_point(&self, checkpoint_id: &str) {
        if let Some(path) = self.point_entry(checkpoint_id) {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Drop the entries of recovery points that are not in `listed` (deleted since).
    pub fn forget_points_but(&self, listed: &HashSet<String>) {
        // A point's validations (`<id>.validations/`) go with it.
        self.forget_entries_but(&self.dir.join("recovery"), |name| {
            listed.contains(name.strip_suffix(".validations").unwrap_or(name))
        });
    }

    /// Remove the entries (files or folders) of `folder` whose name `keep` refuses, and have
    /// the cache's size counted again at the next write.
    fn forget_entries_but(&self, folder: &std::path::Path, keep: impl Fn(&str) -> bool) {
        if let Ok(entries) = std::fs::read_dir(folder) {
            for entry in entries.flatten() {
                if !keep(&entry.file_name().to_string_lossy()) {
                    let path = entry.path();
                    let _ = std::fs::remove_file(&path).or_else(|_| std::fs::remove_dir_all(&path));
                }
            }
        }
        *self.held.lock().unwrap() = None;
    }

    /// An entry kept with the SHA-256 of its bytes before them, if whole; a damaged one is
    /// dropped.
    fn checked(&self, path: &std::path::Path) -> Option<Bytes> {
        let entry = read_entry(path, crate::backend::MAX_WHOLE_OBJECT + 32)?;
        if entry.len() < 32 || crate::format::ObjectId::of(&entry[32..]).0[..] != entry[..32] {
            log::warn!(
                "cache entry {} is damaged: dropped, the object is fetched again",
                path.display()
            );
            let _ = std::fs::remove_file(path);
            return None;
        }
        Some(Bytes::from(entry).slice(32..))
    }

    fn keep_checked(&self, path: &std::path::Path, bytes: &[u8]) {
        let mut entry = Vec::with_capacity(32 + bytes.len());
        entry.extend_from_slice(&crate::format::ObjectId::of(bytes).0);
        entry.extend_from_slice(bytes);
        self.write_entry(path, &entry);
    }

    /// Drop a manifest's entry (it did not decode: fetched again next time).
    pub fn forget_manifest(&self, graph_id: &str, snapshot_id: &str) {
        if let Some(path) = self.manifest_entry(graph_id, snapshot_id) {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Drop the manifest entries of `graph_id` (every graph's, for `None`) that are not in
    /// `listed` (graph id, snapshot id): forgotten or moved since.
    pub fn forget_manifests_but(&self, graph_id: Option<&str>, listed: &HashSet<(String, String)>) {
        let root = self.dir.join("snapshots");
        let graphs: Vec<String> = match graph_id {
            Some(graph) => vec![graph.to_string()],
            None => std::fs::read_dir(&root)
                .map(|entries| {
                    entries
                        .flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default(),
        };
        for graph in graphs.iter().filter(|g| plain_name(g)) {
            self.forget_entries_but(&root.join(graph), |id| {
                listed.contains(&(graph.clone(), id.to_string()))
            });
        }
    }

    /// Drop the entries of index objects that are not in `listed` (names): gone from the
    /// repository (a prune replaced them).
    pub fn forget_index_objects_but(&self, listed: &HashSet<String>) {
        self.forget_entries_but(&self.dir.join("index"), |name| {
            name.len() != 64 || listed.contains(name)
        });
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

/// A name that is one plain path component (`A-Z a-z 0-9 _ - .`, not starting with `.`): the
/// only names the cache turns into paths.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
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

    #[test]
    fn an_entry_that_is_a_link_or_longer_than_the_bound_is_dropped_unread() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = ObjectCache::at(tmp.path().join("repo-id"), 1 << 20).unwrap();
        let id = "5b0e1c52-27b6-4a8f-9d3e-0c9f2f6b7a11";
        cache.keep_point(id, b"sealed point");
        let entry = tmp.path().join("repo-id/recovery").join(id);
        // A link pointing out of the cache (at a file whose bytes would check) is not read.
        let outside = tmp.path().join("outside");
        std::fs::copy(&entry, &outside).unwrap();
        std::fs::remove_file(&entry).unwrap();
        std::os::unix::fs::symlink(&outside, &entry).unwrap();
        assert!(cache.point(id).is_none());
        assert!(std::fs::symlink_metadata(&entry).is_err() && outside.exists());
        // A file longer than any entry is not read (a sparse file: no bytes on disk).
        let big = tmp.path().join("big");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(crate::backend::MAX_WHOLE_OBJECT + 1)
            .unwrap();
        assert!(read_entry(&big, crate::backend::MAX_WHOLE_OBJECT).is_none());
        assert!(read_entry(&outside, 1 << 20).is_some());
        assert!(read_entry(&outside, 3).is_none());
    }

    #[test]
    fn recovery_points_are_kept_checked_and_dropped_when_no_longer_listed() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = ObjectCache::at(tmp.path().join("repo-id"), 1 << 20).unwrap();
        let id = "5b0e1c52-27b6-4a8f-9d3e-0c9f2f6b7a11";
        cache.keep_point(id, b"sealed point");
        assert_eq!(cache.point(id).as_deref(), Some(&b"sealed point"[..]));
        cache.keep_point("../../x", b"y");
        assert!(cache.point("../../x").is_none());
        let entry = tmp.path().join("repo-id/recovery").join(id);
        std::fs::write(&entry, b"short").unwrap();
        assert!(cache.point(id).is_none() && !entry.exists());
        cache.keep_point(id, b"sealed point");
        cache.keep_validation(id, "20261207T150000.000000Z-abc", b"sealed validation");
        assert_eq!(
            cache
                .validation(id, "20261207T150000.000000Z-abc")
                .as_deref(),
            Some(&b"sealed validation"[..])
        );
        assert!(cache.validation(id, "../../x").is_none());
        cache.forget_points_but(&HashSet::new());
        assert!(cache.point(id).is_none());
        assert!(cache
            .validation(id, "20261207T150000.000000Z-abc")
            .is_none());
    }

    #[test]
    fn manifests_are_kept_with_their_hash_and_dropped_when_no_longer_listed() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = ObjectCache::at(tmp.path().join("repo-id"), 1 << 20).unwrap();
        let id = "0f5b8a4e-6f0e-4b7e-9a53-2d6a1c7e9b10";
        cache.keep_manifest("g1", id, b"sealed manifest");
        assert_eq!(
            cache.manifest("g1", id).as_deref(),
            Some(&b"sealed manifest"[..])
        );
        assert!(cache.manifest("g2", id).is_none());

        let entry = tmp.path().join("repo-id/snapshots/g1").join(id);
        let mut bytes = std::fs::read(&entry).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        std::fs::write(&entry, &bytes).unwrap();
        assert!(
            cache.manifest("g1", id).is_none(),
            "a damaged entry is never used"
        );
        assert!(!entry.exists());

        // Only plain names are paths.
        cache.keep_manifest("..", id, b"x");
        cache.keep_manifest("g1", "../../escape-0000-0000-0000-00000000000", b"x");
        assert!(!tmp.path().join("repo-id/escape").exists() && !tmp.path().join("escape").exists());

        cache.keep_manifest("g1", id, b"again");
        let listed = HashSet::from([(
            "g1".to_string(),
            "1f5b8a4e-6f0e-4b7e-9a53-2d6a1c7e9b10".to_string(),
        )]);
        cache.forget_manifests_but(Some("g1"), &listed);
        assert!(cache.manifest("g1", id).is_none());
    }
}
