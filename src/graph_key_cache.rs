//! What a process has read of its repository's graph keys: per graph, its own key's codec, the
//! shared master key, or its shred record. The shred record wins over a key still there (a
//! shred interrupted before it deleted the key still shreds).

use crate::backend::Backend;
use crate::error::Result;
use crate::format::graph_key::{self, ShredRecord, MAX_GRAPH_KEY_OBJECT};
use crate::format::Codec;
use std::collections::HashMap;
use std::sync::Mutex;

/// What this process knows of one graph's key.
#[derive(Clone)]
pub enum GraphKey {
    /// The graph has a key of its own: its codec.
    Own(Codec),
    /// The graph's chunks are under the master key (shared with every such graph).
    Shared,
    /// The graph was shredded.
    Shredded(ShredRecord),
}

/// The graph keys a repository has read, by graph id.
#[derive(Default)]
pub struct GraphKeys {
    known: Mutex<HashMap<String, GraphKey>>,
}

impl GraphKeys {
    /// The codec of a graph's chunks and manifests (`codec`: the repository's); `fresh` reads
    /// the objects again instead of trusting what was read before.
    ///
    /// # Errors
    /// `GraphShredded` for a shredded graph; `Integrity` for a damaged object; `Backend` when
    /// the store fails.
    pub async fn codec_of(
        &self,
        backend: &Backend,
        codec: &Codec,
        graph_id: &str,
        fresh: bool,
    ) -> Result<Codec> {
        if !codec.is_encrypted() {
            return Ok(codec.clone());
        }
        let known = self.known.lock().unwrap().get(graph_id).cloned();
        let state = match known {
            Some(state) if !fresh => state,
            _ => self.read(backend, codec, graph_id).await?,
        };
        match state {
            GraphKey::Own(codec) => Ok(codec),
            GraphKey::Shared => Ok(codec.clone()),
            GraphKey::Shredded(record) => Err(record.error()),
        }
    }

    /// Read a graph's shred record or key object and remember what they say.
    ///
    /// # Errors
    /// As [`GraphKeys::codec_of`], but a shredded graph is `Ok(GraphKey::Shredded)`.
    pub async fn read(&self, backend: &Backend, codec: &Codec, graph_id: &str) -> Result<GraphKey> {
        let state = match read_shred(backend, codec, graph_id).await? {
            Some(record) => GraphKey::Shredded(record),
            None => match backend
                .get_at_most(&graph_key::key_path(graph_id), MAX_GRAPH_KEY_OBJECT)
                .await?
            {
                Some(bytes) => GraphKey::Own(graph_key::open_key(codec, graph_id, &bytes)?),
                None => GraphKey::Shared,
            },
        };
        self.remember(codec, graph_id, state.clone());
        Ok(state)
    }

    /// Remember `state` for `graph_id` (a shred also in `codec`'s key ring).
    pub fn remember(&self, codec: &Codec, graph_id: &str, state: GraphKey) {
        if let GraphKey::Shredded(record) = &state {
            codec.learn_shredded(record.tag, graph_id, &record.shredded_at);
        }
        self.known
            .lock()
            .unwrap()
            .insert(graph_id.to_string(), state);
    }

    /// The tags of every graph key known here (own or shredded): a new key takes another.
    pub fn tags(&self) -> std::collections::HashSet<u32> {
        self.known
            .lock()
            .unwrap()
            .values()
            .filter_map(|state| match state {
                GraphKey::Own(codec) => Some(codec.key_tag()),
                GraphKey::Shredded(record) => Some(record.tag),
                GraphKey::Shared => None,
            })
            .collect()
    }
}

/// A graph's shred record, if it was shredded.
///
/// # Errors
/// `Integrity` for a damaged record; `Backend` when the store fails.
pub async fn read_shred(
    backend: &Backend,
    codec: &Codec,
    graph_id: &str,
) -> Result<Option<ShredRecord>> {
    let Some(bytes) = backend
        .get_at_most(&graph_key::shredded_path(graph_id), MAX_GRAPH_KEY_OBJECT)
        .await?
    else {
        return Ok(None);
    };
    graph_key::open_shred(codec, graph_id, &bytes).map(Some)
}
