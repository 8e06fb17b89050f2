//! Where each kind of object lives in a repository: the one place that names the layout.
//!
//! ```text
//! config                               the repository's RepoConfig
//! data/<2 hex>/<64 hex pack id>        packs
//! index/<64 hex>                       index files
//! snapshots/<graph id>/<snapshot id>   snapshot manifests
//! prune/<uuid>                         prune markers (packs about to be deleted)
//! locks/<name>                         advisory locks (only one prune at a time)
//! damaged/<uuid>                       damage records (packs no snapshot may reuse)
//! recovery/<id>/point                  recovery points
//! recovery/<id>/validations/<version>  what each validation of a point found
//! replication/<name>                   replication state (reserved for replication)
//! settings/<kind>/<name>/<version>     settings (schedules, ...), newest version wins
//! quarantine/<path>                    unreadable objects repair set aside (never read)
//! graphs/<graph id>/source             the folder a graph id was first snapshotted from
//! graphs/<graph id>/key                the graph's own key, when it has one (graph_keys.rs)
//! graphs/<graph id>/shredded           the record of a shredded graph (graph_keys.rs)
//! keys/<id>                            key objects (the master key wrapped by a password)
//! ```

use super::ObjectId;
use object_store::path::Path;

/// The repository's config object.
pub const CONFIG: &str = "config";
/// The folder of packs.
pub const DATA: &str = "data";
/// The folder of index files.
pub const INDEX: &str = "index";
/// The folder of snapshot manifests, one subfolder per graph.
pub const SNAPSHOTS: &str = "snapshots";
/// The folder of prune markers.
pub const PRUNE: &str = "prune";
/// The folder of advisory locks.
pub const LOCKS: &str = "locks";
/// The folder of damage records.
pub const DAMAGED: &str = "damaged";
/// The folder of recovery points.
pub const RECOVERY: &str = "recovery";
/// The folder of graph claims (`graphs/<graph id>/source`: the folder a graph id's first
/// snapshot came from, written create-only).
pub const GRAPHS: &str = "graphs";
/// Where repair sets unreadable objects aside (`quarantine/<their path>`): kept for a
/// post-mortem, never read by any operation.
pub const QUARANTINE: &str = "quarantine";
/// The folder of key objects of an encrypted repository.
pub const KEYS: &str = "keys";

/// The path of a key object.
pub fn key(id: &str) -> Path {
    Path::from(format!("{KEYS}/{id}"))
}

/// The folder of replication state.
pub const REPLICATION: &str = "replication";

/// The path of the config object.
pub fn config() -> Path {
    Path::from(CONFIG)
}

/// The path of a pack.
pub fn pack(id: &ObjectId) -> Path {
    let hex = id.to_hex();
    Path::from(format!("{DATA}/{}/{hex}", &hex[..2]))
}

/// The path of an index file (named by the SHA-256 of its bytes).
pub fn index(id: &ObjectId) -> Path {
    Path::from(format!("{INDEX}/{}", id.to_hex()))
}

/// The claim of a graph id (see [`GRAPHS`]).
pub fn graph_claim(graph_id: &str) -> Path {
    Path::from(format!("{GRAPHS}/{graph_id}/source"))
}

/// The folder of one graph's snapshots, or of every graph's.
pub fn snapshots(graph_id: Option<&str>) -> String {
    match graph_id {
        Some(graph) => format!("{SNAPSHOTS}/{graph}"),
        None => SNAPSHOTS.to_string(),
    }
}

/// The path of a snapshot manifest.
pub fn snapshot(graph_id: &str, snapshot_id: &str) -> Path {
    Path::from(format!("{SNAPSHOTS}/{graph_id}/{snapshot_id}"))
}

/// The path of a new prune marker.
pub fn prune_marker(id: &uuid::Uuid) -> Path {
    Path::from(format!("{PRUNE}/{id}"))
}

/// The path of a new damage record.
pub fn damage_record(id: &uuid::Uuid) -> Path {
    Path::from(format!("{DAMAGED}/{id}"))
}

/// The path of an advisory lock.
pub fn lock(name: &str) -> Path {
    Path::from(format!("{LOCKS}/{name}"))
}

/// The folder of settings: small JSON documents that are configuration, not data (schedules,
/// replication targets without their secrets, recovery settings), so that a new machine that
/// knows only the repository gets them back.
pub const SETTINGS: &str = "settings";

/// The folder of one kind of setting, or of one setting's versions.
pub fn settings(kind: &str, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{SETTINGS}/{kind}/{name}"),
        None => format!("{SETTINGS}/{kind}"),
    }
}

/// One version of a setting (`version` sorts by time: newest last).
pub fn setting(kind: &str, name: &str, version: &str) -> Path {
    Path::from(format!("{SETTINGS}/{kind}/{name}/{version}"))
}

/// The folder of recovery points, or of one point (its object and its validations).
pub fn recovery(checkpoint_id: Option<&str>) -> String {
    match checkpoint_id {
        Some(id) => format!("{RECOVERY}/{id}"),
        None => RECOVERY.to_string(),
    }
}

/// The path of a recovery point.
pub fn recovery_point(checkpoint_id: &str) -> Path {
    Path::from(format!("{RECOVERY}/{checkpoint_id}/point"))
}

/// The path of one validation record of a recovery point (`version` sorts by time).
pub fn recovery_validation(checkpoint_id: &str, version: &str) -> Path {
    Path::from(format!("{RECOVERY}/{checkpoint_id}/validations/{version}"))
}
