//! `_native.Operation`: a prepared operation, run once, blocking or awaited.

use super::progress::PyProgress;
use super::views::{to_json, StatsView};
use super::{run_blocking, spawn_async};
use crate::error::{Error, Result};
use crate::format::SnapshotManifest;
use crate::repository::Repository;
use crate::stats::compute;
use crate::verify::{verify_scan, verify_snapshots, VerifyOptions};
use pyo3::prelude::*;
use std::sync::{Arc, Mutex};

type Op = Box<dyn FnOnce() -> Result<String> + Send + 'static>;

/// A prepared operation: `run()` blocks with the GIL released, `start()` returns an awaitable.
/// Either may be called once.
#[pyclass(name = "Operation", module = "lightrag.backup._native", frozen)]
pub(crate) struct PyOperation {
    op: Mutex<Option<Op>>,
}

impl PyOperation {
    pub(crate) fn new(op: impl FnOnce() -> Result<String> + Send + 'static) -> Self {
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

/// Verify snapshots: some ids of one graph, every snapshot of one graph, or of every graph.
pub(crate) fn verify_operation(
    repo: Arc<Repository>,
    graph_id: Option<String>,
    snapshot_ids: Option<Vec<String>>,
    read_data: bool,
    subset: Option<f64>,
    progress: Option<Py<PyAny>>,
) -> PyResult<PyOperation> {
    if let Some(fraction) = subset {
        if !(fraction > 0.0 && fraction <= 1.0) {
            return Err(super::error::to_py_err(Error::invalid(format!(
                "read_data_subset must be in (0, 1], not {fraction}"
            ))));
        }
    }
    Ok(PyOperation::new(move || {
        let progress = PyProgress::new(progress);
        let options = VerifyOptions {
            read_data,
            read_data_subset: subset,
        };
        let report = match snapshot_ids {
            Some(ids) => {
                let manifests = select(&repo, graph_id.as_deref(), Some(&ids))?;
                verify_snapshots(&repo, &manifests, options, &progress)?
            }
            // Every snapshot: an unreadable manifest is an error of the report, not of verify.
            None => verify_scan(
                &repo,
                &repo.scan_snapshots(graph_id.as_deref())?,
                options,
                &progress,
            )?,
        };
        Ok(to_json(&report))
    }))
}

/// Storage statistics of one graph, or of the whole repository.
pub(crate) fn stats_operation(repo: Arc<Repository>, graph_id: Option<String>) -> PyOperation {
    PyOperation::new(move || {
        let manifests = select(&repo, graph_id.as_deref(), None)?;
        let stats = compute(&repo, &manifests, graph_id.is_none())?;
        Ok(to_json(&StatsView::new(&stats)))
    })
}

/// Storage statistics of the whole repository and of each graph, from one pass:
/// `{"overall": ..., "graphs": {graph_id: ...}}`, with every graph of `also` (empty when it
/// has no snapshot).
pub(crate) fn graphs_stats_operation(repo: Arc<Repository>, also: Vec<String>) -> PyOperation {
    PyOperation::new(move || {
        let (overall, graphs) = crate::stats::compute_per_graph(&repo, &also)?;
        let graphs: std::collections::BTreeMap<&str, StatsView> = graphs
            .iter()
            .map(|(graph, stats)| (graph.as_str(), StatsView::new(stats)))
            .collect();
        Ok(to_json(&serde_json::json!({
            "overall": StatsView::new(&overall),
            "graphs": graphs,
        })))
    })
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
        (None, None) => repo.all_snapshots(),
    }
}
