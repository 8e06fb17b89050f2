//! Checking that snapshots are whole.
//!
//! Structural: every chunk a snapshot references is indexed and its pack exists with the
//! indexed size. Read-data: every referenced pack is downloaded, its SHA-256 checked against
//! its name, its trailer against the index, and every chunk decompressed and hashed.

use crate::error::Result;
use crate::format::{pack, ObjectId, SnapshotManifest};
use crate::progress::Progress;
use crate::repository::{pack_path, Repository};
use futures::StreamExt;
use rand::seq::SliceRandom;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// How much to check.
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions {
    pub read_data: bool,
    /// With `read_data`, read only this fraction (0, 1] of the packs, picked at random.
    pub read_data_subset: Option<f64>,
}

/// What verify found. `ok` is true only when `errors` is empty.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub snapshots_checked: usize,
    pub files_checked: usize,
    pub chunks_checked: usize,
    pub packs_checked: usize,
    pub packs_read: usize,
    pub bytes_read: u64,
    pub errors: Vec<String>,
    /// Packs found damaged (missing, the wrong size, or holding bad chunks), recorded in the
    /// repository so that no snapshot reuses them (see `format::damage`).
    pub damaged_packs: Vec<String>,
    /// Objects that cannot be read at all (manifests, index objects, prune markers, damage
    /// records), by path: `repair` sets them aside.
    pub unreadable_objects: Vec<String>,
}

/// Verify what a scan found: its readable snapshots, and every unreadable manifest reported as
/// an error naming it.
///
/// # Errors
/// As [`verify_snapshots`].
pub fn verify_scan(
    repo: &Repository,
    scan: &crate::repository::SnapshotScan,
    options: VerifyOptions,
    progress: &dyn Progress,
) -> Result<VerifyReport> {
    let mut report = verify_snapshots(repo, &scan.manifests, options, progress)?;
    for unreadable in &scan.unreadable {
        report.errors.push(format!(
            "snapshot {} of graph {:?} cannot be read ({}): {}",
            unreadable.snapshot_id, unreadable.graph_id, unreadable.path, unreadable.reason
        ));
        report.unreadable_objects.push(unreadable.path.clone());
    }
    report.snapshots_checked += scan.unreadable.len();
    report.unreadable_objects.sort();
    report.ok = report.errors.is_empty();
    Ok(report)
}

/// Verify the given snapshots.
///
/// # Errors
/// Only when the repository cannot be listed; problems found are reported in the report.
pub fn verify_snapshots(
    repo: &Repository,
    manifests: &[SnapshotManifest],
    options: VerifyOptions,
    progress: &dyn Progress,
) -> Result<VerifyReport> {
    verify_snapshots_with(repo, manifests, options, progress, true)
}

/// Packs asked about one by one rather than by listing every pack: a verify of one snapshot
/// costs the same whatever the repository holds.
const HEAD_AT_MOST: usize = 64;

/// The stored size of each pack in `needed` that exists, by hex id: a HEAD per pack when few
/// are needed from a remote store, else one listing of `data/`.
fn stored_sizes<T>(
    repo: &Repository,
    needed: &BTreeMap<ObjectId, T>,
) -> Result<HashMap<String, u64>> {
    if !repo.backend().is_remote() || needed.len() > HEAD_AT_MOST {
        return Ok(repo
            .backend()
            .list_blocking(crate::format::paths::DATA)?
            .into_iter()
            .map(|(path, size)| (path.filename().unwrap_or_default().to_string(), size))
            .collect());
    }
    crate::runtime::block_on(async {
        let heads = futures::stream::iter(needed.keys().map(|id| async move {
            let size = repo
                .backend()
                .size_of(&crate::format::paths::pack(id))
                .await?;
            Ok::<_, crate::error::Error>(size.map(|size| (id.to_hex(), size)))
        }))
        .buffer_unordered(16);
        futures::pin_mut!(heads);
        let mut sizes = HashMap::new();
        while let Some(head) = heads.next().await {
            if let Some((id, size)) = head? {
                sizes.insert(id, size);
            }
        }
        Ok(sizes)
    })
}

/// [`verify_snapshots`], recording the damage it finds only with `record` (a dry-run repair
/// looks without writing).
///
/// # Errors
/// As [`verify_snapshots`].
pub fn verify_snapshots_with(
    repo: &Repository,
    manifests: &[SnapshotManifest],
    options: VerifyOptions,
    progress: &dyn Progress,
    record: bool,
) -> Result<VerifyReport> {
    repo.refresh_index()?;
    let mut report = VerifyReport {
        snapshots_checked: manifests.len(),
        ..Default::default()
    };
    for (path, why) in repo.unreadable_index_objects() {
        report.errors.push(format!("{path} cannot be read: {why}"));
        report.unreadable_objects.push(path);
    }
    let indexed_packs = repo.indexed_packs();
    // pack -> chunks of it that the snapshots need
    let mut needed: BTreeMap<ObjectId, BTreeSet<ObjectId>> = BTreeMap::new();
    for manifest in manifests {
        for file in &manifest.files {
            report.files_checked += 1;
            let size = file.rebuilt_size();
            if size != file.size {
                report.errors.push(format!(
                    "snapshot {}: {} rebuilds to {size} bytes but has a size of {}",
                    manifest.snapshot_id, file.path, file.size
                ));
            }
            for chunk in &file.chunks {
                report.chunks_checked += 1;
                match repo.locate(&chunk.id) {
                    Some(location) => {
                        needed.entry(location.pack).or_default().insert(chunk.id);
                    }
                    None => report.errors.push(format!(
                        "snapshot {}: chunk {} of {} is not in the index",
                        manifest.snapshot_id, chunk.id, file.path
                    )),
                }
            }
        }
        if SnapshotManifest::compute_data_hash(&manifest.files) != manifest.data_hash {
            report.errors.push(format!(
                "snapshot {}: data hash does not match its files",
                manifest.snapshot_id
            ));
        }
    }
    let stored = stored_sizes(repo, &needed)?;
    let mut damaged: Vec<(ObjectId, String)> = Vec::new();
    for pack_id in needed.keys() {
        report.packs_checked += 1;
        let expected = indexed_packs.get(pack_id).copied();
        let finding = match stored.get(&pack_id.to_hex()) {
            None => Some(format!("pack {pack_id} is missing")),
            Some(size) if Some(*size) != expected => Some(format!(
                "pack {pack_id} has {size} bytes, the index says {}",
                expected.unwrap_or(0)
            )),
            Some(_) => None,
        };
        if let Some(finding) = finding {
            report.errors.push(finding.clone());
            damaged.push((*pack_id, finding));
        }
    }
    if options.read_data {
        let mut to_read: Vec<ObjectId> = needed
            .keys()
            .copied()
            .filter(|id| stored.contains_key(&id.to_hex()))
            .collect();
        if let Some(fraction) = options.read_data_subset {
            let keep = ((to_read.len() as f64) * fraction.clamp(0.0, 1.0)).ceil() as usize;
            to_read.shuffle(&mut rand::rng());
            to_read.truncate(keep.max(usize::from(!to_read.is_empty())));
        }
        progress.start(
            "verify",
            to_read
                .iter()
                .map(|id| indexed_packs.get(id).copied().unwrap_or(0))
                .sum(),
        );
        // Packs are independent: read and check them on all cores.
        let workers = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(1, 8);
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results: Vec<PackCheck> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(|| {
                        let mut checks = Vec::new();
                        // One buffer per worker, kept from pack to pack: fresh memory costs a
                        // page fault per page, and a repository's packs are hundreds of MB.
                        let mut buffer = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(pack_id) = to_read.get(i) else { break };
                            let size = stored[&pack_id.to_hex()];
                            let check =
                                read_pack(repo, pack_id, size, &needed[pack_id], &mut buffer);
                            progress.advance(indexed_packs.get(pack_id).copied().unwrap_or(0));
                            checks.push(check);
                        }
                        checks
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        });
        for check in results {
            report.packs_read += usize::from(check.bytes_read > 0);
            report.bytes_read += check.bytes_read;
            if !check.errors.is_empty() {
                damaged.push((check.pack, check.errors.join("; ")));
            }
            report.errors.extend(check.errors);
        }
        progress.finish();
    }
    if !damaged.is_empty() {
        let packs: Vec<ObjectId> = damaged.iter().map(|(pack, _)| *pack).collect();
        let findings = damaged.into_iter().map(|(_, finding)| finding).collect();
        // The record keeps the next snapshots from reusing the damage; a repository that
        // cannot take it (read-only) still gets its verify report.
        let recorded = if record {
            repo.record_damage(&packs, findings).map(|_| ())
        } else {
            Ok(())
        };
        if let Err(error) = recorded {
            report.errors.push(format!(
                "the damage could not be recorded in the repository: {error}"
            ));
        }
        let mut names: Vec<String> = packs.iter().map(ObjectId::to_hex).collect();
        names.sort();
        names.dedup();
        report.damaged_packs = names;
    }
    report.ok = report.errors.is_empty();
    Ok(report)
}

/// What reading one pack found.
struct PackCheck {
    pack: ObjectId,
    bytes_read: u64,
    errors: Vec<String>,
}

/// Read pack `pack_id` (`size` bytes as listed) whole into `buffer` and check it: its hash, its
/// trailer, and each of `chunks` (opened, decompressed and hashed).
fn read_pack(
    repo: &Repository,
    pack_id: &ObjectId,
    size: u64,
    chunks: &BTreeSet<ObjectId>,
    buffer: &mut Vec<u8>,
) -> PackCheck {
    let mut check = PackCheck {
        pack: *pack_id,
        bytes_read: 0,
        errors: Vec::new(),
    };
    if size > crate::backend::MAX_WHOLE_OBJECT {
        check.errors.push(format!(
            "pack {pack_id} has {size} bytes, more than any pack"
        ));
        return check;
    }
    let bytes: &[u8] = match repo
        .backend()
        .read_range_into(&pack_path(pack_id), 0..size, buffer)
    {
        Ok(bytes) => bytes,
        Err(e) => {
            check.errors.push(format!("pack {pack_id}: {e}"));
            return check;
        }
    };
    check.bytes_read = bytes.len() as u64;
    if pack::pack_id(bytes) != *pack_id {
        check.errors.push(format!(
            "pack {pack_id} does not match its hash (corrupted)"
        ));
    }
    let entries = match pack::read_trailer(bytes, repo.codec()) {
        Ok(entries) => entries,
        Err(e) => {
            check.errors.push(format!("pack {pack_id}: {e}"));
            return check;
        }
    };
    // Sorted by id and searched: a pack lists thousands of chunks, and a scan per chunk was
    // quadratic in them.
    let mut listed: Vec<&crate::format::BlobEntry> = entries.iter().collect();
    listed.sort_unstable_by_key(|entry| entry.id);
    for chunk in chunks {
        let Some(location) = repo.locate(chunk) else {
            continue;
        };
        let first = listed.partition_point(|entry| entry.id < *chunk);
        let as_indexed = listed[first..]
            .iter()
            .take_while(|entry| entry.id == *chunk)
            .any(|entry| **entry == location.entry);
        if !as_indexed {
            check.errors.push(format!(
                "pack {pack_id}: trailer does not list chunk {chunk} as the index does"
            ));
            continue;
        }
        let entry = location.entry;
        let blob = &bytes[entry.offset as usize..entry.offset as usize + entry.length as usize];
        if let Err(e) = repo.codec().open_chunk(&entry, blob) {
            check.errors.push(format!("pack {pack_id}: {e}"));
        }
    }
    check
}
