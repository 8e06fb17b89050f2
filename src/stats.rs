//! Storage statistics: how much the snapshots hold, and how little the repository stores.

use crate::error::Result;
use crate::format::{ObjectId, SnapshotManifest};
use crate::repository::Repository;
use std::collections::{BTreeMap, HashSet};

/// Numbers behind "storage efficiency": logical bytes are what the snapshots hold, unique
/// bytes what is left after deduplication, stored bytes what that compresses to.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Stats {
    pub snapshot_count: usize,
    pub file_count: usize,
    pub logical_bytes: u64,
    pub unique_chunks: usize,
    pub unique_bytes: u64,
    pub stored_bytes: u64,
    /// Present only for the whole repository: size of every pack object.
    pub repository_bytes: Option<u64>,
    pub oldest: Option<String>,
    pub newest: Option<String>,
}

impl Stats {
    /// logical / unique (>= 1 when snapshots share data).
    pub fn dedup_ratio(&self) -> f64 {
        ratio(self.logical_bytes, self.unique_bytes)
    }

    /// unique / stored.
    pub fn compression_ratio(&self) -> f64 {
        ratio(self.unique_bytes, self.stored_bytes)
    }

    /// 1 - stored / logical: the share of the logical bytes the repository does not store.
    pub fn space_saving(&self) -> f64 {
        if self.logical_bytes == 0 {
            0.0
        } else {
            1.0 - self.stored_bytes as f64 / self.logical_bytes as f64
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

/// Stats of a set of snapshots.
pub fn compute(
    repo: &Repository,
    manifests: &[SnapshotManifest],
    whole_repository: bool,
) -> Result<Stats> {
    repo.refresh_index()?;
    compute_indexed(repo, manifests, whole_repository)
}

/// The whole repository's stats and every graph's, from one listing of the index and of the
/// snapshots (not one per graph: a server's first `/backup/stats` over 100 graphs lists the
/// store twice, not 400 times). Graphs named in `also` are there even without snapshots.
pub fn compute_per_graph(
    repo: &Repository,
    also: &[String],
) -> Result<(Stats, BTreeMap<String, Stats>)> {
    repo.refresh_index()?;
    let manifests = repo.all_snapshots()?;
    let mut by_graph: BTreeMap<String, Vec<&SnapshotManifest>> = BTreeMap::new();
    for manifest in &manifests {
        by_graph
            .entry(manifest.graph_id.clone())
            .or_default()
            .push(manifest);
    }
    for graph in also {
        by_graph.entry(graph.clone()).or_default();
    }
    let graphs = by_graph
        .into_iter()
        .map(|(graph, manifests)| (graph, tally(repo, manifests.into_iter())))
        .collect();
    Ok((compute_indexed(repo, &manifests, true)?, graphs))
}

/// [`compute`] with the index as it is.
fn compute_indexed(
    repo: &Repository,
    manifests: &[SnapshotManifest],
    whole_repository: bool,
) -> Result<Stats> {
    let mut stats = tally(repo, manifests.iter());
    if whole_repository {
        stats.repository_bytes = Some(
            repo.backend()
                .list_blocking(crate::format::paths::DATA)?
                .iter()
                .map(|(_, size)| size)
                .sum(),
        );
    }
    Ok(stats)
}

fn tally<'a>(
    repo: &Repository,
    manifests: impl ExactSizeIterator<Item = &'a SnapshotManifest>,
) -> Stats {
    let mut stats = Stats {
        snapshot_count: manifests.len(),
        ..Default::default()
    };
    let mut seen: HashSet<ObjectId> = HashSet::new();
    for manifest in manifests {
        stats.file_count += manifest.files.len();
        stats.logical_bytes += manifest.logical_size;
        for chunk in manifest.files.iter().flat_map(|f| &f.chunks) {
            if seen.insert(chunk.id) {
                stats.unique_chunks += 1;
                stats.unique_bytes += chunk.length as u64;
                if let Some(location) = repo.locate(&chunk.id) {
                    stats.stored_bytes += location.entry.length as u64;
                }
            }
        }
        if stats.oldest.as_ref().is_none_or(|t| &manifest.time < t) {
            stats.oldest = Some(manifest.time.clone());
        }
        if stats.newest.as_ref().is_none_or(|t| &manifest.time > t) {
            stats.newest = Some(manifest.time.clone());
        }
    }
    stats
}
