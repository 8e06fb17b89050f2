//! The bridge between Rust futures and asyncio, on the core's fork-safe runtime.
//!
//! pyo3-async-runtimes' own tokio runtime is a process-wide static that a forked child
//! (gunicorn workers) inherits without its threads; its awaitables would never complete
//! there. This `Runtime` spawns onto `crate::runtime::handle()` instead, which is rebuilt
//! after a fork. It also counts every bridged task until it has fully finished, handing the
//! result to the event loop included, so `_drain` can wait for them at interpreter exit
//! (PyO3/pyo3-async-runtimes#40: a worker inside `call_soon_threadsafe` during finalisation
//! aborts the process).

use pyo3_async_runtimes::generic::{ContextExt, Runtime};
use pyo3_async_runtimes::TaskLocals;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Bridged tasks not yet finished.
pub(crate) static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

struct InFlight;

impl InFlight {
    fn enter() -> Self {
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

tokio::task_local! {
    static TASK_LOCALS: OnceLock<TaskLocals>;
}

pub(crate) struct ForkSafeRuntime;

impl Runtime for ForkSafeRuntime {
    type JoinError = tokio::task::JoinError;
    type JoinHandle = tokio::task::JoinHandle<()>;

    fn spawn<F>(fut: F) -> Self::JoinHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let guard = InFlight::enter();
        crate::runtime::handle().spawn(async move {
            fut.await;
            drop(guard);
        })
    }

    fn spawn_blocking<F>(f: F) -> Self::JoinHandle
    where
        F: FnOnce() + Send + 'static,
    {
        let guard = InFlight::enter();
        crate::runtime::handle().spawn_blocking(move || {
            f();
            drop(guard);
        })
    }
}

impl ContextExt for ForkSafeRuntime {
    fn scope<F, R>(locals: TaskLocals, fut: F) -> Pin<Box<dyn Future<Output = R> + Send>>
    where
        F: Future<Output = R> + Send + 'static,
    {
        let cell = OnceLock::new();
        let _ = cell.set(locals);
        Box::pin(TASK_LOCALS.scope(cell, fut))
    }

    fn get_task_locals() -> Option<TaskLocals> {
        TASK_LOCALS
            .try_with(|cell| cell.get().cloned())
            .unwrap_or_default()
    }
}
