//! What recovery did with each record, and the line it prints.

use crate::render::printable;

/// What recovery did with one record.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Restored {
        key: String,
        value: String,
        pid: u32,
    },
    /// The value is no longer what netlat set: left alone.
    ChangedMeanwhile {
        key: String,
        original: String,
        set: String,
        pid: u32,
        now: String,
    },
    /// The value is the original already (restored, the record not yet
    /// updated when its netlat ended): the record is dropped.
    AlreadyBack {
        key: String,
        value: String,
        pid: u32,
    },
    /// Its netlat ended while holding the key, before changing it.
    Released { key: String, pid: u32 },
    /// The key no longer exists (its device is gone): the record is dropped.
    KeyGone { key: String, pid: u32 },
    /// Its process still runs: it will restore the value itself.
    InUse { key: String, pid: u32 },
    /// Kept, for a later run.
    Failed { key: String, why: String },
    /// A record not fit to act on: left as it is, nothing written.
    Invalid { file: String, why: String },
    /// The directory is not fit to act on: no record in it was read.
    DirUntrusted { dir: String, why: String },
}

impl Outcome {
    /// Whether a record stays that `--restore` could not deal with.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            Outcome::Failed { .. } | Outcome::Invalid { .. } | Outcome::DirUntrusted { .. }
        )
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Everything here comes from a file or /proc/sys: escaped.
        let p = |s: &str| printable(s).into_owned();
        match self {
            Outcome::Restored { key, value, pid } => write!(
                f,
                "netlat: restored {} = {} (netlat pid {pid} changed it and ended without restoring it)",
                p(key),
                p(value)
            ),
            Outcome::ChangedMeanwhile {
                key,
                original,
                set,
                pid,
                now,
            } => write!(
                f,
                "netlat: not restoring {}: it is now {}, not the {} netlat pid {pid} set, so someone changed it since; it was {} before netlat",
                p(key),
                p(now),
                p(set),
                p(original)
            ),
            Outcome::AlreadyBack { key, value, pid } => write!(
                f,
                "netlat: {} is back at {} already; dropped the restore record of netlat pid {pid}",
                p(key),
                p(value)
            ),
            Outcome::Released { key, pid } => write!(
                f,
                "netlat: dropped the record of netlat pid {pid} for {}: it ended before changing it",
                p(key)
            ),
            Outcome::KeyGone { key, pid } => write!(
                f,
                "netlat: dropped the restore record of netlat pid {pid} for {}: the key no longer exists (its device is gone?)",
                p(key)
            ),
            Outcome::InUse { key, pid } => write!(
                f,
                "netlat: {} is changed by netlat pid {pid}, still running: left to it",
                p(key)
            ),
            Outcome::Failed { key, why } => {
                write!(f, "netlat: cannot restore {}: {}", p(key), p(why))
            }
            Outcome::Invalid { file, why } => write!(
                f,
                "netlat: not acting on the restore record {}: {}; nothing was written (look at it, then remove it)",
                p(file),
                p(why)
            ),
            Outcome::DirUntrusted { dir, why } => write!(
                f,
                "netlat: not acting on the restore records in {}: {}; nothing was restored (look at it, then remove it or make it root's, mode 700)",
                p(dir),
                p(why)
            ),
        }
    }
}
