//! The on-disk format of a repository, version by version.
//!
//! Layout (every object immutable, written create-only, in the order packs -> index ->
//! manifest, so a crash at any point leaves a valid repository; [`paths`] names every path):
//!
//! ```text
//! config                               RepoConfig, JSON (format version, chunker, compression)
//! data/<2 hex>/<64 hex pack id>        packs: zstd blobs + a trailer listing them (see pack.rs)
//! index/<64 hex>                       IndexFile: which chunk lives where
//! snapshots/<graph id>/<snapshot id>   SnapshotManifest: the files of one snapshot
//! prune/<uuid>                         PruneMarker: packs a prune will delete after its grace
//! locks/prune                          the running prune's lock
//! damaged/<uuid>                       DamageRecord: packs a verify found damaged
//! recovery/<id>/point                  RecoveryPoint: one snapshot per graph, taken together
//! recovery/<id>/validations/<version>  ValidationRecord: what a validation of the point found
//! ```
//!
//! Binary objects other than packs are framed as `MAGIC(4) | version(u8) | zstd(msgpack)`.
//! Readers accept every version up to [`FORMAT_VERSION`]; a golden fixture in
//! `tests/fixtures` keeps version 1 readable.

pub mod config;
pub mod damage;
pub mod id;
pub mod index;
pub mod manifest;
pub mod pack;
pub mod paths;
pub mod prune;
pub mod recovery;

pub use config::{ChunkerParams, RepoConfig};
pub use damage::DamageRecord;
pub use id::{IdMap, ObjectId};
pub use index::{BlobEntry, IndexFile, IndexPack};
pub use manifest::{
    ChunkRef, FileEncoding, FileEntry, SnapshotManifest, DIVERGED_TAG, KEEP_TAG, PRE_RESTORE_TAG,
};
pub use prune::PruneMarker;
pub use recovery::{PointSnapshot, RecoveryPoint, ValidationRecord};

use crate::error::{Error, Result};
use serde::{de::DeserializeOwned, Serialize};

/// The newest repository format this build writes and reads.
///
/// - 1: raw files only.
/// - 2: manifests may store NanoVectorDB files with their matrix decoded
///   ([`FileEncoding::NanoVdbMatrix`]); a version-1 reader must refuse them.
/// - 3: files record their owner and group ([`FileEntry::uid`], [`FileEntry::gid`]); a
///   version-2 reader would restore them without, so it must refuse them too.
/// - 4: new repositories cut decoded matrices one row per chunk
///   ([`RepoConfig::matrix_rows_per_chunk`]); a version-3 writer would ignore that and cut
///   them otherwise (nothing would deduplicate), so it must refuse such a repository.
pub const FORMAT_VERSION: u32 = 4;

const ZSTD_LEVEL_METADATA: i32 = 3;

/// Encode a metadata object (index, manifest) with its magic and version.
pub(crate) fn encode_object<T: Serialize>(magic: &[u8; 4], value: &T) -> Result<Vec<u8>> {
    let packed = rmp_serde::to_vec_named(value)
        .map_err(|e| Error::integrity(format!("cannot encode {}: {e}", magic_name(magic))))?;
    let compressed = zstd::bulk::compress(&packed, ZSTD_LEVEL_METADATA)
        .map_err(|e| Error::integrity(format!("cannot compress {}: {e}", magic_name(magic))))?;
    let mut out = Vec::with_capacity(5 + compressed.len());
    out.extend_from_slice(magic);
    out.push(FORMAT_VERSION as u8);
    out.extend_from_slice(&compressed);
    Ok(out)
}

/// Decode an object written by [`encode_object`]; `what` names it in errors.
pub(crate) fn decode_object<T: DeserializeOwned>(
    magic: &[u8; 4],
    bytes: &[u8],
    what: &str,
) -> Result<T> {
    if bytes.len() < 5 || &bytes[..4] != magic {
        return Err(Error::integrity(format!(
            "{what} is not a {} object (bad magic)",
            magic_name(magic)
        )));
    }
    let version = bytes[4] as u32;
    if version == 0 || version > FORMAT_VERSION {
        return Err(Error::UnsupportedFormat {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let packed = decompress_bounded(&bytes[5..], 1 << 30)
        .map_err(|e| Error::integrity(format!("{what} cannot be decompressed: {e}")))?;
    rmp_serde::from_slice(&packed)
        .map_err(|e| Error::integrity(format!("{what} cannot be decoded: {e}")))
}

/// `data` as a zstd frame of raw (stored) blocks: what a compressor would emit for bytes it
/// cannot shrink, written without trying. Any zstd decoder reads it back at copy speed, so
/// the pack format does not change. Used for embedding matrices, whose float bytes compress
/// by 7% at 370 MB/s (zstd level 1-4 alike).
pub(crate) fn stored_frame(data: &[u8]) -> Vec<u8> {
    const MAX_BLOCK: usize = 128 * 1024;
    let blocks = data.len().div_ceil(MAX_BLOCK).max(1);
    let mut frame = Vec::with_capacity(9 + 3 * blocks + data.len());
    frame.extend_from_slice(&0xFD2F_B528u32.to_le_bytes());
    // Frame header descriptor: 4-byte content size (flag 2), single segment (no window
    // descriptor), no checksum, no dictionary.
    frame.push(0b1010_0000);
    frame.extend_from_slice(&(data.len() as u32).to_le_bytes());
    let mut pieces = data.chunks(MAX_BLOCK).peekable();
    if pieces.peek().is_none() {
        frame.extend_from_slice(&[1, 0, 0]); // one empty raw block, the last
    }
    while let Some(piece) = pieces.next() {
        let last = u32::from(pieces.peek().is_none());
        let header = last | ((piece.len() as u32) << 3); // block type 0: raw
        frame.extend_from_slice(&header.to_le_bytes()[..3]);
        frame.extend_from_slice(piece);
    }
    frame
}

/// zstd-decompress a whole frame, refusing output larger than `limit`.
pub(crate) fn decompress_bounded(data: &[u8], limit: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut decoder = zstd::stream::read::Decoder::new(data)?;
    let mut out = Vec::new();
    (&mut decoder)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)?;
    if out.len() > limit {
        return Err(std::io::Error::other("decompressed size exceeds limit"));
    }
    Ok(out)
}

fn magic_name(magic: &[u8; 4]) -> String {
    String::from_utf8_lossy(magic).into_owned()
}

#[cfg(test)]
mod stored_frame_tests {
    use super::*;

    #[test]
    fn stored_frames_decode_with_zstd() {
        for size in [0usize, 1, 255, 256, 65_791, 131_072, 131_073, 300_000] {
            let data: Vec<u8> = (0..size).map(|i| (i * 7 + i / 251) as u8).collect();
            let frame = stored_frame(&data);
            assert_eq!(
                decompress_bounded(&frame, size).unwrap(),
                data,
                "size {size}"
            );
            let exact = zstd::bulk::Decompressor::new()
                .unwrap()
                .decompress(&frame, size)
                .unwrap();
            assert_eq!(exact, data, "size {size}");
            assert_eq!(
                zstd::zstd_safe::get_frame_content_size(&frame).unwrap(),
                Some(size as u64)
            );
        }
    }
}
