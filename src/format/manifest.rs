//! Snapshot manifests: the files of one snapshot and the chunks they are made of.

use super::ObjectId;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// One chunk of a file, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef {
    pub id: ObjectId,
    pub length: u32,
}

/// How a file's bytes map to its chunks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileEncoding {
    /// The chunks, in order, are the file's bytes.
    #[default]
    Raw,
    /// A NanoVectorDB file (see `vdb.rs`): the first `head_chunks` chunks are the bytes up to
    /// and including `"matrix": "`, the next `matrix_chunks` are the decoded matrix, stored in
    /// the file as padded standard base64, and the remaining chunks are the rest of the file.
    NanoVdbMatrix {
        head_chunks: u32,
        matrix_chunks: u32,
    },
}

/// One file of the graph folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the graph folder, `/`-separated.
    pub path: String,
    pub size: u64,
    /// Modification time in nanoseconds since the Unix epoch, restored with the file.
    pub mtime_ns: i64,
    /// Unix permission bits.
    pub mode: u32,
    /// Owner and group (format version 3; absent before): restored when the restore runs as
    /// root, as restic does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// SHA-256 over the file's chunk ids in order: as strong as a hash of the bytes, since every
    /// chunk id is the SHA-256 of its bytes, and free to compute.
    pub digest: ObjectId,
    pub chunks: Vec<ChunkRef>,
    /// Absent in format version 1, where every file is raw.
    #[serde(default)]
    pub encoding: FileEncoding,
}

impl FileEntry {
    /// The size of the file the chunks rebuild, given how they are encoded.
    pub fn rebuilt_size(&self) -> u64 {
        match self.encoding {
            FileEncoding::Raw => self.chunks.iter().map(|c| c.length as u64).sum(),
            FileEncoding::NanoVdbMatrix {
                head_chunks,
                matrix_chunks,
            } => {
                let (head, rest) = self
                    .chunks
                    .split_at((head_chunks as usize).min(self.chunks.len()));
                let (matrix, tail) = rest.split_at((matrix_chunks as usize).min(rest.len()));
                let sum = |chunks: &[ChunkRef]| chunks.iter().map(|c| c.length as u64).sum::<u64>();
                sum(head) + crate::vdb::encoded_len(sum(matrix)) + sum(tail)
            }
        }
    }
}

/// `snapshots/<graph id>/<snapshot id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotManifest {
    /// A random UUID (v4), so that a short prefix identifies it, as restic ids do.
    pub snapshot_id: String,
    pub graph_id: String,
    /// RFC 3339, UTC.
    pub time: String,
    pub hostname: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
    /// Free-form JSON object (LightRAG version, workspace, entity counts, ...).
    pub metadata_json: String,
    pub files: Vec<FileEntry>,
    /// SHA-256 over (path, size, digest) of every file: equal content gives an equal hash.
    pub data_hash: ObjectId,
    /// Sum of the file sizes.
    pub logical_size: u64,
    /// Compressed bytes this snapshot added to the repository (new chunks only).
    pub added_size: u64,
    /// Plaintext bytes of the chunks this snapshot added.
    pub added_raw_size: u64,
}

pub(crate) const MAGIC: &[u8; 4] = b"LRBS";

/// The tag of a safety snapshot: the state a restore replaced, kept so the restore can be
/// undone. Retention rules do not count these; they expire after
/// [`SAFETY_SNAPSHOT_TTL_SECONDS`] unless also tagged [`KEEP_TAG`].
pub const PRE_RESTORE_TAG: &str = "pre-restore";
/// How long a safety snapshot is kept: 7 days.
pub const SAFETY_SNAPSHOT_TTL_SECONDS: i64 = 7 * 86400;
/// The tag that keeps a safety snapshot past its expiry.
pub const KEEP_TAG: &str = "keep";
/// The tag of a snapshot a replication target took on its own and a push replaced as the
/// graph's head (the `source_wins` conflict policy): kept, but never the head again.
pub const DIVERGED_TAG: &str = "diverged";

impl SnapshotManifest {
    /// Whether this is a safety snapshot (see [`PRE_RESTORE_TAG`]).
    pub fn is_safety_snapshot(&self) -> bool {
        self.tags.iter().any(|t| t == PRE_RESTORE_TAG)
    }
}

impl SnapshotManifest {
    /// Check the file list of a manifest before anything is planned or stored from it: every path
    /// a plain LightRAG file name (no folder, no `..`, no leading `.`, no NUL), named once, its
    /// chunks within the format's limits and adding up to its size. A manifest read from the
    /// repository and one pushed by a peer get the same checks.
    ///
    /// # Errors
    /// `Integrity` naming the first problem.
    pub fn check_files(&self) -> Result<()> {
        let mut seen = std::collections::HashSet::with_capacity(self.files.len());
        for entry in &self.files {
            let shown: String = entry.path.chars().take(80).collect();
            if entry.path.contains('/')
                || entry.path.contains('\0')
                || entry.path.starts_with('.')
                || !crate::source::is_graph_file(&entry.path)
            {
                return Err(Error::integrity(format!(
                    "snapshot {} lists an unexpected file name {shown:?}",
                    self.snapshot_id
                )));
            }
            if !seen.insert(entry.path.as_str()) {
                return Err(Error::integrity(format!(
                    "snapshot {} lists {shown:?} twice",
                    self.snapshot_id
                )));
            }
            if let Some(chunk) = entry
                .chunks
                .iter()
                .find(|c| c.length > super::limits::MAX_CHUNK)
            {
                return Err(Error::integrity(format!(
                    "snapshot {}: chunk {} of {shown:?} claims {} bytes, more than the largest chunk",
                    self.snapshot_id, chunk.id, chunk.length
                )));
            }
            if entry.rebuilt_size() != entry.size {
                return Err(Error::integrity(format!(
                    "snapshot {}: the chunks of {shown:?} make {} bytes, the snapshot says {}",
                    self.snapshot_id,
                    entry.rebuilt_size(),
                    entry.size
                )));
            }
        }
        Ok(())
    }

    /// The content hash of a list of files, as stored in `data_hash`.
    pub fn compute_data_hash(files: &[FileEntry]) -> ObjectId {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        for file in files {
            hasher.update((file.path.len() as u64).to_le_bytes());
            hasher.update(file.path.as_bytes());
            hasher.update(file.size.to_le_bytes());
            hasher.update(file.digest.0);
        }
        ObjectId(hasher.finalize().into())
    }
}
