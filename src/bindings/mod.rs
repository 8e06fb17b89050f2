//! PyO3 bindings: the private `lightrag.backup._native` module.
//!
//! Every operation exists twice, as the LightRAG way names them: `create_snapshot` blocks
//! with the GIL released, `acreate_snapshot` returns an awaitable. Both run the same closure
//! from `operations()`; results cross the boundary as JSON text that the Python layer turns
//! into its dataclasses.

mod error;
mod graph_backup;
mod lease;
mod logging;
mod operation;
mod progress;
mod recovery;
mod replication;
mod repository;
mod runtime;
mod views;

use pyo3::prelude::*;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Run `work` on a blocking thread and return an awaitable for its result.
pub(crate) fn spawn_async<T, F>(py: Python<'_>, work: F) -> PyResult<Bound<'_, PyAny>>
where
    F: FnOnce() -> crate::Result<T> + Send + 'static,
    T: for<'py> IntoPyObject<'py> + Send + 'static,
{
    pyo3_async_runtimes::generic::future_into_py::<runtime::ForkSafeRuntime, _, T>(py, async move {
        match crate::runtime::handle().spawn_blocking(work).await {
            Ok(result) => result.map_err(error::to_py_err),
            Err(join_error) => Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
                "lightrag-backup worker failed: {join_error}"
            ))),
        }
    })
}

/// Run `work` with the GIL released.
pub(crate) fn run_blocking<T, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    F: FnOnce() -> crate::Result<T> + Send,
    T: Send,
{
    py.detach(work).map_err(error::to_py_err)
}

/// Wait (up to `timeout` seconds) until no async call is in flight. Registered with `atexit`
/// by the Python package, so no tokio worker touches the interpreter while it shuts down.
#[pyfunction]
fn _drain(py: Python<'_>, timeout: f64) -> bool {
    let deadline = Instant::now() + Duration::from_secs_f64(timeout.max(0.0));
    py.detach(|| {
        while runtime::IN_FLIGHT.load(Ordering::SeqCst) > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    })
}

/// Hard-link the graph files of `source` into `staging`; returns how many were linked.
#[pyfunction]
fn stage_links(
    py: Python<'_>,
    source: std::path::PathBuf,
    staging: std::path::PathBuf,
) -> PyResult<usize> {
    run_blocking(py, || crate::source::stage_links(&source, &staging))
}

/// Ask another instance (`base_url`): `method` (GET or POST) `path` (from its root, one of
/// `peer_routes()`) with an optional JSON `body`; the answer's JSON text. Failures are typed:
/// `PushRefusedError` with its `refusal` (fenced, target_is_primary, conflict),
/// `PeerUnreachableError` (retryable), or the backend error of a 4xx/5xx answer.
#[pyfunction]
#[pyo3(signature = (base_url, method, path, body=None, *, api_key=None, ca_file=None, epoch=0, timeout=30.0, retries=0))]
#[allow(clippy::too_many_arguments)]
fn peer_call(
    py: Python<'_>,
    base_url: String,
    method: &str,
    path: &str,
    body: Option<String>,
    api_key: Option<String>,
    ca_file: Option<std::path::PathBuf>,
    epoch: u64,
    timeout: f64,
    retries: u32,
) -> PyResult<String> {
    let target = crate::replication::peer::InstanceTarget {
        base_url,
        api_key,
        ca_file,
        epoch,
        retries,
        timeout: std::time::Duration::from_secs_f64(timeout.clamp(1.0, 3600.0)),
    };
    run_blocking(py, || {
        crate::replication::peer::call(&target, method, path, body)
    })
}

/// Where an instance answers, by name: the receive routes (under `receive`) and `promote`.
#[pyfunction]
fn peer_routes() -> std::collections::HashMap<&'static str, &'static str> {
    crate::replication::peer::routes::ALL
        .iter()
        .copied()
        .collect()
}

/// Whether a file name belongs to a LightRAG graph's file storage.
#[pyfunction]
fn is_graph_file(name: &str) -> bool {
    crate::source::is_graph_file(name)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    logging::install();
    m.add_class::<repository::PyRepository>()?;
    m.add_class::<graph_backup::PyGraphBackup>()?;
    m.add_class::<operation::PyOperation>()?;
    m.add_class::<replication::PyReplicationManager>()?;
    m.add_class::<recovery::PyDisasterRecoveryManager>()?;
    m.add_class::<lease::PyLease>()?;
    m.add_function(wrap_pyfunction!(_drain, m)?)?;
    m.add_function(wrap_pyfunction!(stage_links, m)?)?;
    m.add_function(wrap_pyfunction!(is_graph_file, m)?)?;
    m.add_function(wrap_pyfunction!(peer_call, m)?)?;
    m.add_function(wrap_pyfunction!(peer_routes, m)?)?;
    m.add("FORMAT_VERSION", crate::format::FORMAT_VERSION)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
