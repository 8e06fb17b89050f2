//! Which files make up a LightRAG graph folder, and how to tell that one changed.

use crate::error::{Error, Result};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The identity of a file version: if any field moves, the file changed (or was replaced by
/// LightRAG's atomic rename). The change time alone may move with the link count: a snapshot
/// reads hard links of the graph's files, and LightRAG replacing a file (by rename) unlinks
/// the old version, which changes its link count and so its ctime, not its content; such a
/// pair is the same version (see the `PartialEq`).
#[derive(Debug, Clone, Copy, Eq)]
pub struct FileStat {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub inode: u64,
    pub device: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u64,
}

impl PartialEq for FileStat {
    fn eq(&self, other: &Self) -> bool {
        (
            self.size,
            self.mtime_ns,
            self.inode,
            self.device,
            self.mode,
            self.uid,
            self.gid,
        ) == (
            other.size,
            other.mtime_ns,
            other.inode,
            other.device,
            other.mode,
            other.uid,
            other.gid,
        ) && (self.ctime_ns == other.ctime_ns || self.nlink != other.nlink)
    }
}

impl FileStat {
    pub fn of(meta: &std::fs::Metadata) -> Self {
        FileStat {
            size: meta.len(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
            inode: meta.ino(),
            device: meta.dev(),
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            nlink: meta.nlink(),
        }
    }
}

/// One file of a graph folder.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Name relative to the graph folder.
    pub name: String,
    pub path: PathBuf,
    pub stat: FileStat,
}

/// Whether a file name is part of a LightRAG graph's file storage: the JSON KV stores, the
/// NanoVectorDB files, the NetworkX GraphML, and Faiss indexes with their metadata; and the
/// records of a graph kept in databases ([`is_records_file`]). LightRAG's in-flight temp files
/// (`*.tmp.<pid>.<tid>.<ns>`) are not.
pub fn is_graph_file(name: &str) -> bool {
    if name.starts_with('.') || name.contains(".tmp.") {
        return false;
    }
    (name.starts_with("kv_store_") && name.ends_with(".json"))
        || (name.starts_with("vdb_") && name.ends_with(".json"))
        || name.ends_with(".graphml")
        || name.starts_with("faiss_index_")
        || is_records_file(name)
}

/// Whether a file name belongs to the records of a database-backed graph, as the Python side
/// lays them out: the `records.json` manifest, one `records_<store>.jsonl` per storage and
/// `records_<store>.d<dim>.f32` rows of float32 vectors beside a vector store's records.
pub fn is_records_file(name: &str) -> bool {
    name == "records.json"
        || (name.starts_with("records_") && (name.ends_with(".jsonl") || name.ends_with(".f32")))
}

/// The dimension of a records vector file (`records_<store>.d<dim>.f32`): its rows are `dim`
/// float32 each. `None` for any other name.
pub fn records_vector_dim(name: &str) -> Option<u32> {
    let stem = name.strip_prefix("records_")?.strip_suffix(".f32")?;
    let (_, dim) = stem.rsplit_once(".d")?;
    dim.parse().ok().filter(|d| *d > 0)
}

/// The graph files directly inside `dir`, sorted by name. Sub-folders are other workspaces and
/// are never included.
///
/// # Errors
/// `GraphDirNotFound` when `dir` is missing or not a folder (an empty folder is a valid, empty
/// graph); `Io` when it cannot be read.
pub fn list_graph_files(dir: &Path) -> Result<Vec<SourceFile>> {
    let meta = std::fs::metadata(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::GraphDirNotFound {
            path: dir.to_path_buf(),
            reason: "does not exist".to_string(),
        },
        _ => Error::io("read", dir, e),
    })?;
    if !meta.is_dir() {
        return Err(Error::GraphDirNotFound {
            path: dir.to_path_buf(),
            reason: "is not a folder".to_string(),
        });
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))? {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if !is_graph_file(&name) {
            continue;
        }
        let path = entry.path();
        // The entry itself, never what a link points to: nothing is followed out of a graph
        // folder.
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            // Replaced or removed between listing and stat: the caller's consistency check
            // notices the changed listing.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("stat", &path, e)),
        };
        if meta.is_file() {
            files.push(SourceFile {
                name,
                path,
                stat: FileStat::of(&meta),
            });
        } else if !meta.is_dir() {
            return Err(not_a_regular_file(&path, &meta));
        }
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// A graph file name taken by a symbolic link, a FIFO, a device or a socket. LightRAG writes
/// none of them; following a link would back up (and let anyone who reads the repository see)
/// a file outside the graph folder, and reading a FIFO would block.
fn not_a_regular_file(path: &Path, meta: &std::fs::Metadata) -> Error {
    use std::os::unix::fs::FileTypeExt;
    let kind = meta.file_type();
    let what = if kind.is_symlink() {
        match std::fs::read_link(path) {
            Ok(to) => format!("a symbolic link (to {})", to.display()),
            Err(_) => "a symbolic link".to_string(),
        }
    } else if kind.is_fifo() {
        "a FIFO".to_string()
    } else if kind.is_socket() {
        "a socket".to_string()
    } else {
        "a device".to_string()
    };
    Error::invalid(format!(
        "{} is {what}, not a regular file: LightRAG never writes one, and lightrag-backup does not follow one out of a graph folder; replace it with the file itself or move it out of the folder",
        path.display()
    ))
}

/// Open a graph file for reading without following a link (a file swapped for a link after
/// it was listed is refused, not read) and without blocking on a FIFO.
///
/// # Errors
/// `Io` when it cannot be opened (`ELOOP` for a link).
pub fn open_no_follow(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

/// Hard-link the graph files of `dir` into `staging` (same file system), freezing this
/// version of each: LightRAG replaces files by rename, never in place.
///
/// Returns the number of files linked. Falls back to copying when linking is not possible.
pub fn stage_links(dir: &Path, staging: &Path) -> Result<usize> {
    let files = list_graph_files(dir)?;
    std::fs::create_dir_all(staging).map_err(|e| Error::io("create folder", staging, e))?;
    for file in &files {
        let dest = staging.join(&file.name);
        if let Err(link_error) = std::fs::hard_link(&file.path, &dest) {
            let copied = open_no_follow(&file.path).and_then(|mut from| {
                let mut to = std::fs::File::create(&dest)?;
                std::io::copy(&mut from, &mut to)
            });
            copied.map_err(|_| Error::io("link", &file.path, link_error))?;
        }
    }
    Ok(files.len())
}

#[cfg(test)]
mod tests {
    use super::{is_graph_file, is_records_file, records_vector_dim};

    #[test]
    fn a_records_vector_file_names_its_dimension() {
        assert_eq!(
            records_vector_dim("records_entities_vdb.d1024.f32"),
            Some(1024)
        );
        assert_eq!(records_vector_dim("records_chunks_vdb.d8.f32"), Some(8));
        for name in [
            "records_chunks_vdb.f32",
            "records_x.d0.f32",
            "records_x.dx.f32",
            "vdb_x.d8.f32",
        ] {
            assert_eq!(records_vector_dim(name), None, "{name}");
        }
    }

    #[test]
    fn records_files_are_graph_files_and_nothing_else_is() {
        for name in [
            "records.json",
            "records_text_chunks.jsonl",
            "records_chunks_vdb.f32",
        ] {
            assert!(is_records_file(name), "{name}");
            assert!(is_graph_file(name), "{name}");
        }
        for name in [
            "records.jsonl",
            "records_x.json",
            "notes.txt",
            "records_x.jsonl.tmp.1.2.3",
        ] {
            assert!(!is_graph_file(name), "{name}");
        }
    }
}
