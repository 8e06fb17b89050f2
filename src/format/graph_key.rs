//! A graph's own key and its shred record, as stored (see `graph_keys.rs` for what they are
//! for):
//!
//! ```text
//! graphs/<graph id>/key        GraphKeyObject: the graph's key and its tag, sealed JSON under
//!                              the master key, bound to its path
//! graphs/<graph id>/shredded   ShredRecord: the graph was shredded (sealed the same way)
//! ```

use super::{paths, Codec};
use crate::error::{Error, Result};
use crate::keys::MasterKey;
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What a graph key object says it is.
const GRAPH_KEY_FORMAT: &str = "lightrag-backup-graph-key";
/// The largest graph key object or shred record read (a real one is about 300 bytes).
pub const MAX_GRAPH_KEY_OBJECT: u64 = 64 << 10;

/// The path of a graph's own key.
pub fn key_path(graph_id: &str) -> Path {
    Path::from(format!("{}/{graph_id}/key", paths::GRAPHS))
}

/// The path of a graph's shred record.
pub fn shredded_path(graph_id: &str) -> Path {
    Path::from(format!("{}/{graph_id}/shredded", paths::GRAPHS))
}

/// A graph key object.
#[derive(Serialize, Deserialize)]
struct GraphKeyObject {
    format: String,
    version: u32,
    graph_id: String,
    /// The tag in the high 32 bits of every chunk salt under this key (never 0).
    tag: u32,
    created_at: String,
    hostname: String,
    /// The key: data key | id key | chunker seed, base64.
    key: String,
}

/// A shredded graph: what `graphs/<graph id>/shredded` records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShredRecord {
    pub graph_id: String,
    /// The tag the graph's chunks carry (so they are reported as shredded, not damaged).
    pub tag: u32,
    pub shredded_at: String,
    pub hostname: String,
    pub username: String,
}

impl ShredRecord {
    /// The error every read of the shredded graph answers with.
    pub fn error(&self) -> Error {
        Error::GraphShredded {
            graph_id: self.graph_id.clone(),
            at: format!(" at {}", self.shredded_at),
        }
    }
}

/// A new graph key object for `graph_id`: `key` under `tag`, sealed with `codec`'s master key.
pub fn seal_key(
    codec: &Codec,
    graph_id: &str,
    key: &MasterKey,
    tag: u32,
    hostname: String,
) -> Vec<u8> {
    let object = GraphKeyObject {
        format: GRAPH_KEY_FORMAT.to_string(),
        version: 1,
        graph_id: graph_id.to_string(),
        tag,
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        hostname,
        key: key.to_base64().to_string(),
    };
    let path = key_path(graph_id);
    codec.seal_json(
        path.as_ref(),
        serde_json::to_vec(&object).expect("a graph key serialises"),
    )
}

/// The graph codec of a graph key object's bytes, checked: sealed under `codec`'s master key for
/// this graph's path, naming this graph.
///
/// # Errors
/// `Integrity` when it is not this graph's key object.
pub fn open_key(codec: &Codec, graph_id: &str, bytes: &[u8]) -> Result<Codec> {
    let path = key_path(graph_id);
    let json = codec.open_json(path.as_ref(), bytes)?;
    let object: GraphKeyObject = serde_json::from_slice(&json)
        .map_err(|e| Error::integrity(format!("{path} cannot be read: {e}")))?;
    if object.format != GRAPH_KEY_FORMAT
        || object.version != 1
        || object.graph_id != graph_id
        || object.tag == 0
    {
        return Err(Error::integrity(format!(
            "{path} is not this graph's key object"
        )));
    }
    // A graph's chunk ids are made the way its repository's are.
    let ids = codec
        .master_key()
        .map_or(crate::keys::ChunkIds::CURRENT, |master| master.ids());
    let key = MasterKey::from_base64(&object.key, ids)
        .map_err(|e| Error::integrity(format!("{path}: {}", e.detail())))?;
    Ok(codec.for_graph(Arc::new(key), object.tag))
}

/// A shred record's stored bytes.
pub fn seal_shred(codec: &Codec, record: &ShredRecord) -> Vec<u8> {
    let path = shredded_path(&record.graph_id);
    codec.seal_json(
        path.as_ref(),
        serde_json::to_vec(record).expect("a shred record serialises"),
    )
}

/// A shred record from its stored bytes, checked to be `graph_id`'s.
///
/// # Errors
/// `Integrity` when it is not this graph's shred record.
pub fn open_shred(codec: &Codec, graph_id: &str, bytes: &[u8]) -> Result<ShredRecord> {
    let path = shredded_path(graph_id);
    let json = codec.open_json(path.as_ref(), bytes)?;
    let record: ShredRecord = serde_json::from_slice(&json)
        .map_err(|e| Error::integrity(format!("{path} cannot be read: {e}")))?;
    if record.graph_id != graph_id || record.tag == 0 {
        return Err(Error::integrity(format!(
            "{path} is not this graph's shred record"
        )));
    }
    Ok(record)
}
