//! `_native.Repository`: one open repository, with sync and async twins of every operation.

use super::progress::PyProgress;
use super::{run_blocking, spawn_async};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::format::{FileEncoding, SnapshotManifest};
use crate::operations::{restore_snapshot, RestoreOptions, RestoreOutcome};
use crate::prune::{prune, PruneOptions};
use crate::repository::Repository;
use crate::retention::{forget, RetentionPolicy};
use crate::snapshot::{snapshot_or_skip, SnapshotOptions, SnapshotOutcome};
use crate::stats::{compute, Stats};
use crate::verify::{verify_snapshots, VerifyOptions, VerifyReport};
use pyo3::prelude::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

#[pyclass(name = "Repository", module = "lightrag.backup._native", frozen)]
pub(crate) struct PyRepository {
    repo: Arc<Repository>,
}

type Op = Box<dyn FnOnce() -> Result<String> + Send + 'static>;

fn manifest_json(manifest: &SnapshotManifest, with_files: bool) -> Value {
    let metadata: Value = serde_json::from_str(&manifest.metadata_json).unwrap_or(Value::Null);
    let mut value = json!({
        "snapshot_id": manifest.snapshot_id,
        "graph_id": manifest.graph_id,
        "time": manifest.time,
        "hostname": manifest.hostname,
        "description": manifest.description,
        "tags": manifest.tags,
        "metadata": metadata,
        "data_hash": manifest.data_hash.to_hex(),
        "logical_size": manifest.logical_size,
        "added_size": manifest.added_size,
        "added_raw_size": manifest.added_raw_size,
        "file_count": manifest.files.len(),
        "chunk_count": manifest.files.iter().map(|f| f.chunks.len()).sum::<usize>(),
    });
    if with_files {
        value["files"] = manifest
            .files
            .iter()
            .map(|f| json!({"path": f.path, "size": f.size, "mtime_ns": f.mtime_ns, "mode": f.mode, "digest": f.digest.to_hex(), "chunks": f.chunks.len(), "encoding": encoding_name(f.encoding)}))
            .collect();
    }
    value
}

fn encoding_name(encoding: FileEncoding) -> &'static str {
    match encoding {
        FileEncoding::Raw => "raw",
        FileEncoding::NanoVdbMatrix { .. } => "nanovdb-matrix",
    }
}

fn stats_json(stats: &Stats) -> Value {
    json!({
        "snapshot_count": stats.snapshot_count,
        "file_count": stats.file_count,
        "logical_bytes": stats.logical_bytes,
        "unique_chunks": stats.unique_chunks,
        "unique_bytes": stats.unique_bytes,
        "stored_bytes": stats.stored_bytes,
        "repository_bytes": stats.repository_bytes,
        "dedup_ratio": stats.dedup_ratio(),
        "compression_ratio": stats.compression_ratio(),
        "space_saving": stats.space_saving(),
        "oldest": stats.oldest,
        "newest": stats.newest,
    })
}

fn verify_json(report: &VerifyReport) -> Value {
    json!({
        "ok": report.ok,
        "snapshots_checked": report.snapshots_checked,
        "files_checked": report.files_checked,
        "chunks_checked": report.chunks_checked,
        "packs_checked": report.packs_checked,
        "packs_read": report.packs_read,
        "bytes_read": report.bytes_read,
        "errors": report.errors,
    })
}

fn restore_json(outcome: &RestoreOutcome) -> Value {
    json!({
        "snapshot_id": outcome.plan.snapshot_id,
        "graph_id": outcome.plan.graph_id,
        "target": outcome.plan.target,
        "dry_run": outcome.report.is_none(),
        "files": outcome.plan.files.iter().map(|f| json!({"path": f.entry.path, "size": f.entry.size, "chunks": f.locations.len()})).collect::<Vec<_>>(),
        "remove": outcome.plan.remove,
        "total_bytes": outcome.plan.total_bytes,
        "files_written": outcome.report.as_ref().map(|r| r.files_written),
        "files_removed": outcome.report.as_ref().map(|r| r.files_removed),
        "bytes_written": outcome.report.as_ref().map(|r| r.bytes_written),
        "safety_snapshot": outcome.safety_snapshot.as_ref().map(|m| manifest_json(m, false)),
    })
}

#[pymethods]
impl PyRepository {
    /// Open (with `create`, initialise when empty) the repository at `url`; `options` are the
    /// backend settings (endpoint, region, credentials, retries), and `create_location` first
    /// creates a missing bucket or container.
    #[new]
    #[pyo3(signature = (url, create = true, options = None, create_location = false))]
    fn new(
        py: Python<'_>,
        url: String,
        create: bool,
        options: Option<BTreeMap<String, String>>,
        create_location: bool,
    ) -> PyResult<Self> {
        let options = options.unwrap_or_default();
        let repo = run_blocking(py, || {
            let backend = Backend::open_with(&url, &options)?;
            if create_location {
                backend.create_location_blocking()?;
            }
            Repository::open(backend, create)
        })?;
        Ok(PyRepository {
            repo: Arc::new(repo),
        })
    }

    #[getter]
    fn location(&self) -> String {
        self.repo.backend().location().to_string()
    }

    #[getter]
    fn config_json(&self) -> String {
        serde_json::to_string(self.repo.config()).expect("config serialises")
    }

    fn list_graphs(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        run_blocking(py, || self.repo.list_graphs())
    }

    fn find_snapshot_graph(&self, py: Python<'_>, snapshot_id: String) -> PyResult<Option<String>> {
        run_blocking(py, || self.repo.find_snapshot_graph(&snapshot_id))
    }

    /// Snapshot the graph files of `source_dir` as a new snapshot of `graph_id`.
    #[pyo3(signature = (graph_id, source_dir, description=None, tags=None, metadata_json=None, max_attempts=5, progress=None, skip_if_unchanged=false))]
    #[allow(clippy::too_many_arguments)]
    fn snapshot_op(
        &self,
        graph_id: String,
        source_dir: PathBuf,
        description: Option<String>,
        tags: Option<Vec<String>>,
        metadata_json: Option<String>,
        max_attempts: u32,
        progress: Option<Py<PyAny>>,
        skip_if_unchanged: bool,
    ) -> PyResult<PyOperation> {
        let repo = self.repo.clone();
        let metadata = match metadata_json {
            Some(text) => match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(map)) => map,
                _ => {
                    return Err(super::error::to_py_err(Error::invalid(
                        "metadata must be a JSON object",
                    )))
                }
            },
            None => Default::default(),
        };
        let options = SnapshotOptions {
            description,
            tags: tags.unwrap_or_default(),
            metadata,
            max_attempts,
            skip_if_unchanged,
        };
        Ok(PyOperation::new(move || {
            let progress = PyProgress::new(progress);
            let outcome = snapshot_or_skip(&repo, &graph_id, &source_dir, &options, &progress)?;
            let mut value = manifest_json(outcome.manifest(), true);
            value["skipped"] = Value::Bool(matches!(outcome, SnapshotOutcome::Unchanged(_)));
            Ok(value.to_string())
        }))
    }

    /// Apply a retention policy (JSON of `RetentionPolicy`) to one graph or all.
    #[pyo3(signature = (graph_id, policy_json, dry_run))]
    fn forget_op(
        &self,
        graph_id: Option<String>,
        policy_json: String,
        dry_run: bool,
    ) -> PyResult<PyOperation> {
        let repo = self.repo.clone();
        let policy: RetentionPolicy = serde_json::from_str(&policy_json).map_err(|e| {
            super::error::to_py_err(Error::invalid(format!("bad retention policy: {e}")))
        })?;
        Ok(PyOperation::new(move || {
            let report = forget(&repo, graph_id.as_deref(), &policy, dry_run)?;
            Ok(serde_json::to_string(&report).expect("report serialises"))
        }))
    }

    /// Remove unused data (two-phase, with a grace period).
    #[pyo3(signature = (grace_seconds, repack_threshold, dry_run, progress=None))]
    fn prune_op(
        &self,
        grace_seconds: u64,
        repack_threshold: f64,
        dry_run: bool,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<PyOperation> {
        let repo = self.repo.clone();
        let options = PruneOptions {
            grace_seconds,
            repack_threshold,
            dry_run,
            ..Default::default()
        };
        Ok(PyOperation::new(move || {
            let progress = PyProgress::new(progress);
            let report = prune(&repo, &options, &progress)?;
            Ok(serde_json::to_string(&report).expect("report serialises"))
        }))
    }

    /// The snapshots of a graph, oldest first.
    fn list_op(&self, graph_id: String) -> PyResult<PyOperation> {
        let repo = self.repo.clone();
        Ok(PyOperation::new(move || {
            let manifests = repo.list_snapshots(&graph_id)?;
            Ok(
                Value::Array(manifests.iter().map(|m| manifest_json(m, true)).collect())
                    .to_string(),
            )
        }))
    }

    /// One snapshot with its file list, by id or unique prefix.
    fn get_op(&self, graph_id: String, snapshot_id: String) -> PyResult<PyOperation> {
        let repo = self.repo.clone();
        Ok(PyOperation::new(move || {
            Ok(manifest_json(&repo.load_snapshot(&graph_id, &snapshot_id)?, true).to_string())
        }))
    }

    /// Drop a snapshot's manifest; returns its full id.
    fn delete_op(&self, graph_id: String, snapshot_id: String) -> PyResult<PyOperation> {
        let repo = self.repo.clone();
        Ok(PyOperation::new(move || {
            Ok(Value::from(repo.delete_snapshot(&graph_id, &snapshot_id)?).to_string())
        }))
    }

    /// Restore a snapshot into `target` (plan only, with `dry_run`).
    #[pyo3(signature = (graph_id, snapshot_id, target, safety_snapshot=true, dry_run=false, progress=None))]
    fn restore_op(
        &self,
        graph_id: String,
        snapshot_id: String,
        target: PathBuf,
        safety_snapshot: bool,
        dry_run: bool,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<PyOperation> {
        let repo = self.repo.clone();
        Ok(PyOperation::new(move || {
            let progress = PyProgress::new(progress);
            let options = RestoreOptions {
                safety_snapshot,
                dry_run,
            };
            let outcome =
                restore_snapshot(&repo, &graph_id, &snapshot_id, &target, options, &progress)?;
            Ok(restore_json(&outcome).to_string())
        }))
    }

    /// Verify snapshots: of one graph, some ids of it, or every graph.
    #[pyo3(signature = (graph_id=None, snapshot_ids=None, read_data=true, subset=None, progress=None))]
    fn verify_op(
        &self,
        graph_id: Option<String>,
        snapshot_ids: Option<Vec<String>>,
        read_data: bool,
        subset: Option<f64>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<PyOperation> {
        let repo = self.repo.clone();
        if let Some(fraction) = subset {
            if !(fraction > 0.0 && fraction <= 1.0) {
                return Err(super::error::to_py_err(Error::invalid(format!(
                    "read_data_subset must be in (0, 1], not {fraction}"
                ))));
            }
        }
        Ok(PyOperation::new(move || {
            let manifests = select(&repo, graph_id.as_deref(), snapshot_ids.as_deref())?;
            let progress = PyProgress::new(progress);
            let options = VerifyOptions {
                read_data,
                read_data_subset: subset,
            };
            Ok(verify_json(&verify_snapshots(&repo, &manifests, options, &progress)?).to_string())
        }))
    }

    /// Storage statistics of one graph, or of the whole repository.
    #[pyo3(signature = (graph_id=None))]
    fn stats_op(&self, graph_id: Option<String>) -> PyResult<PyOperation> {
        let repo = self.repo.clone();
        Ok(PyOperation::new(move || {
            let manifests = select(&repo, graph_id.as_deref(), None)?;
            Ok(stats_json(&compute(&repo, &manifests, graph_id.is_none())?).to_string())
        }))
    }
}

/// The manifests of one graph (optionally only some ids), or of every graph.
fn select(
    repo: &Repository,
    graph_id: Option<&str>,
    snapshot_ids: Option<&[String]>,
) -> Result<Vec<SnapshotManifest>> {
    match (graph_id, snapshot_ids) {
        (Some(graph), Some(ids)) => ids.iter().map(|id| repo.load_snapshot(graph, id)).collect(),
        (Some(graph), None) => repo.list_snapshots(graph),
        (None, Some(_)) => Err(Error::invalid("snapshot ids need a graph id")),
        (None, None) => {
            let mut all = Vec::new();
            for graph in repo.list_graphs()? {
                all.extend(repo.list_snapshots(&graph)?);
            }
            Ok(all)
        }
    }
}

/// A prepared operation: `run()` blocks with the GIL released, `start()` returns an awaitable.
/// Either may be called once.
#[pyclass(name = "Operation", module = "lightrag.backup._native", frozen)]
pub(crate) struct PyOperation {
    op: Mutex<Option<Op>>,
}

impl PyOperation {
    fn new(op: impl FnOnce() -> Result<String> + Send + 'static) -> Self {
        PyOperation {
            op: Mutex::new(Some(Box::new(op))),
        }
    }

    fn take(&self) -> PyResult<Op> {
        self.op.lock().unwrap().take().ok_or_else(|| {
            pyo3::exceptions::PyRuntimeError::new_err("this operation was already run")
        })
    }
}

#[pymethods]
impl PyOperation {
    /// Run to completion; returns the result as JSON text.
    fn run(&self, py: Python<'_>) -> PyResult<String> {
        let op = self.take()?;
        run_blocking(py, op)
    }

    /// Start on a worker thread; returns an awaitable of the JSON text.
    fn start<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let op = self.take()?;
        spawn_async(py, op)
    }
}
