//! `recovery/<checkpoint id>/point`: a recovery point, one snapshot per graph taken together,
//! so that a new machine that knows only the repository can list and use it.
//! `recovery/<checkpoint id>/validations/<time>-<uuid>`: what each validation of it found.
//!
//! Both are written create-only and never changed: a point is written after every snapshot it
//! names is committed, and a validation adds a record instead of rewriting the point.

use super::ObjectId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The snapshot a recovery point names for one graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointSnapshot {
    pub snapshot_id: String,
    /// The snapshot's content hash, so a copy re-issued under another id is still recognised.
    pub data_hash: ObjectId,
    /// The snapshot's time (RFC 3339, UTC).
    pub time: String,
}

/// A recovery point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryPoint {
    /// A random UUID (v4), so a short prefix identifies it, as snapshot ids do.
    pub checkpoint_id: String,
    /// When it was taken (RFC 3339, UTC).
    pub timestamp: String,
    pub hostname: String,
    pub description: Option<String>,
    pub created_by: Option<String>,
    /// Graph id -> its snapshot.
    pub graphs: BTreeMap<String, PointSnapshot>,
    /// Free-form JSON object (the pause the capture took, how each graph was captured).
    pub metadata_json: String,
}

/// One validation of a recovery point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationRecord {
    pub checkpoint_id: String,
    /// When it was validated (RFC 3339, UTC).
    pub validated_at: String,
    pub hostname: String,
    /// Whether every graph of the point was found healthy.
    pub validated: bool,
    /// What was found, per graph (JSON object).
    pub results_json: String,
}

pub(crate) const MAGIC: &[u8; 4] = b"LRBP";
pub(crate) const VALIDATION_MAGIC: &[u8; 4] = b"LRBV";
