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
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {}
