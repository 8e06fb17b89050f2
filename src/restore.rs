//! Restoring a snapshot: plan, then execute.
//!
//! The plan names every file and where each of its chunks lives, and fails before anything is
//! touched when a chunk is missing. Execution writes every file into a staging folder inside
//! the target, checks every chunk's hash, and only then renames the files into place, one
//! atomic rename each. Graph files that the snapshot does not have are removed in the same
//! step. Until the renames start, the target is untouched, whatever fails.

use crate::error::{Error, Result};
use crate::format::{pack, FileEncoding, FileEntry, ObjectId, SnapshotManifest};
use crate::progress::{check_cancelled, Progress};
use crate::repository::{pack_path, BlobLocation, Repository};
use crate::runtime::block_on;
use crate::source::list_graph_files;
use crate::vdb::MatrixEncoder;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Compressed bytes fetched per window (split over the workers); contiguous blobs of a pack are
/// read with one request.
/// How restore reads a store: local disks are CPU-bound (one reader per core, small windows);
/// object stores over HTTP are latency-bound (many requests in flight, bigger windows, and
/// ranged reads that bridge bigger gaps so fewer requests are made).
#[derive(Clone, Copy)]
struct Reads {
    window_bytes: u64,
    /// Largest gap between two needed blobs of a pack that one ranged read bridges.
    max_gap: u64,
    /// Largest ranged read.
    max_span: u64,
    workers: usize,
}

impl Reads {
    fn for_backend(backend: &crate::backend::Backend) -> Reads {
        let cores = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(1, 8);
        if backend.is_remote() {
            Reads {
                window_bytes: 32 * 1024 * 1024,
                max_gap: 1024 * 1024,
                max_span: 8 * 1024 * 1024,
                workers: 16,
            }
        } else {
            Reads {
                window_bytes: 8 * 1024 * 1024,
                max_gap: 256 * 1024,
                max_span: 8 * 1024 * 1024,
                workers: cores,
            }
        }
    }
}

/// One file to write.
#[derive(Debug, Clone)]
pub struct PlannedFile {
    pub entry: FileEntry,
    pub locations: Vec<BlobLocation>,
}

/// Everything a restore will do, computed without writing anything.
#[derive(Debug, Clone)]
pub struct RestorePlan {
    pub snapshot_id: String,
    pub graph_id: String,
    pub target: PathBuf,
    pub files: Vec<PlannedFile>,
    /// Graph files in the target that the snapshot does not have; removed by the restore.
    pub remove: Vec<String>,
    /// The target holds graph files that the restore replaces: then every file is synced to
    /// disk before the swap, so a power loss cannot leave the graph with neither version.
    pub replaces_existing: bool,
    pub total_bytes: u64,
}

/// What a restore did.
#[derive(Debug, Clone, Default)]
pub struct RestoreReport {
    pub files_written: usize,
    pub files_removed: usize,
    pub bytes_written: u64,
}

/// Plan the restore of `manifest` into `target`.
///
/// # Errors
/// `Integrity` when a chunk the snapshot needs is not in the repository.
pub fn plan_restore(
    repo: &Repository,
    manifest: &SnapshotManifest,
    target: &Path,
) -> Result<RestorePlan> {
    repo.refresh_index()?;
    let mut files = Vec::with_capacity(manifest.files.len());
    for entry in &manifest.files {
        if entry.path.contains('/')
            || entry.path.starts_with('.')
            || !crate::source::is_graph_file(&entry.path)
        {
            return Err(Error::integrity(format!(
                "snapshot lists an unexpected file name {:?}",
                entry.path
            )));
        }
        let locations = entry
            .chunks
            .iter()
            .map(|chunk| {
                repo.locate(&chunk.id).ok_or_else(|| {
                    Error::integrity(format!(
                        "chunk {} of {} is missing from the repository; snapshot {} cannot be restored",
                        chunk.id, entry.path, manifest.snapshot_id
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        files.push(PlannedFile {
            entry: entry.clone(),
            locations,
        });
    }
    let existing = match list_graph_files(target) {
        Ok(existing) => existing.into_iter().map(|f| f.name).collect(),
        Err(Error::GraphDirNotFound { .. }) => Vec::new(),
        Err(e) => return Err(e),
    };
    let replaces_existing = !existing.is_empty();
    let remove = existing
        .into_iter()
        .filter(|name| !manifest.files.iter().any(|f| &f.path == name))
        .collect();
    Ok(RestorePlan {
        snapshot_id: manifest.snapshot_id.clone(),
        graph_id: manifest.graph_id.clone(),
        target: target.to_path_buf(),
        total_bytes: files.iter().map(|f| f.entry.size).sum(),
        files,
        remove,
        replaces_existing,
    })
}

/// Carry out a plan.
///
/// # Errors
/// `Integrity` when a chunk is corrupt (the target is then untouched); `Io`/`Backend` on I/O
/// failures.
pub fn execute_restore(
    repo: &Repository,
    plan: &RestorePlan,
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    std::fs::create_dir_all(&plan.target)
        .map_err(|e| Error::io("create folder", &plan.target, e))?;
    let staging = plan.target.join(format!(
        ".lightrag-backup-restore-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir(&staging).map_err(|e| Error::io("create folder", &staging, e))?;
    let result = stage_and_swap(repo, plan, &staging, progress);
    let _ = std::fs::remove_dir_all(&staging);
    result
}

fn stage_and_swap(
    repo: &Repository,
    plan: &RestorePlan,
    staging: &Path,
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    progress.start("restore", plan.total_bytes);
    write_files(repo, plan, staging, progress)?;
    progress.finish();
    check_cancelled(progress, "restore")?;
    // Everything is staged and checked: swap.
    let mut report = RestoreReport::default();
    let trash = staging.join(".replaced");
    std::fs::create_dir(&trash).map_err(|e| Error::io("create folder", &trash, e))?;
    for name in &plan.remove {
        let from = plan.target.join(name);
        match std::fs::rename(&from, trash.join(name)) {
            Ok(()) => report.files_removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &from, e)),
        }
    }
    for file in &plan.files {
        let to = plan.target.join(&file.entry.path);
        std::fs::rename(staging.join(&file.entry.path), &to)
            .map_err(|e| Error::io("replace", &to, e))?;
        report.files_written += 1;
        report.bytes_written += file.entry.size;
    }
    if let Ok(dir) = std::fs::File::open(&plan.target) {
        let _ = dir.sync_all();
    }
    Ok(report)
}

/// Stage every file, two at a time, the largest first. One file keeps the cores busy only
/// while its chunks are fetched; its writer (base64 re-encoding of a matrix, page-cache
/// writes) runs alone in between, so a second file fills those gaps.
fn write_files(
    repo: &Repository,
    plan: &RestorePlan,
    staging: &Path,
    progress: &dyn Progress,
) -> Result<()> {
    crate::parallel::largest_first(
        &plan.files,
        |file| file.entry.size,
        progress,
        |_, file| {
            let dest = staging.join(&file.entry.path);
            write_file(repo, file, &dest, plan.replaces_existing, progress)
        },
    )
}

fn write_file(
    repo: &Repository,
    file: &PlannedFile,
    dest: &Path,
    durable: bool,
    progress: &dyn Progress,
) -> Result<()> {
    let out = std::fs::File::create(dest).map_err(|e| Error::io("create", dest, e))?;
    let reads = Reads::for_backend(repo.backend());
    let refused = |e: Error| {
        Error::integrity(format!(
            "{e}; restoring {} refused, target left untouched",
            file.entry.path
        ))
    };
    // Fetch and decompress a window of chunks on all cores while the previous window is
    // written: memory stays within two windows whatever the file's size.
    let (windows_tx, windows_rx) = crossbeam_channel::bounded::<Vec<Result<Vec<u8>>>>(1);
    let (written, mut out) = std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> Result<(u64, std::fs::File)> {
            let mut out = out;
            let mut written = 0u64;
            let mut rebuild = Rebuild::new(file.entry.encoding);
            for window in windows_rx {
                let mut pieces = Vec::with_capacity(window.len());
                for piece in window {
                    pieces.push(rebuild.piece(piece.map_err(refused)?));
                }
                write_pieces(&mut out, &pieces).map_err(|e| Error::io("write", dest, e))?;
                let bytes: u64 = pieces.iter().map(|p| p.len() as u64).sum();
                written += bytes;
                progress.advance(bytes);
            }
            Ok((written, out))
        });
        for window in windows(&file.locations, reads.window_bytes) {
            if let Err(cancelled) = check_cancelled(progress, "restore") {
                drop(windows_tx);
                let _ = writer.join();
                return Err(cancelled);
            }
            if windows_tx.send(fetch_window(repo, window, reads)).is_err() {
                break; // the writer stopped on an error; it reports it
            }
        }
        drop(windows_tx);
        writer
            .join()
            .unwrap_or_else(|_| Err(Error::integrity("restore writer panicked")))
    })?;
    if written != file.entry.size {
        return Err(Error::integrity(format!(
            "{} restored to {written} bytes, the snapshot says {}",
            file.entry.path, file.entry.size
        )));
    }
    let mtime =
        std::time::UNIX_EPOCH + std::time::Duration::from_nanos(file.entry.mtime_ns.max(0) as u64);
    out.flush().map_err(|e| Error::io("write", dest, e))?;
    out.set_modified(mtime)
        .map_err(|e| Error::io("set time of", dest, e))?;
    if durable {
        out.sync_all().map_err(|e| Error::io("sync", dest, e))?;
    }
    use std::os::unix::fs::PermissionsExt;
    if file.entry.mode != 0 {
        std::fs::set_permissions(dest, std::fs::Permissions::from_mode(file.entry.mode))
            .map_err(|e| Error::io("set permissions of", dest, e))?;
    }
    Ok(())
}

/// Write a window's pieces with gathered writes: pieces are single chunks (8 KiB in a
/// matrix), and one `write` each cost 35,000 system calls for a 370 MB graph, while copying
/// them into a buffer first cost 4% of a restore's CPU.
fn write_pieces(out: &mut std::fs::File, pieces: &[Vec<u8>]) -> std::io::Result<()> {
    use std::io::IoSlice;
    for group in pieces.chunks(512) {
        let mut slices: Vec<IoSlice<'_>> = group
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| IoSlice::new(p))
            .collect();
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            let n = out.write_vectored(rest)?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut rest, n);
        }
    }
    Ok(())
}

/// The chunks of a file in windows of about `window_bytes` stored bytes, in file order.
fn windows(locations: &[BlobLocation], window_bytes: u64) -> Vec<&[BlobLocation]> {
    let mut out = Vec::new();
    let (mut first, mut bytes) = (0, 0u64);
    for (i, location) in locations.iter().enumerate() {
        bytes += location.entry.length as u64;
        if bytes >= window_bytes {
            out.push(&locations[first..=i]);
            first = i + 1;
            bytes = 0;
        }
    }
    if first < locations.len() {
        out.push(&locations[first..]);
    }
    out
}

/// One ranged read of a pack, and which of the window's blobs it holds.
struct Span {
    pack: ObjectId,
    start: u64,
    end: u64,
    members: Vec<usize>,
}

/// Cover the window's blobs with as few ranged reads as possible: per pack, in offset order,
/// merging neighbours closer than `reads.max_gap` (a file restored after a change interleaves
/// old and new packs, so file order alone would cut many short reads; reading a few unneeded
/// bytes is cheaper than another request).
fn spans(window: &[BlobLocation], reads: Reads) -> Vec<Span> {
    let mut order: Vec<usize> = (0..window.len()).collect();
    order.sort_by_key(|&i| (window[i].pack, window[i].entry.offset));
    let mut spans: Vec<Span> = Vec::new();
    for i in order {
        let location = &window[i];
        let (start, end) = (
            location.entry.offset as u64,
            location.entry.offset as u64 + location.entry.length as u64,
        );
        match spans.last_mut() {
            Some(span)
                if span.pack == location.pack
                    && start <= span.end + reads.max_gap
                    && end - span.start <= reads.max_span =>
            {
                span.end = span.end.max(end);
                span.members.push(i);
            }
            _ => spans.push(Span {
                pack: location.pack,
                start,
                end,
                members: vec![i],
            }),
        }
    }
    spans
}

/// Read and check the blobs of a window, returned in window order, spreading the ranged reads
/// over `workers` threads.
fn fetch_window(repo: &Repository, window: &[BlobLocation], reads: Reads) -> Vec<Result<Vec<u8>>> {
    let workers = reads.workers;
    let spans = spans(window, reads);
    // Deal the spans out to the workers, largest first, each to the least loaded.
    let mut order: Vec<usize> = (0..spans.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(spans[i].end - spans[i].start));
    let mut shares: Vec<(u64, Vec<&Span>)> = (0..workers).map(|_| (0, Vec::new())).collect();
    for i in order {
        let least = shares
            .iter_mut()
            .min_by_key(|(bytes, _)| *bytes)
            .expect("at least one worker");
        least.0 += spans[i].end - spans[i].start;
        least.1.push(&spans[i]);
    }
    let fetched: Vec<Vec<(usize, Result<Vec<u8>>)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .iter()
            .filter(|(_, share)| !share.is_empty())
            .map(|(_, share)| {
                scope.spawn(move || {
                    share
                        .iter()
                        .flat_map(|span| fetch_span(repo, window, span))
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| vec![(0, Err(Error::integrity("restore worker panicked")))])
            })
            .collect()
    });
    let mut results: Vec<Option<Result<Vec<u8>>>> = (0..window.len()).map(|_| None).collect();
    for (index, result) in fetched.into_iter().flatten() {
        results[index] = Some(result);
    }
    results
        .into_iter()
        .map(|result| {
            result.unwrap_or_else(|| Err(Error::integrity("restore worker lost a chunk")))
        })
        .collect()
}

fn fetch_span(
    repo: &Repository,
    window: &[BlobLocation],
    span: &Span,
) -> Vec<(usize, Result<Vec<u8>>)> {
    let bytes = match block_on(
        repo.backend()
            .get_range(&pack_path(&span.pack), span.start..span.end),
    ) {
        Ok(bytes) => bytes,
        Err(e) => {
            // The writer stops at the first failed chunk in file order: give it the real error.
            let first = span.members.iter().copied().min().unwrap_or(0);
            let message = e.to_string();
            let mut original = Some(e);
            return span
                .members
                .iter()
                .map(|&i| match (i == first).then(|| original.take()).flatten() {
                    Some(error) => (i, Err(error)),
                    None => (i, Err(Error::integrity(message.clone()))),
                })
                .collect();
        }
    };
    span.members
        .iter()
        .map(|&i| {
            let entry = window[i].entry;
            let offset = (entry.offset as u64 - span.start) as usize;
            let result = bytes
                .get(offset..offset + entry.length as usize)
                .ok_or_else(|| {
                    Error::integrity(format!("pack {} is shorter than the index says", span.pack))
                })
                .and_then(|compressed| {
                    pack::open_blob(&entry, compressed)
                        .map_err(|e| Error::integrity(format!("{e} (in pack {})", span.pack)))
                });
            (i, result)
        })
        .collect()
}

/// Turns stored chunks back into file bytes, in order (see [`FileEncoding`]).
struct Rebuild {
    encoding: FileEncoding,
    index: u32,
    matrix: Option<MatrixEncoder>,
}

impl Rebuild {
    fn new(encoding: FileEncoding) -> Self {
        Rebuild {
            encoding,
            index: 0,
            matrix: None,
        }
    }

    /// The file bytes of the next chunk.
    fn piece(&mut self, data: Vec<u8>) -> Vec<u8> {
        let index = self.index;
        self.index += 1;
        match self.encoding {
            FileEncoding::NanoVdbMatrix {
                head_chunks,
                matrix_chunks,
            } if index >= head_chunks && index < head_chunks + matrix_chunks => {
                let encoder = self.matrix.get_or_insert_with(MatrixEncoder::default);
                let mut text = encoder.push(&data);
                if index + 1 == head_chunks + matrix_chunks {
                    text.extend(
                        self.matrix
                            .take()
                            .map(MatrixEncoder::finish)
                            .unwrap_or_default(),
                    );
                }
                text
            }
            _ => data,
        }
    }
}
