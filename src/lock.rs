//! The maintenance lock (`locks/prune`): one maintainer at a time rewrites the index.
//!
//! Prune and index compaction both rewrite index objects (a new one written, then the old one
//! deleted). Two of them at once could undo each other: a compaction that read an index object
//! before a prune's sweep rewrote it without a deleted pack would write the pack back. So they
//! take this lock, created create-only. Writers never take it: snapshots, copies and receives go
//! on while a maintainer runs.
//!
//! A lock whose holder died is taken over: at once when the holder was a process on this host
//! that no longer exists, else once it is older than the stale age the caller gives.

use crate::error::{Error, Result};
use crate::format::paths;
use crate::repository::{hostname, Repository};
use crate::runtime::block_on;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// The lock's object name under `locks/` (named for its first user, kept for compatibility).
const LOCK_NAME: &str = "prune";

/// What a maintainer holding the lock does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Prune,
    Compaction,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Prune => "prune",
            Purpose::Compaction => "compaction",
        }
    }
}

/// The maintenance lock, held until dropped.
pub struct Lock<'a> {
    repo: &'a Repository,
}

#[derive(Serialize, Deserialize)]
struct LockBody {
    hostname: String,
    pid: u32,
    created_at: String,
    /// "prune" or "compaction"; absent in locks written before compaction existed (a prune).
    #[serde(default)]
    purpose: Option<String>,
}

/// Who holds the lock, when it is held by a live maintainer.
struct Holder {
    body: LockBody,
}

impl Holder {
    fn is_compaction(&self) -> bool {
        self.body.purpose.as_deref() == Some(Purpose::Compaction.as_str())
    }

    fn busy(&self) -> Error {
        let what = if self.is_compaction() {
            "an index compaction"
        } else {
            "another prune"
        };
        Error::Conflict {
            message: format!(
                "{what} is running (host {}, pid {}, since {}); wait for it, or remove {} in the repository if that process is gone",
                self.body.hostname,
                self.body.pid,
                self.body.created_at,
                paths::lock(LOCK_NAME)
            ),
        }
    }
}

/// How long a prune waits for a compaction (which takes seconds) before it gives up.
const WAIT_FOR_COMPACTION: Duration = Duration::from_secs(60);

impl<'a> Lock<'a> {
    /// Take the lock for `purpose`. A prune waits for a running compaction to end (up to a
    /// minute); any other holder is a `Conflict`.
    ///
    /// # Errors
    /// `Conflict` when a live maintainer holds it; `Backend` when the store fails.
    pub fn take(repo: &'a Repository, purpose: Purpose, stale_seconds: u64) -> Result<Lock<'a>> {
        let started = Instant::now();
        loop {
            match Self::attempt(repo, purpose, stale_seconds)? {
                Ok(lock) => return Ok(lock),
                Err(holder)
                    if holder.is_compaction() && started.elapsed() < WAIT_FOR_COMPACTION =>
                {
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(holder) => return Err(holder.busy()),
            }
        }
    }

    /// Take the lock if nobody holds it, else `None` at once.
    ///
    /// # Errors
    /// `Backend` when the store fails.
    pub fn try_take(
        repo: &'a Repository,
        purpose: Purpose,
        stale_seconds: u64,
    ) -> Result<Option<Lock<'a>>> {
        match Self::attempt(repo, purpose, stale_seconds) {
            Ok(attempt) => Ok(attempt.ok()),
            Err(Error::Conflict { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The lock, or who holds it.
    fn attempt(
        repo: &'a Repository,
        purpose: Purpose,
        stale_seconds: u64,
    ) -> Result<std::result::Result<Lock<'a>, Holder>> {
        let path = paths::lock(LOCK_NAME);
        let body = serde_json::to_vec(&LockBody {
            hostname: hostname(),
            pid: std::process::id(),
            created_at: chrono::Utc::now().to_rfc3339(),
            purpose: Some(purpose.as_str().to_string()),
        })
        .expect("lock serialises");
        let body = repo.codec().seal_json(path.as_ref(), body);
        for _ in 0..2 {
            match block_on(repo.backend().put_create(&path, Bytes::from(body.clone())))? {
                crate::backend::Created::New => return Ok(Ok(Lock { repo })),
                crate::backend::Created::AlreadyExisted => {}
            }
            // A lock object longer than any lock is none this product wrote: like one that
            // does not parse, it is taken over (never read whole, never a lock held forever).
            let held = match block_on(repo.backend().get_bounded(&path)) {
                Ok(Some(held)) => Some(held),
                Ok(None) => continue,
                Err(Error::Integrity { .. }) => None,
                Err(error) => return Err(error),
            };
            let holder: Option<LockBody> = held.and_then(|held| {
                repo.codec()
                    .open_json(path.as_ref(), &held)
                    .ok()
                    .and_then(|json| serde_json::from_slice(&json).ok())
            });
            let stale = match &holder {
                None => true,
                Some(holder) => {
                    let age = chrono::DateTime::parse_from_rfc3339(&holder.created_at)
                        .map(|t| chrono::Utc::now().signed_duration_since(t).num_seconds())
                        .unwrap_or(i64::MAX);
                    let dead_here = holder.hostname == hostname() && !process_alive(holder.pid);
                    dead_here || age > stale_seconds as i64
                }
            };
            if !stale {
                let body = holder.expect("not stale means parsed");
                return Ok(Err(Holder { body }));
            }
            block_on(repo.backend().delete(&path))?;
        }
        Err(Error::Conflict {
            message: "could not take the maintenance lock: another maintainer took it first".into(),
        })
    }
}

impl Drop for Lock<'_> {
    fn drop(&mut self) {
        let _ = block_on(self.repo.backend().delete(&paths::lock(LOCK_NAME)));
    }
}

fn process_alive(pid: u32) -> bool {
    // Signal 0 checks existence; EPERM means it exists but belongs to someone else.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
