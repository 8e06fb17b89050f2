//! The receiving side of a push from another instance: which chunks are missing, packs whose
//! every chunk is checked before anything is stored, and the manifest last.
//!
//! A pushed pack is never stored as it came: its chunks are checked against their ids and
//! re-packed by this repository's own packer (which also keeps clear of pack ids this
//! repository knows to be damaged). One bad chunk refuses the whole pack.

use crate::error::{Error, Result};
use crate::format::{codec::TRANSPORT_NAME, pack, ObjectId, SnapshotManifest};
use crate::packer::Packer;
use crate::repository::{validate_graph_id, Repository};
use serde::Serialize;

/// The most chunk ids one "which are missing?" question may ask about.
pub const MAX_WANT: usize = 10_000;

/// The chunks of `ids` this repository does not hold in a healthy pack.
///
/// # Errors
/// `InvalidInput` for too many ids; `Backend` when the index cannot be refreshed.
pub fn missing_chunks(repo: &Repository, ids: &[ObjectId]) -> Result<Vec<ObjectId>> {
    if ids.len() > MAX_WANT {
        return Err(Error::invalid(format!(
            "at most {MAX_WANT} chunk ids per question, not {}",
            ids.len()
        )));
    }
    repo.refresh_index()?;
    Ok(ids
        .iter()
        .filter(|id| !repo.contains(id))
        .copied()
        .collect())
}

/// What a received pack added.
#[derive(Debug, Clone, Serialize)]
pub struct ReceivedPack {
    pub chunks: usize,
    pub bytes: u64,
}

/// Check and store a pushed pack.
///
/// # Errors
/// `Integrity` when its framing is broken or any chunk does not match its id (nothing of it
/// is stored); `Backend` when the store fails.
pub fn receive_pack(repo: &Repository, bytes: &[u8]) -> Result<ReceivedPack> {
    let blobs = pack::read_trailer(bytes, repo.codec()).map_err(|e| {
        Error::integrity(format!(
            "{}; the pack was refused, nothing was stored",
            e.detail()
        ))
    })?;
    let max_chunk = repo.config().max_chunk_len();
    for blob in &blobs {
        // Nothing is inflated past what this repository's chunks may be (a zstd bomb in a
        // small pack is refused by its claimed length, or by the bounded decompression).
        pack::check_entry(blob, bytes.len() as u64, max_chunk).map_err(|why| {
            Error::integrity(format!("{why}; the pack was refused, nothing was stored"))
        })?;
        let start = blob.offset as usize;
        let compressed = bytes
            .get(start..start + blob.length as usize)
            .ok_or_else(|| {
                Error::integrity("a chunk lies outside the pack; the pack was refused")
            })?;
        let opened = match repo.codec().open_chunk(blob, compressed) {
            // Sealed under a graph key this process has not read yet (another process here
            // received it): read the graph keys once more and try again.
            Err(error) if error.is_damage() && repo.codec().is_encrypted() => {
                repo.load_graph_keys()?;
                repo.codec().open_chunk(blob, compressed)
            }
            other => other,
        };
        opened.map_err(|e| {
            Error::integrity(format!(
                "{e}; the pack was refused, nothing of it was stored"
            ))
        })?;
    }
    let mut packer = Packer::new(repo);
    let mut stored = ReceivedPack {
        chunks: 0,
        bytes: 0,
    };
    for blob in &blobs {
        if repo.contains(&blob.id) {
            continue; // already here (a retry, or another graph's data)
        }
        let start = blob.offset as usize;
        packer.add(
            blob.id,
            &bytes[start..start + blob.length as usize],
            blob.raw_length,
        )?;
        stored.chunks += 1;
        stored.bytes += blob.length as u64;
    }
    repo.write_index(&packer.finish()?)?;
    Ok(stored)
}

/// The outcome of a pushed manifest.
#[derive(Debug, Clone, Serialize)]
pub struct ReceivedSnapshot {
    pub snapshot_id: String,
    /// `committed`, `present` when this repository had it already, or `conflict` when the
    /// graph's head here is not the one the push planned with (nothing was committed; see
    /// `message`).
    pub status: String,
    /// Why, for a conflict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The data hash of the copy here, computed from what this repository stores.
    pub data_hash: String,
    /// This repository's own snapshots the push marked diverged (`source_wins`).
    pub diverged: Vec<super::conflict::Diverged>,
}

/// Commit a pushed snapshot of `graph_id` (its encoded manifest): only once every chunk it
/// needs is stored here, and only onto the head the source planned with (`expected_head`;
/// the snapshots it names `diverged` are marked first: see [`super::conflict`]).
///
/// # Errors
/// `InvalidInput` for a manifest of another graph or a bad encoding; `Integrity` when chunks
/// are missing (nothing is committed: push them first); `Refused` (`conflict`) when the head
/// moved.
pub fn receive_snapshot(
    repo: &Repository,
    graph_id: &str,
    encoded: &[u8],
    expected_head: Option<&str>,
    diverged: &[String],
) -> Result<ReceivedSnapshot> {
    validate_graph_id(graph_id)?;
    let manifest: SnapshotManifest = repo
        .codec()
        .decode_object(
            crate::format::manifest::MAGIC,
            TRANSPORT_NAME,
            encoded,
            "pushed manifest",
        )
        .map_err(|e| {
            Error::invalid(format!(
                "the pushed manifest cannot be read: {}",
                e.detail()
            ))
        })?;
    if manifest.graph_id != graph_id {
        return Err(Error::invalid(format!(
            "the pushed manifest is of graph {:?}, not {graph_id:?}",
            manifest.graph_id
        )));
    }
    crate::repository::validate_snapshot_id(&manifest.snapshot_id)?;
    // The checks a manifest read from this repository gets, before anything is committed: a
    // peer's manifest becomes this standby's `latest`, and its restore must not be the first
    // to find out it is unusable.
    manifest
        .check_files()
        .map_err(|e| Error::invalid(format!("the pushed manifest was refused: {}", e.detail())))?;
    if SnapshotManifest::compute_data_hash(&manifest.files) != manifest.data_hash {
        return Err(Error::invalid(format!(
            "the pushed manifest was refused: snapshot {}'s data hash does not match its files",
            manifest.snapshot_id
        )));
    }
    repo.refresh_index()?;
    if let Some(chunk) = manifest.files.iter().flat_map(|f| &f.chunks).find(|c| {
        repo.locate(&c.id)
            .is_some_and(|at| at.entry.raw_length != c.length)
    }) {
        return Err(Error::invalid(format!(
            "the pushed manifest was refused: it gives chunk {} {} bytes, this repository holds it with another length",
            chunk.id, chunk.length
        )));
    }
    let missing = manifest
        .files
        .iter()
        .flat_map(|f| &f.chunks)
        .filter(|c| repo.locate(&c.id).is_none())
        .count();
    if missing > 0 {
        return Err(Error::integrity(format!(
            "{missing} chunk(s) of snapshot {} are not here yet; nothing was committed",
            manifest.snapshot_id
        )));
    }
    for id in diverged {
        crate::repository::validate_snapshot_id(id)?;
    }
    let diverged = match super::conflict::settle(
        repo,
        graph_id,
        &manifest.snapshot_id,
        expected_head,
        diverged,
    ) {
        Ok(diverged) => diverged,
        Err(Error::Refused { kind, message, .. }) if kind == "conflict" => {
            return Ok(ReceivedSnapshot {
                snapshot_id: manifest.snapshot_id,
                status: kind,
                message: Some(message),
                data_hash: String::new(),
                diverged: Vec::new(),
            })
        }
        Err(error) => return Err(error),
    };
    let status = match repo.write_snapshot(&manifest) {
        Ok(()) => {
            crate::compact::after_commit(repo);
            "committed"
        }
        Err(Error::InvalidInput { .. }) => "present",
        Err(error) => return Err(error),
    };
    Ok(ReceivedSnapshot {
        data_hash: SnapshotManifest::compute_data_hash(&manifest.files).to_hex(),
        snapshot_id: manifest.snapshot_id,
        status: status.to_string(),
        message: None,
        diverged,
    })
}

/// Store a graph's own key object pushed by the source (sealed under the master key both
/// share; checked to open here for this graph before it is written).
///
/// # Errors
/// `InvalidInput` when it does not open here (another key, damage); `Conflict` when the graph
/// has another key here.
pub fn receive_graph_key(repo: &Repository, graph_id: &str, bytes: &[u8]) -> Result<()> {
    repo.receive_graph_key(graph_id, bytes::Bytes::copy_from_slice(bytes))
        .map_err(|e| match e {
            Error::Integrity { message } => {
                Error::invalid(format!("the pushed graph key was refused: {message}"))
            }
            other => other,
        })
}

/// Apply a shred the source pushed (its shred record, sealed under the master key both share).
///
/// # Errors
/// `InvalidInput` when the record does not open here.
pub fn receive_shred(
    repo: &Repository,
    graph_id: &str,
    bytes: &[u8],
) -> Result<crate::graph_keys::ShredReport> {
    repo.receive_shred(graph_id, bytes).map_err(|e| match e {
        Error::Integrity { message } => {
            Error::invalid(format!("the pushed shred record was refused: {message}"))
        }
        other => other,
    })
}
