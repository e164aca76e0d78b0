//! Atomic file writes, and the temporary files a killed writer leaves behind.
//!
//! Every file regnet writes that another process may read (checkpoints, weights, sweep
//! configs, job states, results) goes through [`write_atomic`]: write a temporary file next
//! to the target, fsync it, rename it over the target, fsync the folder. A reader sees the
//! old file or the new one, never half of one, and a kill or a full disk leaves the old
//! file intact. The temporary names, `.NAME.regnet-tmp.PID`, are recognised by
//! [`remove_stale`], which later runs call to clean up after killed writers. Std only, so
//! that every crate can use it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What marks regnet's temporary files: `.NAME.regnet-tmp.PID` next to `NAME`.
pub const TMP_MARKER: &str = ".regnet-tmp.";

/// A file-system operation that failed, with the path it failed on.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct FileError {
    /// The file or folder that failed.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

impl FileError {
    fn new(path: &Path, source: std::io::Error) -> Self {
        FileError {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The folder `path` is in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The temporary file [`write_atomic`] writes `path` through: `.NAME.regnet-tmp.PID` in the
/// same folder, so that the rename stays on one file system and later runs recognise it. A
/// path without a file name (`/`, `..`) gets `.file.regnet-tmp.PID`; the rename then fails
/// with an error naming the path.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or("file".into(), |n| n.to_string_lossy());
    let pid = std::process::id();
    parent_dir(path).join(format!(".{name}{TMP_MARKER}{pid}"))
}

/// The writer's process id if `name` is a temporary name: regnet's `.NAME.regnet-tmp.PID`,
/// or the `.NAME.tmpPID` of earlier versions.
pub fn temp_pid(name: &str) -> Option<u32> {
    if !name.starts_with('.') {
        return None;
    }
    let pid = match name.rsplit_once(TMP_MARKER) {
        Some((_, pid)) => pid,
        None => name.rsplit_once(".tmp")?.1,
    };
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether process `pid` runs on this machine; `None` where that cannot be known (no
/// `/proc`).
pub fn pid_alive(pid: u32) -> Option<bool> {
    Path::new("/proc/self")
        .exists()
        .then(|| Path::new("/proc").join(pid.to_string()).exists())
}

/// Writes `bytes` to `path` so that `path` holds either its old content or all of `bytes`,
/// even across a crash or a power cut: write [`temp_path`], fsync it, rename it over `path`,
/// fsync the folder. The folder must exist. A failed write removes its temporary file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let tmp = temp_path(path);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(FileError::new(path, e));
    }
    let dir = parent_dir(path);
    sync_dir(dir).map_err(|e| FileError::new(dir, e))
}

/// Makes a rename in `dir` durable (Unix; elsewhere renames are left to the file system).
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    if cfg!(unix) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Whether the temporary entry `path` of writer `pid` is abandoned: its writer is another
/// process that no longer runs here, or it is older than `older_than` (its writer may run
/// on another machine sharing the folder, or `/proc` is missing; writes take far less).
fn is_stale(pid: u32, path: &Path, older_than: Duration) -> bool {
    if pid == std::process::id() {
        return false;
    }
    if pid_alive(pid) == Some(false) {
        return true;
    }
    let age = std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok());
    age.is_some_and(|a| a > older_than)
}

/// Removes the temporary files and folders (see [`temp_pid`]) that killed writers left in
/// `dir`, and returns their paths. This process's entries are kept, and so are those of
/// live writers unless older than `older_than`; a missing `dir` is fine.
pub fn remove_stale(dir: &Path, older_than: Duration) -> Result<Vec<PathBuf>, FileError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(FileError::new(dir, e)),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| FileError::new(dir, e))?;
        let path = entry.path();
        let Some(pid) = temp_pid(&entry.file_name().to_string_lossy()) else {
            continue;
        };
        if !is_stale(pid, &path, older_than) {
            continue;
        }
        let gone = if entry.file_type().is_ok_and(|t| t.is_dir()) {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match gone {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(FileError::new(&path, e)),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognised() {
        let p = temp_path(Path::new("/x/model_epoch_0001.safetensors"));
        let name = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(temp_pid(name), Some(std::process::id()));
        assert!(p.starts_with("/x") && name.contains(TMP_MARKER));
        assert_eq!(temp_pid(".best.safetensors.tmp123"), Some(123));
        assert_eq!(temp_pid("best.safetensors.tmp123"), None);
        assert_eq!(temp_pid(".a.regnet-tmp.12x"), None);
        assert_eq!(temp_pid(".x.tmp"), None);
        assert_eq!(temp_pid(".config.yaml"), None);
    }

    #[test]
    fn writes_replace_and_stale_temps_go() {
        let dir = std::env::temp_dir().join(format!("regnet-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a.json");
        write_atomic(&file, b"one").unwrap();
        write_atomic(&file, b"two").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"two");
        // A pid above the kernel's maximum never runs; this process's own temp stays.
        let dead = dir.join(format!(".a.json{TMP_MARKER}4194305"));
        let legacy = dir.join(".b.json.tmp4194305");
        let staging = dir.join(format!(".cfgs{TMP_MARKER}4194305"));
        let mine = temp_path(&file);
        for f in [&dead, &legacy, &mine] {
            std::fs::write(f, b"partial").unwrap();
        }
        std::fs::create_dir_all(staging.join("x")).unwrap();
        let mut gone = remove_stale(&dir, Duration::from_secs(600)).unwrap();
        gone.sort();
        let mut want = vec![dead, legacy, staging];
        want.sort();
        // Without /proc the writers' fate is unknown and the fresh entries stay.
        if pid_alive(4_194_305).is_none() {
            want.clear();
        }
        assert_eq!(gone, want);
        assert!(mine.exists() && file.exists());
        std::fs::remove_dir_all(&dir).unwrap();
        let e = write_atomic(&dir.join("a.json"), b"x").unwrap_err();
        assert!(e.to_string().contains("a.json"), "{e}");
    }
}
