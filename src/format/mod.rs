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
//! keys/<id>                            KeyObject: the master key wrapped under a password
//! graphs/<graph id>/key                a graph's own key, sealed under the master key
//! graphs/<graph id>/shredded           ShredRecord: the graph was shredded (graph_keys.rs)
//! ```
//!
//! Binary objects other than packs are framed as `MAGIC(4) | version(u8) | zstd(msgpack)`, the
//! body sealed in an encrypted repository ([`codec`] is the one layer that encodes and decodes
//! chunks and objects). Readers accept every version up to [`FORMAT_VERSION`]; golden fixtures
//! in `tests/fixtures` keep older versions readable.

pub mod codec;
pub mod config;
pub mod damage;
pub mod graph_key;
pub mod id;
pub mod index;
pub mod manifest;
pub mod pack;
pub mod paths;
pub mod prune;
pub mod recovery;

pub use codec::{ChunkEncoder, Codec};
pub use config::{ChunkerParams, EncryptionHeader, RepoConfig};
pub use damage::DamageRecord;
pub use id::{IdMap, ObjectId};
pub use index::{BlobEntry, IndexFile, IndexPack};
pub use manifest::{
    ChunkRef, FileEncoding, FileEntry, SnapshotManifest, DIVERGED_TAG, KEEP_TAG, PRE_RESTORE_TAG,
};
pub use prune::PruneMarker;
pub use recovery::{PointSnapshot, RecoveryPoint, ValidationRecord};

use crate::error::{Error, Result};

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
/// - 5: repositories may be encrypted ([`RepoConfig::encryption`], [`codec`]); a version-4
///   reader would take sealed objects for damage, so it must refuse them.
/// - 6: new encrypted repositories make chunk ids with keyed BLAKE3 (the config's
///   `encryption.chunk_id`, [`crate::keys::ChunkIds`]); a version-5 reader would check and
///   make them with HMAC-SHA256, so it must refuse them. Nothing else changed.
/// - 7: packs are named by the BLAKE3 of their bytes (their header's version byte says so,
///   [`pack::pack_id`]); a version-6 reader would take them for damaged packs, so it must refuse
///   them. Packs written before keep their SHA-256 names; nothing else changed.
pub const FORMAT_VERSION: u32 = 7;

/// The format's size limits. Every length read from a repository or a peer is checked against
/// these before anything is allocated or decompressed: a damaged or hostile object is then
/// reported as damage (an `Integrity` error naming it), never an allocation that aborts the
/// process. Each limit sits well above what a real writer produces and far below what would
/// exhaust a machine.
pub mod limits {
    /// The largest chunk a matrix row chunk is cut to (`snapshot.rs`): a row of 1,024 float32
    /// is 4 KiB.
    pub const MAX_ROW_CHUNK: u32 = 1 << 20;
    /// The largest chunk any repository may hold, whatever its config says (format version 1
    /// cut up to 4 MiB). Each repository's own limit is tighter:
    /// [`RepoConfig::max_chunk_len`](super::RepoConfig::max_chunk_len).
    pub const MAX_CHUNK: u32 = 16 << 20;
    /// A decoded (msgpack) snapshot manifest or index object: about 45 bytes per chunk, so
    /// 256 MiB lists about 6 million chunks (some 380 GB of graph at 64 KiB a chunk); the
    /// 1.2 GB bench graph's manifest is 9 MB.
    pub const MAX_MANIFEST: usize = 256 << 20;
    /// A decoded index object (about 60 bytes per chunk; prune merges many into one).
    pub const MAX_INDEX: usize = 256 << 20;
    /// A decoded pack trailer: a pack holds at most a few thousand chunks (about 45 bytes each).
    pub const MAX_TRAILER: usize = 16 << 20;
    /// Recovery points, validation records, prune markers, damage records, settings, lease
    /// slots: a few KiB in practice.
    pub const MAX_SMALL_OBJECT: usize = 16 << 20;
    // Any stored object read whole is at most `backend::MAX_WHOLE_OBJECT` (MAX_MANIFEST): a
    // compressed object is smaller than its decoded limit.

    /// The largest compressed length a chunk of `raw` bytes can have: zstd's worst case
    /// (`ZSTD_compressBound`) and a stored frame (`stored_frame`) both stay under it.
    pub const fn max_compressed(raw: u32) -> u64 {
        raw as u64 + raw as u64 / 128 + 1024
    }
}

/// How many times its stored size a metadata object may inflate to (plus 1 MiB). Metadata is
/// mostly random ids (chunk and pack SHA-256s), which do not compress: a real manifest or index
/// inflates about 1.2 times; only one whose chunk references are more than 99% the same chunk
/// would come near this.
const MAX_METADATA_RATIO: usize = 256;

/// The decoded-size limit of an object, by its magic.
fn limit_of(magic: &[u8; 4]) -> usize {
    if magic == manifest::MAGIC {
        limits::MAX_MANIFEST
    } else if magic == index::MAGIC {
        limits::MAX_INDEX
    } else {
        limits::MAX_SMALL_OBJECT
    }
}

/// Refuse a frame that declares (in its header) more than `limit` bytes, before inflating it.
fn refuse_declared_over(frame: &[u8], limit: usize) -> std::io::Result<()> {
    match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(declared)) if declared > limit as u64 => Err(std::io::Error::other(format!(
            "it declares {declared} bytes, more than the limit of {limit}"
        ))),
        _ => Ok(()),
    }
}

/// The decoder of every kind of stored object, as each operation reads it: bounded by the
/// format's [`limits`], ending in a typed error (`Integrity`, or `UnsupportedFormat` for a newer
/// version) for anything damaged or hostile, never a panic or an allocation from a claimed size.
/// Property tests (`tests/decoders.rs`) and the fuzz target (`fuzz/`) drive them.
pub mod decode {
    use super::*;

    fn decode_object<T: serde::de::DeserializeOwned>(
        magic: &[u8; 4],
        bytes: &[u8],
        what: &str,
    ) -> Result<T> {
        Codec::plain().decode_object(magic, "", bytes, what)
    }

    fn encode_object<T: serde::Serialize>(magic: &[u8; 4], value: &T) -> Result<Vec<u8>> {
        Codec::plain().encode_object(magic, "", value)
    }

    /// A snapshot manifest, with the checks a restore and a receive apply to its files.
    pub fn manifest(bytes: &[u8]) -> Result<SnapshotManifest> {
        let manifest: SnapshotManifest = decode_object(manifest::MAGIC, bytes, "manifest")?;
        manifest.check_files()?;
        Ok(manifest)
    }

    /// An index object, every entry within `max_chunk` and inside its pack.
    pub fn index(bytes: &[u8], max_chunk: u32) -> Result<IndexFile> {
        let file: IndexFile = decode_object(index::MAGIC, bytes, "index")?;
        for pack in &file.packs {
            for blob in &pack.blobs {
                pack::check_entry(blob, pack.size, max_chunk)
                    .map_err(|why| Error::integrity(format!("index: {why}")))?;
            }
        }
        Ok(file)
    }

    /// A pack's trailer (the pack's whole bytes).
    pub fn pack_trailer(bytes: &[u8]) -> Result<Vec<BlobEntry>> {
        pack::read_trailer(bytes, &Codec::plain())
    }

    /// A recovery point.
    pub fn recovery_point(bytes: &[u8]) -> Result<RecoveryPoint> {
        decode_object(recovery::MAGIC, bytes, "recovery point")
    }

    /// A validation record of a recovery point.
    pub fn validation(bytes: &[u8]) -> Result<ValidationRecord> {
        decode_object(recovery::VALIDATION_MAGIC, bytes, "validation record")
    }

    /// A prune marker.
    pub fn prune_marker(bytes: &[u8]) -> Result<PruneMarker> {
        decode_object(prune::MAGIC, bytes, "prune marker")
    }

    /// A damage record.
    pub fn damage_record(bytes: &[u8]) -> Result<DamageRecord> {
        decode_object(damage::MAGIC, bytes, "damage record")
    }

    /// Encode an object of one of the kinds above (for tests that mutate real encodings).
    pub fn encode_manifest(value: &SnapshotManifest) -> Result<Vec<u8>> {
        encode_object(manifest::MAGIC, value)
    }

    /// See [`encode_manifest`].
    pub fn encode_index(value: &IndexFile) -> Result<Vec<u8>> {
        encode_object(index::MAGIC, value)
    }

    /// See [`encode_manifest`].
    pub fn encode_recovery_point(value: &RecoveryPoint) -> Result<Vec<u8>> {
        encode_object(recovery::MAGIC, value)
    }
}

/// `data` as a zstd frame of raw (stored) blocks: what a compressor would emit for bytes it
/// cannot shrink, written without trying. Any zstd decoder reads it back at copy speed, so
/// the pack format does not change. Used for embedding matrices, whose float bytes compress
/// by 7% at 370 MB/s (zstd level 1-4 alike).
pub(crate) fn stored_frame(data: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(stored_frame_len(data.len()));
    stored_frame_into(data, &mut frame);
    frame
}

/// The length of the stored frame of `len` bytes.
pub(crate) fn stored_frame_len(len: usize) -> usize {
    9 + 3 * len.div_ceil(STORED_BLOCK).max(1) + len
}

/// The largest block of a stored frame (zstd's block size limit).
const STORED_BLOCK: usize = 128 * 1024;

/// Append the stored frame of `data` (see [`stored_frame`]) to `frame`.
pub(crate) fn stored_frame_into(data: &[u8], frame: &mut Vec<u8>) {
    frame.reserve(stored_frame_len(data.len()));
    frame.extend_from_slice(&0xFD2F_B528u32.to_le_bytes());
    // Frame header descriptor: 4-byte content size (flag 2), single segment (no window
    // descriptor), no checksum, no dictionary.
    frame.push(0b1010_0000);
    frame.extend_from_slice(&(data.len() as u32).to_le_bytes());
    let mut pieces = data.chunks(STORED_BLOCK).peekable();
    if pieces.peek().is_none() {
        frame.extend_from_slice(&[1, 0, 0]); // one empty raw block, the last
    }
    while let Some(piece) = pieces.next() {
        let last = u32::from(pieces.peek().is_none());
        let header = last | ((piece.len() as u32) << 3); // block type 0: raw
        frame.extend_from_slice(&header.to_le_bytes()[..3]);
        frame.extend_from_slice(piece);
    }
}

/// zstd-decompress a whole frame, refusing output larger than `limit`: memory grows with
/// what the frame really inflates to (never with a size it claims), up to `limit`.
pub(crate) fn decompress_bounded(data: &[u8], limit: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    // A frame that declares more than the limit is refused before anything is inflated.
    refuse_declared_over(data, limit)?;
    let mut decoder = zstd::stream::read::Decoder::new(data)?;
    let mut out = Vec::with_capacity(data.len().saturating_mul(4).min(limit).min(1 << 20));
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
