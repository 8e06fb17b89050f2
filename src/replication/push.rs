//! Pushing a graph's snapshots to another lightrag-backup instance over HTTP(S).
//!
//! The same plan and order as [`copy`](super::copy), negotiated with the target's receiving
//! endpoints (`/replication/receive/...`, behind its API key):
//!
//! 1. `GET info`: refuse an incompatible target (format, chunker parameters) before anything
//!    moves.
//! 2. `GET graphs/{id}/snapshots`: the snapshots it lacks, oldest first.
//! 3. `POST graphs/{id}/want` with batches of chunk ids: which it lacks.
//! 4. `POST packs`: those chunks as they are stored here (compressed, each checked against its
//!    id before it leaves), in packs, a few requests in flight; the target checks every chunk
//!    again before storing anything.
//! 5. `POST graphs/{id}/snapshots`: the manifest, last; the target commits it only when every
//!    chunk is there, and answers with the data hash of its copy, which must equal ours.
//! 6. `GET recovery-points`, then `POST recovery-points` for each recovery point naming the
//!    graph that the target lacks: it stores the point once every snapshot it names is there
//!    (the push of the point's last graph completes it).
//!
//! Every request carries this instance's fencing epoch; a target with a higher one refuses
//! (`fenced`), as does a target that is a primary (`target_is_primary`). Timeouts, connection
//! failures, 429 and 5xx are retried with exponential backoff and jitter; other refusals fail
//! at once. A cut push commits nothing half-way, and the next one sends only what is missing.

use super::conflict::{Plan, TargetSnapshot};
use super::copy::{read_checked, CopyOptions, CopyReport, SnapshotCopy};
pub use super::peer::InstanceTarget;
use super::peer::{routes, Peer};
use crate::error::{Error, Result};
use crate::fetch::{windows, Reads};
use crate::format::{codec::TRANSPORT_NAME, pack::PackWriter, ObjectId, SnapshotManifest};
use crate::packer::PACK_TARGET_SIZE;
use crate::progress::{check_cancelled, Progress};
use crate::repository::{BlobLocation, Repository};
use crate::runtime::block_on;
use bytes::Bytes;
use serde::Deserialize;
use std::collections::HashSet;
use std::time::Instant;

/// Chunk ids per "which are missing?" question.
const WANT_BATCH: usize = 4096;
/// Packs travel at most this large.
const PUSH_PACK_SIZE: usize = PACK_TARGET_SIZE;

#[derive(Deserialize)]
struct Info {
    format_version: u32,
    chunker: crate::format::ChunkerParams,
    matrix_chunker: crate::format::ChunkerParams,
    #[serde(default)]
    matrix_rows_per_chunk: u32,
    /// The public fingerprint of the target repository's key (absent: not encrypted).
    #[serde(default)]
    key_fingerprint: Option<String>,
}

#[derive(Deserialize)]
struct Snapshots {
    snapshots: Vec<TargetSnapshot>,
}

#[derive(Deserialize)]
struct Missing {
    missing: Vec<String>,
}

#[derive(Deserialize)]
struct Committed {
    status: String,
    data_hash: String,
}

/// Push the snapshots of `graph_id` the target lacks (or only `options.snapshot_ids`).
///
/// # Errors
/// `IncompatibleTarget` before anything moves; `Refused` (fenced, target is a primary, a
/// conflict) at once; `Backend` with [`BackendFailure::Auth`] for a wrong key, or transient
/// after the retries; `Integrity` when a chunk here does not match its id (nothing of that
/// snapshot is committed there) or the target's data hash differs; `Cancelled` when stopped.
pub fn push_graph(
    source: &Repository,
    target: &InstanceTarget,
    graph_id: &str,
    options: &CopyOptions,
    progress: &dyn Progress,
) -> Result<CopyReport> {
    let started = Instant::now();
    let client = Peer::new(target)?;
    // The repository's own reads block on the runtime: done here, outside the async part.
    let graph_key = graph_key_objects(source, graph_id)?;
    let wanted = super::copy::wanted(source, graph_id, options)?;
    let known = options.known(source, graph_id, &wanted)?;
    let points = if options.dry_run {
        Vec::new()
    } else {
        crate::recovery::points_of_graph(source, graph_id)?
    };
    source.refresh_index()?;
    block_on(async {
        let info: Info = client
            .json(
                reqwest::Method::GET,
                &routes::receive(routes::INFO, &[]),
                None,
            )
            .await?;
        let ours = source.config();
        let theirs = crate::format::RepoConfig {
            format_version: info.format_version,
            chunker: info.chunker,
            matrix_chunker: info.matrix_chunker,
            matrix_rows_per_chunk: info.matrix_rows_per_chunk,
            ..ours.clone()
        };
        if let Some(reason) =
            crate::repository::key_mismatch(source.codec().fingerprint(), info.key_fingerprint)
        {
            return Err(Error::IncompatibleTarget {
                target: target.base_url.clone(),
                reason,
            });
        }
        if info.format_version > crate::format::FORMAT_VERSION || !ours.chunks_like(&theirs) {
            return Err(Error::IncompatibleTarget {
                target: target.base_url.clone(),
                reason: format!(
                    "it has format version {} and {}; here {} and {}",
                    info.format_version,
                    theirs.chunking(),
                    crate::format::FORMAT_VERSION,
                    ours.chunking()
                ),
            });
        }
        if let Some(done) = send_graph_key(&client, graph_key, graph_id, options, started).await? {
            return Ok(done);
        }
        let present: Snapshots = client
            .json(
                reqwest::Method::GET,
                &routes::receive(routes::SNAPSHOTS, &[("graph_id", graph_id)]),
                None,
            )
            .await?;
        let ids: HashSet<String> = present
            .snapshots
            .iter()
            .map(|s| s.snapshot_id.clone())
            .collect();
        let mut plan = Plan::new(
            &target.base_url,
            graph_id,
            present.snapshots,
            &known,
            options.conflict_policy,
        )?;
        let mut report = CopyReport {
            graph_id: graph_id.to_string(),
            target: target.base_url.clone(),
            dry_run: options.dry_run,
            diverged: plan.diverged.clone(),
            ..Default::default()
        };
        for manifest in &wanted {
            check_cancelled(progress, "replicate")?;
            if ids.contains(&manifest.snapshot_id) {
                report.snapshots.push(SnapshotCopy::present(manifest));
                continue;
            }
            let outcome = push_snapshot(
                &client,
                source,
                manifest,
                &mut plan,
                options.dry_run,
                progress,
            )
            .await?;
            report.chunks_sent += outcome.chunks_sent;
            report.bytes_sent += outcome.bytes_sent;
            report.snapshots.push(outcome);
        }
        // Nothing new to commit, but the target diverged and the source wins: commit the
        // newest snapshot it already has again, which marks them.
        if let (false, false, Some(newest)) = (
            plan.diverged.is_empty(),
            options.dry_run,
            wanted.iter().rev().find(|m| ids.contains(&m.snapshot_id)),
        ) {
            commit(&client, source, newest, &mut plan).await?;
        }
        report.recovery_points = send_points(&client, source, &points).await?;
        report.duration_ms = started.elapsed().as_millis() as u64;
        Ok(report)
    })
}

/// A graph's shred record (when it was shredded) or its own key object (when it has one).
type GraphKeyObjects = (
    Option<(crate::format::graph_key::ShredRecord, Bytes)>,
    Option<Bytes>,
);

fn graph_key_objects(source: &Repository, graph_id: &str) -> Result<GraphKeyObjects> {
    Ok(match source.shred_record_object(graph_id)? {
        Some(shred) => (Some(shred), None),
        None => (None, source.graph_key_object(graph_id)?),
    })
}

/// A shredded graph's shred record, or a graph's own key, to the target before anything else:
/// the shred is all a shredded graph sends (the returned report); a key lets the target check
/// the graph's chunks.
async fn send_graph_key(
    client: &Peer,
    (shred, key): GraphKeyObjects,
    graph_id: &str,
    options: &CopyOptions,
    started: Instant,
) -> Result<Option<CopyReport>> {
    if let Some((record, bytes)) = shred {
        if !options.dry_run {
            client
                .send(
                    reqwest::Method::POST,
                    &routes::receive(routes::SHRED, &[("graph_id", graph_id)]),
                    Some((bytes, "application/octet-stream")),
                )
                .await?;
        }
        return Ok(Some(CopyReport {
            graph_id: graph_id.to_string(),
            target: client.target.base_url.clone(),
            dry_run: options.dry_run,
            shredded: Some(record.shredded_at),
            duration_ms: started.elapsed().as_millis() as u64,
            ..Default::default()
        }));
    }
    if let (Some(key), false) = (key, options.dry_run) {
        client
            .send(
                reqwest::Method::POST,
                &routes::receive(routes::GRAPH_KEY, &[("graph_id", graph_id)]),
                Some((key, "application/octet-stream")),
            )
            .await?;
    }
    Ok(None)
}

async fn push_snapshot(
    client: &Peer,
    source: &Repository,
    manifest: &SnapshotManifest,
    plan: &mut Plan,
    dry_run: bool,
    progress: &dyn Progress,
) -> Result<SnapshotCopy> {
    let graph_id = &manifest.graph_id;
    let mut ids: Vec<ObjectId> = Vec::new();
    let mut seen = HashSet::new();
    for chunk in manifest.files.iter().flat_map(|f| &f.chunks) {
        if seen.insert(chunk.id) {
            ids.push(chunk.id);
        }
    }
    let mut missing: Vec<BlobLocation> = Vec::new();
    for batch in ids.chunks(WANT_BATCH) {
        let body = serde_json::to_vec(&serde_json::json!({
            "chunks": batch.iter().map(ObjectId::to_hex).collect::<Vec<_>>()
        }))
        .expect("JSON serialises");
        let answer: Missing = client
            .json(
                reqwest::Method::POST,
                &routes::receive(routes::WANT, &[("graph_id", graph_id)]),
                Some((body.into(), "application/json")),
            )
            .await?;
        for hex in answer.missing {
            let id = ObjectId::from_hex(&hex)
                .ok_or_else(|| Error::invalid("the target named a chunk id that is not one"))?;
            let location = source.locate(&id).ok_or_else(|| {
                Error::integrity(format!(
                    "snapshot {}: chunk {id} is not in this repository's index (run verify / repair here)",
                    manifest.snapshot_id
                ))
            })?;
            missing.push(location);
        }
    }
    let mut outcome = SnapshotCopy::planned(manifest, &missing, dry_run);
    let bytes = outcome.bytes_sent;
    if dry_run {
        return Ok(outcome);
    }
    progress.start("replicate", bytes);
    let reads = Reads::for_backend(source.backend());
    let mut writer = PackWriter::new();
    let mut in_flight = futures::stream::FuturesUnordered::new();
    for window in windows(&missing, reads.window_bytes) {
        check_cancelled(progress, "replicate")?;
        for (entry, compressed) in
            read_checked(source, window, reads, &manifest.snapshot_id).await?
        {
            writer.add(entry.id, &compressed, entry.raw_length);
            progress.advance(entry.length as u64);
            if writer.len() >= PUSH_PACK_SIZE {
                let (_, packed, _) = std::mem::take(&mut writer).finish(source.codec())?;
                in_flight.push(send_pack(client, packed));
                while in_flight.len() >= 4 {
                    futures::StreamExt::next(&mut in_flight)
                        .await
                        .expect("one in flight")?;
                }
            }
        }
    }
    if !writer.is_empty() {
        let (_, packed, _) = writer.finish(source.codec())?;
        in_flight.push(send_pack(client, packed));
    }
    while let Some(sent) = futures::StreamExt::next(&mut in_flight).await {
        sent?;
    }
    progress.finish();
    let committed = commit(client, source, manifest, plan).await?;
    if committed.status == "present" {
        outcome.status = "present".into();
    }
    outcome.verified = committed.data_hash == manifest.data_hash.to_hex();
    outcome.data_hash = committed.data_hash;
    if !outcome.verified {
        return Err(Error::integrity(format!(
            "the target's copy of snapshot {} has data hash {}, not {}",
            manifest.snapshot_id, outcome.data_hash, manifest.data_hash
        )));
    }
    Ok(outcome)
}

/// Send the manifest, with the head the plan expects there and the snapshots it marks.
async fn commit(
    client: &Peer,
    source: &Repository,
    manifest: &SnapshotManifest,
    plan: &mut Plan,
) -> Result<Committed> {
    let encoded =
        source
            .codec()
            .encode_object(crate::format::manifest::MAGIC, TRANSPORT_NAME, manifest)?;
    let committed: Committed = client
        .json(
            reqwest::Method::POST,
            &format!(
                "{}?expected_head={}&diverged={}",
                routes::receive(routes::SNAPSHOTS, &[("graph_id", &manifest.graph_id)]),
                plan.expected_head().unwrap_or("none"),
                plan.diverged.join(",")
            ),
            Some((encoded.into(), "application/octet-stream")),
        )
        .await?;
    plan.committed(manifest);
    Ok(committed)
}

/// Offer the target the recovery points it lacks, after the snapshots: it stores each once
/// every snapshot the point names is there. Returns the ids it stored.
async fn send_points(
    client: &Peer,
    source: &Repository,
    points: &[crate::format::RecoveryPoint],
) -> Result<Vec<String>> {
    if points.is_empty() {
        return Ok(Vec::new());
    }
    #[derive(Deserialize)]
    struct Ids {
        checkpoint_ids: Vec<String>,
    }
    #[derive(Deserialize)]
    struct Received {
        status: String,
    }
    let have: Ids = client
        .json(
            reqwest::Method::GET,
            &routes::receive(routes::RECOVERY_POINTS, &[]),
            None,
        )
        .await?;
    let mut stored = Vec::new();
    for point in points {
        if have.checkpoint_ids.contains(&point.checkpoint_id) {
            continue;
        }
        let encoded = crate::recovery::encode_point(source, point)?;
        let received: Received = client
            .json(
                reqwest::Method::POST,
                &routes::receive(routes::RECOVERY_POINTS, &[]),
                Some((encoded.into(), "application/octet-stream")),
            )
            .await?;
        if received.status == "stored" {
            stored.push(point.checkpoint_id.clone());
        }
    }
    Ok(stored)
}

async fn send_pack(client: &Peer, packed: Vec<u8>) -> Result<()> {
    client
        .send(
            reqwest::Method::POST,
            &routes::receive(routes::PACKS, &[]),
            Some((packed.into(), "application/octet-stream")),
        )
        .await
        .map(|_| ())
}
