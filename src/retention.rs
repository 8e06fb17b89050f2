//! Retention policies: which snapshots of a graph to keep, restic-style.
//!
//! Rules are evaluated on one graph's snapshots, newest first. `keep_last` keeps the n newest;
//! each calendar rule (`hourly`, `daily`, `weekly` (ISO weeks), `monthly`, `yearly`) keeps the
//! newest snapshot of each of its n most recent periods that have one; `keep_within` keeps
//! every snapshot younger than the duration; `keep_tags` keeps every snapshot carrying one of
//! the tags. A snapshot is kept when any rule keeps it, and a graph's newest snapshot is always
//! kept, so age alone can never empty a graph. Periods are UTC.
//!
//! Safety snapshots (the state a restore replaced, tagged `pre-restore`) are not counted by
//! the rules, so they never push out the snapshot just restored: each is kept for 7 days
//! ([`SAFETY_SNAPSHOT_TTL_SECONDS`]), or for good when tagged `keep` (or by `keep_tags`).
//!
//! A snapshot a recovery point names is always kept ("recovery point <id>"), until the point
//! is deleted.

use crate::error::{Error, Result};
use crate::format::manifest::{KEEP_TAG, SAFETY_SNAPSHOT_TTL_SECONDS};
use crate::format::SnapshotManifest;
use crate::recovery::Protection;
use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use serde::{Deserialize, Serialize};

/// What to keep. All rules are optional; at least one must be set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicy {
    pub keep_last: Option<usize>,
    pub keep_hourly: Option<usize>,
    pub keep_daily: Option<usize>,
    pub keep_weekly: Option<usize>,
    pub keep_monthly: Option<usize>,
    pub keep_yearly: Option<usize>,
    /// Keep every snapshot younger than this many seconds.
    pub keep_within_seconds: Option<i64>,
    pub keep_tags: Vec<String>,
}

/// The verdict on one snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub snapshot_id: String,
    pub time: String,
    pub keep: bool,
    /// Why it is kept ("last 3", "daily 2026-11-25", "within 30d", "tag release", "newest").
    pub reasons: Vec<String>,
}

impl RetentionPolicy {
    /// Whether no rule is set (such a policy would delete everything but the newest).
    pub fn is_empty(&self) -> bool {
        self.keep_last.is_none()
            && self.keep_hourly.is_none()
            && self.keep_daily.is_none()
            && self.keep_weekly.is_none()
            && self.keep_monthly.is_none()
            && self.keep_yearly.is_none()
            && self.keep_within_seconds.is_none()
            && self.keep_tags.is_empty()
    }

    /// Decide, for one graph's snapshots (any order), which to keep; newest first.
    ///
    /// # Errors
    /// `InvalidInput` for an empty policy, a negative duration, or an unparsable time.
    pub fn apply(
        &self,
        manifests: &[SnapshotManifest],
        now: DateTime<Utc>,
    ) -> Result<Vec<Decision>> {
        if self.is_empty() {
            return Err(Error::invalid(
                "the retention policy has no rule: set keep_last, keep_daily, ..., keep_within or keep_tags",
            ));
        }
        if self.keep_within_seconds.is_some_and(|s| s < 0) {
            return Err(Error::invalid("keep_within must not be negative"));
        }
        let mut dated: Vec<(DateTime<Utc>, &SnapshotManifest)> = manifests
            .iter()
            .map(|m| {
                DateTime::parse_from_rfc3339(&m.time)
                    .map(|t| (t.with_timezone(&Utc), m))
                    .map_err(|e| {
                        Error::invalid(format!("snapshot {} has a bad time: {e}", m.snapshot_id))
                    })
            })
            .collect::<Result<_>>()?;
        // Newest first; ties broken by id so the outcome is deterministic.
        dated.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then_with(|| b.1.snapshot_id.cmp(&a.1.snapshot_id))
        });

        type Period = fn(&DateTime<Utc>) -> String;
        let calendar: [(&str, Option<usize>, Period); 5] = [
            ("hourly", self.keep_hourly, |t| {
                format!(
                    "{}-{:02}-{:02} {:02}h",
                    t.year(),
                    t.month(),
                    t.day(),
                    t.hour()
                )
            }),
            ("daily", self.keep_daily, |t| {
                format!("{}-{:02}-{:02}", t.year(), t.month(), t.day())
            }),
            ("weekly", self.keep_weekly, |t| {
                let week = t.iso_week();
                format!("{}-W{:02}", week.year(), week.week())
            }),
            ("monthly", self.keep_monthly, |t| {
                format!("{}-{:02}", t.year(), t.month())
            }),
            ("yearly", self.keep_yearly, |t| t.year().to_string()),
        ];
        let mut remaining: Vec<Option<usize>> = calendar.iter().map(|c| c.1).collect();
        let mut last_period: Vec<Option<String>> = vec![None; calendar.len()];
        let within = self.keep_within_seconds.map(Duration::seconds);

        let mut decisions = Vec::with_capacity(dated.len());
        // A graph holding nothing but safety snapshots keeps its newest as its newest.
        let counts_safety = dated.iter().all(|(_, m)| m.is_safety_snapshot());
        let safety_ttl = Duration::seconds(SAFETY_SNAPSHOT_TTL_SECONDS);
        // Position among the snapshots the rules count (safety snapshots are not counted).
        let mut counted = 0usize;
        for (time, manifest) in &dated {
            let mut reasons = Vec::new();
            if manifest.is_safety_snapshot() && !counts_safety {
                if manifest.tags.iter().any(|t| t == KEEP_TAG) {
                    reasons.push(format!("tag {KEEP_TAG}"));
                } else if now.signed_duration_since(*time) <= safety_ttl {
                    reasons.push(format!("safety snapshot, kept {}", describe(safety_ttl)));
                }
            } else {
                let index = counted;
                counted += 1;
                if index == 0 {
                    reasons.push("newest".to_string());
                }
                if let Some(n) = self.keep_last {
                    if index < n {
                        reasons.push(format!("last {n}"));
                    }
                }
                for (rule, (name, _, period)) in calendar.iter().enumerate() {
                    let Some(left) = remaining[rule] else {
                        continue;
                    };
                    let key = period(time);
                    if last_period[rule].as_ref() != Some(&key) {
                        last_period[rule] = Some(key.clone());
                        if left > 0 {
                            remaining[rule] = Some(left - 1);
                            reasons.push(format!("{name} {key}"));
                        }
                    }
                }
                if let Some(within) = within {
                    if now.signed_duration_since(*time) <= within {
                        reasons.push(format!("within {}", describe(within)));
                    }
                }
            }
            for tag in &self.keep_tags {
                if manifest.tags.contains(tag) {
                    reasons.push(format!("tag {tag}"));
                }
            }
            decisions.push(Decision {
                snapshot_id: manifest.snapshot_id.clone(),
                time: manifest.time.clone(),
                keep: !reasons.is_empty(),
                reasons,
            });
        }
        Ok(decisions)
    }
}

/// Forget the graph's safety snapshots that are past their 7 days (and not tagged `keep`), so
/// they expire by themselves whether or not a retention policy ever runs. Returns their ids.
///
/// # Errors
/// `Backend` when the store fails.
pub fn expire_safety_snapshots(
    repo: &crate::Repository,
    graph_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<String>> {
    let ttl = Duration::seconds(SAFETY_SNAPSHOT_TTL_SECONDS);
    let mut expired = Vec::new();
    let mut protection: Option<Protection> = None;
    for manifest in repo.list_snapshots(graph_id)? {
        if !manifest.is_safety_snapshot() || manifest.tags.iter().any(|t| t == KEEP_TAG) {
            continue;
        }
        let protection = match &protection {
            Some(loaded) => loaded,
            None => protection.insert(Protection::load(repo)?),
        };
        if !protection.all_readable() {
            break; // an unreadable point may name any of them: they wait for repair
        }
        if !protection.points_naming(&manifest).is_empty() {
            continue; // a recovery point names it
        }
        let Ok(time) = DateTime::parse_from_rfc3339(&manifest.time) else {
            continue;
        };
        if now.signed_duration_since(time.with_timezone(&Utc)) > ttl {
            repo.delete_snapshot(graph_id, &manifest.snapshot_id)?;
            expired.push(manifest.snapshot_id);
        }
    }
    Ok(expired)
}

/// What [`forget`] decided for each graph, and which snapshots it removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ForgetReport {
    pub dry_run: bool,
    /// Graph id -> one decision per snapshot, newest first.
    pub graphs: std::collections::BTreeMap<String, Vec<Decision>>,
    /// Snapshots removed (or, in a dry run, that would be), as (graph id, snapshot id).
    pub removed: Vec<(String, String)>,
}

/// Apply `policy` to every graph (or one) of the repository and remove the snapshots it does
/// not keep. Only manifests go: the data they alone used is freed by a later prune.
///
/// # Errors
/// `InvalidInput` for an empty policy or a bad graph id; `Backend` when the store fails.
pub fn forget(
    repo: &crate::Repository,
    graph_id: Option<&str>,
    policy: &RetentionPolicy,
    dry_run: bool,
) -> Result<ForgetReport> {
    if policy.is_empty() {
        return Err(Error::invalid(
            "the retention policy has no rule: set keep_last, keep_daily, ..., keep_within or keep_tags",
        ));
    }
    let graphs = match graph_id {
        Some(graph) => vec![graph.to_string()],
        None => repo.list_graphs()?,
    };
    let now = Utc::now();
    let mut report = ForgetReport {
        dry_run,
        ..Default::default()
    };
    let protection = Protection::load(repo)?;
    protection.check_readable("retention")?;
    let mut removed_manifests: Vec<SnapshotManifest> = Vec::new();
    for graph in graphs {
        let manifests = repo.list_snapshots(&graph)?;
        let mut decisions = policy.apply(&manifests, now)?;
        for decision in decisions.iter_mut() {
            let Some(manifest) = manifests
                .iter()
                .find(|m| m.snapshot_id == decision.snapshot_id)
            else {
                continue;
            };
            for point in protection.points_naming(manifest) {
                decision.keep = true;
                decision.reasons.push(format!("recovery point {point}"));
            }
            if decision.keep {
                continue;
            }
            if !dry_run {
                match repo.delete_snapshot(&graph, &decision.snapshot_id) {
                    Ok(_) => removed_manifests.push(manifest.clone()),
                    Err(Error::SnapshotNotFound { .. }) => {}
                    Err(other) => return Err(other),
                }
            }
            report
                .removed
                .push((graph.clone(), decision.snapshot_id.clone()));
        }
        report.graphs.insert(graph, decisions);
    }
    if !removed_manifests.is_empty() {
        put_back_protected(repo, &removed_manifests, &mut report)?;
    }
    Ok(report)
}

/// A recovery point written while [`forget`] ran may name a snapshot it has just removed (the
/// point checked the snapshot before the removal): such manifests are written back, as they
/// were, so the point stays whole. Their data cannot have gone: only a prune frees data, and a
/// commit check guards the manifest against one running now.
pub fn put_back_protected(
    repo: &crate::Repository,
    removed: &[SnapshotManifest],
    report: &mut ForgetReport,
) -> Result<()> {
    let protection = Protection::load(repo)?;
    for manifest in removed {
        let points = protection.points_naming(manifest);
        if points.is_empty() {
            continue;
        }
        repo.commit_snapshot(manifest, &std::collections::HashSet::new())?;
        report
            .removed
            .retain(|(g, s)| !(g == &manifest.graph_id && s == &manifest.snapshot_id));
        if let Some(decision) = report
            .graphs
            .get_mut(&manifest.graph_id)
            .and_then(|d| d.iter_mut().find(|d| d.snapshot_id == manifest.snapshot_id))
        {
            decision.keep = true;
            decision
                .reasons
                .extend(points.iter().map(|p| format!("recovery point {p}")));
        }
    }
    Ok(())
}

fn describe(duration: Duration) -> String {
    let seconds = duration.num_seconds();
    if seconds % 86_400 == 0 {
        format!("{}d", seconds / 86_400)
    } else if seconds % 3600 == 0 {
        format!("{}h", seconds / 3600)
    } else {
        format!("{seconds}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::ObjectId;

    fn manifest(id: &str, time: &str, tags: &[&str]) -> SnapshotManifest {
        SnapshotManifest {
            snapshot_id: id.into(),
            graph_id: "g".into(),
            time: time.into(),
            hostname: "h".into(),
            description: None,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            metadata_json: "{}".into(),
            files: vec![],
            data_hash: ObjectId::of(id.as_bytes()),
            logical_size: 0,
            added_size: 0,
            added_raw_size: 0,
        }
    }

    fn kept(policy: &RetentionPolicy, manifests: &[SnapshotManifest], now: &str) -> Vec<String> {
        let now = DateTime::parse_from_rfc3339(now)
            .unwrap()
            .with_timezone(&Utc);
        let mut ids: Vec<String> = policy
            .apply(manifests, now)
            .unwrap()
            .into_iter()
            .filter(|d| d.keep)
            .map(|d| d.snapshot_id)
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn safety_snapshots_are_not_counted_and_expire_after_a_week() {
        // A restore of `restored` left the safety snapshot `replaced` after it: keep-last 1
        // must keep the restored state, not the discarded one.
        let manifests = vec![
            manifest("older", "2026-03-01T00:00:00Z", &[]),
            manifest("restored", "2026-03-02T00:00:00Z", &[]),
            manifest("replaced", "2026-03-03T00:00:00Z", &["pre-restore"]),
            manifest("stale", "2026-02-01T00:00:00Z", &["pre-restore"]),
            manifest("kept", "2026-02-01T00:00:00Z", &["pre-restore", "keep"]),
        ];
        let policy = RetentionPolicy {
            keep_last: Some(1),
            ..Default::default()
        };
        assert_eq!(
            kept(&policy, &manifests, "2026-03-04T00:00:00Z"),
            ["kept", "replaced", "restored"]
        );
        // A week later the safety snapshot has expired by itself.
        assert_eq!(
            kept(&policy, &manifests, "2026-03-11T00:00:01Z"),
            ["kept", "restored"]
        );
        // Only safety snapshots: the newest is still the graph's newest.
        let only = vec![manifest("a", "2026-01-01T00:00:00Z", &["pre-restore"])];
        assert_eq!(kept(&policy, &only, "2027-01-01T00:00:00Z"), ["a"]);
    }

    /// Two snapshots a day, 06:00 and 18:00, from 2026-01-01 for `days` days.
    fn twice_daily(days: i64) -> Vec<SnapshotManifest> {
        let start = DateTime::parse_from_rfc3339("2026-01-01T06:00:00Z").unwrap();
        (0..days * 2)
            .map(|i| {
                let t = start + Duration::hours(12 * i);
                manifest(&format!("s{i:04}"), &t.to_rfc3339(), &[])
            })
            .collect()
    }

    #[test]
    fn daily_keeps_the_newest_of_each_day() {
        let all = twice_daily(10);
        let policy = RetentionPolicy {
            keep_daily: Some(3),
            ..Default::default()
        };
        // Days 10, 9 and 8: their 18:00 snapshots (odd indexes 19, 17, 15).
        assert_eq!(
            kept(&policy, &all, "2026-01-20T00:00:00Z"),
            vec!["s0015", "s0017", "s0019"]
        );
    }

    #[test]
    fn rules_combine_and_the_newest_always_survives() {
        let all = twice_daily(60);
        let policy = RetentionPolicy {
            keep_last: Some(2),
            keep_weekly: Some(2),
            keep_monthly: Some(2),
            ..Default::default()
        };
        // The newest is 1 Mar 18:00 (s0119, a Sunday). last 2: s0119, s0118; weekly: ISO
        // week 9 (s0119) and week 8, whose newest is Sun 22 Feb 18:00 (s0105); monthly:
        // March (s0119) and February, whose newest is 28 Feb 18:00 (s0117).
        assert_eq!(
            kept(&policy, &all, "2026-03-10T00:00:00Z"),
            vec!["s0105", "s0117", "s0118", "s0119"]
        );

        let age_only = RetentionPolicy {
            keep_within_seconds: Some(86_400),
            ..Default::default()
        };
        assert_eq!(kept(&age_only, &all, "2027-01-01T00:00:00Z"), vec!["s0119"]);
    }

    #[test]
    fn within_and_tags() {
        let mut all = twice_daily(5);
        all[0].tags.push("release".into());
        let policy = RetentionPolicy {
            keep_within_seconds: Some(36 * 3600),
            keep_tags: vec!["release".into()],
            ..Default::default()
        };
        // Now = 6 Jan 00:00; within 36h: 4 Jan 18:00 (7), 5 Jan 06:00 (8), 5 Jan 18:00 (9).
        assert_eq!(
            kept(&policy, &all, "2026-01-06T00:00:00Z"),
            vec!["s0000", "s0007", "s0008", "s0009"]
        );
    }

    #[test]
    fn empty_and_bad_policies_are_refused() {
        let all = twice_daily(2);
        let now = Utc::now();
        assert!(RetentionPolicy::default().apply(&all, now).is_err());
        let negative = RetentionPolicy {
            keep_within_seconds: Some(-1),
            ..Default::default()
        };
        assert!(negative.apply(&all, now).is_err());
        assert!(RetentionPolicy {
            keep_last: Some(1),
            ..Default::default()
        }
        .apply(&[], now)
        .unwrap()
        .is_empty());
    }
}
