//! A lock per job, so that several `regnet sweep launch` processes (on one machine or
//! several sharing the sweep folder) never run one job at the same time, or again once it
//! finished.
//!
//! The lock is `logs/NNNNNN/sweep_job.lock`, created exclusively (`O_EXCL`, atomic on
//! local and NFSv3+ file systems) and holding the owner's pid, host and start time. It is
//! removed when the attempt ends. A lock whose owner is dead is stale: on the owner's host,
//! a pid that no longer runs; a lock file that stayed empty (its writer was killed between
//! creating and filling it) for a minute. A stale lock is taken over; a lock held from
//! another host is never broken automatically (remove the file by hand if that host is
//! gone).

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use regnet_core::atomic_file::{TMP_MARKER, pid_alive};

/// The lock file in each job's output folder.
pub const LOCK_FILE: &str = "sweep_job.lock";

/// How long an empty or unreadable lock file is left to its writer.
const UNREADABLE_GRACE: Duration = Duration::from_secs(60);

/// Who holds a lock.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LockOwner {
    /// Process id.
    pub pid: u32,
    /// Host name.
    pub host: String,
    /// When it was taken, seconds since the Unix epoch.
    pub since: f64,
}

/// A held job lock; dropping it releases the job.
#[derive(Debug)]
pub struct JobLock {
    path: PathBuf,
}

impl Drop for JobLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// This machine's host name (Linux: the kernel's; else `HOSTNAME`).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

impl LockOwner {
    fn me() -> LockOwner {
        LockOwner {
            pid: std::process::id(),
            host: hostname(),
            since: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        }
    }
}

/// The owner written in a lock file; `None` if it is empty or unreadable.
pub fn read_owner(path: &Path) -> Option<LockOwner> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// Whether the lock at `path`, with the owner read from it, is stale.
fn is_stale(path: &Path, owner: &Option<LockOwner>) -> bool {
    match owner {
        Some(o) => {
            o.host == hostname() && o.pid != std::process::id() && pid_alive(o.pid) == Some(false)
        }
        None => std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age > UNREADABLE_GRACE),
    }
}

/// Removes the stale lock at `path` whose owner read as `seen`, unless another process
/// replaced it meanwhile: the lock is first renamed to a name of this process (only one
/// process wins the rename), then compared; a lock that changed is put back.
fn take_over(path: &Path, seen: &Option<LockOwner>) -> std::io::Result<()> {
    let mine = path.with_file_name(format!(
        ".{LOCK_FILE}.stale{TMP_MARKER}{}",
        std::process::id()
    ));
    match std::fs::rename(path, &mine) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    if read_owner(&mine) != *seen {
        // A fresh lock taken between our read and our rename: give it back (a link fails
        // rather than overwrite a lock taken since).
        let _ = std::fs::hard_link(&mine, path);
    }
    std::fs::remove_file(&mine)
}

/// Takes the lock of the job whose output folder is `out_dir`; `Ok(Err(owner))` if another
/// live process holds it (its owner, if readable).
pub fn try_lock(out_dir: &Path) -> Result<std::result::Result<JobLock, Option<LockOwner>>> {
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let path = out_dir.join(LOCK_FILE);
    for _ in 0..3 {
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                let lock = JobLock { path: path.clone() };
                let text = serde_json::to_string(&LockOwner::me()).expect("plain struct");
                f.write_all(text.as_bytes())
                    .and_then(|()| f.sync_all())
                    .map_err(|e| Error::io(&path, e))?;
                return Ok(Ok(lock));
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let owner = read_owner(&path);
                if !is_stale(&path, &owner) {
                    return Ok(Err(owner));
                }
                take_over(&path, &owner).map_err(|e| Error::io(&path, e))?;
            }
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    Ok(Err(read_owner(&path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_exclude_and_release() {
        let tmp = tempfile::tempdir().unwrap();
        let a = try_lock(tmp.path()).unwrap().unwrap();
        let held = try_lock(tmp.path()).unwrap().unwrap_err().unwrap();
        assert_eq!((held.pid, held.host), (std::process::id(), hostname()));
        drop(a);
        assert!(try_lock(tmp.path()).unwrap().is_ok());
    }

    #[test]
    fn a_dead_owners_lock_is_taken_over() {
        let tmp = tempfile::tempdir().unwrap();
        // A pid above the kernel's maximum never runs.
        let dead = LockOwner {
            pid: 4_194_305,
            host: hostname(),
            since: 0.0,
        };
        let path = tmp.path().join(LOCK_FILE);
        std::fs::write(&path, serde_json::to_string(&dead).unwrap()).unwrap();
        let lock = try_lock(tmp.path()).unwrap().unwrap();
        assert_eq!(read_owner(&path).unwrap().pid, std::process::id());
        drop(lock);
        assert!(!path.exists());
        // Another host's lock is left alone.
        let remote = LockOwner {
            host: "elsewhere".into(),
            ..dead
        };
        std::fs::write(&path, serde_json::to_string(&remote).unwrap()).unwrap();
        assert_eq!(try_lock(tmp.path()).unwrap().unwrap_err(), Some(remote));
    }
}
