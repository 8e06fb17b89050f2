//! `_native.ReplicationManager`: the Rust transfer engine of replication, which
//! `lightrag.replication.ReplicationManager` builds on. It copies a graph's snapshots from its
//! repository into a target repository (see `crate::replication`).

use super::error::to_py_err;
use super::operation::PyOperation;
use super::progress::PyProgress;
use super::repository::PyRepository;
use super::run_blocking;
use super::views::to_json;
use crate::backend::Backend;
use crate::error::Error;
use crate::replication::{copy_graph, CopyOptions};
use crate::repository::Repository;
use pyo3::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

#[pyclass(
    name = "ReplicationManager",
    module = "lightrag.backup._native",
    frozen
)]
pub(crate) struct PyReplicationManager {
    source: Arc<Repository>,
}

#[pymethods]
impl PyReplicationManager {
    /// The transfer engine for snapshots of `source`.
    #[new]
    fn new(source: &PyRepository) -> Self {
        PyReplicationManager {
            source: source.repo(),
        }
    }

    /// Open the target repository at `url`, creating it (and with `create_location` its bucket
    /// or container) with this source's chunker parameters when there is none, so dedup holds
    /// across the copy. An existing one is checked for compatibility by each copy.
    ///
    /// `password` opens an encrypted target of an unencrypted source: copies into it re-encrypt
    /// (see `replication::reencrypt`).
    #[pyo3(signature = (url, options = None, create_location = false, password = None))]
    fn open_target(
        &self,
        py: Python<'_>,
        url: String,
        options: Option<BTreeMap<String, String>>,
        create_location: bool,
        password: Option<Vec<u8>>,
    ) -> PyResult<PyRepository> {
        let password = password.map(zeroize::Zeroizing::new);
        let options = options.unwrap_or_default();
        let source = self.source.clone();
        let repo = run_blocking(py, || {
            let backend = Backend::open_with(&url, &options)?;
            if create_location {
                backend.create_location_blocking()?;
            }
            // An encrypted source's target shares its master key (chunks move as stored).
            match Repository::open_like(backend.clone(), &source) {
                Err(Error::RepositoryNotFound { .. }) => {
                    Repository::init_like(Backend::open_with(&url, &options)?, &source)
                }
                // An encrypted target of an unencrypted source, opened by its own password.
                Err(Error::IncompatibleTarget { .. })
                    if !source.codec().is_encrypted() && password.is_some() =>
                {
                    Repository::open_with(backend, None, password.as_deref().map(|p| &p[..]))
                }
                other => other,
            }
        })?;
        Ok(PyRepository::from_repo(Arc::new(repo)))
    }

    /// Push the snapshots of `graph_id` another instance lacks (or only `snapshot_ids`).
    #[pyo3(signature = (base_url, graph_id, api_key=None, ca_file=None, epoch=0, snapshot_ids=None, dry_run=false, retries=3, timeout=120.0, progress=None, conflict_policy="reject", sent=Vec::new()))]
    #[allow(clippy::too_many_arguments)]
    fn push_op(
        &self,
        base_url: String,
        graph_id: String,
        api_key: Option<String>,
        ca_file: Option<std::path::PathBuf>,
        epoch: u64,
        snapshot_ids: Option<Vec<String>>,
        dry_run: bool,
        retries: u32,
        timeout: f64,
        progress: Option<Py<PyAny>>,
        conflict_policy: &str,
        sent: Vec<(String, String)>,
    ) -> PyResult<PyOperation> {
        let source = self.source.clone();
        let target = crate::replication::push::InstanceTarget {
            base_url,
            api_key,
            ca_file,
            epoch,
            retries,
            timeout: std::time::Duration::from_secs_f64(timeout.max(1.0)),
        };
        let options = copy_options(snapshot_ids, dry_run, conflict_policy, sent)?;
        Ok(PyOperation::new(move || {
            let progress = PyProgress::new(progress);
            Ok(to_json(&crate::replication::push::push_graph(
                &source, &target, &graph_id, &options, &progress,
            )?))
        }))
    }

    /// Copy the snapshots of `graph_id` the target lacks (or only `snapshot_ids`).
    #[pyo3(signature = (target, graph_id, snapshot_ids=None, dry_run=false, progress=None, conflict_policy="reject", sent=Vec::new()))]
    #[allow(clippy::too_many_arguments)]
    fn copy_op(
        &self,
        target: &PyRepository,
        graph_id: String,
        snapshot_ids: Option<Vec<String>>,
        dry_run: bool,
        progress: Option<Py<PyAny>>,
        conflict_policy: &str,
        sent: Vec<(String, String)>,
    ) -> PyResult<PyOperation> {
        let (source, target) = (self.source.clone(), target.repo());
        let options = copy_options(snapshot_ids, dry_run, conflict_policy, sent)?;
        Ok(PyOperation::new(move || {
            let progress = PyProgress::new(progress);
            Ok(to_json(&copy_graph(
                &source, &target, &graph_id, &options, &progress,
            )?))
        }))
    }
}

/// What a push or a copy is asked to do, as Python hands it over.
fn copy_options(
    snapshot_ids: Option<Vec<String>>,
    dry_run: bool,
    conflict_policy: &str,
    sent: Vec<(String, String)>,
) -> PyResult<CopyOptions> {
    Ok(CopyOptions {
        snapshot_ids,
        dry_run,
        conflict_policy: conflict_policy.parse().map_err(to_py_err)?,
        sent,
    })
}
