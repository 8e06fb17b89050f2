//! Copying a graph's snapshots from one repository into another.
//!
//! 1. Refuse a target that cannot take the chunks as they are (another format, other chunker
//!    parameters): nothing moves.
//! 2. Plan: the snapshots the target lacks (oldest first, so its newest ends up the source's
//!    newest), and for each the chunks the target does not hold in a healthy pack.
//! 3. Move those chunks as they are stored (compressed), read with ranged reads and checked
//!    against their SHA-256 ids before the target stores them, in packs, create-only.
//! 4. Write the target's index, then the manifest (create-only, same snapshot id): a snapshot
//!    exists on the target only once everything it needs does.
//! 5. Validate on the target: read the packs it stored back, check that every chunk of the
//!    copy is indexed there in a pack of the right size, and compare the copy's data hash with
//!    the source's.
//!
//! Resumable: a rerun plans again, and chunks an interrupted run already stored and indexed
//! are not sent twice (packs it left unindexed are reclaimed by a prune). Idempotent: a
//! snapshot the target already has is reported `present` at once.

use super::conflict::{self, ConflictPolicy, Known, Plan};
use crate::error::{Error, Result};
use crate::fetch::{spans, Reads};
use crate::format::{BlobEntry, SnapshotManifest};
use crate::packer::Packer;
use crate::progress::{check_cancelled, Progress};
use crate::repository::{pack_path, BlobLocation, Repository};
use crate::runtime::block_on;
use crate::verify::{verify_snapshots_with, VerifyOptions};
use bytes::Bytes;
use serde::Serialize;
use std::collections::HashSet;
use std::time::Instant;

/// Which snapshots to copy.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// Only these snapshots (ids, unique prefixes or `latest`); every one the target lacks
    /// when `None`.
    pub snapshot_ids: Option<Vec<String>>,
    /// Plan only: what would be sent.
    pub dry_run: bool,
    /// What the target does when its newest snapshot is not one this source sent.
    pub conflict_policy: ConflictPolicy,
    /// Snapshots this source's logs say it sent to the target before (id, data hash): they
    /// are not the target's own even when they were forgotten here since.
    pub sent: Vec<(String, String)>,
}

impl CopyOptions {
    /// What this source knows it sent to the target, `wanted` being its snapshots a copy
    /// considers (every one of the graph's when no ids were named).
    pub(crate) fn known(
        &self,
        source: &Repository,
        graph_id: &str,
        wanted: &[SnapshotManifest],
    ) -> Result<Known> {
        Ok(match self.snapshot_ids {
            None => Known::new(wanted, &self.sent),
            Some(_) => Known::new(&source.list_snapshots(graph_id)?, &self.sent),
        })
    }
}

/// What became of one snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotCopy {
    pub snapshot_id: String,
    pub time: String,
    /// `copied`, `present` (the target had it), or `planned` (a dry run).
    pub status: String,
    pub chunks_sent: usize,
    pub bytes_sent: u64,
    /// The data hash of the target's copy, computed from what it stores.
    pub data_hash: String,
    /// The target's copy has the source's data hash, and what was sent read back whole.
    pub verified: bool,
}

impl SnapshotCopy {
    /// A snapshot about to be sent: `missing` are the chunks the target lacks (`planned` in a
    /// dry run, `copied` once done).
    pub(crate) fn planned(
        manifest: &SnapshotManifest,
        missing: &[BlobLocation],
        dry_run: bool,
    ) -> SnapshotCopy {
        SnapshotCopy {
            snapshot_id: manifest.snapshot_id.clone(),
            time: manifest.time.clone(),
            status: if dry_run { "planned" } else { "copied" }.into(),
            chunks_sent: missing.len(),
            bytes_sent: missing.iter().map(|l| l.entry.length as u64).sum(),
            data_hash: String::new(),
            verified: false,
        }
    }

    /// A snapshot the target already has.
    pub(crate) fn present(manifest: &SnapshotManifest) -> SnapshotCopy {
        SnapshotCopy {
            snapshot_id: manifest.snapshot_id.clone(),
            time: manifest.time.clone(),
            status: "present".into(),
            chunks_sent: 0,
            bytes_sent: 0,
            data_hash: manifest.data_hash.to_hex(),
            verified: true,
        }
    }
}

/// The snapshots a copy or push considers, oldest first: `options.snapshot_ids`, or all.
pub(crate) fn wanted(
    source: &Repository,
    graph_id: &str,
    options: &CopyOptions,
) -> Result<Vec<SnapshotManifest>> {
    Ok(match &options.snapshot_ids {
        Some(ids) => {
            let mut found = ids
                .iter()
                .map(|id| source.load_snapshot(graph_id, id))
                .collect::<Result<Vec<_>>>()?;
            found.sort_by(|a, b| (&a.time, &a.snapshot_id).cmp(&(&b.time, &b.snapshot_id)));
            found.dedup_by(|a, b| a.snapshot_id == b.snapshot_id);
            found
        }
        None => source.list_snapshots(graph_id)?,
    })
}

/// What a copy did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CopyReport {
    pub graph_id: String,
    pub target: String,
    pub dry_run: bool,
    pub snapshots: Vec<SnapshotCopy>,
    pub chunks_sent: usize,
    pub bytes_sent: u64,
    pub duration_ms: u64,
    /// The target's own snapshots this copy found diverged (and, unless a dry run, tagged
    /// `diverged` under the `source_wins` policy).
    pub diverged: Vec<String>,
    /// The recovery points naming this graph that the copy completed on the target (sent
    /// once every snapshot they name is there).
    pub recovery_points: Vec<String>,
    /// When the graph was shredded, if it was: the copy carried the shred to the target (its
    /// key, snapshots and claim deleted there) and sent nothing else.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shredded: Option<String>,
}

/// Copy the snapshots of `graph_id` from `source` into `target`, chunks as stored: see the
/// module documentation ([`super::copy_graph`] chooses between this and re-encrypting).
///
/// # Errors
/// `IncompatibleTarget` before anything moves; `SnapshotNotFound` for an unknown id;
/// `Integrity` when a source chunk does not match its id (nothing of that snapshot is
/// committed on the target) or the target's copy does not verify; `Backend` when a store fails
/// (retry: the next run sends only what is still missing); `Cancelled` when stopped.
pub fn copy_as_stored(
    source: &Repository,
    target: &Repository,
    graph_id: &str,
    options: &CopyOptions,
    progress: &dyn Progress,
) -> Result<CopyReport> {
    let started = Instant::now();
    source.check_compatible(target)?;
    let mut report = CopyReport {
        graph_id: graph_id.to_string(),
        target: target.backend().location().to_string(),
        dry_run: options.dry_run,
        ..Default::default()
    };
    // A shredded graph: the shred travels, nothing else does.
    if let Some((record, _)) = source.shred_record_object(graph_id)? {
        if !options.dry_run {
            target.apply_shred(&record)?;
            target.delete_graph_objects(graph_id)?;
        }
        report.shredded = Some(record.shredded_at);
        report.duration_ms = started.elapsed().as_millis() as u64;
        return Ok(report);
    }
    // A graph with a key of its own: the target (which shares the master key) gets it first.
    if !options.dry_run {
        if let Some(key) = source.graph_key_object(graph_id)? {
            target.receive_graph_key(graph_id, key)?;
        }
    }
    let wanted = wanted(source, graph_id, options)?;
    let listed = conflict::listing(target, graph_id)?;
    let present: HashSet<String> = listed.iter().map(|s| s.snapshot_id.clone()).collect();
    let known = options.known(source, graph_id, &wanted)?;
    let mut plan = Plan::new(
        &report.target,
        graph_id,
        listed,
        &known,
        options.conflict_policy,
    )?;
    report.diverged = plan.diverged.clone();
    source.refresh_index()?;
    target.refresh_index()?;
    for manifest in &wanted {
        check_cancelled(progress, "replicate")?;
        if present.contains(&manifest.snapshot_id) {
            report.snapshots.push(SnapshotCopy::present(manifest));
            continue;
        }
        let outcome = copy_snapshot(
            source,
            target,
            manifest,
            &mut plan,
            options.dry_run,
            progress,
        )?;
        report.chunks_sent += outcome.chunks_sent;
        report.bytes_sent += outcome.bytes_sent;
        report.snapshots.push(outcome);
    }
    // Nothing new to commit, but the target diverged and the source wins: mark it now.
    if !plan.diverged.is_empty() && !options.dry_run {
        let newest = wanted.last().map_or("", |m| m.snapshot_id.as_str());
        conflict::mark_diverged(target, graph_id, &plan.diverged, newest)?;
    }
    if !options.dry_run {
        report.recovery_points = crate::recovery::copy_points(source, target, graph_id)?;
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// The chunks of one window as `source` stores them (compressed), each checked against its id
/// first: damage never travels. Copy and push both send what this returns.
///
/// # Errors
/// `Integrity` for a chunk that does not match its id or a pack shorter than the index says;
/// `Backend` when the store fails.
pub(crate) async fn read_checked(
    source: &Repository,
    window: &[BlobLocation],
    reads: Reads,
    snapshot_id: &str,
) -> Result<Vec<(BlobEntry, Bytes)>> {
    let mut out = Vec::with_capacity(window.len());
    for span in spans(window, reads) {
        let data = source
            .backend()
            .get_range(&pack_path(&span.pack), span.start..span.end)
            .await?;
        for &member in &span.members {
            let entry = window[member].entry;
            let offset = (entry.offset as u64 - span.start) as usize;
            let end = offset + entry.length as usize;
            if end > data.len() {
                return Err(Error::integrity(format!(
                    "pack {} is shorter than the source's index says",
                    span.pack
                )));
            }
            let compressed = data.slice(offset..end);
            source.codec().open_chunk(&entry, &compressed).map_err(|e| {
                Error::integrity(format!(
                    "{e} (in the source's pack {}; nothing of snapshot {snapshot_id} was committed on the target)",
                    span.pack
                ))
            })?;
            out.push((entry, compressed));
        }
    }
    Ok(out)
}

/// The chunks of `manifest` that `target` lacks, where the source keeps them.
fn missing_chunks(
    source: &Repository,
    target: &Repository,
    manifest: &SnapshotManifest,
) -> Result<Vec<BlobLocation>> {
    let mut seen = HashSet::new();
    let mut missing = Vec::new();
    for chunk in manifest.files.iter().flat_map(|f| &f.chunks) {
        if !seen.insert(chunk.id) || target.contains(&chunk.id) {
            continue;
        }
        let location = source.locate(&chunk.id).ok_or_else(|| {
            Error::integrity(format!(
                "snapshot {}: chunk {} is not in the source repository's index (run verify / repair there)",
                manifest.snapshot_id, chunk.id
            ))
        })?;
        missing.push(location);
    }
    Ok(missing)
}

fn copy_snapshot(
    source: &Repository,
    target: &Repository,
    manifest: &SnapshotManifest,
    plan: &mut Plan,
    dry_run: bool,
    progress: &dyn Progress,
) -> Result<SnapshotCopy> {
    let missing = missing_chunks(source, target, manifest)?;
    let mut outcome = SnapshotCopy::planned(manifest, &missing, dry_run);
    let bytes = outcome.bytes_sent;
    if dry_run {
        return Ok(outcome);
    }
    progress.start("replicate", bytes);
    let mut packer = Packer::new(target);
    let reads = Reads::for_backend(source.backend());
    for window in crate::fetch::windows(&missing, reads.window_bytes) {
        check_cancelled(progress, "replicate")?;
        for (entry, compressed) in
            block_on(read_checked(source, window, reads, &manifest.snapshot_id))?
        {
            packer.add(entry.id, &compressed, entry.raw_length)?;
            progress.advance(entry.length as u64);
        }
    }
    let sent = packer.finish()?;
    // Read what was stored back: each pack must hash to its name (its chunks were checked
    // against their ids before it was written).
    for written in &sent.packs {
        let stored = block_on(target.backend().get(&pack_path(&written.id)))?;
        if crate::format::pack::pack_id(&stored) != written.id {
            return Err(Error::integrity(format!(
                "the target stored pack {} damaged; nothing of snapshot {} was committed",
                written.id, manifest.snapshot_id
            )));
        }
    }
    target.write_index(&sent)?;
    progress.finish();
    // Everything the manifest needs is on the target now; only then does the snapshot exist.
    if let Some(chunk) = manifest
        .files
        .iter()
        .flat_map(|f| &f.chunks)
        .find(|c| target.locate(&c.id).is_none())
    {
        return Err(Error::integrity(format!(
            "chunk {} of snapshot {} did not reach the target; nothing was committed",
            chunk.id, manifest.snapshot_id
        )));
    }
    conflict::settle(
        target,
        &manifest.graph_id,
        &manifest.snapshot_id,
        plan.expected_head(),
        &plan.diverged,
    )?;
    match target.write_snapshot(manifest) {
        Ok(()) => {
            crate::compact::after_commit(target);
        }
        // Committed meanwhile by another copy of the same snapshot: the same bytes.
        Err(Error::InvalidInput { .. }) => outcome.status = "present".into(),
        Err(error) => return Err(error),
    }
    plan.committed(manifest);
    let copy = target.load_snapshot(&manifest.graph_id, &manifest.snapshot_id)?;
    // Every chunk indexed on the target, every pack there at its size (the packs just sent
    // were read back above; the rest were checked when they arrived earlier).
    let check = verify_snapshots_with(
        target,
        std::slice::from_ref(&copy),
        VerifyOptions {
            read_data: false,
            read_data_subset: None,
        },
        progress,
        true,
    )?;
    let hash = SnapshotManifest::compute_data_hash(&copy.files);
    outcome.data_hash = hash.to_hex();
    outcome.verified = check.ok && hash == manifest.data_hash;
    if !outcome.verified {
        return Err(Error::integrity(format!(
            "the target's copy of snapshot {} does not verify: {}",
            manifest.snapshot_id,
            if check.ok {
                "its data hash differs from the source's".to_string()
            } else {
                check.errors.join("; ")
            }
        )));
    }
    Ok(outcome)
}
