//! Index compaction: many small index objects merged into few large ones while backups run.
//!
//! Every operation that writes packs (a snapshot, a copy, a receive, a repair) writes one index
//! object for them. Unmerged, a repository of 3,000 snapshots holds 3,000 index objects, and
//! every process that opens it lists and reads them all. Compaction keeps their number bounded
//! whatever the history: the small ones (encoded size below [`SMALL_INDEX_BYTES`]) are read
//! (each checked against its name, from this host's cache when it holds them), their union is
//! written as objects of at most [`MERGED_MAX_BLOBS`] chunk entries, create-only under the
//! hash of their bytes, and only then are the small ones deleted. Objects at or above the size
//! are left as they are, so the live index objects number at most the small ones written since
//! the last compaction ([`AUTO_COMPACT_AT`] at most while snapshots compact on their own) plus
//! one per [`SMALL_INDEX_BYTES`] of index.
//!
//! **Every chunk stays indexed throughout.** A reader listing between the two steps sees some
//! entries twice (harmless: one location wins); a reader whose listed object vanished before it
//! read it lists again (`Repository::refresh_index`). A SIGKILL anywhere leaves the union
//! written and some small objects not yet deleted; the next compaction leaves out of its merge
//! every pack that a large object already lists identically and deletes the rest, so repeated
//! interruptions never multiply the index.
//!
//! **Writers are never locked out.** Compaction takes the maintenance lock a prune takes
//! ([`crate::lock`]), because a prune's sweep rewrites index objects without the packs it
//! deletes and a compaction that read those objects before could write the packs back. No
//! snapshot, copy or receive takes that lock: an index object they write while a compaction
//! runs is simply not among its sources. A snapshot that finds [`AUTO_COMPACT_AT`] small index
//! objects after its commit compacts them when the lock is free and goes on when it is not
//! (a prune compacts at its end anyway).

use crate::crash_point;
use crate::error::{Error, Result};
use crate::format::{paths, IndexFile, IndexPack, ObjectId};
use crate::lock::{Lock, Purpose};
use crate::progress::{check_cancelled, Progress};
use crate::repository::Repository;
use crate::runtime::block_on;
use object_store::path::Path;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

pub use crate::repository::SMALL_INDEX_BYTES;

/// Chunk entries per merged object at most (about 4 MB encoded): far below what a reader
/// accepts for a whole object (`backend::MAX_WHOLE_OBJECT`).
pub const MERGED_MAX_BLOBS: usize = 100_000;

/// A snapshot compacts the index after its commit once this many small index objects exist.
pub const AUTO_COMPACT_AT: usize = 64;

/// A compaction lock older than this is taken over (compaction takes seconds).
const STALE_COMPACTION_SECONDS: u64 = 15 * 60;

/// What a compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CompactReport {
    /// Live index objects before and after.
    pub index_objects_before: usize,
    pub index_objects_after: usize,
    /// Small index objects merged (and deleted).
    pub merged: usize,
    /// Index objects written.
    pub written: usize,
    /// Index objects that could not be read: left in place (verify names them, repair sets
    /// them aside).
    pub unreadable: usize,
}

/// Merge the repository's small index objects under the maintenance lock.
///
/// # Errors
/// `Conflict` when a prune or another compaction holds the lock; `Backend` when the store
/// fails (the repository stays valid: at worst some chunks are indexed twice until the next
/// compaction); `Cancelled` on Ctrl-C.
pub fn compact(repo: &Repository, progress: &dyn Progress) -> Result<CompactReport> {
    let _lock = Lock::take(repo, Purpose::Compaction, STALE_COMPACTION_SECONDS)?;
    compact_locked(repo, progress)
}

/// After a commit (a snapshot, a receive, a copy call it once their manifest is written):
/// compact when [`AUTO_COMPACT_AT`] small index objects have piled up and no
/// maintainer holds the lock. Never fails the commit: a failure is logged and left for the
/// next one. Returns the report of a compaction that ran.
pub fn after_commit(repo: &Repository) -> Option<CompactReport> {
    if repo.small_index_objects() < AUTO_COMPACT_AT {
        return None;
    }
    let run = || -> Result<Option<CompactReport>> {
        let Some(_lock) = Lock::try_take(repo, Purpose::Compaction, STALE_COMPACTION_SECONDS)?
        else {
            return Ok(None);
        };
        compact_locked(repo, &crate::progress::NoProgress).map(Some)
    };
    match run() {
        Ok(report) => report,
        Err(error) => {
            tracing::warn!("index compaction after a commit failed (left for later): {error}");
            None
        }
    }
}

/// The compaction itself; the caller holds the maintenance lock.
pub(crate) fn compact_locked(repo: &Repository, progress: &dyn Progress) -> Result<CompactReport> {
    crash_point("compact.locked");
    let listed = repo.backend().list_blocking(paths::INDEX)?;
    let mut report = CompactReport {
        index_objects_before: listed.len(),
        ..Default::default()
    };
    let (small, large): (Vec<_>, Vec<_>) = listed
        .into_iter()
        .partition(|(_, size)| *size < SMALL_INDEX_BYTES);
    if small.len() < 2 {
        report.index_objects_after = report.index_objects_before;
        return Ok(report);
    }
    progress.start("compact", small.len() as u64);
    let merged = block_on(async {
        // What the large objects already list: a pack listed there identically is left out of
        // the merge (a crashed compaction's union, say), so it is never indexed three times.
        let mut kept: HashMap<ObjectId, IndexPack> = HashMap::new();
        for (path, _) in &large {
            match repo.read_index_file_if_there(path).await {
                Ok(Some(file)) => kept.extend(file.packs.into_iter().map(|p| (p.id, p))),
                Ok(None) => {}
                Err(error) if error.is_damage() => {}
                Err(error) => return Err(error),
            }
        }
        let mut union: BTreeMap<ObjectId, IndexPack> = BTreeMap::new();
        let mut sources: Vec<Path> = Vec::with_capacity(small.len());
        for (path, _) in &small {
            check_cancelled(progress, "index compaction")?;
            match repo.read_index_file_if_there(path).await {
                Ok(Some(file)) => {
                    for pack in file.packs {
                        if kept.get(&pack.id) != Some(&pack) {
                            union.entry(pack.id).or_insert(pack);
                        }
                    }
                    sources.push(path.clone());
                }
                // A damaged object stays where it is: its packs may be indexed nowhere else.
                Err(error) if error.is_damage() => report.unreadable += 1,
                // Gone since listed: another maintainer's work (or a stale lock taken over).
                Ok(None) => {}
                Err(error) => return Err(error),
            }
            progress.advance(1);
        }
        Ok::<_, Error>((union, sources))
    });
    let (union, sources) = merged?;
    progress.finish();
    if sources.len() < 2 {
        // One readable small object: merging it would only rename it.
        report.index_objects_after = report.index_objects_before;
        return Ok(report);
    }
    block_on(async {
        // 1. The union, in objects of bounded size; every chunk is now indexed twice.
        let mut written = std::collections::HashSet::new();
        for file in split(union.into_values()) {
            let path = repo.store_index(&file).await?;
            if !sources.contains(&path) {
                report.written += 1;
            }
            written.insert(path);
            crash_point("compact.merged-written");
        }
        crash_point("compact.all-merged-written");
        // 2. The sources, now redundant. A source the merge wrote again byte for byte (an
        // interrupted compaction's union, merged with nothing new) is the merge: it stays.
        for path in sources.iter().filter(|p| !written.contains(*p)) {
            repo.backend().delete(path).await?;
            report.merged += 1;
            crash_point("compact.source-deleted");
        }
        Ok::<_, Error>(())
    })?;
    report.index_objects_after = report.index_objects_before - report.merged + report.written;
    repo.refresh_index()?;
    Ok(report)
}

/// Packs in index files of at most [`MERGED_MAX_BLOBS`] entries (a pack is never split).
fn split(packs: impl Iterator<Item = IndexPack>) -> Vec<IndexFile> {
    let mut files = Vec::new();
    let mut current = IndexFile::default();
    let mut blobs = 0;
    for pack in packs {
        if blobs > 0 && blobs + pack.blobs.len() > MERGED_MAX_BLOBS {
            files.push(std::mem::take(&mut current));
            blobs = 0;
        }
        blobs += pack.blobs.len();
        current.packs.push(pack);
    }
    if !current.packs.is_empty() {
        files.push(current);
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::BlobEntry;

    fn pack(n: u8, blobs: usize) -> IndexPack {
        IndexPack {
            id: ObjectId([n; 32]),
            size: 1 << 20,
            blobs: (0..blobs)
                .map(|i| BlobEntry {
                    id: ObjectId::of(&[n, (i % 251) as u8, (i / 251) as u8]),
                    offset: i as u32,
                    length: 1,
                    raw_length: 1,
                })
                .collect(),
        }
    }

    #[test]
    fn merged_objects_hold_at_most_the_bound_and_never_split_a_pack() {
        let packs = vec![
            pack(1, MERGED_MAX_BLOBS - 10),
            pack(2, 20),
            pack(3, 5),
            pack(4, MERGED_MAX_BLOBS + 3),
        ];
        let files = split(packs.into_iter());
        let sizes: Vec<Vec<usize>> = files
            .iter()
            .map(|f| f.packs.iter().map(|p| p.blobs.len()).collect())
            .collect();
        // A pack larger than the bound gets an object of its own.
        assert_eq!(
            sizes,
            vec![
                vec![MERGED_MAX_BLOBS - 10],
                vec![20, 5],
                vec![MERGED_MAX_BLOBS + 3]
            ]
        );
    }
}
