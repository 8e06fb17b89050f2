//! `_native.Repository`: one open repository, its repository-wide operations (forget, prune,
//! verify and stats of every graph), and its graphs (`graph(id)`: a `_native.GraphBackup`).

use super::graph_backup::PyGraphBackup;
use super::operation::{graphs_stats_operation, stats_operation, verify_operation, PyOperation};
use super::progress::PyProgress;
use super::run_blocking;
use super::views::to_json;
use crate::backend::Backend;
use crate::error::Error;
use crate::prune::{prune, PruneOptions};
use crate::repository::Repository;
use crate::retention::{forget, RetentionPolicy};
use pyo3::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

#[pyclass(name = "Repository", module = "lightrag.backup._native", frozen)]
pub(crate) struct PyRepository {
    repo: Arc<Repository>,
}

impl PyRepository {
    pub(crate) fn from_repo(repo: Arc<Repository>) -> Self {
        PyRepository { repo }
    }

    pub(crate) fn repo(&self) -> Arc<Repository> {
        self.repo.clone()
    }
}

#[pymethods]
impl PyRepository {
    /// Open (with `create`, initialise when empty) the repository at `url`; `options` are the
    /// backend settings (endpoint, region, credentials, retries), and `create_location` first
    /// creates a missing bucket or container. `password` opens an encrypted repository; a new
    /// one is encrypted under it unless `encryption` is `"none"` (`key_export`: with the master
    /// key of a key export instead of a new one).
    #[new]
    #[pyo3(signature = (url, create = true, options = None, create_location = false, password = None, encryption = None, key_export = None, key_per_graph = false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        url: String,
        create: bool,
        options: Option<BTreeMap<String, String>>,
        create_location: bool,
        password: Option<Vec<u8>>,
        encryption: Option<String>,
        key_export: Option<String>,
        key_per_graph: bool,
    ) -> PyResult<Self> {
        let options = options.unwrap_or_default();
        let password = password.map(zeroize::Zeroizing::new);
        let repo = run_blocking(py, || {
            let backend = Backend::open_with(&url, &options)?;
            if create_location {
                backend.create_location_blocking()?;
            }
            let new = match encryption.as_deref() {
                _ if !create => None,
                Some("none") if key_per_graph => {
                    return Err(Error::invalid(
                        "per-graph keys need an encrypted repository: drop --encryption none",
                    ))
                }
                Some("none") => Some(crate::repository::Encryption::None),
                None | Some("aes-256-gcm") | Some("repokey") => {
                    let master = key_export
                        .as_deref()
                        .map(|text| crate::keys::MasterKey::import(text).map(Box::new))
                        .transpose()?;
                    Some(if key_per_graph {
                        crate::repository::Encryption::KeyPerGraph(master)
                    } else {
                        crate::repository::Encryption::Password(master)
                    })
                }
                Some(other) => {
                    return Err(Error::invalid(format!(
                        "unknown encryption {:?}: use \"aes-256-gcm\" (the default) or \"none\"",
                        crate::repository::shown(other)
                    )))
                }
            };
            Repository::open_with(backend, new, password.as_deref().map(|p| &p[..]))
        })?;
        Ok(PyRepository {
            repo: Arc::new(repo),
        })
    }

    #[getter]
    fn location(&self) -> String {
        self.repo.backend().location().to_string()
    }

    /// The requests this process made of the repository's store so far, by kind, as JSON
    /// (`gets`, `heads`, `lists` by prefix, `puts`, `deletes`).
    fn request_counts_json(&self) -> String {
        serde_json::to_string(&self.repo.backend().requests()).expect("counts serialise")
    }

    /// The config, with `encrypted` and `key_fingerprint` (public: equal for repositories
    /// that share a master key).
    #[getter]
    fn config_json(&self) -> String {
        let mut config = serde_json::to_value(self.repo.config()).expect("config serialises");
        config["encrypted"] = self.repo.codec().is_encrypted().into();
        config["key_fingerprint"] = self.repo.codec().fingerprint().into();
        config["key_per_graph"] = self.repo.config().key_per_graph.into();
        config.to_string()
    }

    /// The key objects, as JSON (id, created_at, hostname, username, kdf, current).
    fn keys_json(&self, py: Python<'_>) -> PyResult<String> {
        run_blocking(py, || Ok(to_json(&self.repo.keys()?)))
    }

    /// Add a key opened by `password`; returns its id.
    fn add_key(&self, py: Python<'_>, password: Vec<u8>) -> PyResult<String> {
        let password = zeroize::Zeroizing::new(password);
        run_blocking(py, || self.repo.add_key(&password))
    }

    /// Remove a key by id or unique prefix; returns its full id.
    fn remove_key(&self, py: Python<'_>, key_id: String) -> PyResult<String> {
        run_blocking(py, || self.repo.remove_key(&key_id))
    }

    /// Replace the key this repository was opened with by one opened by `password`.
    fn change_password(&self, py: Python<'_>, password: Vec<u8>) -> PyResult<String> {
        let password = zeroize::Zeroizing::new(password);
        run_blocking(py, || self.repo.change_password(&password))
    }

    /// The master key as a key export (JSON).
    fn export_key(&self) -> PyResult<String> {
        self.repo.export_key().map_err(super::error::to_py_err)
    }

    fn list_graphs(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        run_blocking(py, || self.repo.list_graphs())
    }

    /// The snapshot manifests (of one graph, or of every graph) that cannot be read, as JSON:
    /// graph_id, snapshot_id, path, reason of each.
    #[pyo3(signature = (graph_id=None))]
    fn unreadable_snapshots(&self, py: Python<'_>, graph_id: Option<String>) -> PyResult<String> {
        run_blocking(py, || {
            Ok(to_json(
                &self.repo.scan_snapshots(graph_id.as_deref())?.unreadable,
            ))
        })
    }

    fn find_snapshot_graph(&self, py: Python<'_>, snapshot_id: String) -> PyResult<Option<String>> {
        run_blocking(py, || self.repo.find_snapshot_graph(&snapshot_id))
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
            Ok(to_json(&report))
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
            Ok(to_json(&report))
        }))
    }

    /// Merge the small index objects into few large ones (under the maintenance lock).
    #[pyo3(signature = (progress=None))]
    fn compact_op(&self, progress: Option<Py<PyAny>>) -> PyResult<PyOperation> {
        let repo = self.repo.clone();
        Ok(PyOperation::new(move || {
            let progress = PyProgress::new(progress);
            let report = crate::compact::compact(&repo, &progress)?;
            Ok(to_json(&report))
        }))
    }

    /// A digest of what the listings of `prefixes` name (paths and sizes, sorted): equal while
    /// nothing under them was written or deleted, by any process. One listing per prefix.
    fn listing_fingerprint(&self, py: Python<'_>, prefixes: Vec<String>) -> PyResult<String> {
        use sha2::Digest;
        let repo = self.repo.clone();
        run_blocking(py, move || {
            let mut digest = sha2::Sha256::new();
            for prefix in &prefixes {
                let mut listed = repo.backend().list_blocking(prefix)?;
                listed.sort();
                digest.update(prefix.as_bytes());
                digest.update([0]);
                for (path, size) in listed {
                    digest.update(path.as_ref().as_bytes());
                    digest.update(size.to_le_bytes());
                }
                digest.update([0]);
            }
            Ok(hex::encode(digest.finalize()))
        })
    }

    /// How many index objects this process has loaded, and how many of them are small.
    fn index_object_counts(&self, py: Python<'_>) -> PyResult<(usize, usize)> {
        let repo = self.repo.clone();
        run_blocking(py, move || {
            repo.refresh_index()?;
            Ok((repo.index_objects(), repo.small_index_objects()))
        })
    }

    /// Repair the repository: record damage, copy what is whole, heal the rest from the
    /// graphs' current folders (`sources`: graph id, folder), drop the damage from the index.
    #[pyo3(signature = (dry_run=false, sources=None, progress=None))]
    fn repair_op(
        &self,
        dry_run: bool,
        sources: Option<Vec<(String, std::path::PathBuf)>>,
        progress: Option<Py<PyAny>>,
    ) -> PyOperation {
        let repo = self.repo.clone();
        let options = crate::repair::RepairOptions {
            dry_run,
            sources: sources.unwrap_or_default(),
        };
        PyOperation::new(move || {
            let progress = PyProgress::new(progress);
            Ok(to_json(&crate::repair::repair(&repo, &options, &progress)?))
        })
    }

    /// The receiving side of a push: which of these chunk ids (hex) this repository lacks.
    fn missing_chunks_op(&self, ids: Vec<String>) -> PyResult<PyOperation> {
        let ids = ids
            .iter()
            .map(|hex| {
                crate::format::ObjectId::from_hex(hex).ok_or_else(|| {
                    super::error::to_py_err(Error::invalid("a chunk id is 64 hex digits"))
                })
            })
            .collect::<PyResult<Vec<_>>>()?;
        let repo = self.repo.clone();
        Ok(PyOperation::new(move || {
            let missing = crate::replication::receive::missing_chunks(&repo, &ids)?;
            Ok(to_json(&serde_json::json!({
                "missing": missing.iter().map(|id| id.to_hex()).collect::<Vec<_>>()
            })))
        }))
    }

    /// The receiving side of a push: check every chunk of a pushed pack, then store them.
    fn receive_pack_op(&self, data: pyo3::pybacked::PyBackedBytes) -> PyOperation {
        // The Python bytes themselves, not a copy: a standby receives several 16 MiB packs at once.
        let repo = self.repo.clone();
        PyOperation::new(move || {
            Ok(to_json(&crate::replication::receive::receive_pack(
                &repo, &data,
            )?))
        })
    }

    /// The receiving side of a push: commit a pushed snapshot (its encoded manifest) onto the
    /// head the source expects (`None`: the graph has none here), marking `diverged` first.
    #[pyo3(signature = (graph_id, data, expected_head=None, diverged=Vec::new()))]
    fn receive_snapshot_op(
        &self,
        graph_id: String,
        data: Vec<u8>,
        expected_head: Option<String>,
        diverged: Vec<String>,
    ) -> PyOperation {
        let repo = self.repo.clone();
        PyOperation::new(move || {
            Ok(to_json(&crate::replication::receive::receive_snapshot(
                &repo,
                &graph_id,
                &data,
                expected_head.as_deref(),
                &diverged,
            )?))
        })
    }

    /// The receiving side of a push: a graph's own key object, before its chunks.
    fn receive_graph_key_op(&self, graph_id: String, data: Vec<u8>) -> PyOperation {
        let repo = self.repo.clone();
        PyOperation::new(move || {
            crate::replication::receive::receive_graph_key(&repo, &graph_id, &data)?;
            Ok(to_json(
                &serde_json::json!({"graph_id": graph_id, "status": "stored"}),
            ))
        })
    }

    /// The receiving side of a push: a shred of a graph.
    fn receive_shred_op(&self, graph_id: String, data: Vec<u8>) -> PyOperation {
        let repo = self.repo.clone();
        PyOperation::new(move || {
            Ok(to_json(&crate::replication::receive::receive_shred(
                &repo, &graph_id, &data,
            )?))
        })
    }

    /// Shred a graph: delete its own key (every snapshot of it unreadable at once), its
    /// manifests and claim. Refused for a graph without a key of its own.
    fn shred_graph_op(&self, graph_id: String) -> PyOperation {
        let repo = self.repo.clone();
        PyOperation::new(move || Ok(to_json(&repo.shred_graph(&graph_id)?)))
    }

    /// The shredded graphs of the repository (graph id, when, where).
    fn shredded_graphs(&self, py: Python<'_>) -> PyResult<String> {
        run_blocking(py, || Ok(to_json(&self.repo.shredded_graphs()?)))
    }

    /// Whether a graph has a key of its own (so it can be shredded).
    fn has_own_key(&self, py: Python<'_>, graph_id: String) -> PyResult<bool> {
        run_blocking(py, || self.repo.has_own_key(&graph_id))
    }

    /// The receiving side of a push: this repository's snapshots of a graph, as a source
    /// plans with them (id, time, tags, data hash; oldest first).
    fn receive_listing_op(&self, graph_id: String) -> PyOperation {
        let repo = self.repo.clone();
        PyOperation::new(move || {
            Ok(to_json(&serde_json::json!({
                "snapshots": crate::replication::conflict::listing(&repo, &graph_id)?
            })))
        })
    }

    /// Write a new version of a setting (JSON text; `None` removes it).
    #[pyo3(signature = (kind, name, value_json=None))]
    fn put_setting_op(
        &self,
        kind: String,
        name: String,
        value_json: Option<String>,
    ) -> PyResult<PyOperation> {
        let value = match value_json {
            Some(text) => Some(
                serde_json::from_str::<serde_json::Value>(&text).map_err(|e| {
                    super::error::to_py_err(Error::invalid(format!("setting is not JSON: {e}")))
                })?,
            ),
            None => None,
        };
        let repo = self.repo.clone();
        Ok(PyOperation::new(move || {
            crate::settings::put_setting(&repo, &kind, &name, value.as_ref())?;
            Ok("null".to_string())
        }))
    }

    /// Every setting of a kind, as a JSON object: name -> newest value.
    fn settings_op(&self, kind: String) -> PyOperation {
        let repo = self.repo.clone();
        PyOperation::new(move || Ok(to_json(&crate::settings::settings(&repo, &kind)?)))
    }

    /// The repository's recovery points and the validation that knows LightRAG.
    fn recovery(&self) -> super::recovery::PyDisasterRecoveryManager {
        super::recovery::PyDisasterRecoveryManager::new(self.repo.clone())
    }

    /// One graph of the repository, to snapshot, list, restore, verify and delete.
    fn graph(&self, graph_id: String) -> PyResult<PyGraphBackup> {
        PyGraphBackup::new(self.repo.clone(), graph_id)
    }

    /// Verify every snapshot of every graph, in one pass.
    #[pyo3(signature = (read_data=true, subset=None, progress=None))]
    fn verify_op(
        &self,
        read_data: bool,
        subset: Option<f64>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<PyOperation> {
        verify_operation(self.repo.clone(), None, None, read_data, subset, progress)
    }

    /// Storage statistics of the whole repository.
    fn stats_op(&self) -> PyOperation {
        stats_operation(self.repo.clone(), None)
    }

    /// Storage statistics of the whole repository and of every graph, in one pass; the
    /// graphs of `also` are there even without snapshots.
    fn graphs_stats_op(&self, also: Vec<String>) -> PyOperation {
        graphs_stats_operation(self.repo.clone(), also)
    }
}
