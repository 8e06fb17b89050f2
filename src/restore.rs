//! Restoring a snapshot: plan, then execute.
//!
//! The plan names every file and where each of its chunks lives, and fails before anything is
//! touched when a chunk is missing. Execution writes every file into a staging folder inside
//! the target, checks every chunk's hash, and only then renames the files into place, one
//! atomic rename each. Graph files that the snapshot does not have are removed in the same
//! step. Until the renames start, the target is untouched, whatever fails.

use crate::error::{Error, Result};
use crate::fetch::{fetch_window, windows, Reads, Window};
use crate::format::{FileEncoding, FileEntry, SnapshotManifest};
use crate::progress::{check_cancelled, Progress};
use crate::repository::{BlobLocation, Repository};
use crate::source::list_graph_files;
use crate::vdb::MatrixEncoder;
use std::io::Write;
use std::path::{Path, PathBuf};

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
    manifest.check_files()?;
    let mut files = Vec::with_capacity(manifest.files.len());
    for entry in &manifest.files {
        let locations = locate_file(repo, entry, &manifest.snapshot_id)?;
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

/// Where each chunk of a snapshot's file is, checked against the index: fails before anything
/// is read when a chunk is missing or the manifest and the index disagree on its size.
///
/// # Errors
/// `Integrity` naming the chunk, the file and the snapshot.
pub(crate) fn locate_file(
    repo: &Repository,
    entry: &crate::format::FileEntry,
    snapshot_id: &str,
) -> Result<Vec<BlobLocation>> {
    entry
        .chunks
        .iter()
        .map(|chunk| {
            let location = repo.locate(&chunk.id).ok_or_else(|| {
                Error::integrity(format!(
                    "chunk {} of {} is missing from the repository; snapshot {} cannot be restored",
                    chunk.id, entry.path, snapshot_id
                ))
            })?;
            // The manifest and the index must agree on the chunk's size before a buffer
            // is sized from either.
            if location.entry.raw_length != chunk.length {
                return Err(Error::integrity(format!(
                    "chunk {} of {} has {} bytes in the snapshot and {} in the index; snapshot {} cannot be restored",
                    chunk.id, entry.path, chunk.length, location.entry.raw_length, snapshot_id
                )));
            }
            Ok(location)
        })
        .collect()
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
    execute_restore_with(repo, plan, progress, &mut || Ok(()))
}

/// Carry out a plan, calling `before_swap` once everything is staged and checked, right
/// before the first file is replaced (the safety snapshot of what is replaced is taken
/// there: a restore that fails or is stopped earlier changes nothing and leaves nothing).
///
/// # Errors
/// As [`execute_restore`], and whatever `before_swap` returns (the target is then untouched).
pub fn execute_restore_with(
    repo: &Repository,
    plan: &RestorePlan,
    progress: &dyn Progress,
    before_swap: &mut dyn FnMut() -> Result<()>,
) -> Result<RestoreReport> {
    let created = !plan.target.exists();
    std::fs::create_dir_all(&plan.target)
        .map_err(|e| Error::io("create folder", &plan.target, e))?;
    // A folder the restore creates belongs to the graph's owner (as root); an existing one
    // keeps its owner.
    if created && running_as_root() {
        if let Some(file) = plan.files.iter().find(|f| f.entry.uid.is_some()) {
            std::os::unix::fs::chown(&plan.target, file.entry.uid, file.entry.gid)
                .map_err(|e| Error::io("set owner of", &plan.target, e))?;
        }
    }
    sweep_staging(&plan.target);
    let staging = plan
        .target
        .join(format!("{STAGING_PREFIX}{}", uuid::Uuid::new_v4().simple()));
    // Its owner's only (0700): staged files are the graph's text before their modes are set.
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(&staging)
        .map_err(|e| Error::io("create folder", &staging, e))?;
    let result = own_staging(&staging)
        .and_then(|_owner| stage_and_swap(repo, plan, &staging, progress, before_swap));
    let _ = std::fs::remove_dir_all(&staging);
    result
}

/// Names of the folders a restore stages its files in, inside the target.
const STAGING_PREFIX: &str = ".lightrag-backup-restore-";
/// The lock file of a staging folder, `flock`ed by the restore that owns it.
const STAGING_OWNER: &str = ".owner";
/// A staging folder without a lock file (made by a build before lock files, or by a process
/// killed between creating it and locking it) is left alone this long after its last change.
const UNLOCKED_GRACE: std::time::Duration = std::time::Duration::from_secs(600);

/// Lock a new staging folder for this process: the kernel releases the lock when the process
/// dies, however it dies, which tells a later restore the folder was abandoned.
fn own_staging(staging: &Path) -> Result<std::fs::File> {
    let path = staging.join(STAGING_OWNER);
    let owner = std::fs::File::create(&path).map_err(|e| Error::io("create", &path, e))?;
    if !try_lock(&owner) {
        return Err(Error::io(
            "lock",
            &path,
            std::io::Error::new(std::io::ErrorKind::WouldBlock, "locked by another process"),
        ));
    }
    Ok(owner)
}

/// Remove the staging folders that restores killed mid-way (SIGKILL, power loss) left in
/// `target`: those whose lock file nobody holds. A folder a live restore owns stays.
pub fn sweep_staging(target: &Path) {
    let Ok(entries) = std::fs::read_dir(target) else {
        return;
    };
    for entry in entries.flatten() {
        let abandoned = entry
            .file_name()
            .to_string_lossy()
            .starts_with(STAGING_PREFIX)
            && match std::fs::File::open(entry.path().join(STAGING_OWNER)) {
                // Taking its lock means its owner is gone (the lock goes with the file).
                Ok(owner) => try_lock(&owner),
                Err(_) => entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|modified| modified.elapsed().ok())
                    .is_some_and(|age| age > UNLOCKED_GRACE),
            };
        if abandoned {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn try_lock(file: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock takes a file descriptor this File keeps open for the call.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

fn stage_and_swap(
    repo: &Repository,
    plan: &RestorePlan,
    staging: &Path,
    progress: &dyn Progress,
    before_swap: &mut dyn FnMut() -> Result<()>,
) -> Result<RestoreReport> {
    progress.start("restore", plan.total_bytes);
    write_files(repo, plan, staging, progress)?;
    progress.finish();
    check_cancelled(progress, "restore")?;
    before_swap()?;
    check_cancelled(progress, "restore")?;
    // Everything is staged and checked: swap, all or nothing.
    let report = swap(plan, staging)?;
    if let Ok(dir) = std::fs::File::open(&plan.target) {
        let _ = dir.sync_all();
    }
    Ok(report)
}

/// What the swap changed so far, so a failure can put it back.
enum Swapped {
    /// A graph file the snapshot does not have, moved aside into the trash.
    Removed(String),
    /// A file replaced by its staged version; its old version (if it had one) is in the trash.
    Replaced { name: String, had_old: bool },
}

/// Put the staged files in place of the target's, all or nothing: the target's files are kept
/// in `<staging>/.replaced` (hard links to those that get replaced, made before anything is
/// touched) until every rename succeeded; when one fails, every change already made is undone
/// from them, and the error says the graph was left as it was.
fn swap(plan: &RestorePlan, staging: &Path) -> Result<RestoreReport> {
    let trash = staging.join(".replaced");
    std::fs::create_dir(&trash).map_err(|e| Error::io("create folder", &trash, e))?;
    // Keep a link to every file that will be replaced: nothing is changed yet, so a failure
    // here leaves the graph as it was.
    let mut had_old = std::collections::HashSet::new();
    for file in &plan.files {
        let from = plan.target.join(&file.entry.path);
        match std::fs::symlink_metadata(&from) {
            Ok(meta) if meta.is_file() => {
                std::fs::hard_link(&from, trash.join(&file.entry.path)).map_err(|e| {
                    Error::io("keep the current version of", &from, e)
                        .with_note("the restore changed nothing")
                })?;
                had_old.insert(file.entry.path.as_str());
            }
            Ok(_) => {
                return Err(Error::io(
                    "replace",
                    &from,
                    std::io::Error::other("it is not a regular file; the restore changed nothing"),
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("read", &from, e)),
        }
    }
    let mut done: Vec<Swapped> = Vec::with_capacity(plan.remove.len() + plan.files.len());
    let mut report = RestoreReport::default();
    let mut step = || -> Result<()> {
        for file in &plan.files {
            let to = plan.target.join(&file.entry.path);
            std::fs::rename(staging.join(&file.entry.path), &to)
                .map_err(|e| Error::io("replace", &to, e))?;
            done.push(Swapped::Replaced {
                name: file.entry.path.clone(),
                had_old: had_old.contains(file.entry.path.as_str()),
            });
            report.files_written += 1;
            report.bytes_written += file.entry.size;
        }
        for name in &plan.remove {
            let from = plan.target.join(name);
            match std::fs::rename(&from, trash.join(name)) {
                Ok(()) => {
                    report.files_removed += 1;
                    done.push(Swapped::Removed(name.clone()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", &from, e)),
            }
        }
        Ok(())
    };
    let Err(failure) = step() else {
        return Ok(report);
    };
    let mut not_undone = Vec::new();
    for change in done.iter().rev() {
        let undone = match change {
            Swapped::Removed(name)
            | Swapped::Replaced {
                name,
                had_old: true,
            } => std::fs::rename(trash.join(name), plan.target.join(name)),
            Swapped::Replaced { name, .. } => std::fs::remove_file(plan.target.join(name)),
        };
        if let Err(e) = undone {
            let (Swapped::Removed(name) | Swapped::Replaced { name, .. }) = change;
            not_undone.push(format!("{name}: {e}"));
        }
    }
    if not_undone.is_empty() {
        return Err(failure.with_note("the restore was rolled back, the graph is as it was"));
    }
    // Keep the trash (and say where): it holds the versions that could not be put back.
    let kept = plan.target.join(format!(
        ".lightrag-backup-replaced-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let _ = std::fs::rename(&trash, &kept);
    Err(failure.with_note(&format!(
        "rolling back failed for {} (the replaced versions are kept in {})",
        not_undone.join(", "),
        kept.display()
    )))
}

/// Stage every file, the largest first, two at a time from a local repository: one file keeps
/// the cores busy only while its chunks are fetched; its writer (base64 re-encoding of a
/// matrix, page-cache writes) runs alone in between, so a second file fills those gaps.
fn write_files(
    repo: &Repository,
    plan: &RestorePlan,
    staging: &Path,
    progress: &dyn Progress,
) -> Result<()> {
    let reads = Reads::for_backend(repo.backend());
    // The graph's own codec: its chunks open under the key their tag names without a lookup.
    let codec = repo.graph_codec(&plan.graph_id)?;
    // Buffers, one set per staging thread, kept from file to file.
    let scratches = std::sync::Mutex::new(Vec::<Scratch>::new());
    crate::parallel::largest_first(
        &plan.files,
        reads.files,
        |file| file.entry.size,
        progress,
        |_, file| {
            let dest = staging.join(&file.entry.path);
            let mut scratch = scratches.lock().unwrap().pop().unwrap_or_default();
            let result = write_file(
                repo,
                &codec,
                file,
                &dest,
                plan.replaces_existing,
                reads,
                &mut scratch,
                progress,
            );
            scratches.lock().unwrap().push(scratch);
            result
        },
    )
}

/// Buffers reused for every window of every file a staging thread restores: after the first
/// windows, a restore allocates (and the kernel zero-fills) no more memory.
#[derive(Default)]
struct Scratch {
    /// Ranged reads of a local pack.
    read: Vec<u8>,
    /// Windows of plaintext: one being filled, one queued, one being written.
    windows: Vec<Vec<u8>>,
    /// Re-encoded matrix text awaiting its write (about `TEXT_RUN` bytes).
    text: Vec<u8>,
}

#[allow(clippy::too_many_arguments)]
fn write_file(
    repo: &Repository,
    codec: &crate::format::Codec,
    file: &PlannedFile,
    dest: &Path,
    durable: bool,
    reads: Reads,
    scratch: &mut Scratch,
    progress: &dyn Progress,
) -> Result<()> {
    let out = std::fs::File::create(dest).map_err(|e| Error::io("create", dest, e))?;
    let refused = |e: Error| {
        e.with_note(&format!(
            "restoring {} refused, target left untouched",
            file.entry.path
        ))
    };
    // Fetch and check a window of chunks while the previous one is written: memory stays
    // within three windows whatever the file's size. Written windows come back for reuse.
    let (windows_tx, windows_rx) = crossbeam_channel::bounded::<Result<Window>>(1);
    let (spent_tx, spent_rx) = crossbeam_channel::unbounded::<Vec<u8>>();
    let Scratch {
        read,
        windows: spare,
        text,
    } = scratch;
    let (written, mut out) = std::thread::scope(|scope| {
        let writer = scope.spawn(|| -> Result<(u64, std::fs::File)> {
            let mut out = out;
            let mut written = 0u64;
            let mut rebuild = Rebuild::new(file.entry.encoding);
            for window in windows_rx {
                let window = window.map_err(refused)?;
                // Written in runs of about TEXT_RUN bytes of matrix text, so the text buffer
                // stays small whatever the window size.
                let mut first = 0;
                while first < window.ranges.len() {
                    text.clear();
                    let mut pieces = Vec::new();
                    for range in &window.ranges[first..] {
                        pieces.push(rebuild.piece(&window.data[range.clone()], text));
                        if text.len() >= TEXT_RUN {
                            break;
                        }
                    }
                    let ranges = &window.ranges[first..first + pieces.len()];
                    let slices = slices(&pieces, ranges, &window.data, text);
                    write_slices(&mut out, &slices).map_err(|e| Error::io("write", dest, e))?;
                    let bytes: u64 = slices.iter().map(|s| s.len() as u64).sum();
                    written += bytes;
                    progress.advance(bytes);
                    first += pieces.len();
                }
                let _ = spent_tx.send(window.data);
            }
            Ok((written, out))
        });
        for window in windows(&file.locations, reads.window_bytes) {
            if let Err(cancelled) = check_cancelled(progress, "restore") {
                drop(windows_tx);
                let _ = writer.join();
                return Err(cancelled);
            }
            spare.extend(spent_rx.try_iter());
            let data = spare.pop().unwrap_or_default();
            if windows_tx
                .send(fetch_window(repo, codec, window, reads, read, data))
                .is_err()
            {
                break; // the writer stopped on an error; it reports it
            }
        }
        drop(windows_tx);
        writer
            .join()
            .unwrap_or_else(|_| Err(Error::integrity("restore writer panicked")))
    })?;
    spare.extend(spent_rx.try_iter());
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
    // Owner first: changing the owner clears set-id bits, which the mode then puts back.
    if let (Some(uid), Some(gid), true) = (file.entry.uid, file.entry.gid, running_as_root()) {
        std::os::unix::fs::chown(dest, Some(uid), Some(gid))
            .map_err(|e| Error::io("set owner of", dest, e))?;
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = restored_mode(file.entry.mode);
    if mode != 0 {
        std::fs::set_permissions(dest, std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io("set permissions of", dest, e))?;
    }
    Ok(())
}

/// The permission bits a restored file gets: the snapshot's, without set-user-id, set-group-id,
/// sticky and world-write, which no graph file needs (a manifest asking for them is damaged or
/// hostile, and a restore run as root would otherwise make them real).
pub fn restored_mode(mode: u32) -> u32 {
    mode & 0o775
}

/// Ownership is restored only by root, as restic does: anyone else can only give files away.
fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Matrix text re-encoded before a write.
const TEXT_RUN: usize = 1 << 20;

/// The file bytes of chunks in order, chunk `i` being `data[ranges[i]]` made into `pieces[i]`:
/// stored chunks as they are, and runs of re-encoded matrix text (adjacent pieces of `text`
/// joined into one slice).
fn slices<'a>(
    pieces: &[Piece],
    ranges: &[std::ops::Range<usize>],
    data: &'a [u8],
    text: &'a [u8],
) -> Vec<&'a [u8]> {
    let mut out: Vec<&[u8]> = Vec::with_capacity(pieces.len());
    let mut run: Option<std::ops::Range<usize>> = None;
    for (piece, range) in pieces.iter().zip(ranges) {
        match piece {
            Piece::Text(range) => match &mut run {
                Some(current) if current.end == range.start => current.end = range.end,
                _ => {
                    if let Some(done) = run.replace(range.clone()) {
                        out.push(&text[done]);
                    }
                }
            },
            Piece::Stored => {
                if let Some(done) = run.take() {
                    out.push(&text[done]);
                }
                out.push(&data[range.clone()]);
            }
        }
    }
    if let Some(done) = run {
        out.push(&text[done]);
    }
    out.retain(|slice| !slice.is_empty());
    out
}

/// Write slices with gathered writes: stored chunks are small (one `write` each cost 35,000
/// system calls for a 370 MB graph) and copying them together first would cost a pass over
/// the data.
fn write_slices(out: &mut std::fs::File, slices: &[&[u8]]) -> std::io::Result<()> {
    use std::io::IoSlice;
    for group in slices.chunks(512) {
        let mut io: Vec<IoSlice<'_>> = group.iter().map(|s| IoSlice::new(s)).collect();
        let mut rest = &mut io[..];
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

/// Where a chunk's file bytes are: the chunk itself, or a range of the window's text.
pub(crate) enum Piece {
    Stored,
    Text(std::ops::Range<usize>),
}

/// Turns stored chunks back into file bytes, in order (see [`FileEncoding`]).
pub(crate) struct Rebuild {
    encoding: FileEncoding,
    index: u32,
    matrix: Option<MatrixEncoder>,
}

impl Rebuild {
    pub(crate) fn new(encoding: FileEncoding) -> Self {
        Rebuild {
            encoding,
            index: 0,
            matrix: None,
        }
    }

    /// The file bytes of the next chunk: the chunk as stored, or text appended to `text`.
    pub(crate) fn piece(&mut self, data: &[u8], text: &mut Vec<u8>) -> Piece {
        let index = self.index;
        self.index += 1;
        match self.encoding {
            FileEncoding::NanoVdbMatrix {
                head_chunks,
                matrix_chunks,
            } if index >= head_chunks && index < head_chunks + matrix_chunks => {
                let start = text.len();
                let encoder = self.matrix.get_or_insert_with(MatrixEncoder::default);
                encoder.push(data, text);
                if index + 1 == head_chunks + matrix_chunks {
                    if let Some(encoder) = self.matrix.take() {
                        encoder.finish(text);
                    }
                }
                Piece::Text(start..text.len())
            }
            _ => Piece::Stored,
        }
    }
}
