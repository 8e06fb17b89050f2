//! lightrag-backup: content-addressed, deduplicated, verifiable backups of LightRAG graphs.
//!
//! ```no_run
//! use lightrag_backup::{snapshot, restore, Backend, NoProgress, Repository};
//! use std::path::Path;
//!
//! let repo = Repository::open(Backend::open("/data/backups")?, true)?;
//! let manifest = snapshot::create_snapshot(
//!     &repo, "my-graph", Path::new("./rag_storage"), &Default::default(), &NoProgress)?;
//! let plan = restore::plan_restore(&repo, &manifest, Path::new("/tmp/restored"))?;
//! restore::execute_restore(&repo, &plan, &NoProgress)?;
//! # Ok::<(), lightrag_backup::Error>(())
//! ```
//!
//! The core knows nothing of Python; the PyO3 bindings live in `bindings/` behind the
//! `python` feature.

pub mod backend;
pub mod cache;
pub mod chunk_index;
pub mod chunker;
pub mod compact;
pub mod error;
mod fetch;
pub mod file_reader;
pub mod format;
pub mod graph_key_cache;
pub mod graph_keys;
pub mod graph_stats;
pub mod keys;
pub mod kg_diff;
pub mod lease;
pub mod lock;
pub mod operations;
pub mod packer;
mod parallel;
pub mod progress;
pub mod prune;
pub mod recovery;
pub mod repair;
pub mod replication;
pub mod repository;
pub mod restore;
pub mod retention;
pub mod runtime;
pub mod settings;
pub mod snapshot;
pub mod source;
pub mod stats;
pub mod validate;
pub mod vdb;
pub mod verify;

#[cfg(feature = "python")]
mod bindings;

pub use backend::Backend;
pub use error::{Error, Result};
pub use progress::{NoProgress, Progress};
pub use repository::Repository;

/// Test hook for the crash-safety tests: a process whose `LIGHTRAG_BACKUP_TEST_CRASH_AT`
/// names this point kills itself here with SIGKILL, as a power cut or the OOM killer would,
/// with no destructor run and no lock released. Reading one variable costs nothing next to
/// the store requests around each point; no other code path looks at it.
pub(crate) fn crash_point(name: &str) {
    if std::env::var_os("LIGHTRAG_BACKUP_TEST_CRASH_AT").is_some_and(|at| at == name) {
        // SAFETY: raise only sends a signal to this process.
        unsafe {
            libc::raise(libc::SIGKILL);
        }
    }
}
