//! The flight recorder's captures on disk: one `ID.json` per capture in
//! one directory, bounded in count and bytes (the oldest go first), so an
//! unattended `serve --capture` can never fill a disk. Files are written
//! whole (atomic_file), readable by root only, and found again after a
//! restart: the index is rebuilt from the files at open.

use std::{
    fs, io,
    io::Write as _,
    os::unix::fs::{DirBuilderExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    sync::Mutex,
};

use super::document::{Capture, FORMAT, Listing};
use crate::system::atomic_file::{self, WriteError};

/// Where `serve --capture` keeps captures and `netlat captures` looks.
pub const DEFAULT_DIR: &str = "/var/lib/netlat/captures";

/// The longest id: a timestamp and a long kernel symbol fit.
pub const MAX_ID_LEN: usize = 160;

/// How much the store may hold; the oldest captures are removed beyond it
/// (at open, and after each write). A `max_files` of 0 keeps one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_files: usize,
    pub max_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("capture directory {path} is not a directory: give a directory, or remove the file")]
    NotADirectory { path: String },
    #[error("capture directory {path} is a symbolic link: give the directory it points to instead")]
    Symlink { path: String },
    #[error(
        "capture directory {path} can be written by others (mode {mode:04o}): anyone could plant files serve would hand out; chmod 700 {path}"
    )]
    Unsafe { path: String, mode: u32 },
    #[error(
        "capture directory {path} belongs to uid {owner}, not to this user ({uid}): chown it, or give another directory"
    )]
    NotOwned { path: String, owner: u32, uid: u32 },
    #[error("capture directory {path} does not exist (serve --capture creates it)")]
    Missing { path: String },
    #[error("cannot create capture directory {path}: {why}")]
    Create { path: String, why: String },
    #[error("cannot read capture directory {path}: {why}")]
    ReadDir { path: String, why: String },
    #[error("no capture {id}")]
    NotFound { id: String },
    #[error("cannot read capture {id}: {why}")]
    Read { id: String, why: String },
    #[error("capture {id} does not parse: {why}")]
    Parse { id: String, why: String },
    #[error("{id} is not a capture id (letters, digits, '.', '_', '-'; 1 to {MAX_ID_LEN})")]
    InvalidId { id: String },
    #[error("capture {id} is {bytes} bytes, more than the store may hold ({max_bytes}): not kept")]
    TooLarge {
        id: String,
        bytes: u64,
        max_bytes: u64,
    },
    /// ENOSPC or EDQUOT: serve counts the capture as skipped for "disk".
    #[error("capture {id} not kept, the disk is full: {source}")]
    Full { id: String, source: WriteError },
    #[error("capture {id} not kept: {source}")]
    Write { id: String, source: WriteError },
    #[error("the capture store in {path} was opened read-only")]
    ReadOnly { path: String },
}

/// One capture file the index knows.
#[derive(Clone, Debug)]
struct Entry {
    listing: Listing,
    bytes: u64,
}

impl Entry {
    /// Pruning and listing order: by start time, then id.
    fn key(&self) -> (u64, &str) {
        (self.listing.start_unix_ns, &self.listing.id)
    }
}

/// The captures of one directory. `Send + Sync`: serve's capture tasks
/// write while its HTTP handlers read; the lock covers the index only,
/// never a file's bytes.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    limits: Option<Limits>,
    index: Mutex<Vec<Entry>>,
}

impl Store {
    /// Opens `dir` for writing, creating it (mode 0700) if missing,
    /// removing what killed writes left, and indexing the captures there.
    pub fn open(dir: &Path, limits: Limits) -> Result<Store, StoreError> {
        let shown = || dir.display().to_string();
        match fs::symlink_metadata(dir) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(StoreError::Symlink { path: shown() });
            }
            Ok(meta) if !meta.is_dir() => return Err(StoreError::NotADirectory { path: shown() }),
            Ok(meta) => check_private(dir, &meta)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .and_then(|()| fs::set_permissions(dir, fs::Permissions::from_mode(0o700)))
                    .map_err(|e| StoreError::Create {
                        path: shown(),
                        why: crate::oneline::io_text(&e),
                    })?;
            }
            Err(e) => {
                return Err(StoreError::ReadDir {
                    path: shown(),
                    why: crate::oneline::io_text(&e),
                });
            }
        }
        remove_stale_temporaries(dir)?;
        let mut store = Store::load(dir)?;
        store.limits = Some(limits);
        // Limits lowered since the last run hold from the start.
        let victims = prune(
            store.index.get_mut().unwrap_or_else(|p| p.into_inner()),
            limits,
            "",
        );
        for victim in victims {
            let _ = fs::remove_file(store.file(&victim.listing.id));
        }
        Ok(store)
    }

    /// Opens an existing `dir` to read (`netlat captures`): creates and
    /// removes nothing.
    pub fn open_read_only(dir: &Path) -> Result<Store, StoreError> {
        let shown = || dir.display().to_string();
        match fs::metadata(dir) {
            Ok(meta) if !meta.is_dir() => Err(StoreError::NotADirectory { path: shown() }),
            Ok(_) => Store::load(dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::Missing { path: shown() })
            }
            Err(e) => Err(StoreError::ReadDir {
                path: shown(),
                why: crate::oneline::io_text(&e),
            }),
        }
    }

    fn load(dir: &Path) -> Result<Store, StoreError> {
        let read_dir_error = |e: io::Error| StoreError::ReadDir {
            path: dir.display().to_string(),
            why: crate::oneline::io_text(&e),
        };
        let mut entries = Vec::new();
        for item in fs::read_dir(dir).map_err(read_dir_error)? {
            let item = item.map_err(read_dir_error)?;
            let name = item.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if !valid_id(id) {
                continue;
            }
            match index_file(&item.path(), id) {
                Ok(entry) => entries.push(entry),
                // Kept on disk: it may be a newer netlat's, or worth a look.
                Err(why) => {
                    let _ = writeln!(
                        io::stderr(),
                        "netlat: skipping {}: {why}",
                        item.path().display()
                    );
                }
            }
        }
        entries.sort_by(|a, b| a.key().cmp(&b.key()));
        Ok(Store {
            dir: dir.to_path_buf(),
            limits: None,
            index: Mutex::new(entries),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `capture` as `ID.json` (mode 0600), then removes the oldest
    /// captures until the limits hold again. The new capture is never the
    /// one removed: if it alone is over `max_bytes`, it is not written.
    pub fn write(&self, capture: &Capture) -> Result<Listing, StoreError> {
        let id = &capture.id;
        let Some(limits) = self.limits else {
            return Err(StoreError::ReadOnly {
                path: self.dir.display().to_string(),
            });
        };
        if !valid_id(id) {
            return Err(StoreError::InvalidId { id: id.clone() });
        }
        let bytes = serde_json::to_vec(capture).expect("a capture serializes");
        let size = bytes.len() as u64;
        if size > limits.max_bytes {
            return Err(StoreError::TooLarge {
                id: id.clone(),
                bytes: size,
                max_bytes: limits.max_bytes,
            });
        }
        atomic_file::write_with_mode(&self.file(id), &bytes, 0o600).map_err(|e| match e {
            WriteError::Full { .. } => StoreError::Full {
                id: id.clone(),
                source: e,
            },
            e => StoreError::Write {
                id: id.clone(),
                source: e,
            },
        })?;
        let listing = capture.listing();
        let victims = {
            let mut index = self.index.lock().unwrap_or_else(|p| p.into_inner());
            index.retain(|e| e.listing.id != *id);
            index.push(Entry {
                listing: listing.clone(),
                bytes: size,
            });
            index.sort_by(|a, b| a.key().cmp(&b.key()));
            prune(&mut index, limits, id)
        };
        for victim in victims {
            // Already gone is as good as removed.
            let _ = fs::remove_file(self.file(&victim.listing.id));
        }
        Ok(listing)
    }

    /// Every capture, newest first.
    pub fn list(&self) -> Vec<Listing> {
        let index = self.index.lock().unwrap_or_else(|p| p.into_inner());
        index.iter().rev().map(|e| e.listing.clone()).collect()
    }

    /// The capture file's bytes, as written.
    pub fn read(&self, id: &str) -> Result<Vec<u8>, StoreError> {
        if !valid_id(id) {
            return Err(StoreError::InvalidId { id: id.to_owned() });
        }
        let known = {
            let index = self.index.lock().unwrap_or_else(|p| p.into_inner());
            index.iter().any(|e| e.listing.id == id)
        };
        let not_found = || StoreError::NotFound { id: id.to_owned() };
        if !known {
            return Err(not_found());
        }
        read_regular(&self.file(id)).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => not_found(),
            _ => StoreError::Read {
                id: id.to_owned(),
                why: crate::oneline::io_text(&e),
            },
        })
    }

    /// The capture, parsed.
    pub fn capture(&self, id: &str) -> Result<Capture, StoreError> {
        let bytes = self.read(id)?;
        parse(&bytes).map_err(|why| StoreError::Parse {
            id: id.to_owned(),
            why,
        })
    }

    /// Only ever called with a valid id: no path component can be in it.
    fn file(&self, id: &str) -> PathBuf {
        debug_assert!(valid_id(id));
        self.dir.join(format!("{id}.json"))
    }
}

/// Serve hands out what is in its directory: nobody else may put files
/// there (a planted symlink or hard link could name any file root reads).
fn check_private(dir: &Path, meta: &fs::Metadata) -> Result<(), StoreError> {
    use std::os::unix::fs::MetadataExt as _;
    let path = dir.display().to_string();
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    if meta.uid() != uid {
        return Err(StoreError::NotOwned {
            path,
            owner: meta.uid(),
            uid,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(StoreError::Unsafe { path, mode });
    }
    Ok(())
}

/// A capture file's bytes; a symlink or anything but a regular file is
/// refused (never followed to a file that is not a capture).
fn read_regular(path: &Path) -> io::Result<Vec<u8>> {
    use std::{io::Read as _, os::unix::fs::OpenOptionsExt as _};
    let mut file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Takes the oldest entries out of `index` (sorted oldest first) until it
/// is within `limits`, never `keep`; returns what was taken.
fn prune(index: &mut Vec<Entry>, limits: Limits, keep: &str) -> Vec<Entry> {
    let mut total: u64 = index.iter().map(|e| e.bytes).sum();
    let mut victims = Vec::new();
    let mut i = 0;
    while (index.len() > limits.max_files.max(1) || total > limits.max_bytes) && i < index.len() {
        if index[i].listing.id == keep {
            i += 1;
            continue;
        }
        let victim = index.remove(i);
        total -= victim.bytes;
        victims.push(victim);
    }
    victims
}

/// A capture document, refusing formats newer than this netlat reads.
pub fn parse(bytes: &[u8]) -> Result<Capture, String> {
    #[derive(serde::Deserialize)]
    struct Version {
        netlat_capture: u32,
    }
    let version: Version = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if version.netlat_capture > FORMAT {
        return Err(format!(
            "capture format {} is newer than this netlat reads ({FORMAT}): use a newer netlat",
            version.netlat_capture
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

fn index_file(path: &Path, id: &str) -> Result<Entry, String> {
    let bytes = read_regular(path).map_err(|e| crate::oneline::io_text(&e))?;
    let capture = parse(&bytes).map_err(|why| format!("not a capture ({why})"))?;
    let mut listing = capture.listing();
    // The file's name is what serves it.
    listing.id = id.to_owned();
    Ok(Entry {
        listing,
        bytes: bytes.len() as u64,
    })
}

/// Removes the temporary files of writes whose process is gone (killed
/// mid-write); a live process's are its own business.
fn remove_stale_temporaries(dir: &Path) -> Result<(), StoreError> {
    let entries = fs::read_dir(dir).map_err(|e| StoreError::ReadDir {
        path: dir.display().to_string(),
        why: crate::oneline::io_text(&e),
    })?;
    for item in entries.flatten() {
        let name = item.file_name();
        let Some(pid) = name.to_str().and_then(atomic_file::temporary_owner) else {
            continue;
        };
        let alive = pid != std::process::id() && Path::new(&format!("/proc/{pid}")).exists();
        if !alive {
            let _ = fs::remove_file(item.path());
        }
    }
    Ok(())
}

/// Whether `id` may name a capture: `[A-Za-z0-9._-]`, 1 to 160 characters,
/// not hidden, no "..". Checked before an id comes near a path.
pub fn valid_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && !id.starts_with('.')
        && !id.contains("..")
        && id.bytes().all(id_byte)
}

fn id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

/// `20261203T031200.123456Z-net_rx_action`: the start in UTC to the
/// microsecond, so ids sort by time, then the function with characters
/// outside the id set made '_'.
pub fn make_id(function: &str, start_unix_ns: u64) -> String {
    let secs = start_unix_ns / 1_000_000_000;
    let micros = (start_unix_ns % 1_000_000_000) / 1_000;
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let of_day = secs % 86_400;
    let mut id = format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}.{micros:06}Z-",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    );
    for c in function.chars() {
        if id.len() >= MAX_ID_LEN {
            break;
        }
        let c = match c {
            // A second '.' in a row would make "..".
            '.' if id.ends_with('.') => '_',
            c if c.is_ascii() && id_byte(c as u8) => c,
            _ => '_',
        };
        id.push(c);
    }
    id
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `civil_from_days`), so ids need no time zone database.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
