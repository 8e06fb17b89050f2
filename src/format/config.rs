//! The repository's `config` object: what a reader must know before reading anything else.

use serde::{Deserialize, Serialize};

/// Content-defined chunking parameters (FastCDC 2020), fixed for the life of a repository so
/// that the same bytes always cut the same way and deduplicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
}

impl Default for ChunkerParams {
    /// 64 KiB on average: LightRAG's changes are scattered rows (a deleted entity removes one
    /// row from each vector matrix and one record from each JSON store), and each costs about
    /// one chunk. Format version 1 repositories used 1 MiB and keep it.
    fn default() -> Self {
        ChunkerParams {
            min_size: 16 * 1024,
            avg_size: 64 * 1024,
            max_size: 256 * 1024,
        }
    }
}

impl ChunkerParams {
    /// For decoded embedding matrices of new repositories whose rows cannot be told apart
    /// (see [`RepoConfig::matrix_rows_per_chunk`]): 4 KiB on average. LightRAG rewrites a few
    /// percent of the rows with last-bit float differences whenever a process reloads and
    /// saves a vector store, scattered over the whole matrix, and each such row costs about
    /// one chunk: at 8 KiB a change step of the 389 MB bench graph stored 33.7 MB, at 4 KiB
    /// 23.2 MB.
    pub fn matrix() -> Self {
        ChunkerParams {
            min_size: 1024,
            avg_size: 4 * 1024,
            max_size: 16 * 1024,
        }
    }

    /// What repositories of format version 2 and 3 created before the 4 KiB default use (8
    /// KiB on average), and what a config without `matrix_chunker` (format version 1) reads
    /// as. Kept by each repository for its life, like every chunker parameter.
    pub fn matrix_8k() -> Self {
        ChunkerParams {
            min_size: 2 * 1024,
            avg_size: 8 * 1024,
            max_size: 32 * 1024,
        }
    }
}

/// Stored as JSON so an operator can read it with `cat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoConfig {
    pub format_version: u32,
    pub repository_id: String,
    pub chunker: ChunkerParams,
    /// Chunking of decoded vector matrices (format 2) whose rows cannot be told apart (no
    /// `embedding_dim` in the file), or all of them when `matrix_rows_per_chunk` is 0.
    #[serde(default = "ChunkerParams::matrix_8k")]
    pub matrix_chunker: ChunkerParams,
    /// Format 4: decoded matrices are cut into chunks of exactly this many rows (1 for new
    /// repositories). A row is the unit LightRAG changes (one per entity or relation, and a
    /// few percent rewritten with last-bit differences whenever a process saves a vector
    /// store): as its own chunk it costs exactly its bytes, and it deduplicates wherever it
    /// moves when rows before it come and go. 0: content-defined, with `matrix_chunker`.
    #[serde(default)]
    pub matrix_rows_per_chunk: u32,
    pub compression: String,
    pub compression_level: i32,
    pub created_at: String,
    /// Format 5: how the repository is encrypted (absent: not encrypted). In an encrypted
    /// repository the stored `config` object is a [`SealedConfig`]: this header in the clear
    /// and the whole config sealed under the master key, which is what a reader trusts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<EncryptionHeader>,
    /// Every graph gets a key of its own at its first snapshot (`init --key-per-graph`), so
    /// any graph can be shredded (see `graph_keys.rs`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub key_per_graph: bool,
}

/// The public header of an encrypted repository: what a reader needs before it has a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptionHeader {
    /// `aes-256-gcm`.
    pub algorithm: String,
    /// How chunk ids are made ([`crate::keys::ChunkIds`]): `blake3-keyed` (format 6 on) or
    /// `hmac-sha256` (format 5). What counts is the sealed copy.
    pub chunk_id: String,
    /// Where the key objects are (`keys/`); each names its own KDF and parameters.
    pub keys: String,
}

impl EncryptionHeader {
    /// What this build writes for a key making chunk ids with `ids`.
    pub fn new(ids: crate::keys::ChunkIds) -> Self {
        EncryptionHeader {
            algorithm: "aes-256-gcm".to_string(),
            chunk_id: ids.name().to_string(),
            keys: format!("{}/", super::paths::KEYS),
        }
    }
}

/// The stored `config` of an encrypted repository: the public fields a reader needs to find
/// its keys, and the whole [`RepoConfig`] sealed (`sealed`, base64), which is what counts once
/// a key opened it (an altered public field changes nothing).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SealedConfig {
    pub format_version: u32,
    pub repository_id: String,
    pub encryption: EncryptionHeader,
    pub sealed: String,
}

impl RepoConfig {
    /// Whether `other` cuts files exactly as this repository does (so chunks deduplicate).
    pub fn chunks_like(&self, other: &RepoConfig) -> bool {
        (
            self.chunker,
            self.matrix_chunker,
            self.matrix_rows_per_chunk,
        ) == (
            other.chunker,
            other.matrix_chunker,
            other.matrix_rows_per_chunk,
        )
    }

    /// The largest chunk this repository's writers make: its chunkers' maximum, or a whole
    /// matrix row chunk. Lengths read from its index are checked against it.
    pub fn max_chunk_len(&self) -> u32 {
        let rows = if self.matrix_rows_per_chunk > 0 {
            super::limits::MAX_ROW_CHUNK
        } else {
            0
        };
        self.chunker
            .max_size
            .max(self.matrix_chunker.max_size)
            .max(rows)
    }

    /// The chunking parameters, as an error message names them.
    pub fn chunking(&self) -> String {
        format!(
            "chunker {:?}, matrices {}",
            self.chunker,
            match self.matrix_rows_per_chunk {
                0 => format!("{:?}", self.matrix_chunker),
                rows => format!("{rows} row(s) per chunk, else {:?}", self.matrix_chunker),
            }
        )
    }
}
