//! What changed in a LightRAG graph between two versions (two snapshots, or a snapshot and the
//! graph as it is now), in LightRAG's own terms: documents, entities, relations, text chunks,
//! vector rows and LLM cache entries added, removed and changed.
//!
//! Each version is read once, as streams ([`GraphFiles`]): the JSON key-value stores record by
//! record, the vector stores row id by row id (their matrices are never read: a snapshot's
//! matrix chunks are not even fetched, see [`crate::file_reader`]), the GraphML graph element
//! by element. What is kept per version is a digest: per record its id and a 128-bit BLAKE3
//! hash (per field for entities and relations; status, file path and chunk count for
//! documents), so memory grows with the number of records, not with their size.
//!
//! A version is LightRAG's files (its JSON, NanoVectorDB and NetworkX storages) or a records
//! snapshot of a database-backed graph (`records_<storage>.jsonl`, one `[id, record]` per
//! line); fields are compared by their text, so the two kinds compare with each other.

use crate::error::{Error, Result};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufReader, Read};
use std::path::PathBuf;

type Hash = [u8; 16];

fn hash(bytes: &[u8]) -> Hash {
    let mut out = [0u8; 16];
    out.copy_from_slice(&blake3::hash(bytes).as_bytes()[..16]);
    out
}

/// The files of one version of a graph.
pub trait GraphFiles {
    /// The file `name` (relative to the graph folder) as a stream; `None` when the version has
    /// no such file. Vector files may come without their matrix.
    ///
    /// # Errors
    /// When it exists but cannot be opened.
    fn open(&mut self, name: &str) -> Result<Option<Box<dyn Read + '_>>>;

    /// How the version is named in messages.
    fn describe(&self) -> String;
}

/// A graph folder as it is on disk (a live graph's `working_dir/workspace`).
pub struct FolderFiles(pub PathBuf);

impl GraphFiles for FolderFiles {
    fn open(&mut self, name: &str) -> Result<Option<Box<dyn Read + '_>>> {
        let path = self.0.join(name);
        // Regular files only: nothing is followed out of the graph folder.
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read", &path, e)),
        }
        let file = std::fs::File::open(&path).map_err(|e| Error::io("open", &path, e))?;
        Ok(Some(Box::new(file)))
    }

    fn describe(&self) -> String {
        format!("the graph in {}", self.0.display())
    }
}

/// A snapshot's files, read from the repository without restoring them.
pub struct SnapshotFiles<'r> {
    pub repo: &'r crate::repository::Repository,
    pub manifest: &'r crate::format::SnapshotManifest,
}

impl GraphFiles for SnapshotFiles<'_> {
    fn open(&mut self, name: &str) -> Result<Option<Box<dyn Read + '_>>> {
        let Some(entry) = self.manifest.files.iter().find(|f| f.path == name) else {
            return Ok(None);
        };
        let file = crate::file_reader::SnapshotFile::without_matrix(
            self.repo,
            &self.manifest.graph_id,
            &self.manifest.snapshot_id,
            entry,
        )?;
        Ok(Some(Box::new(file)))
    }

    fn describe(&self) -> String {
        format!("snapshot {}", self.manifest.snapshot_id)
    }
}

/// A document as its status and full text record it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Doc {
    status: Option<String>,
    file_path: Option<String>,
    chunks: Option<u64>,
    content: Option<Hash>,
}

/// Per field, the hash of its value (entities and relations).
/// A field's name, shared by every record that has the field (a graph has a few dozen names
/// and a million records).
type Name = std::sync::Arc<str>;

/// A record's compared fields, sorted by name, held as tightly as a list (a map's node keeps
/// room for eleven entries; records have five to eight fields).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Fields(Vec<(Name, Hash)>);

impl Fields {
    fn from_unsorted(mut fields: Vec<(Name, Hash)>) -> Self {
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        fields.dedup_by(|later, earlier| later.0 == earlier.0);
        fields.shrink_to_fit();
        Fields(fields)
    }

    fn get(&self, name: &str) -> Option<&Hash> {
        self.0
            .binary_search_by(|(known, _)| (**known).cmp(name))
            .ok()
            .map(|at| &self.0[at].1)
    }

    fn remove(&mut self, name: &str) {
        self.0.retain(|(known, _)| &**known != name);
    }

    fn names(&self) -> impl Iterator<Item = &Name> {
        self.0.iter().map(|(name, _)| name)
    }
}

/// One [`Name`] per distinct field name read.
#[derive(Default)]
struct Names(BTreeSet<Name>);

impl Names {
    fn get(&mut self, name: &str) -> Name {
        if let Some(known) = self.0.get(name) {
            return known.clone();
        }
        let name: Name = name.into();
        self.0.insert(name.clone());
        name
    }
}

/// One version of a graph, reduced to ids and hashes (see the module documentation).
#[derive(Debug, Default)]
pub struct Digest {
    documents: BTreeMap<String, Doc>,
    chunks: BTreeMap<String, Hash>,
    entities: BTreeMap<String, Fields>,
    relations: BTreeMap<(String, String), Fields>,
    /// Row ids per vector store (`entities`, `relationships`, `chunks`).
    vectors: BTreeMap<String, BTreeSet<String>>,
    cache: BTreeSet<String>,
}

/// The vector stores of a file graph.
const VECTOR_STORES: [&str; 3] = ["entities", "relationships", "chunks"];

impl Digest {
    /// Read one version of a graph.
    ///
    /// # Errors
    /// `Integrity` when a store is not what LightRAG writes (named); what reading fails with.
    pub fn read(files: &mut dyn GraphFiles) -> Result<Digest> {
        if files.open(RECORDS_MANIFEST)?.is_some() {
            return Self::read_records(files, false);
        }
        let mut digest = Digest::default();
        let what = files.describe();
        // A store that is not what LightRAG writes is bad input to a diff (the snapshot holds
        // it faithfully); a store that cannot be read (a damaged chunk) is damage.
        let bad = |name: &str, why: String| {
            Error::invalid(format!(
                "{name} of {what} is not what LightRAG writes: {why}"
            ))
        };
        let json_error = |name: &str, e: serde_json::Error| {
            // A failed read of the repository comes through as an I/O error: say that, not
            // "not JSON".
            match e.io_error_kind() {
                Some(_) => Error::integrity(format!("{name} of {what} cannot be read: {e}")),
                None => bad(name, e.to_string()),
            }
        };
        if let Some(reader) = files.open("kv_store_doc_status.json")? {
            each_record(reader, |id, value| {
                let doc = digest.documents.entry(id).or_default();
                doc.status = text_field(&value, "status");
                doc.file_path = text_field(&value, "file_path");
                doc.chunks = value
                    .get("chunks_count")
                    .and_then(serde_json::Value::as_u64)
                    .or_else(|| {
                        value
                            .get("chunks_list")
                            .and_then(serde_json::Value::as_array)
                            .map(|list| list.len() as u64)
                    });
            })
            .map_err(|e| json_error("kv_store_doc_status.json", e))?;
        }
        if let Some(reader) = files.open("kv_store_full_docs.json")? {
            each_record(reader, |id, value| {
                let doc = digest.documents.entry(id).or_default();
                let content = value.get("content").unwrap_or(&value);
                doc.content = Some(hash(&serde_json::to_vec(content).unwrap_or_default()));
                if doc.file_path.is_none() {
                    doc.file_path = text_field(&value, "file_path");
                }
            })
            .map_err(|e| json_error("kv_store_full_docs.json", e))?;
        }
        if let Some(reader) = files.open("kv_store_text_chunks.json")? {
            each_record(reader, |id, value| {
                let content = value.get("content").unwrap_or(&value);
                let bytes = serde_json::to_vec(content).unwrap_or_default();
                digest.chunks.insert(id, hash(&bytes));
            })
            .map_err(|e| json_error("kv_store_text_chunks.json", e))?;
        }
        if let Some(reader) = files.open("kv_store_llm_response_cache.json")? {
            each_key(reader, |id| {
                digest.cache.insert(id);
            })
            .map_err(|e| json_error("kv_store_llm_response_cache.json", e))?;
        }
        for store in VECTOR_STORES {
            let name = format!("vdb_{store}.json");
            if let Some(reader) = files.open(&name)? {
                let ids = digest.vectors.entry(store.to_string()).or_default();
                vector_ids(reader, ids).map_err(|e| json_error(&name, e))?;
            }
        }
        if let Some(reader) = files.open("graph_chunk_entity_relation.graphml")? {
            const NAME: &str = "graph_chunk_entity_relation.graphml";
            read_graphml(reader, &mut digest).map_err(|why| {
                if why.starts_with(CANNOT_BE_READ) {
                    Error::integrity(format!("{NAME} of {what} {why}"))
                } else {
                    bad(NAME, why)
                }
            })?;
        }
        Ok(digest)
    }
}

/// The manifest of a records snapshot (a database-backed graph's records, format
/// `lightrag-records`: `python/lightrag/backup/records/layout.py`).
const RECORDS_MANIFEST: &str = "records.json";

/// How a records file that fails to read (not to parse) is reported.
const CANNOT_BE_READ: &str = "cannot be read";

/// The text a field's value compares by: a string as it is, anything else as JSON.
fn value_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn value_fields(properties: &serde_json::Value, names: &mut Names) -> Fields {
    properties
        .as_object()
        .map(|map| {
            map.iter()
                .filter(|(k, _)| !NOISE_FIELDS.contains(&k.as_str()))
                .map(|(k, v)| (names.get(k), hash(value_text(v).as_bytes())))
                .collect()
        })
        .map(Fields::from_unsorted)
        .unwrap_or_default()
}

/// Every line of a records file (`[id, record]`, or `[source, target, properties]` for graph
/// edges), one at a time.
fn each_line(
    reader: impl Read,
    mut each: impl FnMut(Vec<serde_json::Value>) -> std::result::Result<(), String>,
) -> std::result::Result<(), String> {
    use std::io::BufRead;
    let mut reader = BufReader::with_capacity(256 * 1024, reader);
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        if reader
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("{CANNOT_BE_READ}: {e}"))?
            == 0
        {
            return Ok(());
        }
        number += 1;
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let fields: Vec<serde_json::Value> = serde_json::from_slice(&line)
            .map_err(|e| format!("line {number} is not a JSON list: {e}"))?;
        each(fields).map_err(|why| format!("line {number}: {why}"))?;
    }
}

fn id_of(fields: &[serde_json::Value]) -> std::result::Result<String, String> {
    fields
        .first()
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or_else(|| "no id first".to_string())
}

impl Digest {
    /// A records snapshot: the same digest from its `records_<storage>.jsonl` files.
    /// With `documents_only`, only its doc status store is read (what `deleted` needs).
    fn read_records(files: &mut dyn GraphFiles, documents_only: bool) -> Result<Digest> {
        let mut digest = Digest::default();
        let mut names = Names::default();
        let what = files.describe();
        let read =
            |files: &mut dyn GraphFiles,
             store: &str,
             each: &mut dyn FnMut(Vec<serde_json::Value>) -> std::result::Result<(), String>|
             -> Result<()> {
                let name = format!("records_{store}.jsonl");
                if let Some(reader) = files.open(&name)? {
                    each_line(reader, each).map_err(|why| {
                        let message = format!("{name} of {what} is not a records file: {why}");
                        if why.starts_with(CANNOT_BE_READ) {
                            Error::integrity(message)
                        } else {
                            Error::invalid(message)
                        }
                    })?;
                }
                Ok(())
            };
        read(files, "doc_status", &mut |line| {
            let record = line.get(1).cloned().unwrap_or_default();
            let doc = digest.documents.entry(id_of(&line)?).or_default();
            doc.status = text_field(&record, "status");
            doc.file_path = text_field(&record, "file_path");
            doc.chunks = record
                .get("chunks_count")
                .and_then(serde_json::Value::as_u64);
            Ok(())
        })?;
        if documents_only {
            return Ok(digest);
        }
        read(files, "full_docs", &mut |line| {
            let record = line.get(1).cloned().unwrap_or_default();
            let content = record.get("content").unwrap_or(&record);
            let doc = digest.documents.entry(id_of(&line)?).or_default();
            doc.content = Some(hash(&serde_json::to_vec(content).unwrap_or_default()));
            if doc.file_path.is_none() {
                doc.file_path = text_field(&record, "file_path");
            }
            Ok(())
        })?;
        read(files, "text_chunks", &mut |line| {
            let record = line.get(1).cloned().unwrap_or_default();
            let content = record.get("content").unwrap_or(&record);
            let bytes = serde_json::to_vec(content).unwrap_or_default();
            digest.chunks.insert(id_of(&line)?, hash(&bytes));
            Ok(())
        })?;
        read(files, "llm_response_cache", &mut |line| {
            digest.cache.insert(id_of(&line)?);
            Ok(())
        })?;
        for store in VECTOR_STORES {
            let ids = digest.vectors.entry(store.to_string()).or_default();
            let vdb = match store {
                "entities" => "entities_vdb",
                "relationships" => "relationships_vdb",
                _ => "chunks_vdb",
            };
            read(files, vdb, &mut |line| {
                ids.insert(id_of(&line)?);
                Ok(())
            })?;
        }
        read(files, "graph_nodes", &mut |line| {
            let fields = value_fields(line.get(1).unwrap_or(&serde_json::Value::Null), &mut names);
            digest.entities.insert(id_of(&line)?, fields);
            Ok(())
        })?;
        read(files, "graph_edges", &mut |line| {
            let a = id_of(&line)?;
            let b = line
                .get(1)
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .ok_or("an edge without a target")?;
            let mut fields =
                value_fields(line.get(2).unwrap_or(&serde_json::Value::Null), &mut names);
            // GraphML keeps no edge id; records may.
            fields.remove("id");
            let key = if a <= b { (a, b) } else { (b, a) };
            digest.relations.insert(key, fields);
            Ok(())
        })?;
        Ok(digest)
    }
}

fn text_field(value: &serde_json::Value, field: &str) -> Option<String> {
    value.get(field).and_then(|v| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    })
}

fn json_reader<R: Read>(
    reader: R,
) -> serde_json::Deserializer<serde_json::de::IoRead<BufReader<R>>> {
    serde_json::Deserializer::from_reader(BufReader::with_capacity(256 * 1024, reader))
}

/// Every record of a JSON object of records, one at a time.
fn each_record(
    reader: impl Read,
    mut each: impl FnMut(String, serde_json::Value),
) -> std::result::Result<(), serde_json::Error> {
    struct Records<'f, F>(&'f mut F);
    impl<'de, F: FnMut(String, serde_json::Value)> Visitor<'de> for Records<'_, F> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object of records")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
            while let Some(key) = map.next_key::<String>()? {
                let value = map.next_value::<serde_json::Value>()?;
                (self.0)(key, value);
            }
            Ok(())
        }
    }
    let mut de = json_reader(reader);
    serde::Deserializer::deserialize_map(&mut de, Records(&mut each))?;
    de.end()
}

/// Every key of a JSON object, values skipped unread.
fn each_key(
    reader: impl Read,
    mut each: impl FnMut(String),
) -> std::result::Result<(), serde_json::Error> {
    struct Keys<'f, F>(&'f mut F);
    impl<'de, F: FnMut(String)> Visitor<'de> for Keys<'_, F> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object of records")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<IgnoredAny>()?;
                (self.0)(key);
            }
            Ok(())
        }
    }
    let mut de = json_reader(reader);
    serde::Deserializer::deserialize_map(&mut de, Keys(&mut each))?;
    de.end()
}

/// The row ids (`__id__`) of a NanoVectorDB file; its matrix and each row's vector skipped.
fn vector_ids(
    reader: impl Read,
    ids: &mut BTreeSet<String>,
) -> std::result::Result<(), serde_json::Error> {
    #[derive(Deserialize)]
    struct Row {
        #[serde(rename = "__id__")]
        id: String,
    }
    struct Rows<'s>(&'s mut BTreeSet<String>);
    impl<'de> DeserializeSeed<'de> for Rows<'_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(
            self,
            de: D,
        ) -> std::result::Result<(), D::Error> {
            de.deserialize_seq(self)
        }
    }
    impl<'de> Visitor<'de> for Rows<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of vector rows")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
            while let Some(row) = seq.next_element::<Row>()? {
                self.0.insert(row.id);
            }
            Ok(())
        }
    }
    struct File<'s>(&'s mut BTreeSet<String>);
    impl<'de> Visitor<'de> for File<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a NanoVectorDB object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
            while let Some(key) = map.next_key::<String>()? {
                if key == "data" {
                    map.next_value_seed(Rows(self.0))?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(())
        }
    }
    let mut de = json_reader(reader);
    serde::Deserializer::deserialize_map(&mut de, File(ids))?;
    de.end()
}

/// The nodes (entities) and edges (relations) of a GraphML file, each field hashed. Edges are
/// undirected: a relation is named by its two ends in sorted order.
fn read_graphml(reader: impl Read, digest: &mut Digest) -> std::result::Result<(), String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(BufReader::with_capacity(256 * 1024, reader));
    let mut buf = Vec::new();
    // key id -> attribute name (entity_type, description, ...)
    let mut keys: BTreeMap<String, Name> = BTreeMap::new();
    enum Open {
        None,
        Node(String),
        Edge(String, String),
    }
    let mut open = Open::None;
    let mut fields: Vec<(Name, Hash)> = Vec::new();
    let mut field: Option<(Name, blake3::Hasher)> = None;
    let mut saw_graph = false;
    let attribute = crate::validate::xml_attribute;
    let close = |open: &mut Open, fields: &mut Vec<(Name, Hash)>, digest: &mut Digest| {
        match std::mem::replace(open, Open::None) {
            Open::Node(id) => {
                digest
                    .entities
                    .insert(id, Fields::from_unsorted(std::mem::take(fields)));
            }
            Open::Edge(a, b) => {
                let key = if a <= b { (a, b) } else { (b, a) };
                digest
                    .relations
                    .insert(key, Fields::from_unsorted(std::mem::take(fields)));
            }
            Open::None => {}
        }
    };
    loop {
        let event = reader.read_event_into(&mut buf).map_err(|e| match e {
            // The snapshot's data failing to read (a damaged chunk), not the XML.
            quick_xml::Error::Io(io) => format!("{CANNOT_BE_READ}: {io}"),
            e => format!("{e} at byte {}", reader.error_position()),
        })?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                match e.name().as_ref() {
                    b"key" => {
                        if let (Some(id), Some(name)) =
                            (attribute(e, b"id")?, attribute(e, b"attr.name")?)
                        {
                            keys.insert(id, name.into());
                        }
                    }
                    b"graph" => saw_graph = true,
                    b"node" => {
                        let id = attribute(e, b"id")?.ok_or("a node without an id")?;
                        open = Open::Node(id);
                        if empty {
                            close(&mut open, &mut fields, digest);
                        }
                    }
                    b"edge" => {
                        let a = attribute(e, b"source")?.ok_or("an edge without a source")?;
                        let b = attribute(e, b"target")?.ok_or("an edge without a target")?;
                        open = Open::Edge(a, b);
                        if empty {
                            close(&mut open, &mut fields, digest);
                        }
                    }
                    b"data" if !matches!(open, Open::None) && !empty => {
                        let key = attribute(e, b"key")?.unwrap_or_default();
                        let name = keys.get(&key).cloned().unwrap_or_else(|| key.into());
                        // Fields that are never compared are not kept.
                        field = (!NOISE_FIELDS.contains(&&*name))
                            .then(|| (name, blake3::Hasher::new()));
                    }
                    _ => {}
                }
            }
            // The decoded text is hashed, so a field compares equal with the same value in
            // a records snapshot.
            Event::Text(t) => {
                if let Some((_, hasher)) = field.as_mut() {
                    hasher.update(t.decode().map_err(|e| e.to_string())?.as_bytes());
                }
            }
            Event::CData(t) => {
                if let Some((_, hasher)) = field.as_mut() {
                    hasher.update(&t);
                }
            }
            Event::GeneralRef(r) => {
                if let Some((_, hasher)) = field.as_mut() {
                    hasher.update(crate::validate::xml_reference(&r)?.as_bytes());
                }
            }
            Event::End(e) => match e.name().as_ref() {
                b"data" => {
                    if let Some((name, hasher)) = field.take() {
                        let mut out = [0u8; 16];
                        out.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
                        fields.push((name, out));
                    }
                }
                b"node" | b"edge" => close(&mut open, &mut fields, digest),
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !saw_graph {
        return Err("no <graph> element".into());
    }
    Ok(())
}

/// Fields that change on every save without the knowledge changing (not compared).
const NOISE_FIELDS: [&str; 2] = ["created_at", "truncate"];

/// A document in a diff.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DocumentInfo {
    pub id: String,
    pub file_path: Option<String>,
    pub status: Option<String>,
    pub chunks: Option<u64>,
}

/// A document present in both versions that changed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DocumentChange {
    pub id: String,
    pub file_path: Option<String>,
    /// `[before, after]` when the status changed.
    pub status: Option<[Option<String>; 2]>,
    /// `[before, after]` when the chunk count changed.
    pub chunks: Option<[Option<u64>; 2]>,
    pub content_changed: bool,
}

/// An entity or relation present in both versions whose fields changed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RecordChange {
    /// The entity name, or the relation's two ends.
    pub name: Vec<String>,
    /// The fields that differ (`description`, `entity_type`, `source_id`, `weight`,
    /// `keywords`, `file_path`, ...).
    pub fields: Vec<String>,
}

/// Added, removed and changed records of one kind.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Changes<T, C> {
    pub added: Vec<T>,
    pub removed: Vec<T>,
    pub changed: Vec<C>,
}

impl<T, C> Changes<T, C> {
    fn new() -> Self {
        Changes {
            added: Vec::new(),
            removed: Vec::new(),
            changed: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// Added and removed (and changed, where records have content) counts of one kind.
#[derive(Debug, Clone, Copy, Serialize, Default, PartialEq, Eq)]
pub struct Counts {
    pub added: u64,
    pub removed: u64,
    pub changed: u64,
}

/// What changed from one version of a graph to another.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GraphDiff {
    pub documents: Changes<DocumentInfo, DocumentChange>,
    pub entities: Changes<String, RecordChange>,
    pub relations: Changes<[String; 2], RecordChange>,
    pub chunks: Counts,
    /// Vector rows per store (`entities`, `relationships`, `chunks`).
    pub vectors: BTreeMap<String, Counts>,
    pub llm_cache: Counts,
    /// How many records each version holds: `documents`, `entities`, `relations`, `chunks`.
    pub totals: BTreeMap<String, [u64; 2]>,
}

impl GraphDiff {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        let none = |c: &Counts| c.added == 0 && c.removed == 0 && c.changed == 0;
        self.documents.is_empty()
            && self.entities.is_empty()
            && self.relations.is_empty()
            && none(&self.chunks)
            && self.vectors.values().all(none)
            && none(&self.llm_cache)
    }
}

fn changed_fields(before: &Fields, after: &Fields) -> Vec<String> {
    let names: BTreeSet<&Name> = before.names().chain(after.names()).collect();
    names
        .into_iter()
        .filter(|name| !NOISE_FIELDS.contains(&&***name))
        .filter(|name| before.get(name) != after.get(name))
        .map(|name| name.to_string())
        .collect()
}

fn count<K: Ord, V: PartialEq>(before: &BTreeMap<K, V>, after: &BTreeMap<K, V>) -> Counts {
    let mut counts = Counts::default();
    for (key, value) in after {
        match before.get(key) {
            None => counts.added += 1,
            Some(old) if old != value => counts.changed += 1,
            Some(_) => {}
        }
    }
    counts.removed = before.keys().filter(|k| !after.contains_key(*k)).count() as u64;
    counts
}

fn count_sets(before: &BTreeSet<String>, after: &BTreeSet<String>) -> Counts {
    Counts {
        added: after.difference(before).count() as u64,
        removed: before.difference(after).count() as u64,
        changed: 0,
    }
}

fn records<K: Ord + Clone, T>(
    before: &BTreeMap<K, Fields>,
    after: &BTreeMap<K, Fields>,
    name: impl Fn(&K) -> T,
    names: impl Fn(&K) -> Vec<String>,
) -> Changes<T, RecordChange> {
    let mut changes = Changes::new();
    for (key, fields) in after {
        match before.get(key) {
            None => changes.added.push(name(key)),
            Some(old) => {
                let differ = changed_fields(old, fields);
                if !differ.is_empty() {
                    changes.changed.push(RecordChange {
                        name: names(key),
                        fields: differ,
                    });
                }
            }
        }
    }
    for key in before.keys() {
        if !after.contains_key(key) {
            changes.removed.push(name(key));
        }
    }
    changes
}

/// A document an earlier snapshot holds that the graph no longer does.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DeletedDocument {
    pub id: String,
    pub file_path: Option<String>,
    /// Its status and chunk count in `snapshot_id`.
    pub status: Option<String>,
    pub chunks: Option<u64>,
    /// The newest snapshot that holds it, and when that was taken.
    pub snapshot_id: String,
    pub snapshot_time: String,
}

/// The documents of a version (its `kv_store_doc_status.json` only: the small store).
fn documents_of(files: &mut dyn GraphFiles) -> Result<BTreeMap<String, Doc>> {
    if files.open(RECORDS_MANIFEST)?.is_some() {
        return Ok(Digest::read_records(files, true)?.documents);
    }
    let mut digest = Digest::default();
    let what = files.describe();
    if let Some(reader) = files.open("kv_store_doc_status.json")? {
        each_record(reader, |id, value| {
            digest.documents.insert(
                id,
                Doc {
                    status: text_field(&value, "status"),
                    file_path: text_field(&value, "file_path"),
                    chunks: value
                        .get("chunks_count")
                        .and_then(serde_json::Value::as_u64),
                    content: None,
                },
            );
        })
        .map_err(|e| match e.io_error_kind() {
            Some(_) => Error::integrity(format!(
                "kv_store_doc_status.json of {what} cannot be read: {e}"
            )),
            None => Error::invalid(format!(
                "kv_store_doc_status.json of {what} is not what LightRAG writes: {e}"
            )),
        })?;
    }
    Ok(digest.documents)
}

/// Documents that `snapshots` (a graph's, any order) hold and the graph no longer does: the
/// graph as the files in `dir` hold it, or else as its newest snapshot does. Each comes with
/// the newest snapshot holding it (what an undelete restores from), newest first. Records
/// snapshots are passed over; a doc status store shared by several snapshots is read once.
///
/// # Errors
/// What reading a snapshot or the folder fails with.
pub fn deleted_documents(
    repo: &crate::repository::Repository,
    snapshots: &[crate::format::SnapshotManifest],
    dir: Option<PathBuf>,
) -> Result<Vec<DeletedDocument>> {
    repo.refresh_index()?;
    // Newest first; snapshots of the same time in the order given (oldest first) reversed.
    let mut files: Vec<(usize, &crate::format::SnapshotManifest)> =
        snapshots.iter().enumerate().collect();
    files.sort_by(|(i, a), (j, b)| b.time.cmp(&a.time).then(j.cmp(i)));
    let files: Vec<&crate::format::SnapshotManifest> = files.into_iter().map(|(_, m)| m).collect();
    let mut read: BTreeMap<Vec<crate::format::ObjectId>, BTreeMap<String, Doc>> = BTreeMap::new();
    let mut documents =
        |manifest: &crate::format::SnapshotManifest| -> Result<BTreeMap<String, Doc>> {
            let key: Vec<_> = manifest
                .files
                .iter()
                .find(|f| {
                    f.path == "kv_store_doc_status.json" || f.path == "records_doc_status.jsonl"
                })
                .map(|f| f.chunks.iter().map(|c| c.id).collect())
                .unwrap_or_default();
            if let Some(known) = read.get(&key) {
                return Ok(known.clone());
            }
            let docs = documents_of(&mut SnapshotFiles { repo, manifest })?;
            read.insert(key, docs.clone());
            Ok(docs)
        };
    let now = match (dir, files.first()) {
        (Some(dir), _) => documents_of(&mut FolderFiles(dir)).map_err(|e| match e {
            Error::Integrity { message } => Error::invalid(message),
            other => other,
        })?,
        (None, Some(newest)) => documents(newest)?,
        (None, None) => return Ok(Vec::new()),
    };
    let mut found: BTreeMap<String, DeletedDocument> = BTreeMap::new();
    for manifest in files {
        for (id, doc) in documents(manifest)? {
            if now.contains_key(&id) || found.contains_key(&id) {
                continue;
            }
            found.insert(
                id.clone(),
                DeletedDocument {
                    id,
                    file_path: doc.file_path,
                    status: doc.status,
                    chunks: doc.chunks,
                    snapshot_id: manifest.snapshot_id.clone(),
                    snapshot_time: manifest.time.clone(),
                },
            );
        }
    }
    let mut out: Vec<DeletedDocument> = found.into_values().collect();
    out.sort_by(|a, b| b.snapshot_time.cmp(&a.snapshot_time).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// A version of graph `graph_id` named by a snapshot (id, unique prefix, `latest`) or, when no
/// snapshot is named so, by a recovery point (id or unique prefix): the point's snapshot of
/// the graph.
///
/// # Errors
/// The snapshot's `SnapshotNotFound` when neither names one; `InvalidInput` when the point
/// holds no snapshot of the graph.
pub fn load_version(
    repo: &crate::repository::Repository,
    graph_id: &str,
    reference: &str,
) -> Result<crate::format::SnapshotManifest> {
    let missing = match repo.load_snapshot(graph_id, reference) {
        Err(missing @ Error::SnapshotNotFound { .. }) => missing,
        other => return other,
    };
    let point = match crate::recovery::load_point(repo, reference) {
        Ok(point) => point.point,
        Err(_) => return Err(missing),
    };
    let named = point.graphs.get(graph_id).ok_or_else(|| {
        Error::invalid(format!(
            "recovery point {} holds no snapshot of graph {graph_id:?}",
            point.checkpoint_id
        ))
    })?;
    crate::recovery::resolve(repo, graph_id, named)?.ok_or(missing)
}

/// What changed from snapshot `before` to snapshot `after`, or to the graph files in `dir`
/// (one of the two).
///
/// # Errors
/// `InvalidInput` for a records snapshot; what reading a version fails with.
pub fn diff_versions(
    repo: &crate::repository::Repository,
    before: &crate::format::SnapshotManifest,
    after: Option<&crate::format::SnapshotManifest>,
    dir: Option<PathBuf>,
) -> Result<GraphDiff> {
    repo.refresh_index()?;
    // The two versions are read at the same time, one per core.
    let (old, new) = std::thread::scope(|scope| {
        let old = scope.spawn(|| {
            Digest::read(&mut SnapshotFiles {
                repo,
                manifest: before,
            })
        });
        let new = read_version(repo, after, dir);
        let old = old
            .join()
            .unwrap_or_else(|_| Err(Error::integrity("reading a version of the graph panicked")));
        (old, new)
    });
    Ok(diff(&old?, &new?))
}

/// The second version of a diff: snapshot `after`, or the graph files in `dir`.
fn read_version(
    repo: &crate::repository::Repository,
    after: Option<&crate::format::SnapshotManifest>,
    dir: Option<PathBuf>,
) -> Result<Digest> {
    Ok(match (after, dir) {
        (Some(after), _) => Digest::read(&mut SnapshotFiles {
            repo,
            manifest: after,
        })?,
        (None, Some(dir)) => {
            if !dir.is_dir() {
                return Err(Error::GraphDirNotFound {
                    path: dir,
                    reason: "does not exist".into(),
                });
            }
            // A store of the live graph that is not LightRAG's is bad input, not damage to
            // the repository.
            Digest::read(&mut FolderFiles(dir)).map_err(|e| match e {
                Error::Integrity { message } => Error::invalid(message),
                other => other,
            })?
        }
        (None, None) => return Err(Error::invalid("diff needs a second version")),
    })
}

/// What changed from `before` to `after`.
pub fn diff(before: &Digest, after: &Digest) -> GraphDiff {
    let info = |id: &String, doc: &Doc| DocumentInfo {
        id: id.clone(),
        file_path: doc.file_path.clone(),
        status: doc.status.clone(),
        chunks: doc.chunks,
    };
    let mut documents = Changes::new();
    for (id, doc) in &after.documents {
        match before.documents.get(id) {
            None => documents.added.push(info(id, doc)),
            Some(old) if old != doc => {
                let change = DocumentChange {
                    id: id.clone(),
                    file_path: doc.file_path.clone().or_else(|| old.file_path.clone()),
                    status: (old.status != doc.status)
                        .then(|| [old.status.clone(), doc.status.clone()]),
                    chunks: (old.chunks != doc.chunks).then_some([old.chunks, doc.chunks]),
                    content_changed: old.content != doc.content,
                };
                if change.status.is_some() || change.chunks.is_some() || change.content_changed {
                    documents.changed.push(change);
                }
            }
            Some(_) => {}
        }
    }
    for (id, doc) in &before.documents {
        if !after.documents.contains_key(id) {
            documents.removed.push(info(id, doc));
        }
    }
    let empty = BTreeSet::new();
    let vectors = VECTOR_STORES
        .iter()
        .filter(|s| before.vectors.contains_key(**s) || after.vectors.contains_key(**s))
        .map(|store| {
            let of = |d: &Digest| d.vectors.get(*store).unwrap_or(&empty).clone();
            (store.to_string(), count_sets(&of(before), &of(after)))
        })
        .collect();
    let totals = [
        ("documents", before.documents.len(), after.documents.len()),
        ("entities", before.entities.len(), after.entities.len()),
        ("relations", before.relations.len(), after.relations.len()),
        ("chunks", before.chunks.len(), after.chunks.len()),
    ]
    .into_iter()
    .map(|(k, a, b)| (k.to_string(), [a as u64, b as u64]))
    .collect();
    GraphDiff {
        documents,
        entities: records(&before.entities, &after.entities, Clone::clone, |k| {
            vec![k.clone()]
        }),
        relations: records(
            &before.relations,
            &after.relations,
            |(a, b)| [a.clone(), b.clone()],
            |(a, b)| vec![a.clone(), b.clone()],
        ),
        chunks: count(&before.chunks, &after.chunks),
        vectors,
        llm_cache: count_sets(&before.cache, &after.cache),
        totals,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Files(BTreeMap<&'static str, String>);
    impl GraphFiles for Files {
        fn open(&mut self, name: &str) -> Result<Option<Box<dyn Read + '_>>> {
            Ok(self
                .0
                .get(name)
                .map(|text| Box::new(text.as_bytes()) as Box<dyn Read>))
        }
        fn describe(&self) -> String {
            "a test graph".into()
        }
    }

    fn graphml(nodes: &[(&str, &str)], edges: &[(&str, &str, &str)]) -> String {
        let mut out = String::from(
            "<?xml version='1.0' encoding='utf-8'?>\n<graphml><key id=\"d1\" for=\"node\" attr.name=\"description\" attr.type=\"string\" /><key id=\"d2\" for=\"node\" attr.name=\"created_at\" attr.type=\"long\" /><key id=\"d3\" for=\"edge\" attr.name=\"source_id\" attr.type=\"string\" /><graph edgedefault=\"undirected\">",
        );
        for (id, description) in nodes {
            out.push_str(&format!(
                "<node id=\"{id}\"><data key=\"d1\">{description}</data><data key=\"d2\">{}</data></node>",
                description.len()
            ));
        }
        for (a, b, sources) in edges {
            out.push_str(&format!(
                "<edge source=\"{a}\" target=\"{b}\"><data key=\"d3\">{sources}</data></edge>"
            ));
        }
        out.push_str("</graph></graphml>");
        out
    }

    fn version(docs: &[(&str, &str)], graph: String, vectors: &[&str]) -> Digest {
        let status: BTreeMap<&str, serde_json::Value> = docs
            .iter()
            .map(|(id, _)| {
                (
                    *id,
                    serde_json::json!({"status": "processed", "file_path": format!("{id}.txt"), "chunks_count": 1}),
                )
            })
            .collect();
        let full: BTreeMap<&str, serde_json::Value> = docs
            .iter()
            .map(|(id, text)| (*id, serde_json::json!({"content": text})))
            .collect();
        let rows: Vec<serde_json::Value> = vectors
            .iter()
            .map(|id| serde_json::json!({"__id__": id, "vector": "AAAA", "__created_at__": 1}))
            .collect();
        let mut files = BTreeMap::new();
        files.insert(
            "kv_store_doc_status.json",
            serde_json::to_string_pretty(&status).unwrap(),
        );
        files.insert(
            "kv_store_full_docs.json",
            serde_json::to_string_pretty(&full).unwrap(),
        );
        files.insert(
            "vdb_entities.json",
            serde_json::json!({"embedding_dim": 4, "data": rows, "matrix": "AAAAAAAAAAAAAAAAAAAAAA=="})
                .to_string(),
        );
        files.insert("graph_chunk_entity_relation.graphml", graph);
        Digest::read(&mut Files(files)).unwrap()
    }

    #[test]
    fn a_deleted_document_and_its_entities_are_named() {
        let before = version(
            &[("doc-a", "Alice met Bob"), ("doc-b", "Bob & Carol")],
            graphml(
                &[
                    ("Alice", "a person"),
                    ("Bob", "a man"),
                    ("Carol", "a woman"),
                ],
                &[("Alice", "Bob", "c1"), ("Carol", "Bob", "c2")],
            ),
            &["ent-alice", "ent-bob", "ent-carol"],
        );
        let after = version(
            &[("doc-b", "Bob &amp; Carol"), ("doc-c", "Dan")],
            graphml(
                &[
                    ("Bob", "a man &amp; more"),
                    ("Carol", "a woman"),
                    ("Dan", "x"),
                ],
                &[("Bob", "Carol", "c2")],
            ),
            &["ent-bob", "ent-carol", "ent-dan"],
        );
        let diff = diff(&before, &after);
        let ids = |docs: &[DocumentInfo]| docs.iter().map(|d| d.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&diff.documents.removed), ["doc-a"]);
        assert_eq!(ids(&diff.documents.added), ["doc-c"]);
        assert_eq!(
            diff.documents.removed[0].file_path.as_deref(),
            Some("doc-a.txt")
        );
        assert_eq!(diff.documents.changed.len(), 1, "doc-b's text changed");
        assert!(diff.documents.changed[0].content_changed);
        assert_eq!(diff.entities.removed, ["Alice"]);
        assert_eq!(diff.entities.added, ["Dan"]);
        // Bob's description changed; its created_at (noise) changed too and is not named.
        assert_eq!(
            diff.entities.changed,
            [RecordChange {
                name: vec!["Bob".into()],
                fields: vec!["description".into()]
            }]
        );
        // Undirected: Carol-Bob and Bob-Carol are one relation.
        assert_eq!(
            diff.relations.removed,
            [["Alice".to_string(), "Bob".to_string()]]
        );
        assert!(diff.relations.added.is_empty() && diff.relations.changed.is_empty());
        assert_eq!(
            diff.vectors["entities"],
            Counts {
                added: 1,
                removed: 1,
                changed: 0
            }
        );
        assert_eq!(diff.totals["documents"], [2, 2]);
        assert!(!diff.is_empty());
    }

    #[test]
    fn two_equal_versions_differ_in_nothing() {
        let make = || {
            version(
                &[("doc-a", "text")],
                graphml(&[("A", "d")], &[("A", "B", "c")]),
                &["ent-a"],
            )
        };
        let diff = diff(&make(), &make());
        assert!(diff.is_empty(), "{diff:?}");
        assert_eq!(diff.totals["entities"], [1, 1]);
    }

    #[test]
    fn a_store_that_is_not_lightrags_is_named() {
        let mut files = BTreeMap::new();
        files.insert("kv_store_text_chunks.json", "[1, 2]".to_string());
        let error = Digest::read(&mut Files(files)).unwrap_err().to_string();
        assert!(error.contains("kv_store_text_chunks.json"), "{error}");
        let mut files = BTreeMap::new();
        files.insert(
            "graph_chunk_entity_relation.graphml",
            "<graphml><node".to_string(),
        );
        let error = Digest::read(&mut Files(files)).unwrap_err().to_string();
        assert!(error.contains("graphml"), "{error}");
    }
}
