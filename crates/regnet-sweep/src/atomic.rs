//! Atomic file writes and the temporary files they leave when killed.
//!
//! Every file of a sweep folder (configs, `setup.json`, job states, `sweep.json`) is written
//! to a temporary file next to it, synced, and renamed over the old one, and the folder is
//! synced: a reader (`collect`, another launcher) sees the old file or the new one, never a
//! half-written one, and a kill or a full disk leaves the old file intact. The temporary
//! names, `.NAME.tmpPID`, are recognised and removed by later runs
//! ([`clean_temp_files`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};

/// A temporary file older than this is stale even if its writer cannot be checked (it runs
/// on another machine): writes take milliseconds.
const STALE_AFTER: Duration = Duration::from_secs(600);

/// The temporary name of `path` for this process: `.NAME.tmpPID` in the same folder.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or("file".into(), |n| n.to_string_lossy());
    path.with_file_name(format!(".{name}.tmp{}", std::process::id()))
}

/// The writer's pid if `name` is a temporary name of [`temp_path`].
pub fn temp_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?;
    let (_, pid) = rest.rsplit_once(".tmp")?;
    (!pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
        .then(|| pid.parse().ok())
        .flatten()
}

/// Whether process `pid` runs on this machine (Linux: `/proc/PID`; elsewhere every
/// process counts as running, so nothing live is ever removed).
pub fn pid_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// Writes `contents` to `path` atomically (temporary file, fsync, rename, folder fsync),
/// creating the parent folders; errors name the path.
pub fn write(path: &Path, contents: &[u8]) -> Result<()> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    if let Some(parent) = parent {
        sync_dir(parent);
    }
    Ok(())
}

/// Syncs a folder, so that a rename in it survives a crash (best effort: not every file
/// system and platform can sync a folder).
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Removes the temporary files in `dir` that no live writer owns: those of a dead process
/// on this machine, or older than ten minutes. Returns how many were removed.
pub fn clean_temp_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = temp_pid(&name) else {
            continue;
        };
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age > STALE_AFTER);
        let mine = pid == std::process::id();
        if (!mine && !pid_alive(pid)) || old {
            let p = e.path();
            let gone = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            removed += usize::from(gone.is_ok());
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognised() {
        let t = temp_path(Path::new("/x/sweep_job.json"));
        let name = t.file_name().unwrap().to_str().unwrap();
        assert_eq!(temp_pid(name), Some(std::process::id()));
        assert_eq!(temp_pid(".setup.json.tmp12"), Some(12));
        assert_eq!(temp_pid("setup.json"), None);
        assert_eq!(temp_pid(".x.tmp"), None);
        assert_eq!(temp_pid(".x.tmp1a"), None);
    }
}
