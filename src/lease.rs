//! The failover lease: which instance is the primary, arbitrated by an object store.
//!
//! A lease is a chain of **slots** under `<location>/<name>/slots/`, each a small JSON record
//! (holder, epoch, TTL) written create-only. Whoever read slot `n` as the newest may write slot
//! `n + 1`; the store lets exactly one writer create it, so every change of the lease (a
//! renewal, a takeover, a release, a handover) is a compare-and-swap on "the newest slot is
//! `n`", on every backend: create-if-absent is the one conditional write that S3, Azure, GCS
//! and a local folder all have (a local folder has no update-if-unchanged). One algorithm,
//! proven by one conformance suite on each.
//!
//! Old slots are deleted (the newest [`KEEP_SLOTS`] stay), so a writer whose request was
//! delayed past many renewals could re-create a deleted slot. That write is never the newest
//! slot: every writer lists the slots after its create and has won only when its slot is the
//! newest one; readers take the newest slot. A create whose answer was lost and that the client
//! retried finds "already exists": the record's nonce tells whether it was this writer's.
//!
//! The time rules (who may take an expired lease, when a primary demotes itself) are the
//! caller's: this module only reads and swaps. The record's `expires_at` is the writer's clock
//! and only informs; a standby judges expiry by how long it has seen the same slot.

use crate::backend::{Backend, Created};
use crate::error::{BackendFailure, Error, Result};
use object_store::path::Path;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What a lease record says it is.
pub const LEASE_FORMAT: &str = "lightrag-backup-lease";
/// The version of the record layout this build writes and reads.
pub const LEASE_VERSION: u32 = 1;
/// How many of the newest slots are kept; older ones are deleted by the writer that won.
pub const KEEP_SLOTS: u64 = 8;

/// The state a holder leaves the lease in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseState {
    /// The holder is the primary until the TTL runs out without a renewal.
    Held,
    /// The holder gave it up (a clean stop or a switchover): another instance may take it at
    /// once, the one named by `handover_to` if set.
    Released,
}

/// Decode a lease slot's record (`what` names it in errors).
///
/// # Errors
/// `Integrity` for bytes that are not a lease record this build reads.
pub fn decode_record(bytes: &[u8], what: &str) -> Result<LeaseRecord> {
    let record: LeaseRecord = serde_json::from_slice(bytes)
        .map_err(|e| Error::integrity(format!("lease record {what} cannot be read: {e}")))?;
    if record.format != LEASE_FORMAT || record.version > LEASE_VERSION {
        return Err(Error::integrity(format!(
            "lease record {what} is {} version {}: this build reads {LEASE_FORMAT} up to version {LEASE_VERSION}",
            record.format, record.version
        )));
    }
    Ok(record)
}

/// One slot of the lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub format: String,
    pub version: u32,
    /// The lease's name (one per deployment or per graph group).
    pub name: String,
    /// This record's position in the chain.
    pub slot: u64,
    /// The instance that wrote it, and where it answers.
    pub holder: String,
    pub holder_url: Option<String>,
    /// The fencing epoch of the holder as primary: grows by one on every takeover.
    pub epoch: u64,
    pub ttl_ms: u64,
    pub state: LeaseState,
    /// A switchover's candidate: only it may take a released lease before the TTL ran out.
    pub handover_to: Option<String>,
    /// The writer's clock (RFC 3339): when written, and until when the holder means to act.
    pub written_at: String,
    pub expires_at: String,
    /// Unique per write: recognises a write whose answer was lost.
    pub nonce: String,
}

/// What a writer asks the next slot to say.
#[derive(Debug, Clone, Deserialize)]
pub struct Proposal {
    pub holder: String,
    #[serde(default)]
    pub holder_url: Option<String>,
    pub epoch: u64,
    pub ttl_ms: u64,
    pub state: LeaseState,
    #[serde(default)]
    pub handover_to: Option<String>,
}

/// The outcome of [`LeaseStore::write`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum WriteOutcome {
    /// The record is the newest slot now.
    Won { record: LeaseRecord },
    /// Another writer got there first: `current` is the newest slot seen afterwards.
    Lost { current: Option<LeaseRecord> },
}

/// A lease location: an object store (any backend) and a lease name.
#[derive(Debug, Clone)]
pub struct LeaseStore {
    backend: Backend,
    name: String,
    /// The longest any one read or swap may take: a lease decision on a stale answer is worse
    /// than no decision.
    timeout: Duration,
}

fn check_name(name: &str) -> Result<()> {
    check_label("lease name", name)
}

fn check_label(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{what} {name:?}: use 1-64 letters, digits, '-', '_' or '.' (not starting with '.')"
        )))
    }
}

impl LeaseStore {
    /// # Errors
    /// `InvalidInput` for a bad name or a zero timeout.
    pub fn new(backend: Backend, name: &str, timeout: Duration) -> Result<Self> {
        check_name(name)?;
        if timeout.is_zero() {
            return Err(Error::invalid("the lease timeout must be above zero"));
        }
        Ok(LeaseStore {
            backend,
            name: name.to_string(),
            timeout,
        })
    }

    /// The store the slots live in.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    pub fn location(&self) -> String {
        format!(
            "{}/{}",
            self.backend.location().trim_end_matches('/'),
            self.name
        )
    }

    fn prefix(&self) -> String {
        format!("{}/slots", self.name)
    }

    fn slot_path(&self, slot: u64) -> Path {
        Path::from(format!("{}/{slot:020}", self.prefix()))
    }

    async fn bounded<T>(
        &self,
        what: &'static str,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(Error::Backend {
                operation: what,
                path: self.location(),
                message: format!(
                    "no answer within {:.1} s (the lease timeout)",
                    self.timeout.as_secs_f64()
                ),
                failure: BackendFailure::Transient,
            }),
        }
    }

    /// Every slot number present, ascending.
    async fn slots(&self) -> Result<Vec<u64>> {
        let mut slots: Vec<u64> = self
            .backend
            .list(&self.prefix())
            .await?
            .into_iter()
            .filter_map(|(path, _)| path.filename().and_then(|f| f.parse().ok()))
            .collect();
        slots.sort_unstable();
        Ok(slots)
    }

    async fn read_slot(&self, slot: u64) -> Result<Option<LeaseRecord>> {
        let path = self.slot_path(slot);
        let Some(bytes) = self.backend.get_bounded(&path).await? else {
            return Ok(None);
        };
        let record = decode_record(&bytes, path.as_ref())?;
        if record.slot != slot || record.name != self.name {
            return Err(Error::integrity(format!(
                "lease record {path} says it is slot {} of lease {:?}",
                record.slot, record.name
            )));
        }
        Ok(Some(record))
    }

    async fn newest(&self) -> Result<Option<LeaseRecord>> {
        // A writer may delete old slots between the listing and the read: list again.
        for _ in 0..3 {
            let Some(&slot) = self.slots().await?.last() else {
                return Ok(None);
            };
            if let Some(record) = self.read_slot(slot).await? {
                return Ok(Some(record));
            }
        }
        Err(Error::Conflict {
            message: format!("the lease at {} kept changing while read", self.location()),
        })
    }

    fn member_path(&self, member: &str) -> Path {
        Path::from(format!("{}/members/{member}.json", self.name))
    }

    /// Publish what one instance holds (its member record, replaced each time): standbys read
    /// each other's before a takeover, so the one with the newest state takes the lease. Only
    /// a preference: the slots alone decide who holds the lease.
    ///
    /// # Errors
    /// `InvalidInput` for a bad member name or a record that is not a JSON object; `Backend`.
    pub async fn publish_member(&self, member: &str, record: &serde_json::Value) -> Result<()> {
        check_label("instance name", member)?;
        if !record.is_object() {
            return Err(Error::invalid("a member record is a JSON object"));
        }
        let body = serde_json::to_vec(record).expect("a JSON value serialises");
        let path = self.member_path(member);
        self.bounded("publish a member record", async {
            self.backend.put_overwrite(&path, body.into()).await
        })
        .await
    }

    /// Every member record (unreadable ones are skipped: a preference, never a decision).
    ///
    /// # Errors
    /// `Backend` when the listing fails or does not answer within the timeout.
    pub async fn members(&self) -> Result<Vec<serde_json::Value>> {
        self.bounded("read the member records", async {
            let mut members = Vec::new();
            for (path, _) in self.backend.list(&format!("{}/members", self.name)).await? {
                if let Ok(Some(bytes)) = self.backend.get_bounded(&path).await {
                    if let Ok(value @ serde_json::Value::Object(_)) = serde_json::from_slice(&bytes)
                    {
                        members.push(value);
                    }
                }
            }
            Ok(members)
        })
        .await
    }

    /// The newest slot, or `None` when the lease was never taken.
    ///
    /// # Errors
    /// `Backend` (transient when the store did not answer within the timeout), `Integrity` for
    /// a record this build cannot read.
    pub async fn current(&self) -> Result<Option<LeaseRecord>> {
        self.bounded("read the lease", self.newest()).await
    }

    /// Write the slot after `expected_slot` (`None`: the first slot, for a lease never taken).
    /// Won only when this write is the newest slot afterwards.
    ///
    /// # Errors
    /// `Backend` when the store fails or does not answer within the timeout: the write may
    /// still land later, so the caller must treat the lease as unknown (a later read tells).
    pub async fn write(
        &self,
        expected_slot: Option<u64>,
        proposal: Proposal,
    ) -> Result<WriteOutcome> {
        if proposal.holder.trim().is_empty() {
            return Err(Error::invalid("a lease holder needs a name"));
        }
        if proposal.ttl_ms == 0 {
            return Err(Error::invalid("a lease needs a TTL above zero"));
        }
        self.bounded("write the lease", self.swap(expected_slot, proposal))
            .await
    }

    async fn swap(&self, expected_slot: Option<u64>, proposal: Proposal) -> Result<WriteOutcome> {
        let slot = expected_slot.map_or(0, |s| s + 1);
        let now = chrono::Utc::now();
        let expires = now + chrono::Duration::milliseconds(proposal.ttl_ms as i64);
        let record = LeaseRecord {
            format: LEASE_FORMAT.to_string(),
            version: LEASE_VERSION,
            name: self.name.clone(),
            slot,
            holder: proposal.holder,
            holder_url: proposal.holder_url,
            epoch: proposal.epoch,
            ttl_ms: proposal.ttl_ms,
            state: proposal.state,
            handover_to: proposal.handover_to,
            written_at: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            expires_at: expires.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            nonce: uuid::Uuid::new_v4().simple().to_string(),
        };
        let body = serde_json::to_vec_pretty(&record).expect("a lease record serialises");
        let created = self
            .backend
            .put_create(&self.slot_path(slot), body.into())
            .await?;
        if created == Created::AlreadyExisted {
            // Someone else's, or this very write whose first answer was lost and retried.
            let theirs = self.read_slot(slot).await?;
            if theirs.as_ref().map(|r| &r.nonce) != Some(&record.nonce) {
                return Ok(WriteOutcome::Lost {
                    current: self.newest().await?,
                });
            }
        }
        let slots = self.slots().await?;
        if slots.last().is_some_and(|&newest| newest > slot) {
            // A delayed write re-created an old slot, or a takeover followed at once: not ours.
            return Ok(WriteOutcome::Lost {
                current: self.newest().await?,
            });
        }
        for old in slots.into_iter().filter(|&s| s + KEEP_SLOTS <= slot) {
            // Best effort: a slot left behind is deleted by the next winner.
            let _ = self.backend.delete(&self.slot_path(old)).await;
        }
        Ok(WriteOutcome::Won { record })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        let backend = Backend::open("memory://").unwrap();
        for bad in ["", ".hidden", "a/b", "x y", &"n".repeat(65)] {
            assert!(LeaseStore::new(backend.clone(), bad, Duration::from_secs(1)).is_err());
        }
        assert!(
            LeaseStore::new(backend.clone(), "prod-graphs_1.a", Duration::from_secs(1)).is_ok()
        );
        assert!(LeaseStore::new(backend, "x", Duration::ZERO).is_err());
    }
}
