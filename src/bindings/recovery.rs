//! `_native.DisasterRecoveryManager`: the engine of disaster recovery for one repository:
//! recovery points (take, list, get, delete, record a validation, receive one a replication
//! brought) and the validation that knows LightRAG (`check_graph_dir_op`).
//! `lightrag.recovery.DisasterRecoveryManager` builds on it.

use super::operation::PyOperation;
use super::views::{to_json, PointView};
use crate::error::Error;
use crate::recovery;
use crate::repository::Repository;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use std::collections::BTreeMap;
use std::sync::Arc;

#[pyclass(
    name = "DisasterRecoveryManager",
    module = "lightrag.backup._native",
    frozen
)]
pub(crate) struct PyDisasterRecoveryManager {
    repo: Arc<Repository>,
}

impl PyDisasterRecoveryManager {
    pub(crate) fn new(repo: Arc<Repository>) -> Self {
        PyDisasterRecoveryManager { repo }
    }
}

fn point_json(repo: &Repository, checkpoint_ref: &str) -> crate::Result<String> {
    let point = recovery::load_point(repo, checkpoint_ref)?;
    Ok(to_json(&PointView::new(&point, &shredded_ids(repo)?)))
}

/// The ids of the repository's shredded graphs: a point naming one covers it no more.
fn shredded_ids(repo: &Repository) -> crate::Result<std::collections::BTreeSet<String>> {
    Ok(repo
        .shredded_graphs()?
        .into_iter()
        .map(|record| record.graph_id)
        .collect())
}

#[pymethods]
impl PyDisasterRecoveryManager {
    /// Take a recovery point: `snapshots` maps each graph id to its committed snapshot (an id,
    /// a unique prefix or `latest`); `metadata_json` is a JSON object recorded with it.
    #[pyo3(signature = (snapshots, description=None, created_by=None, metadata_json=None))]
    fn create_point_op(
        &self,
        snapshots: BTreeMap<String, String>,
        description: Option<String>,
        created_by: Option<String>,
        metadata_json: Option<String>,
    ) -> PyOperation {
        let repo = self.repo.clone();
        let metadata_json = metadata_json.unwrap_or_else(|| "{}".to_string());
        PyOperation::new(move || {
            let point =
                recovery::create_point(&repo, &snapshots, description, created_by, &metadata_json)?;
            point_json(&repo, &point.checkpoint_id)
        })
    }

    /// Every recovery point, newest first, each with its newest validation.
    fn list_points_op(&self) -> PyOperation {
        let repo = self.repo.clone();
        PyOperation::new(move || {
            let points = recovery::list_points(&repo)?;
            let shredded = shredded_ids(&repo)?;
            Ok(to_json(
                &points
                    .iter()
                    .map(|point| PointView::new(point, &shredded))
                    .collect::<Vec<_>>(),
            ))
        })
    }

    /// One recovery point by id, unique prefix or `latest`.
    fn get_point_op(&self, checkpoint_id: String) -> PyOperation {
        let repo = self.repo.clone();
        PyOperation::new(move || point_json(&repo, &checkpoint_id))
    }

    /// Delete a recovery point; its snapshots are no longer protected by it. Returns its id.
    fn delete_point_op(&self, checkpoint_id: String) -> PyOperation {
        let repo = self.repo.clone();
        PyOperation::new(move || Ok(to_json(&recovery::delete_point(&repo, &checkpoint_id)?)))
    }

    /// Record what a validation found (`results_json`: a JSON object); returns the point.
    fn record_validation_op(
        &self,
        checkpoint_id: String,
        validated: bool,
        results_json: String,
    ) -> PyOperation {
        let repo = self.repo.clone();
        PyOperation::new(move || {
            let record =
                recovery::record_validation(&repo, &checkpoint_id, validated, &results_json)?;
            point_json(&repo, &record.checkpoint_id)
        })
    }

    /// The receiving side of a replication: store a pushed recovery point once every snapshot
    /// it names is here (`{checkpoint_id, status: stored|present|waiting, missing}`).
    fn receive_point_op(&self, data: PyBackedBytes) -> PyOperation {
        let repo = self.repo.clone();
        PyOperation::new(move || Ok(to_json(&recovery::receive_point(&repo, &data)?)))
    }

    /// The ids of every recovery point here.
    fn point_ids_op(&self) -> PyOperation {
        let repo = self.repo.clone();
        PyOperation::new(move || {
            Ok(to_json(&serde_json::json!({
                "checkpoint_ids": recovery::point_ids(&repo)?
            })))
        })
    }

    /// Validate the LightRAG graph in a folder (what `lightrag_backup::validate` checks);
    /// with `recorded_json` (a snapshot's metadata), its counts are compared too.
    #[staticmethod]
    #[pyo3(signature = (path, recorded_json=None))]
    fn check_graph_dir_op(
        path: std::path::PathBuf,
        recorded_json: Option<String>,
    ) -> PyResult<PyOperation> {
        let recorded = match recorded_json {
            Some(text) => Some(
                serde_json::from_str::<serde_json::Value>(&text).map_err(|e| {
                    super::error::to_py_err(Error::invalid(format!(
                        "recorded counts are not JSON: {e}"
                    )))
                })?,
            ),
            None => None,
        };
        Ok(PyOperation::new(move || {
            let mut check = crate::validate::check_graph_dir(&path)?;
            if let Some(recorded) = &recorded {
                crate::validate::compare_counts(&mut check, recorded);
            }
            Ok(to_json(&check))
        }))
    }
}
