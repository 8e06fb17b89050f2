//! Per-graph keys: tenants that can be erased.
//!
//! In an encrypted repository a graph may have a key of its own (a data key, an id key and a
//! chunker secret, as the master key has), chosen at its first snapshot (`init
//! --key-per-graph` for every graph, or per graph). Its chunks and manifests are sealed under
//! it; what the repository needs to find and check packs (index objects, pack trailers) stays
//! under the master key. Dedup then works within a graph and across its snapshots, not across
//! graphs.
//!
//! ```text
//! graphs/<graph id>/key        the graph's key and its tag, sealed under the master key,
//!                              written create-only before the graph's first snapshot
//! graphs/<graph id>/shredded   written when the graph is shredded, before its key is
//!                              deleted: the tag its chunks carry, when, where
//! ```
//!
//! Shredding deletes the key object: every snapshot of the graph is unreadable at once (its
//! chunks and manifests are sealed under a key that no longer exists anywhere), while every
//! other graph reads as before. The graph's manifests and claim go with it; prune then frees
//! its packs, and verify, repair and retention report its chunks as shredded, not damaged.
//! The marker keeps the graph id from taking new snapshots (a backup job still running
//! against the tenant would otherwise start its history again).

use crate::backend::Created;
use crate::error::{Error, Result};
use crate::format::graph_key::{self, ShredRecord, MAX_GRAPH_KEY_OBJECT};
use crate::format::{paths, Codec};
use crate::graph_key_cache::{read_shred, GraphKey};
use crate::keys::MasterKey;
use crate::repository::{hostname, validate_graph_id, Repository};
use crate::runtime::block_on;
use bytes::Bytes;
use serde::Serialize;

/// What [`Repository::shred_graph`] did.
#[derive(Debug, Clone, Serialize)]
pub struct ShredReport {
    pub graph_id: String,
    pub shredded_at: String,
    /// Whether the graph was shredded before this call (which then only finished the work).
    pub already_shredded: bool,
    /// The ids of the snapshot manifests deleted.
    pub snapshots_deleted: Vec<String>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Repository {
    /// Read a graph's shred record or key object again (see [`GraphKeys::read`]).
    async fn read_graph_key(&self, graph_id: &str) -> Result<GraphKey> {
        self.graph_keys
            .read(self.backend(), self.codec(), graph_id)
            .await
    }

    /// The codec a new snapshot of `graph_id` is written with: the graph's own key when it has
    /// one; a new key of its own at its first snapshot when `own_key` asks for one or the
    /// repository gives every graph one (`init --key-per-graph`); the master key otherwise.
    ///
    /// # Errors
    /// `GraphShredded` for a shredded graph id; `InvalidInput` when `own_key` is asked of an
    /// unencrypted repository or of a graph that already has snapshots under the master key.
    pub fn codec_for_snapshot(&self, graph_id: &str, own_key: bool) -> Result<Codec> {
        validate_graph_id(graph_id)?;
        if !self.codec().is_encrypted() {
            if own_key {
                return Err(Error::invalid(
                    "a graph key of its own needs an encrypted repository (this one was made with --encryption none)",
                ));
            }
            return Ok(self.codec().clone());
        }
        // Read again: another host may have shredded the graph or given it its key.
        let codec = block_on(self.graph_codec_async(graph_id, true))?;
        if codec.key_tag() != 0 || !(own_key || self.config().key_per_graph) {
            return Ok(codec);
        }
        if !self.list_snapshot_names(Some(graph_id))?.is_empty() {
            if own_key {
                return Err(Error::invalid(format!(
                    "graph {graph_id:?} already has snapshots under the repository key: a graph gets a key of its own at its first snapshot (give it another graph id, or keep the shared key)"
                )));
            }
            // A graph from before the repository gave keys per graph keeps the shared one.
            return Ok(codec);
        }
        self.create_graph_key(graph_id)
    }

    /// Write a new key for a graph (create-only; a key another process wrote first wins).
    fn create_graph_key(&self, graph_id: &str) -> Result<Codec> {
        // A tag no graph key this repository holds has (chunks name their key by it).
        self.load_graph_keys()?;
        let taken = self.graph_keys.tags();
        let tag = loop {
            let tag: u32 = rand::random();
            if tag != 0 && !taken.contains(&tag) {
                break tag;
            }
        };
        // Chunk ids made the way the repository's are (format 5 repositories keep HMAC).
        let ids = self
            .codec()
            .master_key()
            .map_or(crate::keys::ChunkIds::CURRENT, |master| master.ids());
        let key = MasterKey::generate_with(ids)?;
        let path = graph_key::key_path(graph_id);
        let bytes = graph_key::seal_key(self.codec(), graph_id, &key, tag, hostname());
        block_on(self.backend().put_create(&path, Bytes::from(bytes)))?;
        // Ours, or the one a concurrent first snapshot wrote before it.
        block_on(self.graph_codec_async(graph_id, true))
    }

    /// Read every graph key object and shred record, so chunks of any graph open (verify,
    /// prune, repair, copy read every pack).
    ///
    /// # Errors
    /// `Backend` when the store fails; an unreadable key object is logged and skipped (its
    /// graph's chunks then fail to open, and are reported as damage).
    pub fn load_graph_keys(&self) -> Result<()> {
        if !self.codec().is_encrypted() {
            return Ok(());
        }
        let listed = self.backend().list_blocking(paths::GRAPHS)?;
        for (path, _) in listed {
            let parts: Vec<&str> = path.as_ref().split('/').collect();
            if parts.len() != 3 || !(parts[2] == "key" || parts[2] == "shredded") {
                continue;
            }
            if let Err(error) = block_on(self.read_graph_key(parts[1])) {
                if !error.is_damage() {
                    return Err(error);
                }
                log::warn!("{path} cannot be read: {}", error.detail());
            }
        }
        Ok(())
    }

    /// Every shredded graph of the repository, by graph id.
    ///
    /// # Errors
    /// `Backend` when the store fails.
    pub fn shredded_graphs(&self) -> Result<Vec<ShredRecord>> {
        if !self.codec().is_encrypted() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for (path, _) in self.backend().list_blocking(paths::GRAPHS)? {
            let parts: Vec<&str> = path.as_ref().split('/').collect();
            if parts.len() == 3 && parts[2] == "shredded" {
                match block_on(read_shred(self.backend(), self.codec(), parts[1])) {
                    Ok(Some(record)) => out.push(record),
                    Ok(None) => {}
                    Err(error) if error.is_damage() => {
                        log::warn!("{path} cannot be read: {}", error.detail())
                    }
                    Err(error) => return Err(error),
                }
            }
        }
        out.sort_by(|a, b| a.graph_id.cmp(&b.graph_id));
        Ok(out)
    }

    /// Whether a graph has a key of its own (so it can be shredded).
    ///
    /// # Errors
    /// `GraphShredded` when it was shredded; `Backend` when the store fails.
    pub fn has_own_key(&self, graph_id: &str) -> Result<bool> {
        Ok(self.graph_codec(graph_id)?.key_tag() != 0)
    }

    /// Shred a graph: record it, delete its key (from then on no snapshot of it can be read,
    /// here or anywhere the key object was copied once it is deleted there too), then delete
    /// its manifests and claim. Its packs are freed by the next prune. Running it again
    /// finishes an interrupted shred.
    ///
    /// # Errors
    /// `InvalidInput` when the repository is not encrypted or the graph has no key of its own
    /// (its chunks are shared with other graphs under the master key: nothing to erase
    /// cryptographically) or no snapshots; `Backend` when the store fails (run it again).
    pub fn shred_graph(&self, graph_id: &str) -> Result<ShredReport> {
        validate_graph_id(graph_id)?;
        if !self.codec().is_encrypted() {
            return Err(Error::invalid(
                "this repository is not encrypted: nothing can be shredded (forget the graph's snapshots and prune instead)",
            ));
        }
        let (record, already) = match block_on(self.read_graph_key(graph_id))? {
            GraphKey::Own(codec) => {
                let record = ShredRecord {
                    graph_id: graph_id.to_string(),
                    tag: codec.key_tag(),
                    shredded_at: now(),
                    hostname: hostname(),
                    username: std::env::var("USER").unwrap_or_default(),
                };
                (record, false)
            }
            GraphKey::Shredded(record) => (record, true),
            GraphKey::Shared => {
                return Err(Error::invalid(
                    if self.list_snapshot_names(Some(graph_id))?.is_empty() {
                        format!("graph {graph_id:?} has no snapshots in this repository")
                    } else {
                        format!("graph {graph_id:?} has no key of its own: its chunks are sealed with the repository key and shared with other graphs, so they cannot be erased by deleting a key. Per-graph keys are chosen at a graph's first snapshot (init --key-per-graph, or a first snapshot with --key-per-graph); to remove this graph, forget its snapshots and prune")
                    },
                ));
            }
        };
        self.apply_shred(&record)?;
        let snapshots_deleted = self.delete_graph_objects(graph_id)?;
        Ok(ShredReport {
            graph_id: graph_id.to_string(),
            shredded_at: record.shredded_at,
            already_shredded: already,
            snapshots_deleted,
        })
    }

    /// Record `record` and delete the graph's key: the shred itself (here, or arriving from a
    /// replication source). The record is written first, so a crash between the two leaves a
    /// shredded graph whose key a second run deletes.
    ///
    /// # Errors
    /// `Backend` when the store fails.
    pub fn apply_shred(&self, record: &ShredRecord) -> Result<()> {
        validate_graph_id(&record.graph_id)?;
        let marker = graph_key::shredded_path(&record.graph_id);
        let bytes = graph_key::seal_shred(self.codec(), record);
        block_on(async {
            match self
                .backend()
                .put_create(&marker, Bytes::from(bytes))
                .await?
            {
                Created::New | Created::AlreadyExisted => {}
            }
            self.backend()
                .delete(&graph_key::key_path(&record.graph_id))
                .await
        })?;
        self.graph_keys.remember(
            self.codec(),
            &record.graph_id,
            GraphKey::Shredded(record.clone()),
        );
        Ok(())
    }

    /// Delete a shredded graph's manifests and claim (unreadable without its key); returns
    /// the ids of the manifests deleted.
    ///
    /// # Errors
    /// `Backend` when the store fails.
    pub fn delete_graph_objects(&self, graph_id: &str) -> Result<Vec<String>> {
        let names = self.list_snapshot_names(Some(graph_id))?;
        block_on(async {
            for (graph, id) in &names {
                self.backend().delete(&paths::snapshot(graph, id)).await?;
            }
            self.backend().delete(&paths::graph_claim(graph_id)).await
        })?;
        Ok(names.into_iter().map(|(_, id)| id).collect())
    }

    /// Finish every shred an interruption left half done: delete the key, manifests and claim
    /// of each shredded graph (usually nothing is left: one listing of `graphs/`).
    ///
    /// # Errors
    /// `Backend` when the store fails.
    pub fn finish_shreds(&self) -> Result<()> {
        for record in self.shredded_graphs()? {
            self.apply_shred(&record)?;
            self.delete_graph_objects(&record.graph_id)?;
        }
        Ok(())
    }

    /// A graph's key object as stored (for replication targets, which share the master key).
    ///
    /// # Errors
    /// `Backend` when the store fails.
    pub fn graph_key_object(&self, graph_id: &str) -> Result<Option<Bytes>> {
        block_on(
            self.backend()
                .get_at_most(&graph_key::key_path(graph_id), MAX_GRAPH_KEY_OBJECT),
        )
    }

    /// Store a graph key object received from a replication source (sealed under the master
    /// key both share): checked to open for `graph_id` first, written create-only.
    ///
    /// # Errors
    /// `GraphShredded` when the graph was shredded here; `Integrity` when the object does not
    /// open here; `Conflict` when the graph already has another key here.
    pub fn receive_graph_key(&self, graph_id: &str, bytes: Bytes) -> Result<()> {
        validate_graph_id(graph_id)?;
        let theirs = graph_key::open_key(self.codec(), graph_id, &bytes)?;
        match block_on(self.graph_codec_async(graph_id, true))? {
            ours if ours.key_tag() == theirs.key_tag() && ours.key_tag() != 0 => return Ok(()),
            ours if ours.key_tag() != 0 => {
                return Err(Error::Conflict {
                    message: format!("graph {graph_id:?} has another key of its own here"),
                })
            }
            _ => {}
        }
        if !self.list_snapshot_names(Some(graph_id))?.is_empty() {
            return Err(Error::Conflict {
                message: format!(
                    "graph {graph_id:?} has snapshots under the repository key here; it cannot take a key of its own"
                ),
            });
        }
        block_on(
            self.backend()
                .put_create(&graph_key::key_path(graph_id), bytes),
        )?;
        block_on(self.graph_codec_async(graph_id, true)).map(|_| ())
    }

    /// A shredded graph's record as stored (`None` when the graph is not shredded): what a
    /// replication source sends its targets.
    ///
    /// # Errors
    /// `Integrity` for a damaged record; `Backend` when the store fails.
    pub fn shred_record_object(&self, graph_id: &str) -> Result<Option<(ShredRecord, Bytes)>> {
        if !self.codec().is_encrypted() {
            return Ok(None);
        }
        let path = graph_key::shredded_path(graph_id);
        let Some(bytes) = block_on(self.backend().get_at_most(&path, MAX_GRAPH_KEY_OBJECT))? else {
            return Ok(None);
        };
        let record = graph_key::open_shred(self.codec(), graph_id, &bytes)?;
        Ok(Some((record, bytes)))
    }

    /// Apply a shred a replication source sent (its stored record, sealed under the master key
    /// both share, so only a holder of the key can shred here): the graph's key, manifests and
    /// claim are deleted as on the source.
    ///
    /// # Errors
    /// `Integrity` when the record does not open here; `Backend` when the store fails.
    pub fn receive_shred(&self, graph_id: &str, bytes: &[u8]) -> Result<ShredReport> {
        validate_graph_id(graph_id)?;
        let record = graph_key::open_shred(self.codec(), graph_id, bytes)?;
        let already = block_on(read_shred(self.backend(), self.codec(), graph_id))?.is_some()
            && block_on(self.backend().get_bounded(&graph_key::key_path(graph_id)))?.is_none();
        self.apply_shred(&record)?;
        let snapshots_deleted = self.delete_graph_objects(graph_id)?;
        Ok(ShredReport {
            graph_id: graph_id.to_string(),
            shredded_at: record.shredded_at,
            already_shredded: already,
            snapshots_deleted,
        })
    }
}
