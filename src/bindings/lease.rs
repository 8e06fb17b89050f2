//! `_native.Lease`: the failover lease at one location (see `crate::lease`): read the newest
//! slot, or swap in the next one. `lightrag.recovery.lease.LeaseKeeper` decides when.

use super::operation::PyOperation;
use crate::backend::Backend;
use crate::error::Error;
use crate::lease::{LeaseStore, Proposal};
use crate::runtime::block_on;
use pyo3::prelude::*;
use std::collections::BTreeMap;
use std::time::Duration;

#[pyclass(name = "Lease", module = "lightrag.backup._native", frozen)]
pub(crate) struct PyLease {
    store: LeaseStore,
}

#[pymethods]
impl PyLease {
    /// The lease `name` at `url` (any repository URL: a folder, `s3://`, `az://`, `gs://`);
    /// every read or swap gives up after `timeout` seconds. Opening does not contact the store.
    #[new]
    #[pyo3(signature = (url, name, timeout, options=None))]
    fn new(
        url: String,
        name: String,
        timeout: f64,
        options: Option<BTreeMap<String, String>>,
    ) -> PyResult<Self> {
        let open = || -> crate::Result<LeaseStore> {
            if !(timeout.is_finite() && timeout > 0.0) {
                return Err(Error::invalid(format!(
                    "lease timeout {timeout} s: use a number of seconds above zero"
                )));
            }
            let mut options = options.unwrap_or_default();
            // A lease answer is needed within the timeout, not after three minutes of retries.
            options
                .entry("retry_timeout".into())
                .or_insert_with(|| format!("{timeout}"));
            options
                .entry("max_retries".into())
                .or_insert_with(|| "2".into());
            let backend = Backend::open_with(&url, &options)?;
            LeaseStore::new(backend, &name, Duration::from_secs_f64(timeout))
        };
        Ok(PyLease {
            store: open().map_err(super::error::to_py_err)?,
        })
    }

    /// Where the lease lives (for messages; no secrets).
    #[getter]
    fn location(&self) -> String {
        self.store.location()
    }

    /// The newest slot as JSON (`null` when the lease was never taken).
    fn current_op(&self) -> PyOperation {
        let store = self.store.clone();
        PyOperation::new(move || {
            let current = block_on(store.current())?;
            Ok(serde_json::to_string(&current).expect("a lease record serialises"))
        })
    }

    /// Publish this instance's member record (a JSON object), replacing its last one.
    fn publish_member_op(&self, member: String, record_json: String) -> PyOperation {
        let store = self.store.clone();
        PyOperation::new(move || {
            let record: serde_json::Value = serde_json::from_str(&record_json)
                .map_err(|e| Error::invalid(format!("member record: {e}")))?;
            block_on(store.publish_member(&member, &record))?;
            Ok("null".to_string())
        })
    }

    /// Every member record, as a JSON list.
    fn members_op(&self) -> PyOperation {
        let store = self.store.clone();
        PyOperation::new(move || {
            let members = block_on(store.members())?;
            Ok(serde_json::to_string(&members).expect("JSON values serialise"))
        })
    }

    /// Write the slot after `expected_slot` (`None` for a lease never taken) from
    /// `proposal_json` (`holder`, `holder_url`, `epoch`, `ttl_ms`, `state`, `handover_to`):
    /// JSON `{outcome: won, record}` or `{outcome: lost, current}`.
    #[pyo3(signature = (expected_slot, proposal_json))]
    fn write_op(&self, expected_slot: Option<u64>, proposal_json: String) -> PyOperation {
        let store = self.store.clone();
        PyOperation::new(move || {
            let proposal: Proposal = serde_json::from_str(&proposal_json)
                .map_err(|e| Error::invalid(format!("lease proposal: {e}")))?;
            let outcome = block_on(store.write(expected_slot, proposal))?;
            Ok(serde_json::to_string(&outcome).expect("a lease outcome serialises"))
        })
    }
}
