//! `prune/<uuid>`: packs a prune found unused, waiting out the grace period before they are
//! deleted. Snapshots started after a marker exists never reuse its packs.

use super::ObjectId;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneMarker {
    /// When the packs were found unused (RFC 3339, UTC).
    pub created_at: String,
    /// Seconds to wait after `created_at` before deleting them.
    pub grace_seconds: u64,
    pub hostname: String,
    pub packs: Vec<ObjectId>,
}

pub(crate) const MAGIC: &[u8; 4] = b"LRBM";
