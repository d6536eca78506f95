//! Whether a file under /run/netlat may be acted on. Every root netlat run
//! reads these records and writes what they say into /proc/sys, so a
//! directory or record another user could have made or edited is refused:
//! it must be ours (the effective uid), writable by nobody else, of the
//! right type (a symbolic link is never followed, a FIFO never blocks the
//! open) and small.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Read as _, Write as _},
    os::unix::fs::{
        DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _,
    },
    path::Path,
};

use crate::oneline::io_text;

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// Owned by us and writable only by us.
fn owner_and_mode(meta: &fs::Metadata) -> Result<(), String> {
    let euid = euid();
    if meta.uid() != euid {
        return Err(format!(
            "it is owned by uid {}, not by uid {euid} (this netlat)",
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "it is writable by others than its owner (mode {:o})",
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}

/// Ok(false) when there is no directory (the common case).
pub fn check_dir(dir: &Path) -> Result<bool, String> {
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_text(&e)),
        Ok(m) if m.file_type().is_symlink() => Err("it is a symbolic link".into()),
        Ok(m) if !m.is_dir() => Err("it is not a directory".into()),
        Ok(m) => owner_and_mode(&m).map(|()| true),
    }
}

/// Makes the directory 0700 whatever the umask (which only removes bits
/// from the mode asked for), or checks the one that is there.
pub fn create_dir(dir: &Path) -> Result<(), String> {
    if check_dir(dir)? {
        return Ok(());
    }
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_text(&e)),
    }
    // Another process may have made it first: check what is there.
    check_dir(dir).map(|_| ())
}

/// Opens a file that must be a regular file of ours: never through a
/// symbolic link, never blocking on a FIFO.
fn open_checked(path: &Path, options: &mut OpenOptions) -> Result<File, Refusal> {
    let file = options
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => Refusal::Gone,
            Some(libc::ELOOP) => Refusal::Untrusted("it is a symbolic link".to_owned()),
            _ => Refusal::Untrusted(io_text(&e)),
        })?;
    let meta = file
        .metadata()
        .map_err(|e| Refusal::Untrusted(io_text(&e)))?;
    if !meta.is_file() {
        return Err(Refusal::Untrusted("it is not a regular file".into()));
    }
    owner_and_mode(&meta).map_err(Refusal::Untrusted)?;
    Ok(file)
}

/// A record's text, read with a cap so an endless file cannot fill memory.
pub fn read(path: &Path, cap: u64) -> Result<String, Refusal> {
    let file = open_checked(path, OpenOptions::new().read(true))?;
    let too_large = || Refusal::Untrusted(format!("it is larger than {cap} bytes"));
    if file.metadata().map_or(0, |m| m.len()) > cap {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Refusal::Untrusted(io_text(&e)))?;
    if bytes.len() as u64 > cap {
        return Err(too_large());
    }
    String::from_utf8(bytes).map_err(|_| Refusal::Untrusted("it is not UTF-8 text".into()))
}

/// Why a record was not read.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No such file (released meanwhile).
    Gone,
    Untrusted(String),
}

/// The lock file that serializes claims and recovery between netlat runs;
/// held until the returned file is dropped.
pub fn lock(path: &Path) -> Result<File, String> {
    let file = open_checked(
        path,
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600),
    )
    .map_err(|r| match r {
        Refusal::Gone => "the directory went away".to_owned(),
        Refusal::Untrusted(why) => why,
    })?;
    // SAFETY: flock on a file descriptor we own.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), libc::LOCK_EX) } != 0 {
        return Err(io_text(&io::Error::last_os_error()));
    }
    Ok(file)
}

/// Writes `bytes` to a new 0600 file `temp` (whatever the umask), flushed.
pub fn write_private(temp: &Path, bytes: &[u8]) -> io::Result<()> {
    // A temporary left by a killed netlat with this pid is ours to replace.
    let _ = fs::remove_file(temp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(temp)?;
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Reads a /proc/sys file without following a symbolic link or blocking.
pub fn read_sysctl(path: &Path) -> io::Result<String> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let mut text = String::new();
    // Sysctl values are at most a page or two.
    file.take(1 << 16).read_to_string(&mut text)?;
    Ok(text)
}

/// Writes a /proc/sys file that must exist: never creates one, never
/// follows a symbolic link.
pub fn write_sysctl(path: &Path, value: &str) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?
        .write_all(value.as_bytes())
}
