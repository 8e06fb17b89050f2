//! Index files: where each chunk is stored.

use super::ObjectId;
use serde::{Deserialize, Serialize};

/// One compressed chunk inside a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobEntry {
    /// SHA-256 of the chunk's plaintext.
    pub id: ObjectId,
    /// Byte offset of the compressed blob inside the pack.
    pub offset: u32,
    /// Compressed length.
    pub length: u32,
    /// Plaintext length.
    pub raw_length: u32,
}

/// The blobs of one pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexPack {
    pub id: ObjectId,
    /// Size of the whole pack object.
    pub size: u64,
    pub blobs: Vec<BlobEntry>,
}

/// `index/<sha256 of the encoded object>`: the packs written by one operation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexFile {
    pub packs: Vec<IndexPack>,
}

pub(crate) const MAGIC: &[u8; 4] = b"LRBI";
