//! Replication: every snapshot of a graph onto another repository, carrying only what the
//! target lacks, checked hash by hash, resumable and idempotent.
//!
//! [`copy`] moves snapshots between two repositories (a `restic copy` analog: an off-site
//! bucket, a second region); instance targets (another lightrag-backup server over HTTP) reuse
//! its plan and the same order of writes: packs, then index, then the manifest last.
//! [`reencrypt`] copies from an unencrypted repository into an encrypted one. [`peer`] is the
//! one client of another instance (push's requests, and every question the Python side asks).

pub mod conflict;
pub mod copy;
pub mod peer;
pub mod push;
pub mod receive;
pub mod reencrypt;

pub use copy::{CopyOptions, CopyReport, SnapshotCopy};

use crate::error::Result;
use crate::progress::Progress;
use crate::repository::Repository;

/// Copy the snapshots of `graph_id` that `target` lacks from `source`: as they are stored
/// ([`copy::copy_as_stored`]), or re-encrypted from an unencrypted repository into an encrypted
/// one ([`reencrypt::reencrypt_graph`]).
///
/// # Errors
/// As those two.
pub fn copy_graph(
    source: &Repository,
    target: &Repository,
    graph_id: &str,
    options: &CopyOptions,
    progress: &dyn Progress,
) -> Result<CopyReport> {
    if reencrypt::reencrypts(source, target) {
        reencrypt::reencrypt_graph(source, target, graph_id, options, progress)
    } else {
        copy::copy_as_stored(source, target, graph_id, options, progress)
    }
}
