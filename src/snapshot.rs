//! Taking a snapshot of a graph folder.
//!
//! The pipeline keeps both cores busy and its memory bounded whatever the graph's size:
//!
//! ```text
//! reader (this thread) --chunks--> hash+compress workers --blobs--> packer --> uploads (async)
//! ```
//! The reader cuts files into content-defined chunks; workers hash each chunk and compress it
//! only when the repository does not have it yet; the packer groups new blobs into packs and
//! uploads them while the next pack fills. Channels are bounded, so at most a few chunks and
//! two packs are in memory at once. Then the index is written, then the manifest.

use crate::chunker;
use crate::error::{Error, Result};
use crate::format::{
    ChunkRef, Codec, FileEncoding, FileEntry, IndexFile, ObjectId, SnapshotManifest,
};
use crate::graph_stats::FileCounter;
use crate::packer::Packer;
use crate::progress::{check_cancelled, Progress};
use crate::repository::{hostname, validate_graph_id, Repository};
use crate::source::{list_graph_files, FileStat, SourceFile};
use crate::vdb;
use crossbeam_channel::{bounded, Receiver, Sender};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::Read;
use std::path::Path;
use std::sync::Mutex;

/// What to record with a snapshot, and how hard to try for a consistent copy.
#[derive(Debug, Clone)]
pub struct SnapshotOptions {
    pub description: Option<String>,
    pub tags: Vec<String>,
    /// Merged into the manifest's metadata (LightRAG version, workspace, ...).
    pub metadata: Map<String, Value>,
    /// Passes over the folder before giving up on a graph that keeps changing.
    pub max_attempts: u32,
    /// When the graph's newest snapshot already holds exactly this data, write nothing and
    /// return that snapshot as [`SnapshotOutcome::Unchanged`] (scheduled backups).
    pub skip_if_unchanged: bool,
    /// Take the snapshot even when the graph id holds snapshots of another folder (the graph
    /// moved). Without it, such a snapshot is refused: see [`check_source`].
    pub adopt: bool,
    /// At the graph's first snapshot in an encrypted repository, give it a key of its own (so
    /// it can be shredded; see `graph_keys.rs`). Repositories made with `--key-per-graph` do
    /// this for every graph.
    pub own_key: bool,
    /// Write the snapshot under this identity instead of a new one (re-encrypting a snapshot
    /// from an unencrypted repository keeps its id, time and host).
    pub reissue: Option<Reissue>,
}

/// The identity a re-issued snapshot keeps (see [`SnapshotOptions::reissue`]).
#[derive(Debug, Clone)]
pub struct Reissue {
    pub snapshot_id: String,
    pub time: String,
    pub hostname: String,
}

/// The folder a snapshot's metadata says it came from: `working_dir` and `workspace`, as the
/// Python layer records them (snapshots without them, such as safety snapshots, name none).
fn source_of(metadata: &Map<String, Value>) -> Option<(String, String)> {
    let working_dir = metadata.get("working_dir")?.as_str()?.to_string();
    let workspace = metadata
        .get("workspace")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Some((working_dir, workspace))
}

fn describe_source(host: &str, (working_dir, workspace): &(String, String)) -> String {
    let space = if workspace.is_empty() {
        String::new()
    } else {
        format!(" (workspace {workspace:?})")
    };
    format!("{host}:{working_dir}{space}")
}

/// Store every chunk of the graph files in `dir` that the repository does not hold in a
/// healthy pack, without writing a snapshot: how a repair heals damaged chunks from a graph's
/// current files (`codec`: the graph's, see [`Repository::graph_codec`]). Returns how many
/// chunks it stored.
///
/// # Errors
/// `GraphDirNotFound` for a missing or empty folder; `Io`/`Backend` on I/O failures.
pub fn store_missing_chunks(
    repo: &Repository,
    codec: &Codec,
    dir: &Path,
    progress: &dyn Progress,
) -> Result<usize> {
    let files = graph_files_of(dir)?;
    progress.start("heal", files.iter().map(|f| f.stat.size).sum());
    let pass = capture(repo, codec, &files, progress)?;
    progress.finish();
    repo.write_index(&pass.index)?;
    Ok(pass.index.packs.iter().map(|p| p.blobs.len()).sum())
}

/// The graph files of `dir`.
///
/// # Errors
/// `GraphDirNotFound` when the folder is missing or holds no LightRAG graph files.
fn graph_files_of(dir: &Path) -> Result<Vec<SourceFile>> {
    let files = list_graph_files(dir)?;
    if files.is_empty() {
        return Err(Error::GraphDirNotFound {
            path: dir.to_path_buf(),
            reason: "holds no LightRAG graph files (kv_store_*.json, vdb_*.json, *.graphml); is this the working_dir, and the right workspace?".to_string(),
        });
    }
    Ok(files)
}

/// Refuse a snapshot of one folder into a graph id whose newest snapshot came from another.
///
/// Folders are compared by working dir and workspace. The host is recorded and named, but a
/// new host alone is not another graph: a container gets a new host name at every restart,
/// and refusing its scheduled backups then would stop them silently.
///
/// # Errors
/// `GraphSourceConflict`, naming both folders and the way out.
pub fn check_source(
    repo: &Repository,
    graph_id: &str,
    metadata: &Map<String, Value>,
) -> Result<()> {
    let Some(ours) = source_of(metadata) else {
        return Ok(());
    };
    let newest = repo.newest_snapshot_where(graph_id, |manifest| {
        !manifest.is_safety_snapshot()
            && serde_json::from_str::<Map<String, Value>>(&manifest.metadata_json)
                .ok()
                .and_then(|m| source_of(&m))
                .is_some()
    })?;
    let Some(newest) = newest else {
        // The graph's first snapshot from a folder: claim the id for it, create-only, so of
        // two first snapshots from two folders at the same moment exactly one goes through.
        return claim_graph_id(repo, graph_id, &ours);
    };
    let theirs = serde_json::from_str::<Map<String, Value>>(&newest.metadata_json)
        .ok()
        .and_then(|m| source_of(&m))
        .expect("selected for having a source");
    if theirs == ours {
        return Ok(());
    }
    Err(Error::GraphSourceConflict {
        graph_id: graph_id.to_string(),
        ours: describe_source(&hostname(), &ours),
        theirs: describe_source(&newest.hostname, &theirs),
    })
}

/// The folder a graph id was first snapshotted from: `graphs/<graph id>/source`, written
/// create-only before the graph's first snapshot. Once the graph has snapshots, their own
/// metadata says where they came from (an adopted graph moves on with them); the claim
/// decides only between first snapshots.
#[derive(serde::Serialize, serde::Deserialize)]
struct GraphClaim {
    working_dir: String,
    workspace: String,
    hostname: String,
    claimed_at: String,
}

fn claim_graph_id(repo: &Repository, graph_id: &str, ours: &(String, String)) -> Result<()> {
    let path = crate::format::paths::graph_claim(graph_id);
    let claim = GraphClaim {
        working_dir: ours.0.clone(),
        workspace: ours.1.clone(),
        hostname: hostname(),
        claimed_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    };
    let bytes = repo.codec().seal_json(
        path.as_ref(),
        serde_json::to_vec(&claim).expect("a claim serialises"),
    );
    let backend = repo.backend();
    if crate::runtime::block_on(backend.put_create(&path, bytes.into()))?
        == crate::backend::Created::New
    {
        return Ok(());
    }
    let Some(bytes) = crate::runtime::block_on(backend.get_bounded(&path))? else {
        return Ok(()); // removed in between: nothing claims the id
    };
    let theirs = repo
        .codec()
        .open_json(path.as_ref(), &bytes)
        .ok()
        .and_then(|json| serde_json::from_slice::<GraphClaim>(&json).ok());
    let Some(theirs) = theirs else {
        log::warn!("{path} cannot be read; the graph id's first snapshot goes ahead");
        return Ok(());
    };
    let theirs_source = (theirs.working_dir, theirs.workspace);
    if &theirs_source == ours {
        return Ok(());
    }
    Err(Error::GraphSourceConflict {
        graph_id: graph_id.to_string(),
        ours: describe_source(&hostname(), ours),
        theirs: describe_source(&theirs.hostname, &theirs_source),
    })
}

/// What [`snapshot_or_skip`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum SnapshotOutcome {
    Created(SnapshotManifest),
    /// Nothing changed since this snapshot, so no new one was written.
    Unchanged(SnapshotManifest),
}

impl SnapshotOutcome {
    pub fn manifest(&self) -> &SnapshotManifest {
        match self {
            SnapshotOutcome::Created(m) | SnapshotOutcome::Unchanged(m) => m,
        }
    }
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions {
            description: None,
            tags: Vec::new(),
            metadata: Map::new(),
            max_attempts: 5,
            skip_if_unchanged: false,
            adopt: false,
            own_key: false,
            reissue: None,
        }
    }
}

/// Snapshot the graph files of `dir` as a new snapshot of `graph_id`.
///
/// Reads every file and checks that none changed while it was read (size, mtime, ctime,
/// inode); when one did, the pass is repeated (chunks already stored are not stored again).
///
/// # Errors
/// `InvalidInput` for a bad graph id or tag; `GraphDirNotFound` when `dir` is missing;
/// `GraphBusy` when the folder kept changing for `max_attempts` passes; `Io`/`Backend` on I/O
/// failures. On error no manifest is written and the repository stays valid.
pub fn create_snapshot(
    repo: &Repository,
    graph_id: &str,
    dir: &Path,
    options: &SnapshotOptions,
    progress: &dyn Progress,
) -> Result<SnapshotManifest> {
    snapshot_or_skip(repo, graph_id, dir, options, progress).map(|outcome| match outcome {
        SnapshotOutcome::Created(manifest) | SnapshotOutcome::Unchanged(manifest) => manifest,
    })
}

/// [`create_snapshot`], telling whether a snapshot was written or skipped because nothing
/// changed (only with `options.skip_if_unchanged`).
///
/// # Errors
/// As [`create_snapshot`].
pub fn snapshot_or_skip(
    repo: &Repository,
    graph_id: &str,
    dir: &Path,
    options: &SnapshotOptions,
    progress: &dyn Progress,
) -> Result<SnapshotOutcome> {
    validate_graph_id(graph_id)?;
    validate_tags(&options.tags)?;
    if options.description.as_ref().is_some_and(|d| d.len() > 4096) {
        return Err(Error::invalid("description is longer than 4096 bytes"));
    }
    graph_files_of(dir)?; // a missing or empty folder says so before anything else
                          // The graph's own key (made now at a first snapshot that asks for one), or the master
                          // key; a shredded graph id refuses here.
    let codec = repo.codec_for_snapshot(graph_id, options.own_key)?;
    if !options.adopt {
        check_source(repo, graph_id, &options.metadata)?;
    }
    repo.refresh_index()?;
    let markers_at_start: HashSet<String> = repo.prune_markers().into_keys().collect();
    let mut added = (0u64, 0u64);
    for _attempt in 0..options.max_attempts.max(1) {
        let files = graph_files_of(dir)?;
        progress.start("snapshot", files.iter().map(|f| f.stat.size).sum());
        let pass = capture(repo, &codec, &files, progress)?;
        repo.write_index(&pass.index)?;
        added.0 += pass.added_size;
        added.1 += pass.added_raw_size;
        progress.finish();
        let listed_again = list_graph_files(dir)?;
        let unchanged = !pass.changed
            && listed_again.len() == files.len()
            && listed_again
                .iter()
                .zip(&files)
                .all(|(now, then)| now.name == then.name && now.stat == then.stat);
        if !unchanged {
            continue;
        }
        let mut metadata = options.metadata.clone();
        for (key, value) in pass.counts {
            metadata.insert(key, value);
        }
        let logical_size = pass.entries.iter().map(|f| f.size).sum();
        let (snapshot_id, time, host) = match &options.reissue {
            Some(reissue) => (
                reissue.snapshot_id.clone(),
                reissue.time.clone(),
                reissue.hostname.clone(),
            ),
            None => (
                uuid::Uuid::new_v4().to_string(),
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                hostname(),
            ),
        };
        let manifest = SnapshotManifest {
            snapshot_id,
            graph_id: graph_id.to_string(),
            time,
            hostname: host,
            description: options.description.clone(),
            tags: options.tags.clone(),
            metadata_json: Value::Object(metadata).to_string(),
            data_hash: SnapshotManifest::compute_data_hash(&pass.entries),
            files: pass.entries,
            logical_size,
            added_size: added.0,
            added_raw_size: added.1,
        };
        // A Ctrl-C seen by a progress callback after the last chunk still stops the commit.
        check_cancelled(progress, "snapshot")?;
        if options.skip_if_unchanged {
            if let Some(newest) =
                repo.newest_snapshot_where(graph_id, |m| !m.is_safety_snapshot())?
            {
                if newest.data_hash == manifest.data_hash {
                    return Ok(SnapshotOutcome::Unchanged(newest));
                }
            }
        }
        repo.commit_snapshot(&manifest, &markers_at_start)?;
        // The index objects such commits leave are merged now and then.
        crate::compact::after_commit(repo);
        return Ok(SnapshotOutcome::Created(manifest));
    }
    Err(Error::GraphBusy {
        message: format!(
            "the files in {} kept changing during {} passes; is LightRAG writing? Snapshot a live instance from inside its process (GraphBackup.from_rag) or retry when it is idle",
            dir.display(),
            options.max_attempts
        ),
    })
}

fn validate_tags(tags: &[String]) -> Result<()> {
    for tag in tags {
        if tag.is_empty() || tag.len() > 128 || tag.chars().any(|c| c.is_control() || c == ',') {
            return Err(Error::invalid(format!(
                "tag {tag:?} is not valid: 1-128 printable characters without ','"
            )));
        }
    }
    Ok(())
}

/// One pass over the files.
struct Pass {
    entries: Vec<FileEntry>,
    index: IndexFile,
    counts: Map<String, Value>,
    added_size: u64,
    added_raw_size: u64,
    /// A file changed or vanished while it was read.
    changed: bool,
}

struct Job {
    file: usize,
    seq: usize,
    data: Vec<u8>,
    /// Store without trying to compress (see [`MatrixProbe`]).
    stored: bool,
}

/// Chunks travel between the pipeline's threads in batches: one channel operation per chunk
/// (8 KiB matrix chunks, tens of thousands per graph) cost 7% of a backup's CPU in channel
/// spinning and thread wake-ups.
struct JobBatch<'a> {
    jobs: &'a Sender<Vec<Job>>,
    pending: Vec<Job>,
    bytes: usize,
}

impl<'a> JobBatch<'a> {
    const BYTES: usize = 1 << 20;
    const JOBS: usize = 256;

    fn new(jobs: &'a Sender<Vec<Job>>) -> Self {
        JobBatch {
            jobs,
            pending: Vec::new(),
            bytes: 0,
        }
    }

    fn push(&mut self, job: Job) -> Result<()> {
        self.bytes += job.data.len();
        self.pending.push(job);
        if self.bytes >= Self::BYTES || self.pending.len() >= Self::JOBS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.bytes = 0;
        self.jobs
            .send(std::mem::take(&mut self.pending))
            .map_err(|_| Error::integrity("snapshot pipeline stopped"))
    }
}

struct Blob {
    file: usize,
    seq: usize,
    id: ObjectId,
    raw_length: u32,
    /// Present only for chunks the repository does not have yet.
    compressed: Option<Vec<u8>>,
}

struct Packed {
    chunk_lists: Vec<Vec<Option<ChunkRef>>>,
    index: IndexFile,
    added_size: u64,
    added_raw_size: u64,
}

#[derive(Clone)]
struct FileRead {
    stat: FileStat,
    chunks: usize,
    encoding: FileEncoding,
}

fn capture(
    repo: &Repository,
    codec: &Codec,
    files: &[SourceFile],
    progress: &dyn Progress,
) -> Result<Pass> {
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8);
    let (job_tx, job_rx) = bounded::<Vec<Job>>(workers * 2);
    let (blob_tx, blob_rx) = bounded::<Result<Vec<Blob>>>(workers * 2);
    // Chunks claimed by this pass, so a chunk seen twice is compressed and stored once.
    let claimed = Mutex::new(HashSet::new());

    let (read, packed) = std::thread::scope(|scope| {
        for _ in 0..workers {
            let job_rx = job_rx.clone();
            let blob_tx = blob_tx.clone();
            let claimed = &claimed;
            scope.spawn(move || hash_and_compress(repo, codec, claimed, job_rx, blob_tx));
        }
        drop(blob_tx);
        let packer = scope.spawn(|| pack_blobs(repo, blob_rx, files.len()));
        let read = read_files(repo, codec, files, &job_tx, progress);
        drop(job_tx);
        let packed = packer
            .join()
            .unwrap_or_else(|_| Err(Error::integrity("packer thread panicked")));
        (read, packed)
    });
    // A packer failure makes the reader fail too; the packer's error is the real one.
    let packed = packed?;
    let (reads, counts, mut changed) = read?;

    let mut entries = Vec::with_capacity(files.len());
    for ((file, read), chunk_list) in files.iter().zip(reads).zip(packed.chunk_lists) {
        if chunk_list.len() != read.chunks || chunk_list.iter().any(Option::is_none) {
            return Err(Error::integrity(format!(
                "internal: chunks of {} went missing in the pipeline",
                file.name
            )));
        }
        let chunks: Vec<ChunkRef> = chunk_list.into_iter().flatten().collect();
        let mut digest = Sha256::new();
        for chunk in &chunks {
            digest.update(chunk.id.0);
        }
        let mut entry = FileEntry {
            path: file.name.clone(),
            size: 0,
            mtime_ns: read.stat.mtime_ns,
            mode: read.stat.mode,
            uid: Some(read.stat.uid),
            gid: Some(read.stat.gid),
            digest: ObjectId(digest.finalize().into()),
            chunks,
            encoding: read.encoding,
        };
        entry.size = entry.rebuilt_size();
        changed |= entry.size != read.stat.size;
        entries.push(entry);
    }
    Ok(Pass {
        entries,
        index: packed.index,
        counts,
        added_size: packed.added_size,
        added_raw_size: packed.added_raw_size,
        changed,
    })
}

type ReadOutcome = (Vec<FileRead>, Map<String, Value>, bool);

/// Read every file, the largest first, on two threads: chunking a stream is sequential, so
/// large files in parallel keep both cores busy.
fn read_files(
    repo: &Repository,
    codec: &Codec,
    files: &[SourceFile],
    jobs: &Sender<Vec<Job>>,
    progress: &dyn Progress,
) -> Result<ReadOutcome> {
    let counts = Mutex::new(Map::new());
    let reads: Mutex<Vec<Option<(FileRead, bool)>>> = Mutex::new(vec![None; files.len()]);
    crate::parallel::largest_first(
        files,
        2,
        |file| file.stat.size,
        progress,
        |index, file| {
            let read = read_one(repo, codec, index, file, jobs, &counts, progress)?;
            reads.lock().unwrap()[index] = Some(read);
            Ok(())
        },
    )?;
    let mut changed = false;
    let reads = reads
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|read| {
            let (read, file_changed) = read.expect("every file was read");
            changed |= file_changed;
            read
        })
        .collect();
    Ok((reads, counts.into_inner().unwrap(), changed))
}

fn read_one(
    repo: &Repository,
    codec: &Codec,
    index: usize,
    file: &SourceFile,
    jobs: &Sender<Vec<Job>>,
    counts: &Mutex<Map<String, Value>>,
    progress: &dyn Progress,
) -> Result<(FileRead, bool)> {
    let params = repo.config().chunker;
    let gear = codec.chunker_gear();
    let matrix = MatrixChunking {
        cutter: &chunker::Cutter::new(repo.config().matrix_chunker, gear),
        rows_per_chunk: repo.config().matrix_rows_per_chunk,
    };
    let cutter = &chunker::Cutter::new(params, gear);
    let handle = match crate::source::open_no_follow(&file.path) {
        Ok(handle) => handle,
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || e.raw_os_error() == Some(libc::ELOOP) =>
        {
            // Removed (or swapped for a link) since it was listed: record nothing and let the
            // caller retry; the next listing refuses a link by name.
            let read = FileRead {
                stat: file.stat,
                chunks: 0,
                encoding: FileEncoding::Raw,
            };
            return Ok((read, true));
        }
        Err(e) => return Err(Error::io("open", &file.path, e)),
    };
    let stat_of = |h: &std::fs::File| {
        h.metadata()
            .map(|m| FileStat::of(&m))
            .map_err(|e| Error::io("stat", &file.path, e))
    };
    let before = stat_of(&handle)?;
    let mut changed = before != file.stat;
    let mut counter = FileCounter::for_file(&file.name);
    let mut seq = 0;
    let mut batch = JobBatch::new(jobs);
    let mut emit = |data: Vec<u8>, stored: bool| -> Result<()> {
        if counter.is_active() {
            counter.feed(&data);
        }
        progress.advance(data.len() as u64);
        check_cancelled(progress, "snapshot")?;
        batch.push(Job {
            file: index,
            seq,
            data,
            stored,
        })?;
        seq += 1;
        Ok(())
    };
    let encoding = if vdb::is_vector_file(&file.name) {
        read_vector_file(&handle, cutter, matrix, &file.path, &mut emit)?
    } else if let (rows @ 1.., Some(dim @ 1..)) = (
        matrix.rows_per_chunk,
        crate::source::records_vector_dim(&file.name),
    ) {
        // A database-backed graph's vectors: raw float32 rows, each its own chunk (as the
        // decoded NanoVectorDB matrices are), so a row deduplicates wherever it moves.
        let size = (dim as usize * 4)
            .saturating_mul(rows as usize)
            .min(crate::format::limits::MAX_ROW_CHUNK as usize);
        let mut probe = MatrixProbe::default();
        let reader = std::io::BufReader::with_capacity(1 << 20, &handle);
        for chunk in chunker::fixed_chunks(reader, size, &file.path) {
            let chunk = chunk?;
            let stored = probe.store_uncompressed(&chunk);
            emit(chunk, stored)?;
        }
        FileEncoding::Raw
    } else {
        for chunk in chunker::chunks(&handle, cutter, &file.path) {
            emit(chunk?, false)?;
        }
        FileEncoding::Raw
    };
    batch.flush()?;
    changed |= stat_of(&handle)? != before;
    counter.record(&mut counts.lock().unwrap());
    let read = FileRead {
        stat: before,
        chunks: seq,
        encoding,
    };
    Ok((read, changed))
}

/// How a repository cuts decoded matrices (see [`RepoConfig::matrix_rows_per_chunk`]).
///
/// [`RepoConfig::matrix_rows_per_chunk`]: crate::format::RepoConfig::matrix_rows_per_chunk
#[derive(Clone, Copy)]
struct MatrixChunking<'a> {
    cutter: &'a chunker::Cutter,
    rows_per_chunk: u32,
}

/// Chunk a NanoVectorDB file as head, decoded matrix and tail (see `vdb.rs`).
fn read_vector_file(
    handle: &std::fs::File,
    cutter: &chunker::Cutter,
    matrix_chunking: MatrixChunking,
    path: &Path,
    emit: &mut dyn FnMut(Vec<u8>, bool) -> Result<()>,
) -> Result<FileEncoding> {
    let mut reader = std::io::BufReader::with_capacity(1 << 20, handle);
    let mut head = vdb::HeadReader::new(&mut reader);
    let mut head_chunks = 0u32;
    let mut dimension = None;
    for chunk in chunker::chunks(&mut head, cutter, path) {
        let chunk = chunk?;
        if head_chunks == 0 {
            dimension = vdb::embedding_dim(&chunk);
        }
        emit(chunk, false)?;
        head_chunks += 1;
    }
    if !head.found() {
        return Ok(FileEncoding::Raw);
    }
    let mut matrix = vdb::MatrixReader::new(&mut reader);
    let mut matrix_chunks = 0u32;
    let mut probe = MatrixProbe::default();
    let mut emit_matrix = |chunk: Vec<u8>| -> Result<()> {
        let stored = probe.store_uncompressed(&chunk);
        matrix_chunks += 1;
        emit(chunk, stored)
    };
    match (matrix_chunking.rows_per_chunk, dimension) {
        // Whole rows of float32, each chunk the same length: a row is a chunk wherever it sits.
        (rows @ 1.., Some(dim @ 1..)) => {
            let size = (dim as usize * 4)
                .saturating_mul(rows as usize)
                .min(crate::format::limits::MAX_ROW_CHUNK as usize);
            for chunk in chunker::fixed_chunks(&mut matrix, size, path) {
                emit_matrix(chunk?)?;
            }
        }
        _ => {
            for chunk in chunker::chunks(&mut matrix, matrix_chunking.cutter, path) {
                emit_matrix(chunk?)?;
            }
        }
    }
    let tail = std::io::Cursor::new(matrix.leftover()).chain(&mut reader);
    for chunk in chunker::chunks(tail, cutter, path) {
        emit(chunk?, false)?;
    }
    Ok(if matrix_chunks == 0 {
        FileEncoding::Raw // head and tail are the file's bytes in order
    } else {
        FileEncoding::NanoVdbMatrix {
            head_chunks,
            matrix_chunks,
        }
    })
}

/// Decides, per vector file, whether its matrix chunks are worth compressing. Full-precision
/// float32 embeddings shrink by about 7% under zstd at 370 MB/s, which cost a first backup a
/// fifth of its CPU time and restores a decompression pass; quantised or padded matrices can
/// shrink a lot. The first chunks are compressed as a sample; when they save less than 10%,
/// the rest of the matrix is stored as raw zstd blocks (see `format::stored_frame`).
#[derive(Default)]
struct MatrixProbe {
    sampled: usize,
    raw: usize,
    compressed: usize,
    decided: Option<bool>,
}

impl MatrixProbe {
    const SAMPLE_CHUNKS: usize = 16;

    fn store_uncompressed(&mut self, chunk: &[u8]) -> bool {
        if let Some(stored) = self.decided {
            return stored;
        }
        self.raw += chunk.len();
        self.compressed += zstd::bulk::compress(chunk, 1).map_or(chunk.len(), |c| c.len());
        self.sampled += 1;
        if self.sampled >= Self::SAMPLE_CHUNKS {
            self.decided = Some(self.compressed * 10 >= self.raw * 9);
        }
        false
    }
}

fn hash_and_compress(
    repo: &Repository,
    codec: &Codec,
    claimed: &Mutex<HashSet<ObjectId>>,
    jobs: Receiver<Vec<Job>>,
    blobs: Sender<Result<Vec<Blob>>>,
) {
    // One encoder (compression context) per worker, reused for every chunk.
    let mut encoder = match codec.chunk_encoder(repo.config().compression_level) {
        Ok(encoder) => encoder,
        Err(e) => {
            let _ = blobs.send(Err(e));
            return;
        }
    };
    for batch in jobs {
        let mut out = Vec::with_capacity(batch.len());
        for job in batch {
            let id = codec.chunk_id(&job.data);
            let is_new = !repo.contains(&id) && claimed.lock().unwrap().insert(id);
            let compressed = if is_new {
                match encoder.encode(&id, &job.data, job.stored) {
                    Ok(bytes) => Some(bytes),
                    Err(e) => {
                        let _ = blobs.send(Err(e));
                        return;
                    }
                }
            } else {
                None
            };
            out.push(Blob {
                file: job.file,
                seq: job.seq,
                id,
                raw_length: job.data.len() as u32,
                compressed,
            });
        }
        if blobs.send(Ok(out)).is_err() {
            return;
        }
    }
}

fn pack_blobs(
    repo: &Repository,
    blobs: Receiver<Result<Vec<Blob>>>,
    file_count: usize,
) -> Result<Packed> {
    let mut packed = Packed {
        chunk_lists: vec![Vec::new(); file_count],
        index: IndexFile::default(),
        added_size: 0,
        added_raw_size: 0,
    };
    let mut packer = Packer::new(repo);
    for batch in blobs {
        for blob in batch? {
            let list = &mut packed.chunk_lists[blob.file];
            if list.len() <= blob.seq {
                list.resize(blob.seq + 1, None);
            }
            list[blob.seq] = Some(ChunkRef {
                id: blob.id,
                length: blob.raw_length,
            });
            if let Some(compressed) = blob.compressed {
                packed.added_size += compressed.len() as u64;
                packed.added_raw_size += blob.raw_length as u64;
                packer.add(blob.id, &compressed, blob.raw_length)?;
            }
        }
    }
    packed.index = packer.finish()?;
    Ok(packed)
}
