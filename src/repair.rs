//! Repairing a damaged repository, as borg's `check --repair` and restic's `repair` do.
//!
//! 1. Find the damage: every pack the snapshots need is read back and checked (a verify
//!    with read-data), plus the packs earlier verifies recorded. The damage is recorded
//!    (`damaged/<uuid>`), so no snapshot deduplicates against it from now on.
//! 2. Save what is whole: chunks of damaged packs that still decompress and match their ids,
//!    and have no healthy copy elsewhere, are copied into new packs.
//! 3. Heal the rest from the graphs' current files, where their content is still there
//!    (content-addressed chunks: a chunk of today's file with the same id *is* the lost one).
//! 4. Rewrite the index without the damaged packs (copies first, so nothing whole is ever
//!    unindexed); a later prune deletes the packs themselves.
//!
//! The report names every snapshot that needed damaged data, and whether it is whole again or
//! which of its files cannot be restored.

use crate::error::{Error, Result};
use crate::format::{pack, ObjectId, SnapshotManifest};
use crate::packer::Packer;
use crate::progress::{check_cancelled, Progress};
use crate::repository::{pack_path, Repository};
use crate::runtime::block_on;
use crate::verify::{verify_snapshots_with, VerifyOptions};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

/// What to repair with.
#[derive(Debug, Clone, Default)]
pub struct RepairOptions {
    /// Report what would be done; change nothing (not even the damage records).
    pub dry_run: bool,
    /// Graph folders to heal lost chunks from: (graph id, its folder today).
    pub sources: Vec<(String, PathBuf)>,
}

/// One snapshot that needed damaged data.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotRepair {
    pub graph_id: String,
    pub snapshot_id: String,
    pub time: String,
    /// Its files that had chunks in damaged packs.
    pub affected_files: Vec<String>,
    /// Whole again: every chunk it needs is in a healthy pack.
    pub healed: bool,
    /// Files that still lack chunks (they cannot be restored).
    pub unrestorable_files: Vec<String>,
}

/// What a repair found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RepairReport {
    pub dry_run: bool,
    pub damaged_packs: Vec<String>,
    /// What verify found, in words.
    pub findings: Vec<String>,
    /// Whole chunks of damaged packs copied into new packs.
    pub chunks_copied: usize,
    /// Chunks stored again from the graphs' current files.
    pub chunks_healed: usize,
    /// Chunks no copy, source or graph folder could provide.
    pub chunks_lost: usize,
    pub index_files_rewritten: usize,
    pub snapshots: Vec<SnapshotRepair>,
    /// Every snapshot that cannot be restored whole, as `graph/snapshot`.
    pub unhealed: Vec<String>,
    /// Objects that could not be read at all (manifests, index objects, markers, damage
    /// records), by path.
    pub unreadable_objects: Vec<String>,
    /// Where they were set aside (`quarantine/...`): out of every listing, kept for a
    /// post-mortem. A snapshot whose manifest is set aside is gone.
    pub set_aside: Vec<String>,
    /// Packs no readable index object listed, indexed again from their trailers.
    pub packs_reindexed: usize,
    /// Graph folders that could not be read for healing, with why.
    pub sources_skipped: Vec<String>,
}

/// Repair the repository: see the module documentation.
///
/// # Errors
/// `Backend` when the store fails; `Cancelled` when stopped (nothing half-done: every step
/// leaves a valid repository, and running the repair again continues).
pub fn repair(
    repo: &Repository,
    options: &RepairOptions,
    progress: &dyn Progress,
) -> Result<RepairReport> {
    let mut report = RepairReport {
        dry_run: options.dry_run,
        ..Default::default()
    };
    // Every graph's key, so chunks of any graph open; what an interrupted shred left goes.
    repo.load_graph_keys()?;
    if !options.dry_run {
        repo.finish_shreds()?;
    }
    // 0. Objects that cannot be read at all: packs that only an unreadable index object listed
    //    are indexed again from their own trailers, then every unreadable object is set aside.
    let scan = repo.scan_snapshots(None)?;
    repo.refresh_index()?;
    let unreadable_index = repo.unreadable_index_objects();
    report.unreadable_objects = scan
        .unreadable
        .iter()
        .map(|u| u.path.clone())
        .chain(unreadable_index.iter().map(|(path, _)| path.clone()))
        .chain(
            crate::recovery::unreadable_points(repo)?
                .into_iter()
                .map(|(path, _)| path),
        )
        .collect();
    if !options.dry_run && !report.unreadable_objects.is_empty() {
        if unreadable_index
            .iter()
            .any(|(path, _)| path.starts_with(crate::format::paths::INDEX))
        {
            report.packs_reindexed = reindex_unlisted_packs(repo, progress)?;
        }
        for path in &report.unreadable_objects {
            report.set_aside.push(repo.quarantine(path)?);
        }
        repo.refresh_index()?;
    }
    let manifests = scan.manifests;
    // 1. Find the damage (a dry run reads without recording anything).
    let verified = verify_snapshots_with(
        repo,
        &manifests,
        VerifyOptions {
            read_data: true,
            read_data_subset: None,
        },
        progress,
        !options.dry_run,
    )?;
    repo.refresh_index()?;
    let mut damaged: HashSet<ObjectId> = repo.damaged_packs();
    damaged.extend(
        verified
            .damaged_packs
            .iter()
            .filter_map(|hex| ObjectId::from_hex(hex)),
    );
    report.findings = verified.errors;
    let index_files = block_on(repo.read_index_files())?;
    let indexed: HashSet<ObjectId> = index_files
        .values()
        .flat_map(|f| f.packs.iter().map(|p| p.id))
        .collect();
    damaged.retain(|p| indexed.contains(p));
    let mut names: Vec<String> = damaged.iter().map(ObjectId::to_hex).collect();
    names.sort();
    report.damaged_packs = names;

    // The chunks of damaged packs that the snapshots need, and whether a healthy copy exists.
    let needed: HashSet<ObjectId> = manifests
        .iter()
        .flat_map(|m| m.files.iter().flat_map(|f| f.chunks.iter().map(|c| c.id)))
        .collect();
    let mut healthy: HashSet<ObjectId> = HashSet::new();
    let mut at_risk: BTreeMap<ObjectId, Vec<(ObjectId, crate::format::BlobEntry)>> =
        BTreeMap::new();
    for file in index_files.values() {
        for pack in &file.packs {
            for blob in &pack.blobs {
                if damaged.contains(&pack.id) {
                    if needed.contains(&blob.id) {
                        at_risk.entry(blob.id).or_default().push((pack.id, *blob));
                    }
                } else {
                    healthy.insert(blob.id);
                }
            }
        }
    }
    at_risk.retain(|id, _| !healthy.contains(id));

    // 2. Copy what is still whole.
    let mut lost: HashSet<ObjectId> = HashSet::new();
    let mut packer = (!options.dry_run).then(|| Packer::new(repo));
    let mut by_pack: BTreeMap<ObjectId, Vec<(ObjectId, crate::format::BlobEntry)>> =
        BTreeMap::new();
    for (id, copies) in &at_risk {
        for (pack, entry) in copies {
            by_pack.entry(*pack).or_default().push((*id, *entry));
        }
    }
    let mut saved: HashSet<ObjectId> = HashSet::new();
    for (pack, blobs) in &by_pack {
        check_cancelled(progress, "repair")?;
        let bytes = block_on(repo.backend().get(&pack_path(pack))).ok();
        for (id, entry) in blobs {
            if saved.contains(id) {
                continue;
            }
            let whole = bytes.as_ref().and_then(|bytes| {
                let start = entry.offset as usize;
                let compressed = bytes.get(start..start + entry.length as usize)?;
                repo.codec()
                    .open_chunk(entry, compressed)
                    .ok()
                    .map(|_| compressed)
            });
            match whole {
                Some(compressed) => {
                    if let Some(packer) = packer.as_mut() {
                        packer.add(*id, compressed, entry.raw_length)?;
                    }
                    saved.insert(*id);
                }
                None => {
                    lost.insert(*id);
                }
            }
        }
    }
    lost.retain(|id| !saved.contains(id));
    report.chunks_copied = saved.len();
    if let Some(packer) = packer {
        repo.write_index(&packer.finish()?)?;
    }

    // 3. Heal the lost chunks from the graphs' current files.
    if !lost.is_empty() && !options.dry_run {
        for (graph_id, dir) in &options.sources {
            check_cancelled(progress, "repair")?;
            let healed = repo.graph_codec(graph_id).and_then(|codec| {
                crate::snapshot::store_missing_chunks(repo, &codec, dir, progress)
            });
            match healed {
                Ok(_) => {}
                Err(error @ Error::Cancelled { .. }) => return Err(error),
                Err(error) => report
                    .sources_skipped
                    .push(format!("{graph_id} ({}): {error}", dir.display())),
            }
        }
        repo.refresh_index()?;
        let before = lost.len();
        lost.retain(|id| !repo.contains(id));
        report.chunks_healed = before - lost.len();
    }
    report.chunks_lost = lost.len();

    // 4. The index without the damaged packs: every whole chunk is indexed elsewhere by now.
    if !options.dry_run && !damaged.is_empty() {
        let index_files = block_on(repo.read_index_files())?;
        report.index_files_rewritten =
            block_on(repo.drop_packs_from_index(&index_files, &damaged))?;
        repo.refresh_index()?;
    }

    // What became of each snapshot that needed damaged data, or needs chunks the index lost
    // before (an earlier repair dropped them, or a pack vanished): the report names them all.
    let missing: HashSet<ObjectId> = needed
        .iter()
        .filter(|id| !at_risk.contains_key(id) && repo.locate(id).is_none())
        .copied()
        .collect();
    report.chunks_lost += missing.len();
    lost.extend(missing.iter().copied());
    let mut risky: HashSet<ObjectId> = at_risk.keys().copied().collect();
    risky.extend(missing);
    for manifest in &manifests {
        let entry = snapshot_repair(manifest, &risky, &lost);
        if let Some(entry) = entry {
            if !entry.healed {
                report
                    .unhealed
                    .push(format!("{}/{}", entry.graph_id, entry.snapshot_id));
            }
            report.snapshots.push(entry);
        }
    }
    Ok(report)
}

/// Index every stored pack that no readable index object lists, from the pack's own trailer
/// (packs are self-describing for this): what an unreadable index object knew is known again.
/// A pack that does not match its name or whose trailer is unreadable is left to verify.
/// Returns how many packs were indexed.
fn reindex_unlisted_packs(repo: &Repository, progress: &dyn Progress) -> Result<usize> {
    let indexed = repo.indexed_packs();
    let stored = repo.backend().list_blocking(crate::format::paths::DATA)?;
    let mut file = crate::format::IndexFile::default();
    let mut count = 0;
    for (path, size) in stored {
        check_cancelled(progress, "repair")?;
        let Some(id) = path.filename().and_then(ObjectId::from_hex) else {
            continue;
        };
        if indexed.contains_key(&id) {
            continue;
        }
        let Ok(bytes) = block_on(repo.backend().get(&path)) else {
            continue;
        };
        if pack::pack_id(&bytes) != id {
            continue;
        }
        let Ok(blobs) = pack::read_trailer(&bytes, repo.codec()) else {
            continue;
        };
        file.packs
            .push(crate::format::IndexPack { id, size, blobs });
        count += 1;
        if file.packs.len() >= 256 {
            repo.write_index(&std::mem::take(&mut file))?;
        }
    }
    repo.write_index(&file)?;
    Ok(count)
}

fn snapshot_repair(
    manifest: &SnapshotManifest,
    risky: &HashSet<ObjectId>,
    lost: &HashSet<ObjectId>,
) -> Option<SnapshotRepair> {
    let files_needing = |chunks: &HashSet<ObjectId>| -> Vec<String> {
        manifest
            .files
            .iter()
            .filter(|f| f.chunks.iter().any(|c| chunks.contains(&c.id)))
            .map(|f| f.path.clone())
            .collect()
    };
    let affected = files_needing(risky);
    if affected.is_empty() {
        return None;
    }
    let unrestorable = files_needing(lost);
    Some(SnapshotRepair {
        graph_id: manifest.graph_id.clone(),
        snapshot_id: manifest.snapshot_id.clone(),
        time: manifest.time.clone(),
        affected_files: affected,
        healed: unrestorable.is_empty(),
        unrestorable_files: unrestorable,
    })
}
