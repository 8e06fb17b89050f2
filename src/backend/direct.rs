//! Writing a large new object of a local repository past the page cache (`O_DIRECT`).
//!
//! A backup writes hundreds of megabytes of packs that nothing reads again soon. Through the
//! page cache each of those bytes is copied into a fresh page cache page first: on this
//! project's virtual machines (whose free memory goes back to the host) that copy was 31% of a
//! first backup's CPU (`perf`: `copy_folio_from_iter_atomic`, 0.86 s for 270 MB), while the
//! same bytes written with `O_DIRECT` cost 0.05 s of CPU: the device reads them from the
//! process's buffer. It also leaves the page cache to the graph LightRAG serves, instead of
//! evicting it for backup data.
//!
//! The object is written whole into a staging file beside its name, in the staging name
//! object_store itself uses (`<name>#<digits>`, which listings skip), then linked to its name:
//! create-only, as [`super::Backend::put_create`] is. A file system that refuses `O_DIRECT`
//! (tmpfs before Linux 6.6, some FUSE mounts) gets `Ok(None)`: the caller writes through the
//! page cache instead.

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Objects at least this large are written with `O_DIRECT` (packs: 16 MiB, the last of a run
/// smaller); smaller ones (indexes, manifests, keys) go through the page cache.
pub(crate) const MIN_SIZE: usize = 1 << 20;
/// Offsets, lengths and buffer addresses of direct writes are multiples of this: every Linux
/// block device's logical block size divides it.
const ALIGN: usize = 4096;
/// Bytes per direct write, staged through one aligned buffer per thread.
const STEP: usize = 4 << 20;

/// Cleared once a file system refused `O_DIRECT`: the process stops trying.
static SUPPORTED: AtomicBool = AtomicBool::new(true);

thread_local! {
    /// The aligned staging buffer of this thread, kept from object to object: fresh memory
    /// costs a page fault per page on first touch.
    static STAGE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// What a direct write did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Created,
    AlreadyExisted,
}

/// Write `data` as the new file `dest`, create-only, past the page cache. `Ok(None)` when
/// direct I/O is not available here (nothing is left behind then).
///
/// # Errors
/// The I/O error of a failed write; the staging file is removed.
pub(crate) fn write_new(dest: &Path, data: &[u8]) -> std::io::Result<Option<Outcome>> {
    if !SUPPORTED.load(Ordering::Relaxed) {
        return Ok(None);
    }
    let Some((mut file, staging)) = open_staging(dest)? else {
        return Ok(None);
    };
    let written = STAGE.with(|stage| write_aligned(&mut file, data, &mut stage.borrow_mut()));
    let outcome = match written {
        Ok(()) => publish(&staging, dest),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            // Opened, but the device refuses these alignments: page cache from now on.
            SUPPORTED.store(false, Ordering::Relaxed);
            let _ = std::fs::remove_file(&staging);
            return Ok(None);
        }
        Err(e) => Err(e),
    };
    if outcome.is_err() {
        let _ = std::fs::remove_file(&staging);
    }
    outcome.map(Some)
}

/// A new staging file beside `dest`, opened for direct writes (its folders made as needed).
fn open_staging(dest: &Path) -> std::io::Result<Option<(File, PathBuf)>> {
    let mut made_folders = false;
    for n in 1u32.. {
        let mut name = dest.as_os_str().to_owned();
        name.push(format!("#{n}"));
        let staging = PathBuf::from(name);
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_DIRECT)
            .open(&staging);
        match opened {
            Ok(file) => return Ok(Some((file, staging))),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) if e.kind() == ErrorKind::NotFound && !made_folders => {
                made_folders = true;
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent)?;
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                SUPPORTED.store(false, Ordering::Relaxed);
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!("a staging name is always found")
}

/// Write `data` in aligned steps through `stage`; the last block is padded with zeros and the
/// file cut back to the data's length.
fn write_aligned(file: &mut File, data: &[u8], stage: &mut Vec<u8>) -> std::io::Result<()> {
    if stage.len() < STEP + ALIGN {
        stage.resize(STEP + ALIGN, 0);
    }
    let start = stage.as_ptr().align_offset(ALIGN);
    let aligned = &mut stage[start..start + STEP];
    let mut offset = 0usize;
    while offset < data.len() {
        let take = (data.len() - offset).min(STEP);
        let padded = take.div_ceil(ALIGN) * ALIGN;
        aligned[..take].copy_from_slice(&data[offset..offset + take]);
        aligned[take..padded].fill(0);
        file.write_all_at(&aligned[..padded], offset as u64)?;
        offset += take;
    }
    if data.len() % ALIGN != 0 {
        file.set_len(data.len() as u64)?;
    }
    file.flush()
}

/// Give the staging file its name, unless an object has it already.
fn publish(staging: &Path, dest: &Path) -> std::io::Result<Outcome> {
    let outcome = match std::fs::hard_link(staging, dest) {
        Ok(()) => Outcome::Created,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Outcome::AlreadyExisted,
        Err(e) => return Err(e),
    };
    std::fs::remove_file(staging)?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn an_object_of_any_length_is_written_whole_and_create_only() {
        let dir = tempfile::tempdir().unwrap();
        for len in [
            MIN_SIZE,
            STEP,
            STEP + 1,
            3 * STEP + 4095,
            17 * (1 << 20) + 13,
        ] {
            let dest = dir.path().join(format!("data/ab/{len}"));
            let data = bytes(len);
            let outcome = write_new(&dest, &data).unwrap();
            if outcome.is_none() {
                // This file system has no direct I/O (the caller writes through the page
                // cache), which must not be the case on the ones a repository usually sits on.
                assert!(!has_direct_io(dir.path()), "direct I/O refused on {dir:?}");
                return;
            }
            assert_eq!(outcome, Some(Outcome::Created));
            assert_eq!(std::fs::read(&dest).unwrap(), data, "{len} bytes");
            // Create-only: a second write of the name leaves the first object.
            let other = vec![1u8; len];
            assert_eq!(
                write_new(&dest, &other).unwrap(),
                Some(Outcome::AlreadyExisted)
            );
            assert_eq!(std::fs::read(&dest).unwrap(), data);
        }
        // No staging file is left behind.
        let left: Vec<_> = walk(dir.path())
            .into_iter()
            .filter(|p| p.to_string_lossy().contains('#'))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    /// ext4, XFS and btrfs, which have had `O_DIRECT` for as long as they exist.
    fn has_direct_io(dir: &Path) -> bool {
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
        // SAFETY: `path` is a valid C string and `stat` a plain struct statfs fills.
        let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::statfs(path.as_ptr(), &mut stat) }, 0);
        [0xEF53, 0x5846_5342, 0x9123_683E].contains(&(stat.f_type as i64))
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
        out
    }
}
