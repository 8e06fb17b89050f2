//! `damaged/<uuid>`: packs a verify (or a repair) found damaged: missing, shorter than the
//! index says, or holding chunks that do not match their ids. From then on no snapshot
//! deduplicates against them: the next backup of healthy source data stores those chunks again
//! and so heals every snapshot that needs them. Written create-only, never changed.

use super::ObjectId;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DamageRecord {
    /// When the damage was found (RFC 3339, UTC).
    pub found_at: String,
    pub hostname: String,
    pub packs: Vec<ObjectId>,
    /// What was wrong, in words (one line per finding).
    pub findings: Vec<String>,
}

pub(crate) const MAGIC: &[u8; 4] = b"LRBD";
