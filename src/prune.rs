//! Prune: free the repository data no snapshot references, in two phases.
//!
//! **Mark.** Every manifest is read; a pack none of whose chunks a snapshot needs, and a pack
//! no index lists that is older than the grace period (left by a crashed backup), becomes a
//! candidate. A pack that is mostly unused is repacked first: its used chunks are copied (still
//! compressed, each checked against its hash) into new packs with a new index, and the old pack
//! becomes a candidate. Candidates are recorded in a `prune/<uuid>` marker. From then on new
//! snapshots never reuse a marked pack (see `Repository::contains`).
//!
//! **Sweep.** A marker older than its grace period (any marker, when this prune runs with grace
//! 0: the operator says no backup runs) is swept: manifests are read again, a
//! candidate some snapshot now needs (and that has no copy elsewhere) is spared, the index files
//! listing the others are rewritten without them (new index first, then the old one deleted),
//! the packs are deleted, and the marker last. Each step leaves a valid repository, so a prune
//! killed anywhere is finished by the next one.
//!
//! A snapshot that started before a marker existed and is still running when it is half-way
//! through its grace period refuses to commit if it reuses a marked pack (`Conflict`,
//! retryable). Its commit checks again once its manifest is written
//! (`Repository::commit_snapshot`): a sweep that read the manifests just before the write may
//! have taken its data in between (grace 0, or a marker that ripened meanwhile), and then the
//! manifest is deleted again. So no committed snapshot points at deleted data whatever the
//! grace; a short grace only makes backups running at the same time fail and retry. Two prunes never run at once, nor a prune and an index compaction: both take
//! the maintenance lock (`crate::lock`). A prune ends by compacting the index.

use crate::error::{Error, Result};
use crate::format::{self, paths, BlobEntry, IndexFile, IndexPack, ObjectId, PruneMarker};
use crate::lock::{Lock, Purpose};
use crate::packer::Packer;
use crate::progress::{check_cancelled, Progress};
use crate::repository::{hostname, pack_path, Repository};
use crate::runtime::block_on;
use bytes::Bytes;
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PruneOptions {
    /// Seconds a pack marked by this run waits before it is deleted. 0 deletes at once, and
    /// sweeps every older marker too: only safe when no backup runs.
    pub grace_seconds: u64,
    /// Repack a pack when at least this share of its bytes is unused (0-1; above 1 never).
    pub repack_threshold: f64,
    /// Report what would happen, change nothing.
    pub dry_run: bool,
    /// A prune lock older than this is taken over (its holder is presumed dead); a lock of a
    /// dead process on this host is taken over at once.
    pub stale_lock_seconds: u64,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            grace_seconds: 3600,
            repack_threshold: 0.25,
            dry_run: false,
            stale_lock_seconds: 6 * 3600,
        }
    }
}

/// What a prune did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PruneReport {
    pub dry_run: bool,
    pub snapshots: usize,
    pub packs_total: usize,
    /// Packs marked in this run (unused, unindexed, or emptied by repacking).
    pub packs_marked: usize,
    pub bytes_marked: u64,
    pub packs_repacked: usize,
    /// Bytes of used chunks copied into new packs.
    pub bytes_repacked: u64,
    /// Packs deleted by this run's sweep, and their bytes.
    pub packs_deleted: usize,
    pub bytes_deleted: u64,
    pub index_files_rewritten: usize,
    /// Marked packs a snapshot needed again at sweep time: kept.
    pub packs_spared: usize,
    /// Marked packs still inside their grace period.
    pub packs_waiting: usize,
    pub markers_swept: usize,
    /// Small index objects merged by the compaction that ends a prune (see `compact`).
    pub index_objects_merged: usize,
}

/// Everything prune needs to know about the repository at one moment.
struct Census {
    /// Index file path -> its packs.
    index_files: BTreeMap<String, IndexFile>,
    /// Pack -> stored size and age in seconds (from the store's listing).
    stored: HashMap<ObjectId, (u64, i64)>,
    /// Chunks some snapshot needs.
    referenced: HashSet<ObjectId>,
    snapshots: usize,
    markers: BTreeMap<String, PruneMarker>,
}

fn census(repo: &Repository) -> Result<Census> {
    let now = chrono::Utc::now();
    let mut referenced = HashSet::new();
    let scan = repo.scan_snapshots(None)?;
    refuse_while_unreadable(repo, &scan)?;
    let manifests = scan.manifests;
    for manifest in &manifests {
        for chunk in manifest.files.iter().flat_map(|f| &f.chunks) {
            referenced.insert(chunk.id);
        }
    }
    let backend = repo.backend();
    let stored = block_on(backend.list_with_times(paths::DATA))?
        .into_iter()
        .filter_map(|(path, size, modified)| {
            let id = ObjectId::from_hex(path.filename()?)?;
            Some((
                id,
                (size, now.signed_duration_since(modified).num_seconds()),
            ))
        })
        .collect();
    let (index_files, markers) = block_on(async {
        let index_files = repo.read_index_files().await?;
        let mut markers = BTreeMap::new();
        for (path, _) in backend.list(paths::PRUNE).await? {
            if let Some(bytes) = backend.get_bounded(&path).await? {
                // An unreadable marker names packs nobody can sweep by it: skipped (verify
                // reports it, repair sets it aside).
                match repo.codec().decode_object::<PruneMarker>(
                    format::prune::MAGIC,
                    path.as_ref(),
                    &bytes,
                    path.as_ref(),
                ) {
                    Ok(marker) => {
                        markers.insert(path.to_string(), marker);
                    }
                    Err(error) if error.is_damage() => {}
                    Err(error) => return Err(error),
                }
            }
        }
        Ok::<_, Error>((index_files, markers))
    })?;
    Ok(Census {
        index_files,
        stored,
        referenced,
        snapshots: manifests.len(),
        markers,
    })
}

/// Prune decides what is unused from every manifest and every index object: while one of them
/// cannot be read, it cannot know what that one needs, so it frees nothing and says how to
/// resolve it.
fn refuse_while_unreadable(
    repo: &Repository,
    scan: &crate::repository::SnapshotScan,
) -> Result<()> {
    repo.refresh_index()?;
    let mut unreadable: Vec<String> = scan
        .unreadable
        .iter()
        .map(|u| {
            format!(
                "snapshot {} of graph {:?} ({})",
                u.snapshot_id, u.graph_id, u.path
            )
        })
        .collect();
    unreadable.extend(
        repo.unreadable_index_objects()
            .into_iter()
            .filter(|(path, _)| path.starts_with(paths::INDEX))
            .map(|(path, _)| format!("index object {path}")),
    );
    match unreadable.first() {
        None => Ok(()),
        Some(first) => Err(Error::integrity(format!(
            "prune freed nothing: {first}{} cannot be read, so what it needs is unknown. Delete the snapshot (`lightrag-backup delete -g GRAPH SNAPSHOT`) or run `lightrag-backup repair`, which sets unreadable objects aside (and re-indexes packs from their own trailers), then prune again",
            match unreadable.len() {
                1 => String::new(),
                n => format!(" and {} more object(s)", n - 1),
            }
        ))),
    }
}

fn marker_age(marker: &PruneMarker) -> i64 {
    chrono::DateTime::parse_from_rfc3339(&marker.created_at)
        .map(|t| chrono::Utc::now().signed_duration_since(t).num_seconds())
        .unwrap_or(0)
}

/// Remove unused data from the repository (see the module documentation).
///
/// # Errors
/// `Conflict` when another prune holds the lock; `Backend` and `Integrity` when the store fails
/// or a pack to repack is damaged (nothing is deleted then); `Cancelled` on Ctrl-C (the
/// repository stays valid).
pub fn prune(
    repo: &Repository,
    options: &PruneOptions,
    progress: &dyn Progress,
) -> Result<PruneReport> {
    if options.repack_threshold.is_nan() || options.repack_threshold < 0.0 {
        return Err(Error::invalid("repack_threshold must be 0 or more"));
    }
    let _lock = if options.dry_run {
        None
    } else {
        Some(Lock::take(
            repo,
            Purpose::Prune,
            options.stale_lock_seconds,
        )?)
    };
    let mut report = PruneReport {
        dry_run: options.dry_run,
        ..Default::default()
    };
    // What an interrupted shred left (manifests no key opens) goes first; its packs are then
    // unused like any forgotten snapshot's.
    if !options.dry_run {
        repo.finish_shreds()?;
    }
    sweep(repo, options, &mut report)?;
    mark(repo, options, &mut report, progress)?;
    if options.grace_seconds == 0 && !options.dry_run {
        // With no grace the marks of this very run are ripe: sweep them now.
        sweep(repo, options, &mut report)?;
    }
    repo.refresh_index()?;
    if !options.dry_run {
        // The lock is held: the index rewritten by the sweep is merged too.
        report.index_objects_merged = crate::compact::compact_locked(repo, progress)?.merged;
    }
    Ok(report)
}

/// Whether chunk `id` has a stored copy in a pack that is not about to be deleted.
fn copies_elsewhere(
    locations: &HashMap<ObjectId, Vec<ObjectId>>,
    id: &ObjectId,
    doomed: &HashSet<ObjectId>,
    stored: &HashMap<ObjectId, (u64, i64)>,
) -> bool {
    locations.get(id).is_some_and(|packs| {
        packs
            .iter()
            .any(|p| !doomed.contains(p) && stored.contains_key(p))
    })
}

fn sweep(repo: &Repository, options: &PruneOptions, report: &mut PruneReport) -> Result<()> {
    let census = census(repo)?;
    // A marker is ripe after its own grace period (the one snapshots in flight rely on), or
    // at once when this prune is told no backup runs (grace 0).
    let is_ripe =
        |m: &PruneMarker| options.grace_seconds == 0 || marker_age(m) >= m.grace_seconds as i64;
    let ripe: Vec<(&String, &PruneMarker)> =
        census.markers.iter().filter(|(_, m)| is_ripe(m)).collect();
    report.packs_waiting = census
        .markers
        .values()
        .filter(|m| !is_ripe(m))
        .map(|m| m.packs.len())
        .sum();
    if ripe.is_empty() {
        return Ok(());
    }
    // Where each chunk is, by the current index.
    let mut locations: HashMap<ObjectId, Vec<ObjectId>> = HashMap::new();
    let mut blobs_of: HashMap<ObjectId, &Vec<BlobEntry>> = HashMap::new();
    for file in census.index_files.values() {
        for pack in &file.packs {
            blobs_of.insert(pack.id, &pack.blobs);
            for blob in &pack.blobs {
                locations.entry(blob.id).or_default().push(pack.id);
            }
        }
    }
    let mut doomed: HashSet<ObjectId> = ripe
        .iter()
        .flat_map(|(_, m)| m.packs.iter().copied())
        .collect();
    // Spare a candidate holding a chunk that a snapshot needs and no other pack keeps.
    loop {
        let spare: Vec<ObjectId> = doomed
            .iter()
            .filter(|pack| {
                blobs_of.get(*pack).is_some_and(|blobs| {
                    blobs.iter().any(|b| {
                        census.referenced.contains(&b.id)
                            && !copies_elsewhere(&locations, &b.id, &doomed, &census.stored)
                    })
                })
            })
            .copied()
            .collect();
        if spare.is_empty() {
            break;
        }
        report.packs_spared += spare.len();
        for pack in spare {
            doomed.remove(&pack);
        }
    }
    let doomed_bytes: u64 = doomed
        .iter()
        .filter_map(|p| census.stored.get(p).map(|(size, _)| *size))
        .sum();
    let doomed_count = doomed
        .iter()
        .filter(|p| census.stored.contains_key(*p))
        .count();
    report.markers_swept += ripe.len();
    if options.dry_run {
        report.packs_deleted += doomed_count;
        report.bytes_deleted += doomed_bytes;
        return Ok(());
    }
    let backend = repo.backend();
    block_on(async {
        // 1. Index files without the doomed packs (every chunk stays indexed throughout).
        report.index_files_rewritten += repo
            .drop_packs_from_index(&census.index_files, &doomed)
            .await?;
        // 2. The packs, now unindexed.
        for pack in &doomed {
            backend.delete(&pack_path(pack)).await?;
        }
        // 3. The markers: their work is done.
        for (path, _) in &ripe {
            backend.delete(&Path::from(path.as_str())).await?;
        }
        Ok::<_, Error>(())
    })?;
    report.packs_deleted += doomed_count;
    report.bytes_deleted += doomed_bytes;
    Ok(())
}

fn mark(
    repo: &Repository,
    options: &PruneOptions,
    report: &mut PruneReport,
    progress: &dyn Progress,
) -> Result<()> {
    let census = census(repo)?;
    report.snapshots = census.snapshots;
    report.packs_total = census.stored.len();
    let already: HashSet<ObjectId> = census
        .markers
        .values()
        .flat_map(|m| m.packs.iter().copied())
        .collect();
    let mut indexed: HashMap<ObjectId, &IndexPack> = HashMap::new();
    for file in census.index_files.values() {
        for pack in &file.packs {
            indexed.insert(pack.id, pack);
        }
    }
    // Each needed chunk is kept in one pack: the one holding the most needed bytes, so that
    // duplicates (two backups wrote the same chunk) empty the weaker pack.
    let mut needed_bytes: HashMap<ObjectId, u64> = HashMap::new();
    for pack in indexed.values() {
        let bytes = pack
            .blobs
            .iter()
            .filter(|b| census.referenced.contains(&b.id))
            .map(|b| b.length as u64)
            .sum();
        needed_bytes.insert(pack.id, bytes);
    }
    let mut keeper: HashMap<ObjectId, ObjectId> = HashMap::new();
    let mut packs_sorted: Vec<&&IndexPack> = indexed
        .values()
        .filter(|p| census.stored.contains_key(&p.id) && !already.contains(&p.id))
        .collect();
    packs_sorted.sort_by_key(|p| (std::cmp::Reverse(needed_bytes[&p.id]), p.id));
    for pack in &packs_sorted {
        for blob in &pack.blobs {
            if census.referenced.contains(&blob.id) {
                keeper.entry(blob.id).or_insert(pack.id);
            }
        }
    }
    let mut candidates: Vec<ObjectId> = Vec::new();
    let mut to_repack: Vec<(&IndexPack, Vec<BlobEntry>)> = Vec::new();
    for pack in &packs_sorted {
        let kept: Vec<BlobEntry> = pack
            .blobs
            .iter()
            .filter(|b| keeper.get(&b.id) == Some(&pack.id))
            .copied()
            .collect();
        let size = census.stored[&pack.id].0;
        if kept.is_empty() {
            candidates.push(pack.id);
            report.bytes_marked += size;
            continue;
        }
        // Shares of the blob bytes: a pack's own framing is not waste.
        let used: u64 = kept.iter().map(|b| b.length as u64).sum();
        let total: u64 = pack.blobs.iter().map(|b| b.length as u64).sum();
        let unused_share = 1.0 - used as f64 / total.max(1) as f64;
        if used < total
            && unused_share >= options.repack_threshold
            && options.repack_threshold <= 1.0
        {
            report.bytes_repacked += used;
            report.bytes_marked += size;
            to_repack.push((pack, kept));
        }
    }
    // Unindexed packs older than the grace period: left by a crashed backup or prune.
    for (id, (size, age)) in &census.stored {
        if !indexed.contains_key(id)
            && !already.contains(id)
            && *age >= options.grace_seconds as i64
        {
            candidates.push(*id);
            report.bytes_marked += size;
        }
    }
    report.packs_repacked = to_repack.len();
    report.packs_marked = candidates.len() + to_repack.len();
    if options.dry_run || report.packs_marked == 0 {
        return Ok(());
    }
    progress.start("prune", report.bytes_repacked);
    let mut packer = Packer::new(repo);
    for (pack, kept) in &to_repack {
        check_cancelled(progress, "prune")?;
        let bytes = block_on(repo.backend().get(&pack_path(&pack.id)))?;
        for blob in kept {
            let start = blob.offset as usize;
            let end = start + blob.length as usize;
            let compressed = bytes.get(start..end).ok_or_else(|| {
                Error::integrity(format!("pack {} is shorter than its index says", pack.id))
            })?;
            // Never carry damage forward: each chunk must still match its hash.
            repo.codec().open_chunk(blob, compressed).map_err(|e| {
                Error::integrity(format!(
                    "{} (in pack {}; nothing was deleted)",
                    e.detail(),
                    pack.id
                ))
            })?;
            packer.add(blob.id, compressed, blob.raw_length)?;
            progress.advance(blob.length as u64);
        }
        candidates.push(pack.id);
    }
    let index = packer.finish()?;
    // The copies are indexed before their old packs are marked.
    repo.write_index(&index)?;
    progress.finish();
    let marker = PruneMarker {
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        grace_seconds: options.grace_seconds,
        hostname: hostname(),
        packs: candidates,
    };
    let path = paths::prune_marker(&uuid::Uuid::new_v4());
    let bytes = repo
        .codec()
        .encode_object(format::prune::MAGIC, path.as_ref(), &marker)?;
    block_on(repo.backend().put_create(&path, Bytes::from(bytes)))?;
    Ok(())
}
