//! Conflicts: a target whose newest snapshot of a graph is not one this source sent.
//!
//! That happens when the standby's graph changed on its own (someone backed it up there), or
//! when two sources push one graph. The source knows what it sent: its own snapshots, the ones
//! its logs say it pushed to this target (they may have been forgotten here since), and their
//! data hashes (a standby snapshot of an unchanged replicated graph has the same content, so
//! it diverges from nothing). The target's **divergent** snapshots are those newer than the
//! newest one the source knows and unknown to it; there is a conflict when there is any.
//!
//! The target's policy decides (the target entry on the source says which):
//! - `reject` (the default): the push is refused (`conflict`) before any data moves, and the
//!   target is left as it was.
//! - `source_wins`: the divergent snapshots are re-issued with the tag `diverged` (under new
//!   ids, as `restic tag` re-issues a snapshot, the new manifest written before the old one is
//!   dropped, so a crash leaves a duplicate, never a loss), and the pushed snapshots become
//!   the graph's head. Nothing of the target's own is lost.
//!
//! The **head** of a graph is its newest snapshot that is neither a safety snapshot nor
//! diverged. A commit names the head it expects (`expected_head`); a target whose head moved
//! meanwhile (another source committed, the standby took a snapshot) refuses with `conflict`,
//! so a decision taken on a stale view is never applied.

use crate::error::{Error, Result};
use crate::format::{SnapshotManifest, DIVERGED_TAG};
use crate::repository::Repository;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::str::FromStr;

/// What a target does when its newest snapshot of a graph is not one the source sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConflictPolicy {
    /// Refuse the push (`conflict`); nothing changes.
    #[default]
    Reject,
    /// The pushed snapshots become the head; the target's divergent ones are tagged `diverged`.
    SourceWins,
}

impl FromStr for ConflictPolicy {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "reject" => Ok(ConflictPolicy::Reject),
            "source_wins" => Ok(ConflictPolicy::SourceWins),
            other => Err(Error::invalid(format!(
                "conflict policy {other:?} is not one of reject, source_wins"
            ))),
        }
    }
}

/// One snapshot a target holds, as it lists them to a source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetSnapshot {
    pub snapshot_id: String,
    pub time: String,
    pub tags: Vec<String>,
    pub data_hash: String,
}

impl TargetSnapshot {
    pub fn of(manifest: &SnapshotManifest) -> TargetSnapshot {
        TargetSnapshot {
            snapshot_id: manifest.snapshot_id.clone(),
            time: manifest.time.clone(),
            tags: manifest.tags.clone(),
            data_hash: manifest.data_hash.to_hex(),
        }
    }

    /// Whether this snapshot can be a graph's head (not a safety snapshot, not diverged).
    fn counts(&self) -> bool {
        !self
            .tags
            .iter()
            .any(|t| t == DIVERGED_TAG || t == crate::format::PRE_RESTORE_TAG)
    }
}

/// What a source knows it sent: snapshot ids and data hashes.
#[derive(Debug, Clone, Default)]
pub struct Known {
    pub ids: HashSet<String>,
    pub data_hashes: HashSet<String>,
}

impl Known {
    /// The source's own snapshots, and what its logs say it sent (`sent`: ids and hashes).
    pub fn new(own: &[SnapshotManifest], sent: &[(String, String)]) -> Known {
        let mut known = Known::default();
        for manifest in own {
            known.ids.insert(manifest.snapshot_id.clone());
            known.data_hashes.insert(manifest.data_hash.to_hex());
        }
        for (id, hash) in sent {
            known.ids.insert(id.clone());
            if !hash.is_empty() {
                known.data_hashes.insert(hash.clone());
            }
        }
        known
    }

    fn knows(&self, snapshot: &TargetSnapshot) -> bool {
        self.ids.contains(&snapshot.snapshot_id) || self.data_hashes.contains(&snapshot.data_hash)
    }
}

/// The head of a graph on a target: its newest snapshot that counts (see the module docs).
pub fn head(listed: &[TargetSnapshot]) -> Option<&TargetSnapshot> {
    listed
        .iter()
        .filter(|s| s.counts())
        .max_by(|a, b| (&a.time, &a.snapshot_id).cmp(&(&b.time, &b.snapshot_id)))
}

/// The target's snapshots that diverge from what the source knows: newer than the newest
/// one it knows, and unknown to it. Empty when there is no conflict.
pub fn divergent(listed: &[TargetSnapshot], known: &Known) -> Vec<String> {
    let counted: Vec<&TargetSnapshot> = listed.iter().filter(|s| s.counts()).collect();
    let newest_known = counted
        .iter()
        .filter(|s| known.knows(s))
        .map(|s| (&s.time, &s.snapshot_id))
        .max();
    counted
        .iter()
        .filter(|s| !known.knows(s))
        .filter(|s| newest_known.is_none_or(|newest| (&s.time, &s.snapshot_id) > newest))
        .map(|s| s.snapshot_id.clone())
        .collect()
}

/// The conflict error, naming what diverged.
pub fn conflict_error(target: &str, graph_id: &str, divergent: &[String]) -> Error {
    Error::Refused {
        target: target.to_string(),
        kind: "conflict".into(),
        message: format!(
            "graph {graph_id:?} changed there on its own: its newest snapshot(s) {} were not sent from here; \
             nothing was changed (set the target's conflict_policy to source_wins to push anyway: \
             they are kept, tagged {DIVERGED_TAG:?})",
            divergent.join(", ")
        ),
    }
}

/// Every snapshot of `graph_id` in `repo`, as a target lists them.
pub fn listing(repo: &Repository, graph_id: &str) -> Result<Vec<TargetSnapshot>> {
    Ok(repo
        .list_snapshots(graph_id)?
        .iter()
        .map(TargetSnapshot::of)
        .collect())
}

/// A diverged snapshot re-issued: its old id and its new one.
#[derive(Debug, Clone, Serialize)]
pub struct Diverged {
    pub snapshot_id: String,
    pub diverged_as: String,
}

/// Re-issue the snapshots `ids` of `graph_id` with the tag `diverged` (under new ids: the
/// new manifest is written before the old one is dropped), noting in their metadata what
/// they were and what replaced them as the head.
///
/// # Errors
/// `SnapshotNotFound` for an id the graph lacks; `Backend` when the store fails.
pub fn mark_diverged(
    repo: &Repository,
    graph_id: &str,
    ids: &[String],
    replaced_by: &str,
) -> Result<Vec<Diverged>> {
    let mut done = Vec::new();
    for id in ids {
        let manifest = repo.load_snapshot(graph_id, id)?;
        if manifest.tags.iter().any(|t| t == DIVERGED_TAG) {
            continue;
        }
        let mut reissued = manifest.clone();
        reissued.snapshot_id = uuid::Uuid::new_v4().to_string();
        reissued.tags.push(DIVERGED_TAG.to_string());
        let mut metadata: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&manifest.metadata_json).unwrap_or_default();
        metadata.insert(
            "diverged".into(),
            serde_json::json!({
                "original_snapshot_id": manifest.snapshot_id,
                "replaced_by": replaced_by,
                "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            }),
        );
        reissued.metadata_json = serde_json::Value::Object(metadata).to_string();
        repo.write_snapshot(&reissued)?;
        repo.delete_snapshot(graph_id, &manifest.snapshot_id)?;
        done.push(Diverged {
            snapshot_id: manifest.snapshot_id,
            diverged_as: reissued.snapshot_id,
        });
    }
    Ok(done)
}

/// Check a commit against the target's head and apply `source_wins`: the head must be the
/// one the source planned with (`expected_head`, `None` for a graph without one), and the
/// `diverged` ids it names are re-issued as diverged first. A snapshot already here (an
/// earlier try of this push committed it) skips the head check; the diverged ids still here
/// are marked.
///
/// # Errors
/// `Refused` (`conflict`) when the head moved; `InvalidInput` for a diverged id the graph
/// lacks; what [`mark_diverged`] reports.
pub fn settle(
    repo: &Repository,
    graph_id: &str,
    snapshot_id: &str,
    expected_head: Option<&str>,
    diverged: &[String],
) -> Result<Vec<Diverged>> {
    let listed = listing(repo, graph_id)?;
    let listed_ids: HashSet<&str> = listed.iter().map(|s| s.snapshot_id.as_str()).collect();
    if listed_ids.contains(snapshot_id) {
        let still: Vec<String> = diverged
            .iter()
            .filter(|id| listed_ids.contains(id.as_str()))
            .cloned()
            .collect();
        return mark_diverged(repo, graph_id, &still, snapshot_id);
    }
    let current = head(&listed).map(|s| s.snapshot_id.as_str());
    if current != expected_head {
        return Err(Error::Refused {
            target: repo.backend().location().to_string(),
            kind: "conflict".into(),
            message: format!(
                "the newest snapshot of graph {graph_id:?} on the target is {}, not {} as the push planned \
                 (another source or a local snapshot committed meanwhile); nothing was committed, push again",
                current.unwrap_or("none"),
                expected_head.unwrap_or("none")
            ),
        });
    }
    if let Some(unknown) = diverged.iter().find(|id| !listed_ids.contains(id.as_str())) {
        return Err(Error::invalid(format!(
            "snapshot {unknown} of graph {graph_id:?} is not here: it cannot be marked diverged"
        )));
    }
    mark_diverged(repo, graph_id, diverged, snapshot_id)
}

/// A source's view of a target's snapshots of one graph while it pushes: the head each
/// commit must expect, and the divergent snapshots the first commit marks.
#[derive(Debug, Clone)]
pub struct Plan {
    view: Vec<TargetSnapshot>,
    /// The target's snapshots to mark diverged with the next commit (`source_wins`).
    pub diverged: Vec<String>,
}

impl Plan {
    /// Plan a push of `graph_id` onto a target that lists `listed`.
    ///
    /// # Errors
    /// `Refused` (`conflict`) under [`ConflictPolicy::Reject`] when the target diverged.
    pub fn new(
        target: &str,
        graph_id: &str,
        listed: Vec<TargetSnapshot>,
        known: &Known,
        policy: ConflictPolicy,
    ) -> Result<Plan> {
        let diverged = divergent(&listed, known);
        if !diverged.is_empty() && policy == ConflictPolicy::Reject {
            return Err(conflict_error(target, graph_id, &diverged));
        }
        Ok(Plan {
            view: listed,
            diverged,
        })
    }

    /// The head the next commit expects.
    pub fn expected_head(&self) -> Option<&str> {
        head(&self.view).map(|s| s.snapshot_id.as_str())
    }

    /// `manifest` was committed (with the diverged snapshots marked).
    pub fn committed(&mut self, manifest: &SnapshotManifest) {
        let marked: HashSet<String> = std::mem::take(&mut self.diverged).into_iter().collect();
        self.view.retain(|s| !marked.contains(&s.snapshot_id));
        self.view.push(TargetSnapshot::of(manifest));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(id: &str, time: &str, hash: &str, tags: &[&str]) -> TargetSnapshot {
        TargetSnapshot {
            snapshot_id: id.into(),
            time: time.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            data_hash: hash.into(),
        }
    }

    fn known(ids: &[&str], hashes: &[&str]) -> Known {
        Known {
            ids: ids.iter().map(|s| s.to_string()).collect(),
            data_hashes: hashes.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_target_holding_only_what_the_source_sent_has_no_conflict() {
        let listed = [snap("a", "1", "ha", &[]), snap("b", "2", "hb", &[])];
        assert!(divergent(&listed, &known(&["a", "b"], &[])).is_empty());
        assert_eq!(head(&listed).unwrap().snapshot_id, "b");
    }

    #[test]
    fn a_local_snapshot_newer_than_the_pushed_ones_diverges() {
        let listed = [
            snap("a", "1", "ha", &[]),
            snap("own-old", "0", "hx", &[]),
            snap("own", "3", "hy", &[]),
        ];
        // Older local snapshots are the target's own business; the newer one diverges.
        assert_eq!(
            divergent(&listed, &known(&["a"], &["ha"])),
            vec!["own".to_string()]
        );
        // With nothing known, every counted snapshot diverges.
        assert_eq!(divergent(&listed, &Known::default()).len(), 3);
    }

    #[test]
    fn same_content_safety_and_diverged_snapshots_do_not_diverge() {
        let listed = [
            snap("a", "1", "ha", &[]),
            snap("again", "2", "ha", &[]),
            snap("safety", "3", "hz", &["pre-restore"]),
            snap("old", "4", "hq", &["diverged"]),
        ];
        assert!(divergent(&listed, &known(&["a"], &["ha"])).is_empty());
        assert_eq!(head(&listed).unwrap().snapshot_id, "again");
    }

    #[test]
    fn policies_parse_and_others_are_refused() {
        assert_eq!(
            "source_wins".parse::<ConflictPolicy>().unwrap(),
            ConflictPolicy::SourceWins
        );
        assert!("merge".parse::<ConflictPolicy>().is_err());
    }
}
