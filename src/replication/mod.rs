//! Replication: every snapshot of a graph onto another repository, carrying only what the
//! target lacks, checked hash by hash, resumable and idempotent.
//!
//! [`copy`] moves snapshots between two repositories (a `restic copy` analog: an off-site
//! bucket, a second region); instance targets (another lightrag-backup server over HTTP) reuse
//! its plan and the same order of writes: packs, then index, then the manifest last.
//! [`reencrypt`] copies from an unencrypted repository into an encrypted one.

pub mod conflict;
pub mod copy;
pub mod push;
pub mod receive;
pub mod reencrypt;

pub use copy::{copy_graph, CopyOptions, CopyReport, SnapshotCopy};
