//! Packing chunks and uploading the packs: the one packer of snapshots, prune's repacking and
//! replication's copy.
//!
//! Chunks are added already compressed; a pack is uploaded (create-only, content-addressed)
//! once it reaches [`PACK_TARGET_SIZE`], with a few uploads in flight so the next pack fills
//! while the last one travels. The packer returns the index of what it uploaded; the caller
//! writes that index (step 2 of packs -> index -> manifest) once every upload is done.

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::format::{pack::PackWriter, paths, IndexFile, IndexPack, ObjectId};
use crate::repository::Repository;
use crate::runtime;
use bytes::Bytes;
use std::collections::{HashSet, VecDeque};

/// Packs are cut at this size (the last one of a run is smaller).
pub const PACK_TARGET_SIZE: usize = 16 * 1024 * 1024;
/// Pack uploads in flight for a local repository (a direct write of a whole pack takes less
/// time than filling the next one; each pack in flight holds its 16 MiB)...
const UPLOADS_IN_FLIGHT: usize = 1;
/// ...and for an object store, where each upload waits on the network.
const REMOTE_UPLOADS_IN_FLIGHT: usize = 4;

/// An upload hands its pack's buffer back when nothing else holds it.
type Upload = tokio::task::JoinHandle<Result<Option<Vec<u8>>>>;

/// Room for a whole pack: its target size, the last chunk that crosses it and the trailer.
const PACK_CAPACITY: usize = PACK_TARGET_SIZE + (2 << 20);

/// Collects compressed chunks into packs and uploads each full pack in the background.
pub struct Packer {
    backend: Backend,
    runtime: tokio::runtime::Handle,
    pack: PackWriter,
    uploads: VecDeque<Upload>,
    in_flight: usize,
    index: IndexFile,
    /// Pack ids never to produce: the repository's damaged packs (see
    /// [`PackWriter::finish_avoiding`]).
    avoid: HashSet<ObjectId>,
    codec: crate::format::Codec,
    /// The buffer of a stored pack, for the next pack: touching fresh memory costs a page
    /// fault per page (on this project's virtual machines, about 0.2 s of CPU per 270 MB of
    /// packs).
    spare: Vec<Vec<u8>>,
}

impl Packer {
    /// A packer writing into `repo`.
    pub fn new(repo: &Repository) -> Self {
        let backend = repo.backend();
        Packer {
            backend: backend.clone(),
            runtime: runtime::handle(),
            pack: PackWriter::with_buffer(Vec::with_capacity(PACK_CAPACITY)),
            uploads: VecDeque::new(),
            in_flight: if backend.is_remote() {
                REMOTE_UPLOADS_IN_FLIGHT
            } else {
                UPLOADS_IN_FLIGHT
            },
            index: IndexFile::default(),
            avoid: repo.damaged_packs(),
            codec: repo.codec().clone(),
            spare: Vec::new(),
        }
    }

    /// An empty pack, in a buffer a stored pack gave back when there is one.
    fn next_pack(&mut self) -> PackWriter {
        PackWriter::with_buffer(
            self.spare
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(PACK_CAPACITY)),
        )
    }

    /// Add one compressed chunk; uploads the pack when it is full.
    ///
    /// # Errors
    /// `Backend` when an earlier upload failed (the packer stops at the first failure).
    pub fn add(&mut self, id: ObjectId, compressed: &[u8], raw_length: u32) -> Result<()> {
        self.pack.add(id, compressed, raw_length);
        if self.pack.len() >= PACK_TARGET_SIZE {
            let next = self.next_pack();
            let full = std::mem::replace(&mut self.pack, next);
            self.start_upload(full)?;
            while self.uploads.len() > self.in_flight {
                self.wait_one()?;
            }
        }
        Ok(())
    }

    /// Upload what is left and wait for every upload; returns the index of every pack.
    ///
    /// # Errors
    /// `Backend` when an upload failed: nothing of the index is written then, and the packs
    /// already stored are unreferenced (a later prune removes them).
    pub fn finish(mut self) -> Result<IndexFile> {
        if !self.pack.is_empty() {
            let last = std::mem::take(&mut self.pack);
            self.start_upload(last)?;
        }
        while !self.uploads.is_empty() {
            self.wait_one()?;
        }
        Ok(std::mem::take(&mut self.index))
    }

    fn start_upload(&mut self, pack: PackWriter) -> Result<()> {
        let (id, bytes, blobs) = pack.finish_avoiding(&self.avoid, &self.codec)?;
        self.index.packs.push(IndexPack {
            id,
            size: bytes.len() as u64,
            blobs,
        });
        let backend = self.backend.clone();
        self.uploads.push_back(self.runtime.spawn(async move {
            let bytes = Bytes::from(bytes);
            backend
                .put_immutable(&paths::pack(&id), bytes.clone())
                .await?;
            Ok(bytes.try_into_mut().ok().map(Vec::from))
        }));
        Ok(())
    }

    fn wait_one(&mut self) -> Result<()> {
        let Some(upload) = self.uploads.pop_front() else {
            return Ok(());
        };
        let spent = self
            .runtime
            .block_on(upload)
            .unwrap_or_else(|e| Err(Error::integrity(format!("pack upload task failed: {e}"))))?;
        // One spare is all the next pack needs (memory stays within one pack of before).
        if let Some(buffer) = spent.filter(|b| b.capacity() >= PACK_TARGET_SIZE) {
            if self.spare.is_empty() {
                self.spare.push(buffer);
            }
        }
        Ok(())
    }
}
