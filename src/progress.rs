//! Progress reporting for long operations: the CLI draws bars, the Python API calls callbacks.

/// Receives progress of one operation. Implementations must be cheap; they are called from
/// worker threads.
pub trait Progress: Send + Sync {
    /// A new phase starts (`"snapshot"`, `"restore"`, `"verify"`), with `total` units (bytes).
    fn start(&self, _phase: &str, _total: u64) {}
    /// `done` more units of the current phase are complete.
    fn advance(&self, _done: u64) {}
    /// The phase is complete.
    fn finish(&self) {}
    /// Whether the caller asked to stop (Ctrl-C). Operations check it between chunks and
    /// stop with [`Error::Cancelled`](crate::error::Error::Cancelled), leaving the repository valid
    /// and the restore target untouched. Called from the thread that started the operation.
    fn cancelled(&self) -> bool {
        false
    }
}

/// Fail with `Cancelled` when the caller asked to stop.
pub(crate) fn check_cancelled(progress: &dyn Progress, what: &str) -> crate::error::Result<()> {
    if progress.cancelled() {
        Err(crate::error::Error::Cancelled {
            message: format!("{what} interrupted; nothing was committed"),
        })
    } else {
        Ok(())
    }
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {}
