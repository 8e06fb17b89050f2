//! What the bindings hand to Python, as serde types: the JSON the Python layer turns into its
//! dataclasses. Each view names its fields once; the core's own report types serialise as
//! they are.

use crate::format::{FileEncoding, FileEntry, SnapshotManifest};
use crate::operations::RestoreOutcome;
use crate::stats::Stats;
use serde::Serialize;
use serde_json::Value;

/// A snapshot: its manifest's fields, its metadata parsed, and counts.
#[derive(Serialize)]
pub(crate) struct SnapshotView<'a> {
    snapshot_id: &'a str,
    graph_id: &'a str,
    time: &'a str,
    hostname: &'a str,
    description: Option<&'a str>,
    tags: &'a [String],
    metadata: Value,
    data_hash: String,
    logical_size: u64,
    added_size: u64,
    added_raw_size: u64,
    file_count: usize,
    chunk_count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<Vec<FileView<'a>>>,
    /// Set by a snapshot that found nothing changed and returned the newest one.
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<bool>,
}

impl<'a> SnapshotView<'a> {
    pub(crate) fn new(manifest: &'a SnapshotManifest, with_files: bool) -> Self {
        SnapshotView {
            snapshot_id: &manifest.snapshot_id,
            graph_id: &manifest.graph_id,
            time: &manifest.time,
            hostname: &manifest.hostname,
            description: manifest.description.as_deref(),
            tags: &manifest.tags,
            metadata: serde_json::from_str(&manifest.metadata_json).unwrap_or(Value::Null),
            data_hash: manifest.data_hash.to_hex(),
            logical_size: manifest.logical_size,
            added_size: manifest.added_size,
            added_raw_size: manifest.added_raw_size,
            file_count: manifest.files.len(),
            chunk_count: manifest.files.iter().map(|f| f.chunks.len()).sum(),
            files: with_files.then(|| manifest.files.iter().map(FileView::new).collect()),
            skipped: None,
        }
    }

    pub(crate) fn skipped(mut self, skipped: bool) -> Self {
        self.skipped = Some(skipped);
        self
    }
}

/// One file of a snapshot.
#[derive(Serialize)]
pub(crate) struct FileView<'a> {
    path: &'a str,
    size: u64,
    mtime_ns: i64,
    mode: u32,
    uid: Option<u32>,
    gid: Option<u32>,
    digest: String,
    chunks: usize,
    encoding: &'static str,
}

impl<'a> FileView<'a> {
    fn new(file: &'a FileEntry) -> Self {
        FileView {
            path: &file.path,
            size: file.size,
            mtime_ns: file.mtime_ns,
            mode: file.mode,
            uid: file.uid,
            gid: file.gid,
            digest: file.digest.to_hex(),
            chunks: file.chunks.len(),
            encoding: match file.encoding {
                FileEncoding::Raw => "raw",
                FileEncoding::NanoVdbMatrix { .. } => "nanovdb-matrix",
            },
        }
    }
}

/// Storage numbers with their ratios.
#[derive(Serialize)]
pub(crate) struct StatsView<'a> {
    #[serde(flatten)]
    stats: &'a Stats,
    dedup_ratio: f64,
    compression_ratio: f64,
    space_saving: f64,
}

impl<'a> StatsView<'a> {
    pub(crate) fn new(stats: &'a Stats) -> Self {
        StatsView {
            stats,
            dedup_ratio: stats.dedup_ratio(),
            compression_ratio: stats.compression_ratio(),
            space_saving: stats.space_saving(),
        }
    }
}

/// A restore, or its plan for a dry run.
#[derive(Serialize)]
pub(crate) struct RestoreView<'a> {
    snapshot_id: &'a str,
    graph_id: &'a str,
    target: &'a std::path::Path,
    dry_run: bool,
    files: Vec<PlannedFileView<'a>>,
    remove: &'a [String],
    total_bytes: u64,
    files_written: Option<usize>,
    files_removed: Option<usize>,
    bytes_written: Option<u64>,
    safety_snapshot: Option<SnapshotView<'a>>,
    expired_safety_snapshots: &'a [String],
}

#[derive(Serialize)]
struct PlannedFileView<'a> {
    path: &'a str,
    size: u64,
    chunks: usize,
}

impl<'a> RestoreView<'a> {
    pub(crate) fn new(outcome: &'a RestoreOutcome) -> Self {
        let plan = &outcome.plan;
        let report = outcome.report.as_ref();
        RestoreView {
            snapshot_id: &plan.snapshot_id,
            graph_id: &plan.graph_id,
            target: &plan.target,
            dry_run: report.is_none(),
            files: plan
                .files
                .iter()
                .map(|f| PlannedFileView {
                    path: &f.entry.path,
                    size: f.entry.size,
                    chunks: f.locations.len(),
                })
                .collect(),
            remove: &plan.remove,
            total_bytes: plan.total_bytes,
            files_written: report.map(|r| r.files_written),
            files_removed: report.map(|r| r.files_removed),
            bytes_written: report.map(|r| r.bytes_written),
            safety_snapshot: outcome
                .safety_snapshot
                .as_ref()
                .map(|m| SnapshotView::new(m, false)),
            expired_safety_snapshots: &outcome.expired_safety_snapshots,
        }
    }
}

/// Any view as the JSON text handed to Python.
pub(crate) fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("views serialise")
}

/// A recovery point with its newest validation (the REST API's field names: the Phase 5A design's).
#[derive(Serialize)]
pub(crate) struct PointView<'a> {
    checkpoint_id: &'a str,
    timestamp: &'a str,
    hostname: &'a str,
    description: Option<&'a str>,
    created_by: Option<&'a str>,
    graphs: Vec<&'a str>,
    /// Graph id -> its snapshot id.
    snapshots: std::collections::BTreeMap<&'a str, &'a str>,
    /// Graph id -> its snapshot's data hash and time.
    snapshot_details: std::collections::BTreeMap<&'a str, Value>,
    metadata: Value,
    validated: bool,
    validated_at: Option<&'a str>,
    validation: Value,
    /// Graphs of the point that were shredded since: left out of `graphs` and `snapshots`
    /// (nothing of them can be restored or validated any more).
    shredded: Vec<&'a str>,
}

impl<'a> PointView<'a> {
    pub(crate) fn new(
        status: &'a crate::recovery::PointStatus,
        shredded: &std::collections::BTreeSet<String>,
    ) -> Self {
        let point = &status.point;
        let live = |graph: &String| !shredded.contains(graph);
        PointView {
            checkpoint_id: &point.checkpoint_id,
            timestamp: &point.timestamp,
            hostname: &point.hostname,
            description: point.description.as_deref(),
            created_by: point.created_by.as_deref(),
            graphs: point
                .graphs
                .keys()
                .filter(|g| live(g))
                .map(String::as_str)
                .collect(),
            snapshots: point
                .graphs
                .iter()
                .filter(|(g, _)| live(g))
                .map(|(g, s)| (g.as_str(), s.snapshot_id.as_str()))
                .collect(),
            shredded: point
                .graphs
                .keys()
                .filter(|g| !live(g))
                .map(String::as_str)
                .collect(),
            snapshot_details: point
                .graphs
                .iter()
                .filter(|(g, _)| live(g))
                .map(|(g, s)| {
                    (
                        g.as_str(),
                        serde_json::json!({"data_hash": s.data_hash.to_hex(), "time": s.time}),
                    )
                })
                .collect(),
            metadata: serde_json::from_str(&point.metadata_json).unwrap_or(Value::Null),
            validated: status.validated(),
            validated_at: status.validation.as_ref().map(|v| v.validated_at.as_str()),
            validation: status
                .validation
                .as_ref()
                .and_then(|v| serde_json::from_str(&v.results_json).ok())
                .unwrap_or(Value::Null),
        }
    }
}
