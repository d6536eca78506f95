//! Writing a result file whole or not at all: the bytes go to a temporary
//! file beside the target, are flushed to disk, and replace the target by
//! rename. A full disk or a crash leaves the old file as it was and no
//! partial one, so a result that was on disk is never lost to a failed run.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Write as _},
    path::{Path, PathBuf},
};

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot write {path}: it is a directory")]
    Directory { path: String },
    #[error(
        "cannot write {path}: it is not a regular file (netlat replaces the file it writes; give a path on a file system)"
    )]
    Special { path: String },
    #[error("cannot write {path}: it is under /proc or /sys (give a path on a file system)")]
    Pseudo { path: String },
    #[error("cannot write {path}: {why}")]
    Io { path: String, why: String },
    /// ENOSPC or EDQUOT: a caller that writes unattended (the flight
    /// recorder) counts it and carries on rather than failing.
    #[error("cannot write {path}: {why}")]
    Full { path: String, why: String },
}

impl WriteError {
    fn io(path: &Path, e: &io::Error) -> WriteError {
        let path = path.display().to_string();
        let why = crate::oneline::io_text(e);
        match e.raw_os_error() {
            Some(libc::ENOSPC | libc::EDQUOT) => WriteError::Full { path, why },
            _ => WriteError::Io { path, why },
        }
    }
}

/// Checks, before any work, that `path` can later be replaced by `write`:
/// not a directory, device, pipe or /proc file, in a directory where a file
/// can be created. Creates nothing that stays.
pub fn check(path: &Path) -> Result<(), WriteError> {
    let shown = || path.display().to_string();
    if let Ok(meta) = fs::metadata(path) {
        if meta.is_dir() {
            return Err(WriteError::Directory { path: shown() });
        }
        if !meta.is_file() {
            return Err(WriteError::Special { path: shown() });
        }
    }
    let dir = directory(path);
    if is_pseudo_fs(&dir) {
        return Err(WriteError::Pseudo { path: shown() });
    }
    let probe = temporary(path);
    File::options()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| WriteError::io(path, &e))?;
    let _ = fs::remove_file(&probe);
    Ok(())
}

/// Replaces `path` with `bytes`, or leaves it untouched and removes the
/// partial temporary file.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    replace(path, bytes, None)
}

/// As [`write`], the new file with exactly `mode` (the temporary file is
/// created with it, so the bytes are never readable more widely).
pub fn write_with_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<(), WriteError> {
    replace(path, bytes, Some(mode))
}

fn replace(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<(), WriteError> {
    if path.is_dir() {
        return Err(WriteError::Directory {
            path: path.display().to_string(),
        });
    }
    let temp = temporary(path);
    let written = write_new(&temp, path, bytes, mode).and_then(|()| fs::rename(&temp, path));
    written.map_err(|e| {
        let _ = fs::remove_file(&temp);
        WriteError::io(path, &e)
    })
}

/// Writes `path` whole only if it does not exist yet, in one step another
/// process cannot interleave with (a hard link of the finished temporary
/// file fails if the name is taken). Ok(false): it existed, left as it was.
pub fn create(path: &Path, bytes: &[u8]) -> Result<bool, WriteError> {
    let temp = temporary(path);
    let linked = write_new(&temp, path, bytes, None).and_then(|()| fs::hard_link(&temp, path));
    let _ = fs::remove_file(&temp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(WriteError::io(path, &e)),
    }
}

fn write_new(temp: &Path, target: &Path, bytes: &[u8], mode: Option<u32>) -> io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    if let Some(mode) = mode {
        options.mode(mode);
    }
    let mut file = options.open(temp)?;
    match mode {
        // The umask may have taken bits off; set exactly what was asked.
        Some(mode) => file.set_permissions(fs::Permissions::from_mode(mode))?,
        // Keep the mode of the file being replaced (a file made
        // group-readable on purpose stays so).
        None => {
            if let Ok(meta) = fs::metadata(target) {
                let _ = file.set_permissions(meta.permissions());
            }
        }
    }
    file.write_all(bytes)?;
    // Delayed allocation can report a full disk only here.
    file.sync_all()
}

/// The directory `path` is in ("." for a bare file name).
fn directory(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `.NAME.netlat-PID.tmp` beside `path`: hidden, and one per process.
fn temporary(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    directory(path).join(format!(".{name}{TEMP_MARK}{}.tmp", std::process::id()))
}

const TEMP_MARK: &str = ".netlat-";

/// The process that made `file_name` if it is one of [`write`]'s
/// temporary files: one it left behind when killed if that process is gone.
pub fn temporary_owner(file_name: &str) -> Option<u32> {
    let rest = file_name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (name, pid) = rest.rsplit_once(TEMP_MARK)?;
    if name.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// procfs and sysfs accept a create or a write and then do something that
/// is not storing a file.
fn is_pseudo_fs(dir: &Path) -> bool {
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    const SYSFS_MAGIC: i64 = 0x6265_6572;
    let Ok(c_path) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: statfs reads a NUL-terminated path and fills the struct.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c_path.as_ptr(), &mut st) } != 0 {
        return false;
    }
    let magic = st.f_type as i64;
    magic == PROC_SUPER_MAGIC || magic == SYSFS_MAGIC
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("netlat-atomic-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_mode_is_set_exactly_and_replaces_the_old_one() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = scratch("mode");
        let path = dir.join("capture.json");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_with_mode(&path, b"new", 0o600).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600);
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temporary_names_are_recognised_with_their_process() {
        let temp = temporary(Path::new("/x/20261203T031200.123456Z-net_rx_action.json"));
        let name = temp.file_name().unwrap().to_str().unwrap();
        assert_eq!(temporary_owner(name), Some(std::process::id()));
        for other in [
            "capture.json",
            ".capture.json",
            ".netlat-12.tmp",
            ".a.netlat-.tmp",
            ".a.netlat-12x.tmp",
            "a.netlat-12.tmp",
        ] {
            assert_eq!(temporary_owner(other), None, "{other}");
        }
    }

    #[test]
    fn a_full_disk_is_told_apart() {
        let path = Path::new("/x/capture.json");
        for errno in [libc::ENOSPC, libc::EDQUOT] {
            let e = WriteError::io(path, &io::Error::from_raw_os_error(errno));
            assert!(matches!(e, WriteError::Full { .. }), "{e:?}");
        }
        let e = WriteError::io(path, &io::Error::from_raw_os_error(libc::EACCES));
        assert!(matches!(e, WriteError::Io { .. }), "{e:?}");
    }

    #[test]
    fn create_never_replaces() {
        let dir = scratch("create");
        let path = dir.join("claim");
        assert!(create(&path, b"first").unwrap());
        assert!(!create(&path, b"second").unwrap());
        assert_eq!(fs::read_to_string(&path).unwrap(), "first");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temporary left");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn replaces_whole_and_leaves_no_temporary() {
        let dir = scratch("replace");
        let path = dir.join("run.json");
        fs::write(&path, "old").unwrap();
        write(&path, b"new").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["run.json"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_directories_devices_and_proc() {
        let dir = scratch("refuse");
        assert!(matches!(check(&dir), Err(WriteError::Directory { .. })));
        assert_eq!(
            check(Path::new("/dev/full")).unwrap_err().to_string(),
            "cannot write /dev/full: it is not a regular file (netlat replaces the file it writes; give a path on a file system)"
        );
        assert!(matches!(
            check(Path::new("/proc/self/comm")),
            Err(WriteError::Pseudo { .. })
        ));
        assert!(matches!(
            check(Path::new("/proc/netlat-result.json")),
            Err(WriteError::Pseudo { .. })
        ));
        assert_eq!(
            check(Path::new("/nonexistent/dir/x.json"))
                .unwrap_err()
                .to_string(),
            "cannot write /nonexistent/dir/x.json: No such file or directory"
        );
        check(&dir.join("new.json")).unwrap();
        assert!(!dir.join("new.json").exists(), "check creates nothing");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }
}
