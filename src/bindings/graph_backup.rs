//! `_native.GraphBackup`: one graph in a repository, with every operation on it (snapshot,
//! list, get, restore, verify, delete, stats). `lightrag.backup.GraphBackup` builds on it and
//! adds what only Python can do: a live LightRAG instance, asyncio, the catalog.

use super::operation::{stats_operation, verify_operation, PyOperation};
use super::progress::PyProgress;
use super::views::{to_json, RestoreView, SnapshotView};
use crate::error::Error;
use crate::operations::{restore_snapshot, RestoreOptions};
use crate::repository::{validate_graph_id, Repository};
use crate::snapshot::{snapshot_or_skip, SnapshotOptions, SnapshotOutcome};
use pyo3::prelude::*;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;

#[pyclass(name = "GraphBackup", module = "lightrag.backup._native", frozen)]
pub(crate) struct PyGraphBackup {
    repo: Arc<Repository>,
    graph_id: String,
}

impl PyGraphBackup {
    pub(crate) fn new(repo: Arc<Repository>, graph_id: String) -> PyResult<Self> {
        validate_graph_id(&graph_id).map_err(super::error::to_py_err)?;
        Ok(PyGraphBackup { repo, graph_id })
    }
}

#[pymethods]
impl PyGraphBackup {
    #[getter]
    fn graph_id(&self) -> String {
        self.graph_id.clone()
    }

    /// Snapshot the graph files of `source_dir` as a new snapshot of this graph.
    #[pyo3(signature = (source_dir, description=None, tags=None, metadata_json=None, max_attempts=5, progress=None, skip_if_unchanged=false, adopt=false, own_key=false))]
    #[allow(clippy::too_many_arguments)]
    fn snapshot_op(
        &self,
        source_dir: PathBuf,
        description: Option<String>,
        tags: Option<Vec<String>>,
        metadata_json: Option<String>,
        max_attempts: u32,
        progress: Option<Py<PyAny>>,
        skip_if_unchanged: bool,
        adopt: bool,
        own_key: bool,
    ) -> PyResult<PyOperation> {
        let (repo, graph_id) = (self.repo.clone(), self.graph_id.clone());
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
            adopt,
            own_key,
            reissue: None,
        };
        Ok(PyOperation::new(move || {
            let progress = PyProgress::new(progress);
            let outcome = snapshot_or_skip(&repo, &graph_id, &source_dir, &options, &progress)?;
            let skipped = matches!(outcome, SnapshotOutcome::Unchanged(_));
            Ok(to_json(
                &SnapshotView::new(outcome.manifest(), true).skipped(skipped),
            ))
        }))
    }

    /// The graph's snapshots, oldest first.
    fn list_op(&self) -> PyOperation {
        let (repo, graph_id) = (self.repo.clone(), self.graph_id.clone());
        PyOperation::new(move || {
            let manifests = repo.list_snapshots(&graph_id)?;
            let views: Vec<SnapshotView<'_>> = manifests
                .iter()
                .map(|m| SnapshotView::new(m, true))
                .collect();
            Ok(to_json(&views))
        })
    }

    /// One snapshot with its file list, by id, unique prefix or `latest`.
    fn get_op(&self, snapshot_id: String) -> PyOperation {
        let (repo, graph_id) = (self.repo.clone(), self.graph_id.clone());
        PyOperation::new(move || {
            let manifest = repo.load_snapshot(&graph_id, &snapshot_id)?;
            Ok(to_json(&SnapshotView::new(&manifest, true)))
        })
    }

    /// Drop a snapshot's manifest; returns its full id.
    fn delete_op(&self, snapshot_id: String) -> PyOperation {
        let (repo, graph_id) = (self.repo.clone(), self.graph_id.clone());
        PyOperation::new(move || {
            Ok(to_json(&crate::recovery::delete_snapshot(
                &repo,
                &graph_id,
                &snapshot_id,
            )?))
        })
    }

    /// Restore a snapshot into `target` (plan only, with `dry_run`).
    #[pyo3(signature = (snapshot_id, target, safety_snapshot=true, dry_run=false, progress=None))]
    fn restore_op(
        &self,
        snapshot_id: String,
        target: PathBuf,
        safety_snapshot: bool,
        dry_run: bool,
        progress: Option<Py<PyAny>>,
    ) -> PyOperation {
        let (repo, graph_id) = (self.repo.clone(), self.graph_id.clone());
        PyOperation::new(move || {
            let progress = PyProgress::new(progress);
            let options = RestoreOptions {
                safety_snapshot,
                dry_run,
            };
            let outcome =
                restore_snapshot(&repo, &graph_id, &snapshot_id, &target, options, &progress)?;
            Ok(to_json(&RestoreView::new(&outcome)))
        })
    }

    /// Verify some snapshots of the graph, or all of them.
    #[pyo3(signature = (snapshot_ids=None, read_data=true, subset=None, progress=None))]
    fn verify_op(
        &self,
        snapshot_ids: Option<Vec<String>>,
        read_data: bool,
        subset: Option<f64>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<PyOperation> {
        verify_operation(
            self.repo.clone(),
            Some(self.graph_id.clone()),
            snapshot_ids,
            read_data,
            subset,
            progress,
        )
    }

    /// What changed from snapshot `from_ref` to snapshot `to_ref` (either may name a recovery
    /// point), or to the graph files in `to_dir` (the live graph, read as it is): a
    /// `kg_diff::GraphDiff` as JSON.
    #[pyo3(signature = (from_ref, to_ref=None, to_dir=None))]
    fn diff_op(
        &self,
        from_ref: String,
        to_ref: Option<String>,
        to_dir: Option<PathBuf>,
    ) -> PyOperation {
        let (repo, graph_id) = (self.repo.clone(), self.graph_id.clone());
        PyOperation::new(move || {
            let before = crate::kg_diff::load_version(&repo, &graph_id, &from_ref)?;
            let after = match (&to_ref, &to_dir) {
                (Some(to_ref), None) => {
                    Some(crate::kg_diff::load_version(&repo, &graph_id, to_ref)?)
                }
                (None, Some(_)) => None,
                _ => {
                    return Err(Error::invalid(
                        "diff to a snapshot or to a folder, not both",
                    ))
                }
            };
            let diff = crate::kg_diff::diff_versions(&repo, &before, after.as_ref(), to_dir)?;
            Ok(to_json(&diff))
        })
    }

    /// Documents earlier snapshots hold and the graph no longer does (the graph in `dir`, or
    /// its newest snapshot), each with the newest snapshot holding it: JSON list.
    #[pyo3(signature = (dir=None))]
    fn deleted_op(&self, dir: Option<PathBuf>) -> PyOperation {
        let (repo, graph_id) = (self.repo.clone(), self.graph_id.clone());
        PyOperation::new(move || {
            let snapshots = repo.list_snapshots(&graph_id)?;
            Ok(to_json(&crate::kg_diff::deleted_documents(
                &repo, &snapshots, dir,
            )?))
        })
    }

    /// The graph's storage statistics.
    fn stats_op(&self) -> PyOperation {
        stats_operation(self.repo.clone(), Some(self.graph_id.clone()))
    }

    fn __repr__(&self) -> String {
        format!(
            "GraphBackup({:?}, {:?})",
            self.graph_id,
            self.repo.backend().location()
        )
    }
}
