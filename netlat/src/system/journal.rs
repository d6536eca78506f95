//! Restore records for the system changes netlat makes (experiment's
//! sysctl), written before the change so it can be undone even if netlat is
//! SIGKILLed or the machine loses its SSH session.
//!
//! One file per key under /run/netlat (tmpfs: a reboot restores sysctls by
//! itself, and takes the records with it), written whole by temp file and
//! rename. Each names the original value, the value netlat set and the
//! process that set it. Any later netlat run as root finds records whose
//! process is gone and puts the original back, unless someone changed the
//! value meanwhile: then it says so, leaves the value alone and drops the
//! record (the newer value was somebody's choice; repeating the warning on
//! every run would not make it less so).
//!
//! A record is also a claim: an experiment holds its key's record from its
//! start to its end, so a second one on that key is refused at once. Root
//! acts on these files, so the directory is made 0700 and records 0600, and
//! a directory or record that is not ours, writable by others, not of its
//! type, too large, or whose key is not a plain sysctl name is refused and
//! reported, never acted on (`trust`).

use std::{
    cell::Cell,
    fs,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use super::procfs::sysctl::{self, BadKey};

mod outcome;
mod trust;

pub use outcome::Outcome;

pub const DIR: &str = "/run/netlat";

/// A record is a few hundred bytes; a larger file is not one of ours.
pub const MAX_RECORD_BYTES: u64 = 8 << 10;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot keep a restore record in {dir}, so nothing was changed: {why}")]
    Dir { dir: String, why: String },
    #[error("cannot write the restore record {path}: {why}")]
    Write { path: String, why: String },
    #[error("{key} is being changed by another netlat (pid {pid}): wait for it to end")]
    Busy { key: String, pid: u32 },
    #[error(
        "{key} still has the restore record of netlat pid {pid}, which ended without restoring it: run `netlat experiment --restore` first"
    )]
    Unrestored { key: String, pid: u32 },
    #[error(
        "not using the restore record {path}, so nothing was changed: {why} (look at it, then remove it)"
    )]
    Untrusted { path: String, why: String },
    #[error(transparent)]
    Key(#[from] BadKey),
    #[error("unknown sysctl {key} (no {path})")]
    Unknown { key: String, path: String },
    #[error(
        "the values of {key} are too long for a restore record (at most {MAX_RECORD_BYTES} bytes)"
    )]
    TooLong { key: String },
}

/// A key held by a netlat, and the change in force if there is one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub key: String,
    /// The value before netlat changed it (None while nothing is changed).
    pub original: Option<String>,
    /// The value netlat set: only this is ever overwritten on restore.
    /// None while the key is only held: claimed, nothing changed.
    pub set: Option<String>,
    pub pid: u32,
    /// The process's start time (clock ticks since boot, /proc/PID/stat
    /// field 22), so a reused pid is not taken for the writer.
    pub pid_start: u64,
}

impl Record {
    /// A record for this process.
    pub fn mine(key: &str, change: Option<(&str, &str)>) -> Record {
        let pid = std::process::id();
        Record {
            key: key.to_owned(),
            original: change.map(|(o, _)| o.to_owned()),
            set: change.map(|(_, s)| s.to_owned()),
            pid,
            pid_start: start_time(pid).unwrap_or(0),
        }
    }

    fn writer_alive(&self) -> bool {
        start_time(self.pid).is_some_and(|t| t == self.pid_start)
    }
}

pub struct Journal {
    dir: PathBuf,
    proc_sys: PathBuf,
    /// Tests: record writes that may still succeed before they all fail.
    #[cfg(test)]
    pub(crate) puts_left: Cell<Option<usize>>,
}

impl Journal {
    pub fn host() -> Journal {
        Journal::at(Path::new(DIR), Path::new("/proc/sys"))
    }

    /// Records under `dir`, sysctls under `proc_sys` (tests use scratch dirs).
    pub fn at(dir: &Path, proc_sys: &Path) -> Journal {
        Journal {
            dir: dir.to_path_buf(),
            proc_sys: proc_sys.to_path_buf(),
            #[cfg(test)]
            puts_left: Cell::new(None),
        }
    }

    fn file(&self, key: &str) -> PathBuf {
        self.dir
            .join(format!("sysctl.{}.json", key.replace('/', "%")))
    }

    /// `key`'s file under this journal's /proc/sys.
    pub fn sysctl_path(&self, key: &str) -> Result<PathBuf, BadKey> {
        sysctl::path_under(&self.proc_sys, key)
    }

    fn shown(&self, path: &Path) -> String {
        path.display().to_string()
    }

    fn lock(&self) -> Result<fs::File, String> {
        trust::lock(&self.dir.join("lock"))
    }

    /// Writes `record` to its file: replacing it, or (`claim`) only if
    /// there is none, in one step two netlat runs cannot interleave with
    /// (a hard link of the finished file fails if the name is taken).
    fn put(&self, record: &Record, claim: bool) -> Result<bool, JournalError> {
        let text = serde_json::to_string(record).expect("a record serializes") + "\n";
        if text.len() as u64 > MAX_RECORD_BYTES {
            return Err(JournalError::TooLong {
                key: record.key.clone(),
            });
        }
        let path = self.file(&record.key);
        #[cfg(test)]
        if let Some(n) = self.puts_left.get() {
            if n == 0 {
                return Err(JournalError::Write {
                    path: self.shown(&path),
                    why: "No space left on device".into(),
                });
            }
            self.puts_left.set(Some(n - 1));
        }
        let temp = self
            .dir
            .join(format!(".record.netlat-{}.tmp", std::process::id()));
        let done = trust::write_private(&temp, text.as_bytes()).and_then(|()| {
            if claim {
                match fs::hard_link(&temp, &path) {
                    Ok(()) => Ok(true),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                    Err(e) => Err(e),
                }
            } else {
                fs::rename(&temp, &path).map(|()| true)
            }
        });
        let _ = fs::remove_file(&temp);
        done.map_err(|e| JournalError::Write {
            path: self.shown(&path),
            why: crate::oneline::io_text(&e),
        })
    }

    /// Holds `key` for this process until the claim is dropped: from here
    /// on, every other netlat that claims it is refused at once, naming
    /// this pid. Claim first, then read the original value, so a value
    /// another netlat has in force for a moment is never taken for it.
    pub fn claim(&self, key: &str) -> Result<Claim<'_>, JournalError> {
        let key = sysctl::canonical(key)?;
        let path = self.sysctl_path(&key)?;
        if !fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            return Err(JournalError::Unknown {
                key,
                path: self.shown(&path),
            });
        }
        trust::create_dir(&self.dir).map_err(|why| JournalError::Dir {
            dir: self.shown(&self.dir),
            why,
        })?;
        let mine = Record::mine(&key, None);
        let claimed = || Claim {
            journal: self,
            key: key.clone(),
            in_force: Cell::new(false),
        };
        if self.put(&mine, true)? {
            return Ok(claimed());
        }
        // Taken: see by whom, under the lock recovery takes too, so a stale
        // record is replaced by one netlat only.
        let _lock = self.lock().map_err(|why| JournalError::Dir {
            dir: self.shown(&self.dir),
            why,
        })?;
        let file = self.file(&key);
        match self.read(&file) {
            Err(trust::Refusal::Gone) => {}
            Err(trust::Refusal::Untrusted(why)) => {
                return Err(JournalError::Untrusted {
                    path: self.shown(&file),
                    why,
                });
            }
            Ok(other) if other.writer_alive() => {
                return Err(JournalError::Busy {
                    key,
                    pid: other.pid,
                });
            }
            Ok(other) if other.set.is_some() => {
                return Err(JournalError::Unrestored {
                    key,
                    pid: other.pid,
                });
            }
            // A dead netlat's claim that changed nothing.
            Ok(_) => {}
        }
        self.put(&mine, false)?;
        Ok(claimed())
    }

    /// A record read and checked: trusted file, parsed, its key a sysctl
    /// name that belongs in this very file.
    fn read(&self, file: &Path) -> Result<Record, trust::Refusal> {
        let untrusted = trust::Refusal::Untrusted;
        let text = trust::read(file, MAX_RECORD_BYTES)?;
        let record: Record = serde_json::from_str(&text)
            .map_err(|e| untrusted(format!("it is not a restore record ({e})")))?;
        if let Err(e) = sysctl::relative_path(&record.key) {
            return Err(untrusted(e.to_string()));
        }
        if self.file(&record.key) != file {
            return Err(untrusted(format!(
                "its key {} belongs in another file",
                record.key
            )));
        }
        if record.set.is_some() && record.original.is_none() {
            return Err(untrusted("it has a set value but no original".into()));
        }
        Ok(record)
    }

    fn forget(&self, key: &str) {
        let _ = fs::remove_file(self.file(key));
    }

    /// Puts back every value whose writer is gone; one outcome per record,
    /// also for each record not fit to act on.
    pub fn recover(&self) -> Vec<Outcome> {
        let untrusted = |why| {
            vec![Outcome::DirUntrusted {
                dir: self.shown(&self.dir),
                why,
            }]
        };
        // No directory is the common case: one failed syscall.
        match trust::check_dir(&self.dir) {
            Ok(false) => return Vec::new(),
            Ok(true) => {}
            Err(why) => return untrusted(why),
        }
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return untrusted("it cannot be listed".into());
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.starts_with("sysctl.") && name.ends_with(".json")
            })
            .map(|e| e.path())
            .collect();
        if files.is_empty() {
            return Vec::new();
        }
        files.sort();
        let _lock = match self.lock() {
            Ok(lock) => lock,
            Err(why) => return untrusted(format!("its lock file: {why}")),
        };
        files
            .iter()
            .filter_map(|file| match self.read(file) {
                Ok(record) => Some(self.recover_one(record)),
                Err(trust::Refusal::Gone) => None,
                Err(trust::Refusal::Untrusted(why)) => Some(Outcome::Invalid {
                    file: self.shown(file),
                    why,
                }),
            })
            .collect()
    }

    fn recover_one(&self, record: Record) -> Outcome {
        let Record {
            key,
            original,
            set,
            pid,
            ..
        } = record.clone();
        if record.writer_alive() {
            return Outcome::InUse { key, pid };
        }
        let (Some(original), Some(set)) = (original, set) else {
            self.forget(&key);
            return Outcome::Released { key, pid };
        };
        let path = match self.sysctl_path(&key) {
            Ok(path) => path,
            Err(e) => {
                return Outcome::Failed {
                    key,
                    why: e.to_string(),
                };
            }
        };
        let now = match trust::read_sysctl(&path) {
            Ok(v) => sysctl::normalize(&v),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.forget(&key);
                return Outcome::KeyGone { key, pid };
            }
            Err(e) => {
                return Outcome::Failed {
                    key,
                    why: crate::oneline::io_text(&e),
                };
            }
        };
        if now != set {
            self.forget(&key);
            return if now == original {
                Outcome::AlreadyBack {
                    key,
                    value: original,
                    pid,
                }
            } else {
                Outcome::ChangedMeanwhile {
                    key,
                    original,
                    set,
                    pid,
                    now,
                }
            };
        }
        if let Err(e) = trust::write_sysctl(&path, &original) {
            // Kept, so a later run (or --restore) can try again.
            return Outcome::Failed {
                key,
                why: crate::oneline::io_text(&e),
            };
        }
        self.forget(&key);
        Outcome::Restored {
            key,
            value: original,
            pid,
        }
    }
}

/// A key held in the journal by this process (see [`Journal::claim`]).
/// Dropping it releases the key, unless a change may still be in force:
/// then the record stays for the next netlat run.
pub struct Claim<'a> {
    journal: &'a Journal,
    key: String,
    in_force: Cell<bool>,
}

impl Claim<'_> {
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn journal(&self) -> &Journal {
        self.journal
    }

    /// Records, before the write, that `set` replaces `original`.
    pub fn changing(&self, original: &str, set: &str) -> Result<(), JournalError> {
        self.journal
            .put(&Record::mine(&self.key, Some((original, set))), false)?;
        self.in_force.set(true);
        Ok(())
    }

    /// Records that the original is back (the key still held). If this
    /// fails, the record still names the change: a later run finds the
    /// original in force and drops it.
    pub fn unchanged(&self) -> Result<(), JournalError> {
        self.journal.put(&Record::mine(&self.key, None), false)?;
        self.in_force.set(false);
        Ok(())
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if !self.in_force.get() {
            self.journal.forget(&self.key);
        }
    }
}

/// At start-up of every netlat run as root: finish what a killed netlat
/// left, one line on stderr each. Cheap when there is nothing to do.
pub fn recover_at_start() {
    for outcome in Journal::host().recover() {
        if !matches!(outcome, Outcome::InUse { .. }) {
            eprintln!("{outcome}");
        }
    }
}

/// Field 22 of /proc/PID/stat; None if there is no such process.
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

fn parse_start_time(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: count
    // fields from the last ')'. Field 3 is the first after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

#[cfg(test)]
mod tests;
