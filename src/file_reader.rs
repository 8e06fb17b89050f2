//! Reading one file of a snapshot as a stream, without restoring it: what a diff of two
//! snapshots (or of a snapshot and the live graph) reads.
//!
//! The file's chunks are fetched a window at a time through restore's pipeline
//! ([`crate::fetch`]: ranged reads, every chunk opened and checked against its id) and rebuilt
//! into file bytes as restore rebuilds them, so memory stays within one window and its text
//! whatever the file's size. A NanoVectorDB file stored with its matrix decoded can be read
//! without its matrix ([`SnapshotFile::without_matrix`]): the JSON is then whole with an empty
//! `"matrix"` string, and the matrix chunks, the bulk of a LightRAG graph, are never fetched.

use crate::error::Result;
use crate::fetch::{fetch_window, windows, Reads};
use crate::format::{Codec, FileEncoding, FileEntry};
use crate::repository::{BlobLocation, Repository};
use crate::restore::{locate_file, Piece, Rebuild};
use std::io::Read;

/// One file of a snapshot, read in file order (see the module documentation).
pub struct SnapshotFile<'r> {
    repo: &'r Repository,
    codec: Codec,
    reads: Reads,
    locations: Vec<BlobLocation>,
    /// Index ranges of `locations`, one per window, in file order.
    windows: Vec<std::ops::Range<usize>>,
    next_window: usize,
    rebuild: Rebuild,
    /// File bytes of the current window, served from `at`.
    out: Vec<u8>,
    at: usize,
    read: Vec<u8>,
    data: Vec<u8>,
    text: Vec<u8>,
}

impl<'r> SnapshotFile<'r> {
    /// The file `entry` of `snapshot_id` in graph `graph_id`.
    ///
    /// # Errors
    /// `Integrity` when a chunk of it is missing from the index; a graph key that cannot be
    /// read (`GraphShredded` for a shredded graph).
    pub fn open(
        repo: &'r Repository,
        graph_id: &str,
        snapshot_id: &str,
        entry: &FileEntry,
    ) -> Result<Self> {
        Self::with_chunks(repo, graph_id, snapshot_id, entry, entry.encoding, None)
    }

    /// As [`SnapshotFile::open`], leaving out the decoded matrix of a NanoVectorDB file: its
    /// text reads `"matrix": ""` (followed by whatever was not canonical base64), and none of
    /// its matrix chunks is fetched. Other files read whole.
    ///
    /// # Errors
    /// As [`SnapshotFile::open`].
    pub fn without_matrix(
        repo: &'r Repository,
        graph_id: &str,
        snapshot_id: &str,
        entry: &FileEntry,
    ) -> Result<Self> {
        match entry.encoding {
            FileEncoding::NanoVdbMatrix {
                head_chunks,
                matrix_chunks,
            } => {
                let start = (head_chunks as usize).min(entry.chunks.len());
                let end = (start + matrix_chunks as usize).min(entry.chunks.len());
                Self::with_chunks(
                    repo,
                    graph_id,
                    snapshot_id,
                    entry,
                    FileEncoding::Raw,
                    Some(start..end),
                )
            }
            FileEncoding::Raw => Self::open(repo, graph_id, snapshot_id, entry),
        }
    }

    fn with_chunks(
        repo: &'r Repository,
        graph_id: &str,
        snapshot_id: &str,
        entry: &FileEntry,
        encoding: FileEncoding,
        skip: Option<std::ops::Range<usize>>,
    ) -> Result<Self> {
        let mut locations = locate_file(repo, entry, snapshot_id)?;
        if let Some(skip) = skip {
            locations.drain(skip);
        }
        let reads = Reads::for_backend(repo.backend());
        let mut first = 0;
        let windows = windows(&locations, reads.window_bytes)
            .into_iter()
            .map(|window| {
                let range = first..first + window.len();
                first = range.end;
                range
            })
            .collect();
        Ok(SnapshotFile {
            codec: repo.graph_codec(graph_id)?,
            repo,
            reads,
            locations,
            windows,
            next_window: 0,
            rebuild: Rebuild::new(encoding),
            out: Vec::new(),
            at: 0,
            read: Vec::new(),
            data: Vec::new(),
            text: Vec::new(),
        })
    }

    /// Fetch, check and rebuild the next window into `out`; false at the end of the file.
    fn fill(&mut self) -> Result<bool> {
        let Some(range) = self.windows.get(self.next_window).cloned() else {
            return Ok(false);
        };
        self.next_window += 1;
        let window = fetch_window(
            self.repo,
            &self.codec,
            &self.locations[range],
            self.reads,
            &mut self.read,
            std::mem::take(&mut self.data),
        )?;
        self.out.clear();
        self.at = 0;
        for range in &window.ranges {
            self.text.clear();
            match self
                .rebuild
                .piece(&window.data[range.clone()], &mut self.text)
            {
                Piece::Stored => self.out.extend_from_slice(&window.data[range.clone()]),
                Piece::Text(text) => self.out.extend_from_slice(&self.text[text]),
            }
        }
        self.data = window.data;
        Ok(true)
    }
}

impl Read for SnapshotFile<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.out.len() {
            if !self.fill().map_err(std::io::Error::other)? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.out.len() - self.at);
        buf[..n].copy_from_slice(&self.out[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
