//! Re-encrypting: copying a graph's snapshots from an unencrypted repository (format 1-4, or
//! one made with `--encryption none`) into an encrypted one.
//!
//! The chunks cannot move as stored: the target's chunk ids are keyed and its chunker cuts
//! with a secret, so the same bytes make other chunks there. Each snapshot the target lacks,
//! oldest first, is restored from the source (every chunk checked against its id) into a
//! private scratch folder and snapshotted into the target under the same snapshot id, time,
//! host, description, tags and metadata, then checked there. Dedup holds within the target
//! (each snapshot stores only what the ones before it did not), and a rerun copies only the
//! snapshots still missing. The recovery points naming the graph follow, with the data hashes
//! of the target's copies.

use super::copy::{wanted, CopyOptions, CopyReport, SnapshotCopy};
use crate::error::{Error, Result};
use crate::format::{RecoveryPoint, SnapshotManifest};
use crate::progress::{check_cancelled, Progress};
use crate::repository::Repository;
use crate::snapshot::{create_snapshot, Reissue, SnapshotOptions};
use crate::verify::{verify_snapshots_with, VerifyOptions};
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

/// A private scratch folder, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let path = std::env::temp_dir().join(format!(
            "lightrag-backup-reencrypt-{}",
            uuid::Uuid::new_v4()
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|e| Error::io("create", &path, e))?;
        Ok(Scratch(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether a copy from `source` to `target` re-encrypts (see the module documentation).
pub fn reencrypts(source: &Repository, target: &Repository) -> bool {
    !source.codec().is_encrypted() && target.codec().is_encrypted()
}

/// Copy the snapshots of `graph_id` that `target` lacks from the unencrypted `source` into the
/// encrypted `target`, re-chunking and sealing them there (see the module documentation).
///
/// # Errors
/// `SnapshotNotFound` for an unknown id; `Integrity` when a source chunk does not match its id
/// (nothing of that snapshot is written) or the target's copy does not verify; `Backend` when a
/// store fails (a rerun copies what is still missing); `Cancelled` when stopped.
pub fn reencrypt_graph(
    source: &Repository,
    target: &Repository,
    graph_id: &str,
    options: &CopyOptions,
    progress: &dyn Progress,
) -> Result<CopyReport> {
    let started = Instant::now();
    let mut report = CopyReport {
        graph_id: graph_id.to_string(),
        target: target.backend().location().to_string(),
        dry_run: options.dry_run,
        ..Default::default()
    };
    let present: HashSet<String> = target
        .list_snapshot_names(Some(graph_id))?
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    for manifest in &wanted(source, graph_id, options)? {
        check_cancelled(progress, "replicate")?;
        if present.contains(&manifest.snapshot_id) {
            let mut copy = SnapshotCopy::present(manifest);
            copy.data_hash = target
                .load_snapshot(graph_id, &manifest.snapshot_id)?
                .data_hash
                .to_hex();
            report.snapshots.push(copy);
            continue;
        }
        let outcome = if options.dry_run {
            SnapshotCopy {
                snapshot_id: manifest.snapshot_id.clone(),
                time: manifest.time.clone(),
                status: "planned".into(),
                chunks_sent: 0,
                bytes_sent: manifest.logical_size,
                data_hash: String::new(),
                verified: false,
            }
        } else {
            reencrypt_snapshot(source, target, manifest, progress)?
        };
        report.chunks_sent += outcome.chunks_sent;
        report.bytes_sent += outcome.bytes_sent;
        report.snapshots.push(outcome);
    }
    if !options.dry_run {
        report.recovery_points = copy_points(source, target, graph_id)?;
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

fn reencrypt_snapshot(
    source: &Repository,
    target: &Repository,
    manifest: &SnapshotManifest,
    progress: &dyn Progress,
) -> Result<SnapshotCopy> {
    let scratch = Scratch::new()?;
    let folder = scratch.0.join("graph");
    let plan = crate::restore::plan_restore(source, manifest, &folder)?;
    crate::restore::execute_restore(source, &plan, progress)?;
    let metadata = match serde_json::from_str(&manifest.metadata_json) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => Default::default(),
    };
    let options = SnapshotOptions {
        description: manifest.description.clone(),
        tags: manifest.tags.clone(),
        metadata,
        adopt: true, // the source's history, as it is: not a new folder claiming the id
        reissue: Some(Reissue {
            snapshot_id: manifest.snapshot_id.clone(),
            time: manifest.time.clone(),
            hostname: manifest.hostname.clone(),
        }),
        ..Default::default()
    };
    let copy = create_snapshot(target, &manifest.graph_id, &folder, &options, progress)?;
    same_files(manifest, &copy)?;
    // Every chunk indexed on the target, every pack there at its size.
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
    if !check.ok {
        return Err(Error::integrity(format!(
            "the target's re-encrypted copy of snapshot {} does not verify: {}",
            manifest.snapshot_id,
            check.errors.join("; ")
        )));
    }
    Ok(SnapshotCopy {
        snapshot_id: copy.snapshot_id.clone(),
        time: copy.time.clone(),
        status: "copied".into(),
        chunks_sent: copy.files.iter().map(|f| f.chunks.len()).sum(),
        bytes_sent: copy.added_size,
        data_hash: copy.data_hash.to_hex(),
        verified: true,
    })
}

/// The copy holds the source's files, byte for byte as far as names, sizes and modes tell (the
/// bytes themselves were checked chunk by chunk as they were restored, and are what the copy
/// read).
fn same_files(source: &SnapshotManifest, copy: &SnapshotManifest) -> Result<()> {
    let shape = |m: &SnapshotManifest| -> Vec<(String, u64, u32)> {
        let mut files: Vec<_> = m
            .files
            .iter()
            .map(|f| (f.path.clone(), f.size, f.mode & 0o775))
            .collect();
        files.sort();
        files
    };
    if shape(source) != shape(copy) {
        return Err(Error::integrity(format!(
            "the re-encrypted copy of snapshot {} does not hold the same files",
            source.snapshot_id
        )));
    }
    Ok(())
}

/// The recovery points naming `graph_id` that `target` lacks, each stored there once every
/// snapshot it names is, with the data hashes of the target's copies.
fn copy_points(source: &Repository, target: &Repository, graph_id: &str) -> Result<Vec<String>> {
    let have: HashSet<String> = crate::recovery::point_ids(target)?.into_iter().collect();
    let mut stored = Vec::new();
    for point in crate::recovery::points_of_graph(source, graph_id)? {
        if have.contains(&point.checkpoint_id) {
            continue;
        }
        let Some(point) = rehashed(target, point)? else {
            continue; // a snapshot it names is not on the target yet: its graph's copy sends it
        };
        let encoded = crate::recovery::encode_point(target, &point)?;
        let received = crate::recovery::receive_point(target, &encoded)?;
        if received.status == "stored" {
            stored.push(received.checkpoint_id);
        }
    }
    Ok(stored)
}

/// `point` with the data hash of the target's copy of each snapshot it names (`None` while one
/// is missing there).
fn rehashed(target: &Repository, mut point: RecoveryPoint) -> Result<Option<RecoveryPoint>> {
    for (graph_id, named) in point.graphs.iter_mut() {
        match target.load_snapshot(graph_id, &named.snapshot_id) {
            Ok(copy) if copy.snapshot_id == named.snapshot_id => named.data_hash = copy.data_hash,
            Ok(_) | Err(Error::SnapshotNotFound { .. }) => return Ok(None),
            Err(other) => return Err(other),
        }
    }
    Ok(Some(point))
}
