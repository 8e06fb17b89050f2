//! Packs: many compressed chunks in one object, self-describing so the index can be rebuilt
//! from packs alone.
//!
//! ```text
//! "LRBPACK" version(u8)                8-byte header
//! blob 0 | blob 1 | ...                zstd frames, one per chunk (each sealed when encrypted)
//! trailer                              zstd(msgpack(Vec<BlobEntry>)) (sealed when encrypted:
//!                                      chunk lengths are then hidden)
//! trailer length (u32 LE) | "LRBT"     8-byte footer
//! ```
//! A pack's id is the hash of all its bytes: SHA-256 for packs of format 6 and before, BLAKE3
//! from format 7 on (the version byte of its header says which: see [`pack_id`]).

use super::{decompress_bounded, limits, BlobEntry, Codec, ObjectId, FORMAT_VERSION};
use crate::error::{Error, Result};

const HEADER: &[u8; 7] = b"LRBPACK";
const FOOTER_MAGIC: &[u8; 4] = b"LRBT";
pub(crate) const HEADER_LEN: usize = 8;

/// Builds one pack in memory.
pub struct PackWriter {
    buffer: Vec<u8>,
    blobs: Vec<BlobEntry>,
    raw_bytes: u64,
}

impl Default for PackWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl PackWriter {
    pub fn new() -> Self {
        Self::with_buffer(Vec::with_capacity(1 << 20))
    }

    /// A writer filling `buffer` (cleared first): a packer hands back the buffers of packs it
    /// has stored, so a backup touches fresh memory for only the first few packs.
    pub fn with_buffer(mut buffer: Vec<u8>) -> Self {
        buffer.clear();
        buffer.extend_from_slice(HEADER);
        buffer.push(FORMAT_VERSION as u8);
        PackWriter {
            buffer,
            blobs: Vec::new(),
            raw_bytes: 0,
        }
    }

    /// Append a stored chunk (as its repository's [`Codec`] encoded it).
    pub fn add(&mut self, id: ObjectId, compressed: &[u8], raw_length: u32) {
        self.blobs.push(BlobEntry {
            id,
            offset: self.buffer.len() as u32,
            length: compressed.len() as u32,
            raw_length,
        });
        self.buffer.extend_from_slice(compressed);
        self.raw_bytes += raw_length as u64;
    }

    pub fn len(&self) -> usize {
        self.buffer.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }

    /// Finish the pack: returns its id, bytes and blob entries.
    pub fn finish(self, codec: &Codec) -> Result<(ObjectId, Vec<u8>, Vec<BlobEntry>)> {
        self.finish_avoiding(&std::collections::HashSet::new(), codec)
    }

    /// Finish the pack with an id that is none of `avoid`. Packs are content-addressed: the
    /// same chunks in the same order make the same pack, so re-storing the chunks of a damaged
    /// pack could "write" the very pack id whose object is damaged (and find it already
    /// there). Such a pack gets one extra chunk of random bytes, which changes its id; the
    /// chunk is valid, referenced by nothing, and dropped by a later repack.
    pub fn finish_avoiding(
        mut self,
        avoid: &std::collections::HashSet<ObjectId>,
        codec: &Codec,
    ) -> Result<(ObjectId, Vec<u8>, Vec<BlobEntry>)> {
        loop {
            let body = self.buffer.len();
            let id = self.seal(codec)?;
            if !avoid.contains(&id) {
                return Ok((id, self.buffer, self.blobs));
            }
            self.buffer.truncate(body);
            let nonce: [u8; 16] = rand::random();
            let id = codec.chunk_id(&nonce);
            let stored = codec.chunk_encoder(1)?.encode(&id, &nonce, false)?;
            self.add(id, &stored, nonce.len() as u32);
        }
    }

    /// Append the trailer and footer; returns the pack's id.
    fn seal(&mut self, codec: &Codec) -> Result<ObjectId> {
        let trailer = rmp_serde::to_vec(&self.blobs)
            .map_err(|e| Error::integrity(format!("cannot encode pack trailer: {e}")))?;
        let trailer = zstd::bulk::compress(&trailer, 3)
            .map_err(|e| Error::integrity(format!("cannot compress pack trailer: {e}")))?;
        let trailer = codec.seal_trailer(trailer);
        self.buffer.extend_from_slice(&trailer);
        self.buffer
            .extend_from_slice(&(trailer.len() as u32).to_le_bytes());
        self.buffer.extend_from_slice(FOOTER_MAGIC);
        Ok(pack_id(&self.buffer))
    }
}

/// The format from which packs are named by BLAKE3. SHA-256 over the 270 MB of packs of a
/// 387 MB graph's first backup was 9.7% of its CPU (`perf`), BLAKE3 hashes the same bytes
/// about three times as fast on one core (AVX2).
const BLAKE3_PACK_IDS: u8 = 7;

/// A pack's id: the hash of all its bytes, by the function of the format its header names
/// (SHA-256 before format 7, BLAKE3 from 7). Bytes too short to have a header hash with
/// SHA-256; they match no pack written by any version.
pub fn pack_id(pack: &[u8]) -> ObjectId {
    match pack.get(7) {
        Some(&version) if version >= BLAKE3_PACK_IDS && pack.starts_with(HEADER) => {
            ObjectId(*blake3::hash(pack).as_bytes())
        }
        _ => ObjectId::of(pack),
    }
}

/// Read the blob list from a whole pack's bytes, checking its framing (and, when encrypted,
/// that the trailer is authentic).
pub fn read_trailer(pack: &[u8], codec: &Codec) -> Result<Vec<BlobEntry>> {
    let bad = |why: &str| Error::integrity(format!("pack is malformed: {why}"));
    if pack.len() < HEADER_LEN + 8 || &pack[..7] != HEADER {
        return Err(bad("bad header"));
    }
    if pack[7] as u32 > FORMAT_VERSION || pack[7] == 0 {
        return Err(Error::UnsupportedFormat {
            found: pack[7] as u32,
            supported: FORMAT_VERSION,
        });
    }
    let footer = &pack[pack.len() - 8..];
    if &footer[4..] != FOOTER_MAGIC {
        return Err(bad("bad footer"));
    }
    let trailer_len = u32::from_le_bytes(footer[..4].try_into().unwrap()) as usize;
    if trailer_len > pack.len() - HEADER_LEN - 8 {
        return Err(bad("trailer length out of range"));
    }
    let trailer_start = pack.len() - 8 - trailer_len;
    let stored = codec.open_trailer(&pack[trailer_start..pack.len() - 8], pack[7])?;
    let trailer = decompress_bounded(&stored, limits::MAX_TRAILER)
        .map_err(|e| bad(&format!("trailer cannot be decompressed: {e}")))?;
    let blobs: Vec<BlobEntry> = rmp_serde::from_slice(&trailer)
        .map_err(|e| bad(&format!("trailer cannot be decoded: {e}")))?;
    for blob in &blobs {
        check_entry(blob, trailer_start as u64, limits::MAX_CHUNK).map_err(|why| bad(&why))?;
    }
    Ok(blobs)
}

/// Check a blob entry read from an index or a pack trailer against the format's limits
/// before anything is sized from it: its plaintext at most `max_chunk` (the repository's
/// largest chunk), its stored length what zstd could have made of that, and its bytes inside
/// the pack's data area (`data_end`: where the trailer starts, or the pack's size). Returns why
/// it is out of range.
pub fn check_entry(
    blob: &BlobEntry,
    data_end: u64,
    max_chunk: u32,
) -> std::result::Result<(), String> {
    let end = blob.offset as u64 + blob.length as u64;
    if blob.raw_length > max_chunk {
        Err(format!(
            "chunk {} claims {} bytes, more than the largest chunk ({max_chunk} bytes)",
            blob.id, blob.raw_length
        ))
    } else if blob.length as u64 > limits::max_compressed(blob.raw_length) {
        Err(format!(
            "chunk {} claims {} stored bytes for {} bytes of data",
            blob.id, blob.length, blob.raw_length
        ))
    } else if (blob.offset as usize) < HEADER_LEN || end > data_end {
        Err(format!("chunk {} lies outside the pack's data", blob.id))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack_of(chunks: &[&[u8]]) -> PackWriter {
        let codec = Codec::plain();
        let mut writer = PackWriter::new();
        for chunk in chunks {
            let id = codec.chunk_id(chunk);
            let stored = codec
                .chunk_encoder(1)
                .unwrap()
                .encode(&id, chunk, false)
                .unwrap();
            writer.add(id, &stored, chunk.len() as u32);
        }
        writer
    }

    #[test]
    fn packs_are_named_by_the_hash_their_header_names() {
        let codec = Codec::plain();
        let (id, bytes, _) = pack_of(&[b"one chunk"]).finish(&codec).unwrap();
        assert_eq!(bytes[7] as u32, FORMAT_VERSION);
        assert_eq!(id, ObjectId(*blake3::hash(&bytes).as_bytes()));
        // A pack of format 6 or before keeps its SHA-256 name.
        let mut old = bytes.clone();
        old[7] = 6;
        assert_eq!(pack_id(&old), ObjectId::of(&old));
        assert_ne!(pack_id(&old), pack_id(&bytes));
        // Too short for a header, or not a pack's header: SHA-256, matching no pack.
        assert_eq!(pack_id(b"LRB"), ObjectId::of(b"LRB"));
        let mut foreign = bytes.clone();
        foreign[0] = b'X';
        assert_eq!(pack_id(&foreign), ObjectId::of(&foreign));
    }

    #[test]
    fn a_pack_never_takes_an_id_it_must_avoid() {
        let codec = Codec::plain();
        let chunks: [&[u8]; 2] = [b"first chunk", b"second chunk"];
        let (damaged, _, _) = pack_of(&chunks).finish(&codec).unwrap();
        // The same chunks in the same order make the same pack, unless that id is avoided.
        assert_eq!(pack_of(&chunks).finish(&codec).unwrap().0, damaged);
        let avoid = std::collections::HashSet::from([damaged]);
        let (id, bytes, blobs) = pack_of(&chunks).finish_avoiding(&avoid, &codec).unwrap();
        assert_ne!(id, damaged);
        assert_eq!(pack_id(&bytes), id);
        assert_eq!(read_trailer(&bytes, &codec).unwrap(), blobs);
        assert_eq!(blobs.len(), 3, "the chunks and one nonce");
        for (blob, chunk) in blobs.iter().zip(chunks) {
            let start = blob.offset as usize;
            let stored = &bytes[start..start + blob.length as usize];
            assert_eq!(codec.open_chunk(blob, stored).unwrap(), chunk);
        }
        let nonce = &blobs[2];
        let start = nonce.offset as usize;
        assert!(codec
            .open_chunk(nonce, &bytes[start..start + nonce.length as usize])
            .is_ok());
    }
}
