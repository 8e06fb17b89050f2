//! Validation that knows LightRAG: beyond the hashes a verify checks, do a graph's files make a
//! LightRAG graph whose stores agree with each other?
//!
//! - every file parses (the JSON KV and vector stores, the GraphML graph);
//! - the vector stores' rows have the stored `embedding_dim` (the matrix and each row's own
//!   vector), and the three stores agree on it;
//! - every graph node has an entity vector and every edge a relation vector, and no entity or
//!   relation vector is without its node or edge;
//! - every chunk an entity or a relation cites (the graph's `source_id`, the entity and relation
//!   chunk maps) exists in the text chunks, as does every chunk a document's status lists, and
//!   every text chunk has its vector and every chunk vector its text chunk.
//!
//! Each problem names the file and the object (entity, relation, chunk, document) in words an
//! operator understands. A file that cannot be read at all makes the graph `failed`; stores
//! that disagree make it `degraded` (LightRAG runs, but answers from incomplete data).
//!
//! Files are parsed into typed views that skip what no check needs (texts, descriptions), so
//! memory stays near the size of the largest file.

use crate::error::{Error, Result};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, Read, Seek};
use std::path::Path;

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// LightRAG runs on it, but answers from incomplete or inconsistent data.
    Degraded,
    /// Something cannot be read or is not what LightRAG expects: do not serve it.
    Failed,
}

/// One thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub severity: Severity,
    /// The file it was found in (relative to the graph folder).
    pub file: String,
    /// `file`, `entity`, `relation`, `chunk`, `document` or `vector`.
    pub object_kind: String,
    /// The object's name or id, when the problem is about one.
    pub object: Option<String>,
    pub message: String,
}

/// What validating a graph found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GraphCheck {
    /// `healthy`, `degraded` or `failed`.
    pub status: String,
    pub problems: Vec<Problem>,
    /// Problems found beyond the ones listed (at most [`MAX_PROBLEMS`] are listed).
    pub omitted_problems: u64,
    /// What the graph holds: entities, relations, chunks, documents, embedding_dim.
    pub counts: BTreeMap<String, u64>,
    /// The files that were read.
    pub files_checked: Vec<String>,
    /// The model-free smoke query (see [`Smoke`]), when the entity vectors could be searched.
    pub smoke: Option<Smoke>,
}

/// A smoke query without any model: a few entities' stored vectors are searched for (cosine,
/// over every row of the entity matrix, as NanoVectorDB searches), each must find its own
/// entity first, which must be a node of the graph citing a chunk of the text chunk store.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Smoke {
    pub ok: bool,
    pub detail: String,
    /// The entities searched for.
    pub probes: Vec<String>,
}

/// At most this many problems are listed; the rest are counted.
pub const MAX_PROBLEMS: usize = 200;

const GRAPHML: &str = "graph_chunk_entity_relation.graphml";
const TEXT_CHUNKS: &str = "kv_store_text_chunks.json";
const FULL_DOCS: &str = "kv_store_full_docs.json";
const DOC_STATUS: &str = "kv_store_doc_status.json";
const ENTITY_CHUNKS: &str = "kv_store_entity_chunks.json";
const RELATION_CHUNKS: &str = "kv_store_relation_chunks.json";
const VDB_ENTITIES: &str = "vdb_entities.json";
const VDB_RELATIONSHIPS: &str = "vdb_relationships.json";
const VDB_CHUNKS: &str = "vdb_chunks.json";
const SEP: &str = "<SEP>";

/// The files every graph that has taken an insert holds (a graph built only with
/// `insert_custom_kg` has no documents, so no document status either).
const REQUIRED: [&str; 5] = [
    GRAPHML,
    TEXT_CHUNKS,
    VDB_ENTITIES,
    VDB_RELATIONSHIPS,
    VDB_CHUNKS,
];

#[derive(Default)]
struct Findings {
    problems: Vec<Problem>,
    omitted: u64,
}

impl Findings {
    fn merge(&mut self, other: Findings) {
        for problem in other.problems {
            if self.problems.len() >= MAX_PROBLEMS {
                self.omitted += 1;
            } else {
                self.problems.push(problem);
            }
        }
        self.omitted += other.omitted;
    }

    fn add(
        &mut self,
        severity: Severity,
        file: &str,
        kind: &str,
        object: Option<&str>,
        message: String,
    ) {
        if self.problems.len() >= MAX_PROBLEMS {
            self.omitted += 1;
            return;
        }
        self.problems.push(Problem {
            severity,
            file: file.to_string(),
            object_kind: kind.to_string(),
            object: object.map(str::to_string),
            message,
        });
    }
}

#[derive(Deserialize)]
struct VdbFile<'a> {
    embedding_dim: u64,
    #[serde(default)]
    data: Vec<VdbRow<'a>>,
    #[serde(borrow, default)]
    matrix: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct VdbRow<'a> {
    #[serde(rename = "__id__", borrow)]
    id: Cow<'a, str>,
    #[serde(borrow, default)]
    entity_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    src_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tgt_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    vector: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ChunkList {
    #[serde(default)]
    chunk_ids: Vec<String>,
}

#[derive(Deserialize)]
struct DocStatus {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    chunks_list: Option<Vec<String>>,
}

/// A graph as the GraphML file holds it: node ids and their cited chunks, edges likewise.
#[derive(Default)]
struct Graph {
    nodes: Vec<(String, String)>,
    edges: Vec<(String, String, String)>,
}

fn read(dir: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    match std::fs::read(dir.join(name)) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", dir.join(name), e)),
    }
}

fn parse<'a, T: Deserialize<'a>>(
    findings: &mut Findings,
    name: &str,
    bytes: &'a [u8],
) -> Option<T> {
    match serde_json::from_slice::<T>(bytes) {
        Ok(value) => Some(value),
        Err(e) => {
            let what = if e.is_eof() {
                "ends before its JSON does (truncated?)".to_string()
            } else {
                format!("is not the JSON LightRAG writes: {e}")
            };
            findings.add(
                Severity::Failed,
                name,
                "file",
                None,
                format!("{name} {what}"),
            );
            None
        }
    }
}

/// Validate the LightRAG graph in `dir` (a `working_dir/workspace` folder or a restored
/// snapshot). See the module documentation for what is checked.
///
/// # Errors
/// `GraphDirNotFound` when `dir` is missing; `Io` when a file cannot be read. What is wrong
/// with the graph itself is reported in the result, not as an error.
pub fn check_graph_dir(dir: &Path) -> Result<GraphCheck> {
    if !dir.is_dir() {
        return Err(Error::GraphDirNotFound {
            path: dir.to_path_buf(),
            reason: "does not exist".into(),
        });
    }
    let mut findings = Findings::default();
    let mut check = GraphCheck::default();
    let present: HashSet<String> = crate::source::list_graph_files(dir)?
        .into_iter()
        .map(|f| f.name)
        .collect();
    let faiss = present.iter().any(|p| p.starts_with("faiss_index_"));
    if !REQUIRED.iter().any(|f| present.contains(*f)) {
        findings.add(
            Severity::Failed,
            ".",
            "file",
            None,
            format!(
                "{} holds none of LightRAG's graph files ({})",
                dir.display(),
                REQUIRED.join(", ")
            ),
        );
        return Ok(finish(check, findings));
    }
    for name in REQUIRED {
        let vector_file = name.starts_with("vdb_");
        if !(present.contains(name) || vector_file && faiss) {
            findings.add(
                Severity::Failed,
                name,
                "file",
                None,
                format!("{name} is missing: LightRAG writes it with the first insert"),
            );
        }
    }

    // Text chunks and documents: the ids everything else cites.
    let text_chunks: Option<HashSet<String>> = match read(dir, TEXT_CHUNKS)? {
        Some(bytes) => parse::<HashMap<String, IgnoredAny>>(&mut findings, TEXT_CHUNKS, &bytes)
            .map(|m| m.into_keys().collect()),
        None => None,
    };
    if let Some(chunks) = &text_chunks {
        check.counts.insert("chunks".into(), chunks.len() as u64);
    }
    check.files_checked.push(TEXT_CHUNKS.into());
    if let Some(bytes) = read(dir, FULL_DOCS)? {
        if let Some(docs) = parse::<HashMap<String, IgnoredAny>>(&mut findings, FULL_DOCS, &bytes) {
            check.counts.insert("documents".into(), docs.len() as u64);
        }
        check.files_checked.push(FULL_DOCS.into());
    }
    let cite = |findings: &mut Findings, file: &str, kind: &str, object: &str, chunk: &str| {
        if let Some(chunks) = &text_chunks {
            if !chunks.contains(chunk) {
                findings.add(
                    Severity::Degraded,
                    file,
                    kind,
                    Some(object),
                    format!("{kind} {object:?} cites chunk {chunk}, which is not in {TEXT_CHUNKS}"),
                );
            }
        }
    };

    if let Some(bytes) = read(dir, DOC_STATUS)? {
        if let Some(docs) = parse::<HashMap<String, DocStatus>>(&mut findings, DOC_STATUS, &bytes) {
            let mut sorted: Vec<_> = docs.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            for (doc, status) in sorted {
                for chunk in status.chunks_list.iter().flatten() {
                    if text_chunks.as_ref().is_some_and(|c| !c.contains(chunk)) {
                        findings.add(
                            Severity::Degraded,
                            DOC_STATUS,
                            "document",
                            Some(doc),
                            format!(
                                "document {doc} ({}) lists chunk {chunk}, which is not in {TEXT_CHUNKS}",
                                status.status.as_deref().unwrap_or("no status")
                            ),
                        );
                    }
                }
            }
        }
        check.files_checked.push(DOC_STATUS.into());
    }
    for (file, kind) in [(ENTITY_CHUNKS, "entity"), (RELATION_CHUNKS, "relation")] {
        let Some(bytes) = read(dir, file)? else {
            continue;
        };
        if let Some(map) = parse::<BTreeMap<String, ChunkList>>(&mut findings, file, &bytes) {
            for (object, list) in &map {
                let shown = object.replace(SEP, " -> ");
                for chunk in &list.chunk_ids {
                    cite(&mut findings, file, kind, &shown, chunk);
                }
            }
        }
        check.files_checked.push(file.into());
    }
    // The other KV stores only have to parse.
    for name in [
        "kv_store_full_entities.json",
        "kv_store_full_relations.json",
        "kv_store_llm_response_cache.json",
    ] {
        if let Some(bytes) = read(dir, name)? {
            parse::<IgnoredAny>(&mut findings, name, &bytes);
            check.files_checked.push(name.into());
        }
    }

    // The graph.
    let graph = match read(dir, GRAPHML)? {
        Some(bytes) => {
            check.files_checked.push(GRAPHML.into());
            match parse_graphml(&bytes) {
                Ok(graph) => Some(graph),
                Err(message) => {
                    findings.add(
                        Severity::Failed,
                        GRAPHML,
                        "file",
                        None,
                        format!("{GRAPHML} is not the GraphML LightRAG writes: {message}"),
                    );
                    None
                }
            }
        }
        None => None,
    };
    if let Some(graph) = &graph {
        check
            .counts
            .insert("entities".into(), graph.nodes.len() as u64);
        check
            .counts
            .insert("relations".into(), graph.edges.len() as u64);
        for (node, sources) in &graph.nodes {
            for chunk in split_sources(sources) {
                cite(&mut findings, GRAPHML, "entity", node, chunk);
            }
        }
        let nodes: HashSet<&str> = graph.nodes.iter().map(|(n, _)| n.as_str()).collect();
        for (source, target, sources) in &graph.edges {
            let shown = format!("{source} -> {target}");
            for end in [source, target] {
                if !nodes.contains(end.as_str()) {
                    findings.add(
                        Severity::Degraded,
                        GRAPHML,
                        "relation",
                        Some(&shown),
                        format!("relation {shown:?} joins entity {end:?}, which is not a node of the graph"),
                    );
                }
            }
            for chunk in split_sources(sources) {
                cite(&mut findings, GRAPHML, "relation", &shown, chunk);
            }
        }
    }

    // The vector stores: the two large ones on their own threads (these machines have two
    // cores; each file is read and parsed whole).
    let (graph_ref, chunks_ref) = (graph.as_ref(), text_chunks.as_ref());
    let outcomes: Vec<Result<VectorStore>> = std::thread::scope(|scope| {
        let entities = scope.spawn(|| check_vector_store(dir, VDB_ENTITIES, graph_ref, chunks_ref));
        let relations =
            scope.spawn(|| check_vector_store(dir, VDB_RELATIONSHIPS, graph_ref, chunks_ref));
        let chunks = check_vector_store(dir, VDB_CHUNKS, graph_ref, chunks_ref);
        vec![
            entities.join().expect("validation thread"),
            relations.join().expect("validation thread"),
            chunks,
        ]
    });
    let mut dims: Vec<(&str, u64)> = Vec::new();
    for (name, outcome) in [VDB_ENTITIES, VDB_RELATIONSHIPS, VDB_CHUNKS]
        .into_iter()
        .zip(outcomes)
    {
        let store = outcome?;
        if !store.read {
            continue;
        }
        check.files_checked.push(name.into());
        findings.merge(store.findings);
        if let Some(dim) = store.dim {
            dims.push((name, dim));
        }
        if store.smoke.is_some() {
            check.smoke = store.smoke;
        }
    }
    if let Some(&(_, dim)) = dims.first() {
        check.counts.insert("embedding_dim".into(), dim);
        if let Some((other, other_dim)) = dims.iter().find(|(_, d)| *d != dim) {
            findings.add(
                Severity::Failed,
                other,
                "file",
                None,
                format!(
                    "{other} has embedding_dim {other_dim} but {} has {dim}: the vector stores disagree on the embedding model",
                    dims[0].0
                ),
            );
        }
    }
    Ok(finish(check, findings))
}

/// Compare the counts a snapshot recorded when it was taken (its metadata) with what
/// validation counted in its files; a difference is a problem.
pub fn compare_counts(check: &mut GraphCheck, recorded: &serde_json::Value) {
    let mut findings = Findings {
        problems: std::mem::take(&mut check.problems),
        omitted: check.omitted_problems,
    };
    for (key, file) in [
        ("entities", GRAPHML),
        ("relations", GRAPHML),
        ("chunks", TEXT_CHUNKS),
        ("documents", FULL_DOCS),
    ] {
        let (Some(expected), Some(found)) = (
            recorded.get(key).and_then(|v| v.as_u64()),
            check.counts.get(key),
        ) else {
            continue;
        };
        if expected != *found {
            findings.add(
                Severity::Failed,
                file,
                "file",
                None,
                format!("the snapshot recorded {expected} {key} when it was taken, its files hold {found}"),
            );
        }
    }
    *check = finish(std::mem::take(check), findings);
}

/// What checking one vector store found.
#[derive(Default)]
struct VectorStore {
    read: bool,
    findings: Findings,
    dim: Option<u64>,
    smoke: Option<Smoke>,
}

/// One vector store's checks: its rows' dimensions, and that it agrees with the graph (entity
/// and relation vectors) or the text chunks (chunk vectors).
fn check_vector_store(
    dir: &Path,
    name: &str,
    graph: Option<&Graph>,
    text_chunks: Option<&HashSet<String>>,
) -> Result<VectorStore> {
    let mut store = VectorStore::default();
    let path = dir.join(name);
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(store),
        Err(e) => return Err(Error::io("read", &path, e)),
    };
    store.read = true;
    let mut local = Findings::default();
    let findings = &mut local;
    // The head (up to `"matrix": "`) is parsed; the matrix streams past, decoded block by
    // block, so memory holds the rows, never the matrix.
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut head = Vec::new();
    let found = {
        let mut heads = crate::vdb::HeadReader::new(&mut reader);
        heads
            .read_to_end(&mut head)
            .map_err(|e| Error::io("read", &path, e))?;
        heads.found()
    };
    let matrix_start = head.len() as u64;
    let mut matrix_bytes = None;
    if found {
        let mut matrix = crate::vdb::MatrixReader::new(&mut reader);
        let mut count = 0u64;
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let n = matrix
                .read(&mut buffer)
                .map_err(|e| Error::io("read", &path, e))?;
            if n == 0 {
                break;
            }
            count += n as u64;
        }
        let mut tail = matrix.leftover();
        reader
            .read_to_end(&mut tail)
            .map_err(|e| Error::io("read", &path, e))?;
        matrix_bytes = Some(count);
        // What follows the matrix closes it (`"}`); the head then parses as the file would
        // with an empty matrix.
        let closing: Vec<u8> = tail
            .iter()
            .filter(|b| !b.is_ascii_whitespace())
            .copied()
            .collect();
        let cut = closing
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(b));
        if cut {
            findings.add(
                Severity::Failed,
                name,
                "file",
                None,
                format!("{name} ends inside its matrix, before its JSON does (truncated?)"),
            );
        } else if closing != b"\"}" {
            findings.add(Severity::Failed, name, "file", None, format!(
                "{name}'s matrix is not base64 of float32 rows: it stops after {count} bytes at {:?}",
                String::from_utf8_lossy(&tail[..tail.len().min(24)])
            ));
        }
        head.extend_from_slice(b"\"}");
    }
    let Some(vdb) = parse::<VdbFile>(findings, name, &head) else {
        store.findings = local;
        return Ok(store);
    };
    store.dim = Some(vdb.embedding_dim);
    let source = if found {
        MatrixSource::File {
            path: &path,
            start: matrix_start,
        }
    } else {
        MatrixSource::Text(vdb.matrix.as_deref().unwrap_or(""))
    };
    if !found {
        matrix_bytes = vdb.matrix.as_deref().map(|text| {
            let text = text.trim_end();
            let padding = text.bytes().rev().take_while(|&b| b == b'=').count() as u64;
            if text.len() % 4 == 0 {
                (text.len() as u64 / 4) * 3 - padding.min(2)
            } else {
                u64::MAX
            }
        });
    }
    let shaped = check_dimensions(findings, name, &vdb, matrix_bytes);
    if name == VDB_ENTITIES && shaped {
        store.smoke = Some(probe_entities(&vdb, &source, graph, text_chunks));
    }
    {
        match name {
            VDB_ENTITIES => {
                if let Some(graph) = &graph {
                    let vectors: HashSet<&str> = vdb
                        .data
                        .iter()
                        .filter_map(|r| r.entity_name.as_deref())
                        .collect();
                    let nodes: HashSet<&str> =
                        graph.nodes.iter().map(|(n, _)| n.as_str()).collect();
                    for (node, _) in &graph.nodes {
                        if !vectors.contains(node.as_str()) {
                            findings.add(
                                Severity::Degraded,
                                name,
                                "entity",
                                Some(node),
                                format!(
                                    "entity {node:?} is in the graph but has no vector in {name}"
                                ),
                            );
                        }
                    }
                    for row in &vdb.data {
                        match row.entity_name.as_deref() {
                            Some(entity) if !nodes.contains(entity) => findings.add(
                                Severity::Degraded, name, "entity", Some(entity),
                                format!("entity {entity:?} has a vector in {name} but is not in the graph ({GRAPHML})")),
                            None => findings.add(Severity::Degraded, name, "vector", Some(&row.id),
                                format!("vector {} in {name} names no entity", row.id)),
                            _ => {}
                        }
                    }
                }
            }
            VDB_RELATIONSHIPS => {
                if let Some(graph) = &graph {
                    let pair = |a: &str, b: &str| {
                        if a <= b {
                            (a.to_string(), b.to_string())
                        } else {
                            (b.to_string(), a.to_string())
                        }
                    };
                    let vectors: HashSet<(String, String)> = vdb
                        .data
                        .iter()
                        .filter_map(|r| Some(pair(r.src_id.as_deref()?, r.tgt_id.as_deref()?)))
                        .collect();
                    let edges: HashSet<(String, String)> =
                        graph.edges.iter().map(|(s, t, _)| pair(s, t)).collect();
                    for (source, target, _) in &graph.edges {
                        if !vectors.contains(&pair(source, target)) {
                            let shown = format!("{source} -> {target}");
                            findings.add(Severity::Degraded, name, "relation", Some(&shown),
                                format!("relation {shown:?} is in the graph but has no vector in {name}"));
                        }
                    }
                    for row in &vdb.data {
                        match (row.src_id.as_deref(), row.tgt_id.as_deref()) {
                            (Some(s), Some(t)) if !edges.contains(&pair(s, t)) => {
                                let shown = format!("{s} -> {t}");
                                findings.add(Severity::Degraded, name, "relation", Some(&shown),
                                    format!("relation {shown:?} has a vector in {name} but is not in the graph ({GRAPHML})"));
                            }
                            (Some(_), Some(_)) => {}
                            _ => findings.add(
                                Severity::Degraded,
                                name,
                                "vector",
                                Some(&row.id),
                                format!("vector {} in {name} names no relation", row.id),
                            ),
                        }
                    }
                }
            }
            _ => {
                if let Some(chunks) = &text_chunks {
                    let vectors: HashSet<&str> = vdb.data.iter().map(|r| r.id.as_ref()).collect();
                    for row in &vdb.data {
                        if !chunks.contains(row.id.as_ref()) {
                            findings.add(
                                Severity::Degraded,
                                name,
                                "chunk",
                                Some(&row.id),
                                format!(
                                    "chunk {} has a vector in {name} but is not in {TEXT_CHUNKS}",
                                    row.id
                                ),
                            );
                        }
                    }
                    let mut missing: Vec<&String> = chunks
                        .iter()
                        .filter(|c| !vectors.contains(c.as_str()))
                        .collect();
                    missing.sort();
                    for chunk in missing {
                        findings.add(
                            Severity::Degraded,
                            name,
                            "chunk",
                            Some(chunk),
                            format!(
                                "chunk {chunk} is in {TEXT_CHUNKS} but has no vector in {name}"
                            ),
                        );
                    }
                }
            }
        }
    }
    store.findings = local;
    Ok(store)
}

fn finish(mut check: GraphCheck, findings: Findings) -> GraphCheck {
    check.status = match findings.problems.iter().map(|p| p.severity).max() {
        None => "healthy",
        Some(Severity::Degraded) => "degraded",
        Some(Severity::Failed) => "failed",
    }
    .to_string();
    check.problems = findings.problems;
    check.omitted_problems = findings.omitted;
    check
}

fn split_sources(sources: &str) -> impl Iterator<Item = &str> {
    sources.split(SEP).map(str::trim).filter(|s| !s.is_empty())
}

/// Check the rows' vectors against `embedding_dim`; returns whether the matrix holds exactly
/// one row of that dimension per data row (so it can be searched).
fn check_dimensions(
    findings: &mut Findings,
    name: &str,
    vdb: &VdbFile,
    matrix_bytes: Option<u64>,
) -> bool {
    let dim = vdb.embedding_dim;
    if dim == 0 {
        findings.add(
            Severity::Failed,
            name,
            "file",
            None,
            format!("{name} has embedding_dim 0"),
        );
        return false;
    }
    let mut shaped = false;
    let kind = match name {
        VDB_ENTITIES => "entity",
        VDB_RELATIONSHIPS => "relation",
        _ => "chunk",
    };
    if let Some(bytes) = matrix_bytes {
        let expected = vdb.data.len() as u64 * dim * 4;
        shaped = bytes == expected;
        if !shaped {
            let held = if bytes == u64::MAX {
                "text that is not whole base64".to_string()
            } else {
                format!("{} floats", bytes / 4)
            };
            findings.add(
                Severity::Failed,
                name,
                "file",
                None,
                format!(
                    "{name}'s matrix holds {held}, but {} rows of embedding_dim {dim} need {}",
                    vdb.data.len(),
                    expected / 4
                ),
            );
        }
    }
    const ROWS_LISTED: u64 = 3;
    let mut wrong_rows = 0u64;
    // One decoder and two buffers for every row: 100 000 rows cost no allocation.
    let mut inflater = flate2::Decompress::new(true);
    let (mut packed, mut raw) = (Vec::new(), vec![0u8; dim as usize * 2 + 1]);
    for row in &vdb.data {
        let Some(vector) = &row.vector else { continue };
        // Each row carries its vector as base64(zlib(float16)).
        packed.clear();
        let length = base64_simd::STANDARD
            .decode_append(vector.as_bytes(), &mut packed)
            .ok()
            .and_then(|_| {
                inflater.reset(true);
                match inflater.decompress(&packed, &mut raw, flate2::FlushDecompress::Finish) {
                    Ok(flate2::Status::StreamEnd) => Some(inflater.total_out()),
                    // Longer than the dimension allows (the buffer is one byte more).
                    Ok(_) if inflater.total_out() as usize == raw.len() => {
                        Some(inflater.total_out())
                    }
                    _ => None,
                }
            });
        if length == Some(dim * 2) {
            continue;
        }
        wrong_rows += 1;
        if wrong_rows > ROWS_LISTED {
            continue;
        }
        let object = row
            .entity_name
            .as_deref()
            .map(str::to_string)
            .or_else(|| {
                Some(format!(
                    "{} -> {}",
                    row.src_id.as_deref()?,
                    row.tgt_id.as_deref()?
                ))
            })
            .unwrap_or_else(|| row.id.to_string());
        match length {
            Some(bytes) => findings.add(
                Severity::Failed,
                name,
                kind,
                Some(&object),
                if bytes > dim * 2 {
                    format!("{kind} {object:?} has a vector of more than {dim} values in {name}, not embedding_dim {dim}")
                } else {
                    format!(
                        "{kind} {object:?} has a vector of {} values in {name}, not embedding_dim {dim}",
                        bytes / 2
                    )
                },
            ),
            None => findings.add(
                Severity::Failed,
                name,
                kind,
                Some(&object),
                format!("{kind} {object:?} has a vector in {name} that cannot be decoded"),
            ),
        }
    }
    if wrong_rows > ROWS_LISTED {
        findings.add(
            Severity::Failed,
            name,
            "file",
            None,
            format!(
                "{wrong_rows} of {} rows of {name} have vectors that are not of embedding_dim {dim} (the first {ROWS_LISTED} are listed)",
                vdb.data.len()
            ),
        );
    }
    shaped
}

/// Where a vector store's matrix is read from, row by row.
enum MatrixSource<'a> {
    /// The file, from the matrix's first base64 character (the layout nano-vectordb writes).
    File { path: &'a Path, start: u64 },
    /// The matrix text, parsed with the rest of a file laid out otherwise.
    Text(&'a str),
}

impl MatrixSource<'_> {
    /// Call `each(row, vector)` for the rows in order until it returns false; the matrix is
    /// decoded a block at a time.
    fn for_each_row(
        &self,
        dim: usize,
        mut each: impl FnMut(usize, &[f32]) -> bool,
    ) -> std::io::Result<()> {
        match self {
            MatrixSource::File { path, start } => {
                let mut file = std::fs::File::open(path)?;
                file.seek(std::io::SeekFrom::Start(*start))?;
                let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
                rows_of(&mut reader, dim, &mut each)
            }
            MatrixSource::Text(text) => rows_of(&mut text.as_bytes(), dim, &mut each),
        }
    }
}

fn rows_of(
    input: &mut impl BufRead,
    dim: usize,
    each: &mut impl FnMut(usize, &[f32]) -> bool,
) -> std::io::Result<()> {
    let mut matrix = crate::vdb::MatrixReader::new(input);
    let mut bytes = vec![0u8; dim * 4];
    let mut vector = vec![0f32; dim];
    for row in 0.. {
        if matrix.read_exact(&mut bytes).is_err() {
            return Ok(()); // the end of the matrix (a short one is reported by the shape check)
        }
        for (value, raw) in vector.iter_mut().zip(bytes.chunks_exact(4)) {
            *value = f32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
        }
        if !each(row, &vector) {
            return Ok(());
        }
    }
    Ok(())
}

/// The model-free smoke query over the entity store (see [`Smoke`]): two passes over the
/// matrix, one to pick up the probes' vectors, one to search with them.
fn probe_entities(
    vdb: &VdbFile,
    matrix: &MatrixSource,
    graph: Option<&Graph>,
    text_chunks: Option<&HashSet<String>>,
) -> Smoke {
    const PROBES: usize = 3;
    let fail = |detail: String| Smoke {
        ok: false,
        detail,
        probes: Vec::new(),
    };
    let dim = vdb.embedding_dim as usize;
    let rows = vdb.data.len();
    if rows == 0 {
        return fail("the entity store is empty".into());
    }
    let mut order: Vec<usize> = (0..rows).collect();
    order.sort_by(|&a, &b| vdb.data[a].id.cmp(&vdb.data[b].id));
    order.truncate(PROBES);
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let mut probes: Vec<(usize, Vec<f32>, f32)> = Vec::new();
    let last = order.iter().copied().max().unwrap_or(0);
    let picked = matrix.for_each_row(dim, |row, vector| {
        if order.contains(&row) {
            probes.push((row, vector.to_vec(), norm(vector)));
        }
        row < last
    });
    if picked.is_err() || probes.len() != order.len() {
        return fail("the entity matrix cannot be read".into());
    }
    // Best (score, row) per probe, over every row; ties go to the probe's own row (a
    // duplicate vector is no failure).
    let mut best: Vec<(f32, usize)> = vec![(f32::NEG_INFINITY, usize::MAX); probes.len()];
    let searched = matrix.for_each_row(dim, |row, candidate| {
        let candidate_norm = norm(candidate);
        for (slot, (own, probe, probe_norm)) in probes.iter().enumerate() {
            let dot: f32 = probe.iter().zip(candidate).map(|(a, b)| a * b).sum();
            let score = dot / (candidate_norm * probe_norm).max(f32::MIN_POSITIVE);
            if score > best[slot].0 || (score == best[slot].0 && row == *own) {
                best[slot] = (score, row);
            }
        }
        true
    });
    if searched.is_err() {
        return fail("the entity matrix cannot be read".into());
    }
    let mut names = Vec::new();
    for ((row, _, _), (_, found)) in probes.iter().zip(&best) {
        let name = vdb.data[*row]
            .entity_name
            .as_deref()
            .unwrap_or(&vdb.data[*row].id)
            .to_string();
        if found != row {
            return fail(format!(
                "searching with {name:?}'s own vector found {:?} first",
                vdb.data
                    .get(*found)
                    .map(|r| r.id.as_ref())
                    .unwrap_or("nothing")
            ));
        }
        if let Some(graph) = graph {
            let Some((_, sources)) = graph.nodes.iter().find(|(n, _)| *n == name) else {
                return fail(format!(
                    "entity {name:?} found by vector search is not a node of the graph"
                ));
            };
            if let Some(chunks) = text_chunks {
                if !split_sources(sources).any(|c| chunks.contains(c)) {
                    return fail(format!(
                        "entity {name:?} cites no chunk of the text chunk store"
                    ));
                }
            }
        }
        names.push(name);
    }
    Smoke {
        ok: true,
        detail: format!(
            "found {} by their own vectors among {rows} entities, each a node of the graph citing a stored chunk",
            names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
        ),
        probes: names,
    }
}

/// The value of attribute `name` of an XML element (GraphML's), normalized.
pub(crate) fn xml_attribute(
    e: &quick_xml::events::BytesStart,
    name: &[u8],
) -> std::result::Result<Option<String>, String> {
    for attr in e.attributes() {
        let attr = attr.map_err(|e| e.to_string())?;
        if attr.key.as_ref() == name {
            return attr
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map(|v| Some(v.into_owned()))
                .map_err(|e| e.to_string());
        }
    }
    Ok(None)
}

/// The text an XML reference in element text stands for (a character reference or one of
/// XML's five predefined entities; NetworkX writes no other).
pub(crate) fn xml_reference(
    r: &quick_xml::events::BytesRef,
) -> std::result::Result<String, String> {
    if let Some(ch) = r.resolve_char_ref().map_err(|e| e.to_string())? {
        return Ok(ch.to_string());
    }
    let name = r.decode().map_err(|e| e.to_string())?;
    Ok(match name.as_ref() {
        "lt" => "<",
        "gt" => ">",
        "amp" => "&",
        "quot" => "\"",
        "apos" => "'",
        other => return Err(format!("unknown entity &{other};")),
    }
    .to_string())
}

/// The nodes and edges of a GraphML file with the `source_id` each cites.
fn parse_graphml(bytes: &[u8]) -> std::result::Result<Graph, String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut buf = Vec::new();
    let mut graph = Graph::default();
    // key id -> (for, attr.name)
    let mut source_keys: HashSet<String> = HashSet::new();
    enum Open {
        None,
        Node,
        Edge,
    }
    let mut open = Open::None;
    let mut sources = String::new();
    let mut in_source = false;
    let mut saw_graph = false;
    let mut depth: i64 = 0;
    enum Kind {
        Start,
        Empty,
        Other,
    }
    let attribute = xml_attribute;
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("{e} at byte {}", reader.error_position()))?;
        let event_kind = match &event {
            Event::Start(_) => {
                depth += 1;
                Kind::Start
            }
            Event::Empty(_) => Kind::Empty,
            Event::End(_) => {
                depth -= 1;
                Kind::Other
            }
            _ => Kind::Other,
        };
        match event {
            Event::Start(e) | Event::Empty(e) => {
                let empty = matches!(event_kind, Kind::Empty);
                match e.name().as_ref() {
                    b"key" if attribute(&e, b"attr.name")?.as_deref() == Some("source_id") => {
                        if let Some(id) = attribute(&e, b"id")? {
                            source_keys.insert(id);
                        }
                    }
                    b"graph" => saw_graph = true,
                    b"node" => {
                        let id = attribute(&e, b"id")?.ok_or("a node without an id")?;
                        graph.nodes.push((id, String::new()));
                        open = Open::Node;
                    }
                    b"edge" => {
                        let source = attribute(&e, b"source")?.ok_or("an edge without a source")?;
                        let target = attribute(&e, b"target")?.ok_or("an edge without a target")?;
                        graph.edges.push((source, target, String::new()));
                        open = Open::Edge;
                    }
                    b"data" => {
                        in_source = !empty
                            && attribute(&e, b"key")?.is_some_and(|k| source_keys.contains(&k))
                            && !matches!(open, Open::None);
                        sources.clear();
                    }
                    _ => {}
                }
            }
            Event::Text(t) if in_source => {
                sources.push_str(&t.decode().map_err(|e| e.to_string())?);
            }
            Event::CData(t) if in_source => {
                sources.push_str(&String::from_utf8_lossy(&t));
            }
            Event::GeneralRef(r) if in_source => sources.push_str(&xml_reference(&r)?),
            Event::End(e) => match e.name().as_ref() {
                b"data" if in_source => {
                    in_source = false;
                    match &open {
                        Open::Node => {
                            graph.nodes.last_mut().unwrap().1 = std::mem::take(&mut sources)
                        }
                        Open::Edge => {
                            graph.edges.last_mut().unwrap().2 = std::mem::take(&mut sources)
                        }
                        Open::None => {}
                    }
                }
                b"node" | b"edge" => open = Open::None,
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if depth != 0 {
        return Err("it ends before its elements are closed (truncated?)".into());
    }
    if !saw_graph {
        return Err("no <graph> element".into());
    }
    Ok(graph)
}
