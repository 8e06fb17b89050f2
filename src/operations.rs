//! Whole operations as the API and CLI offer them, composed from the steps in `snapshot`,
//! `restore` and `verify`.

use crate::error::Result;
use crate::format::SnapshotManifest;
use crate::progress::Progress;
use crate::repository::Repository;
use crate::restore::{execute_restore_with, plan_restore, RestorePlan, RestoreReport};
use crate::snapshot::{create_snapshot, SnapshotOptions};
use crate::source::list_graph_files;
use std::path::Path;

/// Tag of the snapshots a restore takes of the state it replaces.
pub use crate::format::manifest::PRE_RESTORE_TAG;

/// How to restore.
#[derive(Debug, Clone, Copy)]
pub struct RestoreOptions {
    /// Snapshot the target's current graph files first, so the restore can be undone.
    pub safety_snapshot: bool,
    /// Only plan; write nothing.
    pub dry_run: bool,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            safety_snapshot: true,
            dry_run: false,
        }
    }
}

/// What a restore did (or, for a dry run, would do).
#[derive(Debug, Clone)]
pub struct RestoreOutcome {
    pub plan: RestorePlan,
    pub report: Option<RestoreReport>,
    /// The snapshot of the replaced state, when one was taken.
    pub safety_snapshot: Option<SnapshotManifest>,
    /// Safety snapshots of the graph that had expired, forgotten after the restore.
    pub expired_safety_snapshots: Vec<String>,
}

/// Restore a snapshot of `graph_id` into `target`.
///
/// Plans first (a missing chunk fails here, before anything is written), takes the safety
/// snapshot of the current state when asked and when the target holds graph files, then
/// restores.
///
/// # Errors
/// As [`Repository::load_snapshot`], [`plan_restore`] and [`execute_restore`].
pub fn restore_snapshot(
    repo: &Repository,
    graph_id: &str,
    snapshot_ref: &str,
    target: &Path,
    options: RestoreOptions,
    progress: &dyn Progress,
) -> Result<RestoreOutcome> {
    let manifest = repo.load_snapshot(graph_id, snapshot_ref)?;
    let plan = plan_restore(repo, &manifest, target)?;
    if options.dry_run {
        return Ok(RestoreOutcome {
            plan,
            report: None,
            safety_snapshot: None,
            expired_safety_snapshots: Vec::new(),
        });
    }
    let mut safety_snapshot = None;
    // Taken once everything is staged and checked, right before the swap: a restore that
    // fails or is interrupted before that point leaves no safety snapshot behind.
    let mut take_safety_snapshot = || -> Result<()> {
        let has_files = list_graph_files(target)
            .map(|files| !files.is_empty())
            .unwrap_or(false);
        if !options.safety_snapshot || !has_files {
            return Ok(());
        }
        let safety_options = SnapshotOptions {
            description: Some(format!(
                "state replaced by the restore of snapshot {}",
                manifest.snapshot_id
            )),
            tags: vec![PRE_RESTORE_TAG.to_string()],
            ..Default::default()
        };
        let safety = create_snapshot(repo, graph_id, target, &safety_options, progress)?;
        if safety.data_hash == manifest.data_hash {
            // Nothing would be replaced: the extra manifest would only clutter the list.
            repo.delete_snapshot(graph_id, &safety.snapshot_id)?;
        } else {
            safety_snapshot = Some(safety);
        }
        Ok(())
    };
    let report = execute_restore_with(repo, &plan, progress, &mut take_safety_snapshot)?;
    // The restore is done whatever this finds; a failure here only leaves them for next time.
    let expired_safety_snapshots =
        crate::retention::expire_safety_snapshots(repo, graph_id, chrono::Utc::now())
            .unwrap_or_default();
    Ok(RestoreOutcome {
        plan,
        report: Some(report),
        safety_snapshot,
        expired_safety_snapshots,
    })
}
