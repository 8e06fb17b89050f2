//! The one tokio runtime that drives object-store I/O, safe across `fork()`.
//!
//! A forked child (gunicorn workers, multiprocessing) inherits the parent's runtime object but
//! not its threads; using it would hang. We remember the pid that built the runtime and build a
//! fresh one in a child. The parent's runtime is leaked in the child on purpose: dropping it
//! would try to join threads that do not exist there.

use std::sync::{Mutex, OnceLock};
use tokio::runtime::{Handle, Runtime};

struct Owned {
    pid: u32,
    runtime: &'static Runtime,
}

static RUNTIME: OnceLock<Mutex<Owned>> = OnceLock::new();

fn build() -> &'static Runtime {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("lightrag-backup-io")
        .enable_all()
        .build()
        .expect("cannot start the tokio runtime");
    Box::leak(Box::new(runtime))
}

/// A handle to the I/O runtime of this process.
pub fn handle() -> Handle {
    let pid = std::process::id();
    let cell = RUNTIME.get_or_init(|| {
        Mutex::new(Owned {
            pid,
            runtime: build(),
        })
    });
    let mut owned = cell.lock().unwrap_or_else(|poison| poison.into_inner());
    if owned.pid != pid {
        *owned = Owned {
            pid,
            runtime: build(),
        };
    }
    owned.runtime.handle().clone()
}

/// Run a future to completion from synchronous code (never from inside the runtime).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    handle().block_on(future)
}
