//! Recovery points: one snapshot per graph, taken together, kept in the repository
//! (`recovery/<id>/point`, see [`crate::format::recovery`]) so that a new machine that knows
//! only the repository lists and uses them.
//!
//! A point is written after every snapshot it names is committed, and checked again once
//! written: a snapshot forgotten meanwhile (a retention run racing the point) makes the point
//! withdraw itself and fail, so no point ever names a missing snapshot. From then on the
//! snapshots it names are protected: retention keeps them ([`crate::retention::forget`]
//! re-checks after its deletions and puts back any a point written meanwhile names), safety
//! snapshot expiry skips them, and deleting one is refused ([`delete_snapshot`]) until the
//! point is deleted. A snapshot a push re-issued as `diverged` keeps its protection through
//! the original id it records.

use crate::error::{Error, Result};
use crate::format::codec::TRANSPORT_NAME;
use crate::format::{
    self, paths, PointSnapshot, RecoveryPoint, SnapshotManifest, ValidationRecord,
};
use crate::repository::{hostname, Repository};
use crate::runtime::block_on;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};

/// A recovery point with what its newest validation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointStatus {
    pub point: RecoveryPoint,
    /// The newest validation, if it was ever validated.
    pub validation: Option<ValidationRecord>,
}

impl PointStatus {
    /// Whether its newest validation found every graph healthy.
    pub fn validated(&self) -> bool {
        self.validation.as_ref().is_some_and(|v| v.validated)
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Take a recovery point naming, for each graph, the snapshot `snapshots` gives (an id, a
/// unique prefix, or `latest`). The snapshots must be committed already.
///
/// # Errors
/// `InvalidInput` for no graphs or metadata that is not a JSON object; `SnapshotNotFound` for a
/// snapshot the repository lacks; `Conflict` (retryable) when one was forgotten while the
/// point was written (the point is withdrawn).
pub fn create_point(
    repo: &Repository,
    snapshots: &BTreeMap<String, String>,
    description: Option<String>,
    created_by: Option<String>,
    metadata_json: &str,
) -> Result<RecoveryPoint> {
    if snapshots.is_empty() {
        return Err(Error::invalid("a recovery point needs at least one graph"));
    }
    match serde_json::from_str::<serde_json::Value>(metadata_json) {
        Ok(serde_json::Value::Object(_)) => {}
        _ => {
            return Err(Error::invalid(
                "recovery point metadata must be a JSON object",
            ))
        }
    }
    let mut graphs = BTreeMap::new();
    for (graph_id, snapshot_ref) in snapshots {
        let manifest = repo.load_snapshot(graph_id, snapshot_ref)?;
        graphs.insert(
            graph_id.clone(),
            PointSnapshot {
                snapshot_id: manifest.snapshot_id,
                data_hash: manifest.data_hash,
                time: manifest.time,
            },
        );
    }
    let point = RecoveryPoint {
        checkpoint_id: uuid::Uuid::new_v4().to_string(),
        timestamp: now_rfc3339(),
        hostname: hostname(),
        description,
        created_by,
        graphs,
        metadata_json: metadata_json.to_string(),
    };
    write_point(repo, &point)?;
    // A retention run that listed the points before this one existed may have forgotten a
    // snapshot since it was loaded: withdraw the point rather than name a missing snapshot.
    for (graph_id, named) in &point.graphs {
        if resolve(repo, graph_id, named)?.is_none() {
            block_on(
                repo.backend()
                    .delete(&paths::recovery_point(&point.checkpoint_id)),
            )?;
            return Err(Error::Conflict {
                message: format!(
                    "snapshot {} of graph {graph_id:?} was forgotten while the recovery point was written; the point was withdrawn, take it again",
                    named.snapshot_id
                ),
            });
        }
    }
    Ok(point)
}

/// Store a recovery point as it is (create-only): a new one, or one a replication brought.
///
/// # Errors
/// `InvalidInput` for a bad id or one that already exists; `Backend` when the store fails.
pub fn write_point(repo: &Repository, point: &RecoveryPoint) -> Result<()> {
    validate_checkpoint_id(&point.checkpoint_id)?;
    for graph_id in point.graphs.keys() {
        crate::repository::validate_graph_id(graph_id)?;
    }
    let path = paths::recovery_point(&point.checkpoint_id);
    let bytes = repo
        .codec()
        .encode_object(format::recovery::MAGIC, path.as_ref(), point)?;
    match block_on(repo.backend().put_create(&path, Bytes::from(bytes)))? {
        crate::backend::Created::New => Ok(()),
        crate::backend::Created::AlreadyExisted => Err(Error::invalid(format!(
            "recovery point {} already exists",
            point.checkpoint_id
        ))),
    }
}

/// Check a full recovery point id: a UUID, lower-case and hyphenated.
///
/// # Errors
/// `InvalidInput` otherwise.
pub fn validate_checkpoint_id(checkpoint_id: &str) -> Result<()> {
    match uuid::Uuid::parse_str(checkpoint_id) {
        Ok(id) if id.hyphenated().to_string() == checkpoint_id => Ok(()),
        _ => Err(Error::invalid(format!(
            "recovery point id {:?} is not a UUID",
            checkpoint_id.chars().take(80).collect::<String>()
        ))),
    }
}

/// Every recovery point with its newest validation, newest first. A damaged point is left
/// out (and logged), never fatal to the others: [`scan_points`] names it, repair sets it aside.
///
/// # Errors
/// `Backend` when the store fails.
pub fn list_points(repo: &Repository) -> Result<Vec<PointStatus>> {
    Ok(scan_points(repo)?.0)
}

/// The recovery points whose object cannot be read, by path, with why.
///
/// # Errors
/// `Backend` when the store fails.
pub fn unreadable_points(repo: &Repository) -> Result<Vec<(String, String)>> {
    Ok(scan_points(repo)?.1)
}

/// Every readable recovery point (newest first, with its newest validation) and every
/// unreadable one (path, why).
pub type PointScan = (Vec<PointStatus>, Vec<(String, String)>);

/// Every readable recovery point (newest first, with its newest validation) and every
/// unreadable one (path, why), from one listing.
///
/// # Errors
/// `Backend` when the store fails.
pub fn scan_points(repo: &Repository) -> Result<PointScan> {
    let listed = block_on(repo.backend().list(&paths::recovery(None)))?;
    let mut points: Vec<String> = Vec::new();
    let mut validations: HashMap<String, String> = HashMap::new();
    for (path, _) in listed {
        let parts: Vec<&str> = path.as_ref().split('/').collect();
        match parts[..] {
            [_, id, "point"] => points.push(id.to_string()),
            [_, id, "validations", version] => {
                let newest = validations.entry(id.to_string()).or_default();
                if version > newest.as_str() {
                    *newest = version.to_string();
                }
            }
            _ => {}
        }
    }
    if let Some(cache) = repo.object_cache() {
        cache.forget_points_but(&points.iter().cloned().collect());
    }
    let mut out = Vec::with_capacity(points.len());
    let mut unreadable = Vec::new();
    for id in points {
        let point = match read_listed_point(repo, &id) {
            Ok(Some(point)) => point,
            Ok(None) => continue, // deleted while we listed
            Err(error) if error.is_damage() => {
                log::warn!("recovery point {id} is unreadable and left out: {error}");
                unreadable.push((paths::recovery_point(&id).to_string(), error.detail()));
                continue;
            }
            Err(error) => return Err(error),
        };
        let validation = match validations.get(&id) {
            Some(version) => match read_validation(repo, &id, version) {
                Err(error) if error.is_damage() => {
                    log::warn!("a validation of recovery point {id} is unreadable: {error}");
                    None
                }
                other => other?,
            },
            None => None,
        };
        out.push(PointStatus { point, validation });
    }
    out.sort_by(|a, b| {
        (&b.point.timestamp, &b.point.checkpoint_id)
            .cmp(&(&a.point.timestamp, &a.point.checkpoint_id))
    });
    Ok((out, unreadable))
}

/// A recovery point a listing just showed: from this host's cache when it holds it whole (and
/// it decodes), else as [`read_point`], then kept there.
fn read_listed_point(repo: &Repository, checkpoint_id: &str) -> Result<Option<RecoveryPoint>> {
    let Some(cache) = repo.object_cache() else {
        return read_point(repo, checkpoint_id);
    };
    if let Some(bytes) = cache.point(checkpoint_id) {
        match decode_point(repo, checkpoint_id, &bytes) {
            Ok(point) => return Ok(Some(point)),
            Err(error) if error.is_damage() => cache.forget_point(checkpoint_id),
            Err(error) => return Err(error),
        }
    }
    let path = paths::recovery_point(checkpoint_id);
    let Some(bytes) = block_on(repo.backend().get_bounded(&path))? else {
        return Ok(None);
    };
    let point = decode_point(repo, checkpoint_id, &bytes)?;
    cache.keep_point(checkpoint_id, &bytes);
    Ok(Some(point))
}

fn read_point(repo: &Repository, checkpoint_id: &str) -> Result<Option<RecoveryPoint>> {
    let path = paths::recovery_point(checkpoint_id);
    let Some(bytes) = block_on(repo.backend().get_bounded(&path))? else {
        return Ok(None);
    };
    decode_point(repo, checkpoint_id, &bytes).map(Some)
}

fn decode_point(repo: &Repository, checkpoint_id: &str, bytes: &[u8]) -> Result<RecoveryPoint> {
    let path = paths::recovery_point(checkpoint_id);
    let point: RecoveryPoint =
        repo.codec()
            .decode_object(format::recovery::MAGIC, path.as_ref(), bytes, path.as_ref())?;
    if point.checkpoint_id != checkpoint_id {
        return Err(Error::integrity(format!(
            "recovery point {path} names another point ({})",
            point.checkpoint_id
        )));
    }
    Ok(point)
}

/// A listed validation of a recovery point (from this host's cache when it holds it whole).
fn read_validation(
    repo: &Repository,
    checkpoint_id: &str,
    version: &str,
) -> Result<Option<ValidationRecord>> {
    let path = paths::recovery_validation(checkpoint_id, version);
    let decode = |bytes: &[u8]| -> Result<ValidationRecord> {
        repo.codec().decode_object(
            format::recovery::VALIDATION_MAGIC,
            path.as_ref(),
            bytes,
            path.as_ref(),
        )
    };
    let cache = repo.object_cache();
    if let Some(bytes) = cache.and_then(|c| c.validation(checkpoint_id, version)) {
        if let Ok(record) = decode(&bytes) {
            return Ok(Some(record));
        }
    }
    match block_on(repo.backend().get_bounded(&path))? {
        Some(bytes) => {
            let record = decode(&bytes)?;
            if let Some(cache) = cache {
                cache.keep_validation(checkpoint_id, version, &bytes);
            }
            Ok(Some(record))
        }
        None => Ok(None),
    }
}

/// One recovery point by id, unique id prefix, or `latest` (the newest).
///
/// # Errors
/// `RecoveryPointNotFound` for an unknown id; `InvalidInput` for an ambiguous prefix.
pub fn load_point(repo: &Repository, checkpoint_ref: &str) -> Result<PointStatus> {
    let points = list_points(repo)?;
    let wanted = checkpoint_ref.trim().to_ascii_lowercase();
    let not_found = |hint: &str| Error::RecoveryPointNotFound {
        checkpoint_id: crate::repository::shown(checkpoint_ref),
        hint: hint.to_string(),
    };
    if wanted == crate::repository::LATEST {
        return points
            .into_iter()
            .next()
            .ok_or_else(|| not_found(" (the repository has no recovery point)"));
    }
    if wanted.is_empty() || !wanted.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(not_found(
            " (a recovery point id is a UUID, a unique prefix of one, or `latest`)",
        ));
    }
    let mut matching: Vec<PointStatus> = points
        .into_iter()
        .filter(|p| p.point.checkpoint_id.starts_with(&wanted))
        .collect();
    match matching.len() {
        0 => Err(not_found("")),
        1 => Ok(matching.remove(0)),
        count => Err(Error::invalid(format!(
            "recovery point id prefix {checkpoint_ref:?} is ambiguous: it matches {count} points: {}",
            matching
                .iter()
                .take(10)
                .map(|p| p.point.checkpoint_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Delete a recovery point (and its validations): the snapshots it named are no longer
/// protected by it. Returns its full id.
///
/// # Errors
/// As [`load_point`]; `Backend` when the store fails.
pub fn delete_point(repo: &Repository, checkpoint_ref: &str) -> Result<String> {
    let backend = repo.backend();
    let id = match load_point(repo, checkpoint_ref) {
        Ok(status) => status.point.checkpoint_id,
        // An unreadable point (left out of every listing) is deleted by its full id: the way
        // out of the damage.
        Err(Error::RecoveryPointNotFound { .. })
            if validate_checkpoint_id(checkpoint_ref).is_ok()
                && block_on(backend.get_bounded(&paths::recovery_point(checkpoint_ref)))?
                    .is_some() =>
        {
            checkpoint_ref.to_string()
        }
        Err(error) => return Err(error),
    };
    // The point first: once it is gone nothing is protected by it, whatever else remains.
    block_on(backend.delete(&paths::recovery_point(&id)))?;
    for (path, _) in block_on(backend.list(&paths::recovery(Some(&id))))? {
        let _ = block_on(backend.delete(&path)); // a leftover record is ignored without its point
    }
    Ok(id)
}

/// Record what a validation of a point found (create-only; the newest record counts).
///
/// # Errors
/// As [`load_point`]; `InvalidInput` when `results_json` is not a JSON object.
pub fn record_validation(
    repo: &Repository,
    checkpoint_ref: &str,
    validated: bool,
    results_json: &str,
) -> Result<ValidationRecord> {
    match serde_json::from_str::<serde_json::Value>(results_json) {
        Ok(serde_json::Value::Object(_)) => {}
        _ => return Err(Error::invalid("validation results must be a JSON object")),
    }
    let id = load_point(repo, checkpoint_ref)?.point.checkpoint_id;
    let record = ValidationRecord {
        checkpoint_id: id.clone(),
        validated_at: now_rfc3339(),
        hostname: hostname(),
        validated,
        results_json: results_json.to_string(),
    };
    let version = format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"),
        uuid::Uuid::new_v4().simple()
    );
    let path = paths::recovery_validation(&id, &version);
    let bytes =
        repo.codec()
            .encode_object(format::recovery::VALIDATION_MAGIC, path.as_ref(), &record)?;
    block_on(repo.backend().put_create(&path, Bytes::from(bytes)))?;
    Ok(record)
}

/// The id a snapshot had before a push re-issued it as `diverged`, if it was.
pub fn original_snapshot_id(manifest: &SnapshotManifest) -> Option<String> {
    let metadata: serde_json::Value = serde_json::from_str(&manifest.metadata_json).ok()?;
    metadata
        .get("diverged")?
        .get("original_snapshot_id")?
        .as_str()
        .map(str::to_string)
}

/// Which recovery points protect which snapshots: (graph id, snapshot id) -> point ids.
#[derive(Debug, Clone, Default)]
pub struct Protection {
    named: HashMap<(String, String), Vec<String>>,
    /// Points that cannot be read, by path: what they protect is unknown.
    unreadable: Vec<String>,
}

impl Protection {
    /// Read every recovery point of the repository.
    ///
    /// # Errors
    /// As [`list_points`].
    pub fn load(repo: &Repository) -> Result<Self> {
        let mut named: HashMap<(String, String), Vec<String>> = HashMap::new();
        let (points, unreadable) = scan_points(repo)?;
        for status in points {
            for (graph_id, snapshot) in &status.point.graphs {
                named
                    .entry((graph_id.clone(), snapshot.snapshot_id.clone()))
                    .or_default()
                    .push(status.point.checkpoint_id.clone());
            }
        }
        let unreadable = unreadable.into_iter().map(|(path, _)| path).collect();
        Ok(Protection { named, unreadable })
    }

    /// Refuse to forget snapshots while a recovery point cannot be read: it may name any of
    /// them. `what` says what was refused ("retention").
    ///
    /// # Errors
    /// `Integrity` naming the point and the way out (delete it, or repair).
    pub fn check_readable(&self, what: &str) -> Result<()> {
        match self.unreadable.first() {
            None => Ok(()),
            Some(path) => Err(Error::integrity(format!(
                "{what} forgot nothing: recovery point {path} cannot be read, so which snapshots it protects is unknown. Delete it (`lightrag-backup recovery delete ID` with its full id) or run `lightrag-backup repair`, which sets it aside"
            ))),
        }
    }

    /// Whether every recovery point could be read.
    pub fn all_readable(&self) -> bool {
        self.unreadable.is_empty()
    }

    /// The points that name this snapshot (by its id, or the id it had before it was
    /// re-issued as `diverged`); empty when none does.
    pub fn points_naming(&self, manifest: &SnapshotManifest) -> Vec<String> {
        let mut points = Vec::new();
        let graph = &manifest.graph_id;
        for id in
            std::iter::once(manifest.snapshot_id.clone()).chain(original_snapshot_id(manifest))
        {
            if let Some(found) = self.named.get(&(graph.clone(), id)) {
                points.extend(found.iter().cloned());
            }
        }
        points
    }
}

/// The snapshot a point names for a graph: by its id, or (when a push re-issued it as
/// `diverged`) the snapshot that records it as its original id. `None` when neither exists.
///
/// # Errors
/// `Backend` when the store fails.
pub fn resolve(
    repo: &Repository,
    graph_id: &str,
    named: &PointSnapshot,
) -> Result<Option<SnapshotManifest>> {
    match repo.load_snapshot(graph_id, &named.snapshot_id) {
        Ok(manifest) if manifest.snapshot_id == named.snapshot_id => return Ok(Some(manifest)),
        Ok(_) | Err(Error::SnapshotNotFound { .. }) => {}
        Err(other) => return Err(other),
    }
    Ok(repo.list_snapshots(graph_id)?.into_iter().find(|m| {
        m.data_hash == named.data_hash
            && original_snapshot_id(m).as_deref() == Some(named.snapshot_id.as_str())
    }))
}

/// Forget a snapshot unless a recovery point names it.
///
/// # Errors
/// `SnapshotProtected` naming the points; as [`Repository::delete_snapshot`] otherwise.
pub fn delete_snapshot(repo: &Repository, graph_id: &str, snapshot_ref: &str) -> Result<String> {
    let snapshot_id = repo.resolve_snapshot_id(graph_id, snapshot_ref)?;
    let protection = Protection::load(repo)?;
    let points = match repo.load_snapshot(graph_id, &snapshot_id) {
        Ok(manifest) => protection.points_naming(&manifest),
        // An unreadable manifest can still be deleted (the way out of the damage); only a
        // point naming its id keeps it.
        Err(error) if error.is_damage() => protection
            .named
            .get(&(graph_id.to_string(), snapshot_id.clone()))
            .cloned()
            .unwrap_or_default(),
        Err(error) => return Err(error),
    };
    if !points.is_empty() {
        return Err(Error::SnapshotProtected {
            graph_id: graph_id.to_string(),
            snapshot_id,
            points: points.join(", "),
        });
    }
    repo.delete_snapshot(graph_id, &snapshot_id)
}

/// Copy to `target` the recovery points of `source` that name `graph_id` and that `target`
/// lacks, each once every snapshot it names is there (see [`receive_point`]). Returns the ids
/// stored.
///
/// # Errors
/// `Backend` when either store fails.
pub fn copy_points(
    source: &Repository,
    target: &Repository,
    graph_id: &str,
) -> Result<Vec<String>> {
    let have: std::collections::HashSet<String> = point_ids(target)?.into_iter().collect();
    let mut stored = Vec::new();
    for point in points_of_graph(source, graph_id)? {
        if have.contains(&point.checkpoint_id) {
            continue;
        }
        let received = receive_point(target, &encode_point(source, &point)?)?;
        if received.status == "stored" {
            stored.push(received.checkpoint_id);
        }
    }
    Ok(stored)
}

/// A recovery point as bytes for a replication target (the repository encoding).
///
/// # Errors
/// `Integrity` when it cannot be encoded.
pub fn encode_point(repo: &Repository, point: &RecoveryPoint) -> Result<Vec<u8>> {
    repo.codec()
        .encode_object(format::recovery::MAGIC, TRANSPORT_NAME, point)
}

/// What became of a recovery point a replication brought.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Received {
    pub checkpoint_id: String,
    /// `stored`, `present` (it was here already) or `waiting` (some of its snapshots are not
    /// here yet: the push of their graph sends the point again).
    pub status: String,
    /// The snapshots still missing, as `graph/snapshot`, when waiting.
    pub missing: Vec<String>,
}

/// Store a recovery point a replication brought (see [`encode_point`]) once every snapshot
/// it names is here: a point is written after its snapshots, on the target too.
///
/// # Errors
/// `Integrity` for bytes that are not a point; `InvalidInput` for bad ids.
pub fn receive_point(repo: &Repository, encoded: &[u8]) -> Result<Received> {
    let point: RecoveryPoint = repo.codec().decode_object(
        format::recovery::MAGIC,
        TRANSPORT_NAME,
        encoded,
        "recovery point",
    )?;
    validate_checkpoint_id(&point.checkpoint_id)?;
    let mut received = Received {
        checkpoint_id: point.checkpoint_id.clone(),
        status: "present".into(),
        missing: Vec::new(),
    };
    if read_point(repo, &point.checkpoint_id)?.is_some() {
        return Ok(received);
    }
    for (graph_id, named) in &point.graphs {
        crate::repository::validate_graph_id(graph_id)?;
        if resolve(repo, graph_id, named)?.is_none() {
            received
                .missing
                .push(format!("{graph_id}/{}", named.snapshot_id));
        }
    }
    if !received.missing.is_empty() {
        received.status = "waiting".into();
        return Ok(received);
    }
    match write_point(repo, &point) {
        Ok(()) => received.status = "stored".into(),
        // Another push of the same point won the race.
        Err(Error::InvalidInput { .. }) if read_point(repo, &point.checkpoint_id)?.is_some() => {}
        Err(other) => return Err(other),
    }
    Ok(received)
}

/// The ids of every recovery point here (what a replication source asks for).
///
/// # Errors
/// `Backend` when the store fails.
pub fn point_ids(repo: &Repository) -> Result<Vec<String>> {
    let listed = block_on(repo.backend().list(&paths::recovery(None)))?;
    Ok(listed
        .into_iter()
        .filter_map(|(path, _)| {
            let parts: Vec<&str> = path.as_ref().split('/').collect();
            match parts[..] {
                [_, id, "point"] => Some(id.to_string()),
                _ => None,
            }
        })
        .collect())
}

/// The points of `source` that name `graph_id` and are not among `present`: what a push of
/// that graph offers the target after its snapshots.
///
/// # Errors
/// As [`list_points`].
pub fn points_of_graph(source: &Repository, graph_id: &str) -> Result<Vec<RecoveryPoint>> {
    Ok(list_points(source)?
        .into_iter()
        .map(|s| s.point)
        .filter(|p| p.graphs.contains_key(graph_id))
        .collect())
}
