//! The one public error type of the core.
//!
//! Every operation returns [`Result<T>`]; the Python bindings map each variant to one class of
//! the `lightrag.backup.errors` tree (see `bindings/error.rs`).

use std::path::PathBuf;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, with the names and paths an operator needs to act on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The caller passed something unusable (an invalid graph id, an empty tag, ...).
    #[error("invalid input: {message}")]
    InvalidInput { message: String },

    /// No snapshot with this id (or id prefix) exists for the graph.
    #[error("snapshot {snapshot_id:?} not found for graph {graph_id:?}{hint}")]
    SnapshotNotFound {
        graph_id: String,
        snapshot_id: String,
        /// Extra context, e.g. that the id belongs to another graph.
        hint: String,
    },

    /// The graph id already holds snapshots of another folder: two graphs would share one id
    /// (and one graph's retention, restores and verifies would act on the other's).
    #[error("graph {graph_id:?} holds snapshots of {theirs}, not of {ours}: give this folder its own graph id (-g NAME / graph_id=...), or adopt it (--adopt / adopt=True) if the graph really moved there")]
    GraphSourceConflict {
        graph_id: String,
        ours: String,
        theirs: String,
    },

    /// A replication target cannot take this repository's data as it is (another format
    /// version or other chunker parameters, so chunks would not deduplicate). Nothing moved.
    #[error("incompatible replication target {target}: {reason}")]
    IncompatibleTarget { target: String, reason: String },

    /// A replication target refused a push on purpose (`kind`: `fenced`, `target_is_primary`,
    /// `conflict`): retrying will not help until an operator acts.
    #[error("replication target {target} refused the push ({kind}): {message}")]
    Refused {
        target: String,
        kind: String,
        message: String,
    },

    /// Another instance could not be reached (connection refused or reset, timed out): it
    /// may be restarting or cut off, so a later try may succeed.
    #[error("cannot reach the target {target}: {message}")]
    PeerUnreachable { target: String, message: String },

    /// No recovery point with this id (or id prefix) exists.
    #[error("recovery point {checkpoint_id:?} not found{hint}")]
    RecoveryPointNotFound { checkpoint_id: String, hint: String },

    /// A recovery point names the snapshot, so it is kept until the point is deleted.
    #[error("snapshot {snapshot_id} of graph {graph_id:?} is named by recovery point {points}: delete the point first (`lightrag-backup recovery delete POINT`)")]
    SnapshotProtected {
        graph_id: String,
        snapshot_id: String,
        points: String,
    },

    /// An id prefix matches more than one snapshot.
    #[error("snapshot id prefix {prefix:?} is ambiguous: it matches {count} snapshots of graph {graph_id:?}: {candidates}")]
    AmbiguousSnapshotId {
        graph_id: String,
        prefix: String,
        count: usize,
        /// The matching ids (the first ten), comma-separated.
        candidates: String,
    },

    /// The graph's folder does not exist or holds no LightRAG files.
    #[error("graph folder {path:?} {reason}")]
    GraphDirNotFound { path: PathBuf, reason: String },

    /// The graph kept changing while it was read; a consistent copy could not be taken.
    #[error("graph is busy: {message}")]
    GraphBusy { message: String },

    /// Stored data does not match its hash, cannot be decoded, or is missing.
    #[error("integrity check failed: {message}")]
    Integrity { message: String },

    /// The location holds no repository (no `config` object).
    #[error("no lightrag-backup repository at {location}: `lightrag-backup --repo {location} init` creates one (in Python: create=True)")]
    RepositoryNotFound { location: String },

    /// The repository is encrypted (or a new one would be) and no password was given.
    #[error("{message}")]
    PasswordRequired { message: String },

    /// No key object of the repository opens with the password given.
    #[error("no key matches this password (repository {location}): check --password-file, --password-command or $LIGHTRAG_BACKUP_PASSWORD(_FILE/_COMMAND)")]
    WrongPassword { location: String },

    /// The graph's own key was deleted (`shred`): its snapshots can never be read again, and
    /// its id takes no new ones.
    #[error("graph {graph_id:?} was shredded{at}: its key is deleted and its snapshots can never be read again; give new snapshots another graph id")]
    GraphShredded { graph_id: String, at: String },

    /// The repository was written by a newer, incompatible version.
    #[error("repository format version {found} is not supported (this build reads versions up to {supported}); upgrade lightrag-backup")]
    UnsupportedFormat { found: u32, supported: u32 },

    /// The object store failed. `message` never holds a secret (keys and tokens are redacted
    /// where the store is opened).
    #[error("storage backend failed to {operation} {path:?}: {message}")]
    Backend {
        operation: &'static str,
        path: String,
        message: String,
        failure: BackendFailure,
    },

    /// A local file operation failed.
    #[error("cannot {operation} {path:?}: {source}")]
    Io {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Another process changed the repository in a way that conflicts with this operation (a
    /// prune removing data a long snapshot reuses, another prune running). Retrying is safe.
    #[error("conflict: {message}")]
    Conflict { message: String },

    /// The operation was cancelled by the caller (for example through a progress callback).
    #[error("operation cancelled: {message}")]
    Cancelled { message: String },
}

/// What kind of object-store failure an [`Error::Backend`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendFailure {
    /// Timeouts, connection failures, 5xx and throttling that outlasted the retries: the same
    /// call may succeed later.
    Transient,
    /// The credentials were refused (401/403).
    Auth,
    /// The bucket or container does not exist.
    LocationNotFound,
    /// An object is missing.
    NotFound,
    /// Anything else the store refused; retrying will not help.
    Other,
}

impl Error {
    /// Whether retrying the same call later may succeed: transient backend failures and a busy
    /// graph are; bad input, missing objects and corruption are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::GraphBusy { .. } | Error::Conflict { .. } | Error::PeerUnreachable { .. } => {
                true
            }
            Error::Backend { failure, .. } => *failure == BackendFailure::Transient,
            Error::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted | std::io::ErrorKind::TimedOut
            ),
            _ => false,
        }
    }

    /// Whether this says a stored object is damaged (cannot be decoded, fails its checks):
    /// such an object is reported and skipped, never fatal to the others.
    pub fn is_damage(&self) -> bool {
        matches!(self, Error::Integrity { .. })
    }

    /// The short machine-readable kind used by the bindings and `--json` output.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidInput { .. } => "invalid_input",
            Error::SnapshotNotFound { .. } => "snapshot_not_found",
            Error::GraphSourceConflict { .. } => "graph_source_conflict",
            Error::IncompatibleTarget { .. } => "incompatible_target",
            Error::Refused { .. } => "push_refused",
            Error::PeerUnreachable { .. } => "peer_unreachable",
            Error::AmbiguousSnapshotId { .. } => "invalid_input",
            Error::RecoveryPointNotFound { .. } => "recovery_point_not_found",
            Error::SnapshotProtected { .. } => "snapshot_protected",
            Error::GraphDirNotFound { .. } => "graph_dir_not_found",
            Error::GraphBusy { .. } => "graph_busy",
            Error::Integrity { .. } => "integrity",
            Error::RepositoryNotFound { .. } => "repository_not_found",
            Error::UnsupportedFormat { .. } => "unsupported_format",
            Error::PasswordRequired { .. } => "password_required",
            Error::WrongPassword { .. } => "wrong_password",
            Error::GraphShredded { .. } => "graph_shredded",
            Error::Backend { failure, .. } => match failure {
                BackendFailure::Auth => "backend_auth",
                BackendFailure::LocationNotFound => "backend_location_not_found",
                _ => "backend",
            },
            Error::Io { .. } => "io",
            Error::Cancelled { .. } => "cancelled",
            Error::Conflict { .. } => "conflict",
        }
    }

    pub(crate) fn io(
        operation: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            operation,
            path: path.into(),
            source,
        }
    }

    /// Why another instance refused on purpose (`fenced`, `target_is_primary`, `conflict`),
    /// or `unreachable` when it could not be reached; `None` for every other error.
    pub fn refusal(&self) -> Option<&str> {
        match self {
            Error::Refused { kind, .. } => Some(kind),
            Error::PeerUnreachable { .. } => Some("unreachable"),
            _ => None,
        }
    }

    /// The message without its kind's prefix ("integrity check failed: ", "invalid input: "),
    /// for wrapping into another error's message without repeating it.
    pub fn detail(&self) -> String {
        match self {
            Error::Integrity { message } | Error::InvalidInput { message } => message.clone(),
            other => other.to_string(),
        }
    }

    /// The same error, its message followed by `note` (what was done about it).
    pub(crate) fn with_note(self, note: &str) -> Self {
        match self {
            Error::Io {
                operation,
                path,
                source,
            } => Error::Io {
                operation,
                path,
                source: std::io::Error::new(source.kind(), format!("{source}; {note}")),
            },
            Error::Integrity { message } => Error::integrity(format!("{message}; {note}")),
            Error::Backend {
                operation,
                path,
                message,
                failure,
            } => Error::Backend {
                operation,
                path,
                message: format!("{message}; {note}"),
                failure,
            },
            other => Error::integrity(format!("{}; {note}", other.detail())),
        }
    }

    pub(crate) fn integrity(message: impl Into<String>) -> Self {
        Error::Integrity {
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidInput {
            message: message.into(),
        }
    }
}
