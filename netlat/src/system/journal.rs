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
use crate::render::printable;

mod trust;

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
mod tests {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};

    use super::*;
    use netlat_testkit::scratch::Scratch;

    /// A journal and a fake /proc/sys with one key.
    fn scratch(value: &str) -> (Scratch, Journal) {
        let dir = Scratch::new("journal");
        fs::create_dir_all(dir.join("sys/net/core")).unwrap();
        fs::write(dir.join("sys/net/core/somaxconn"), format!("{value}\n")).unwrap();
        let journal = Journal::at(&dir.join("run"), &dir.join("sys"));
        (dir, journal)
    }

    fn dead(set: &str) -> Record {
        Record {
            key: "net.core.somaxconn".into(),
            original: Some("4096".into()),
            set: Some(set.into()),
            // Above any pid_max (4194304).
            pid: 0x7fff_fff0,
            pid_start: 1,
        }
    }

    /// Writes a record as a netlat would have (the directory made first).
    fn put(journal: &Journal, record: &Record) {
        trust::create_dir(&journal.dir).unwrap();
        journal.put(record, false).unwrap();
    }

    fn value(dir: &Scratch) -> String {
        fs::read_to_string(dir.join("sys/net/core/somaxconn")).unwrap()
    }

    fn is_root() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

    #[test]
    fn a_dead_writers_value_is_put_back_once() {
        let (dir, journal) = scratch("8192");
        put(&journal, &dead("8192"));
        let outcomes = journal.recover();
        assert_eq!(
            outcomes[0].to_string(),
            "netlat: restored net.core.somaxconn = 4096 (netlat pid 2147483632 changed it and ended without restoring it)"
        );
        assert_eq!(value(&dir), "4096");
        assert_eq!(journal.recover(), [], "the record is gone");
    }

    #[test]
    fn a_value_someone_else_changed_is_left_and_said() {
        let (dir, journal) = scratch("1000");
        put(&journal, &dead("8192"));
        let outcomes = journal.recover();
        assert_eq!(
            outcomes[0].to_string(),
            "netlat: not restoring net.core.somaxconn: it is now 1000, not the 8192 netlat pid 2147483632 set, so someone changed it since; it was 4096 before netlat"
        );
        assert_eq!(value(&dir), "1000\n");
        assert_eq!(journal.recover(), []);
    }

    #[test]
    fn a_live_writer_keeps_its_record_and_blocks_claims() {
        let (dir, journal) = scratch("8192");
        // The parent process (cargo's test runner) stands in for another
        // netlat that is still running.
        let parent = std::os::unix::process::parent_id();
        let other = Record {
            pid: parent,
            pid_start: start_time(parent).unwrap(),
            ..Record::mine("net.core.somaxconn", Some(("4096", "8192")))
        };
        put(&journal, &other);
        assert!(matches!(journal.recover()[..], [Outcome::InUse { .. }]));
        assert_eq!(value(&dir), "8192\n");
        let err = journal.claim("net.core.somaxconn").err().unwrap();
        assert_eq!(
            err.to_string(),
            format!(
                "net.core.somaxconn is being changed by another netlat (pid {parent}): wait for it to end"
            )
        );
        // A reused pid (same number, other start time) is not the writer,
        // and its change is not taken over before it is restored.
        put(
            &journal,
            &Record {
                pid_start: other.pid_start + 1,
                ..other
            },
        );
        assert!(matches!(
            journal.claim("net/core/somaxconn"),
            Err(JournalError::Unrestored { .. })
        ));
        assert!(matches!(journal.recover()[..], [Outcome::Restored { .. }]));
        assert_eq!(value(&dir), "4096");
    }

    #[test]
    fn a_claim_holds_the_key_until_dropped() {
        let (_dir, journal) = scratch("4096");
        let claim = journal.claim("net/core/somaxconn").unwrap();
        assert_eq!(claim.key(), "net.core.somaxconn");
        let file = journal.file("net.core.somaxconn");
        let held: Record = serde_json::from_str(&fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!((held.original, held.set), (None, None));
        assert_eq!(held.pid, std::process::id());
        claim.changing("4096", "8192").unwrap();
        drop(claim);
        assert!(file.exists(), "a change in force keeps its record");
        put(
            &journal,
            &Record {
                pid: 0x7fff_fff0,
                ..Record::mine("net.core.somaxconn", None)
            },
        );
        // A dead netlat's claim that changed nothing is taken over.
        let claim = journal.claim("net.core.somaxconn").unwrap();
        claim.unchanged().unwrap();
        drop(claim);
        assert!(!file.exists(), "released");
        assert!(matches!(
            journal.claim("net.core.nonexistent"),
            Err(JournalError::Unknown { .. })
        ));
        assert!(matches!(
            journal.claim("../../etc/passwd"),
            Err(JournalError::Key(_))
        ));
    }

    #[test]
    fn the_directory_and_records_are_private_whatever_the_umask() {
        let (_dir, journal) = scratch("4096");
        // SAFETY: umask has no preconditions; restored below.
        let old = unsafe { libc::umask(0) };
        let claim = journal.claim("net.core.somaxconn");
        unsafe { libc::umask(old) };
        let claim = claim.unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&journal.dir), 0o700);
        assert_eq!(mode(&journal.file("net.core.somaxconn")), 0o600);
        drop(claim);
    }

    #[test]
    fn a_directory_others_can_write_is_not_acted_on() {
        let (dir, journal) = scratch("8192");
        put(&journal, &dead("8192"));
        fs::set_permissions(&journal.dir, fs::Permissions::from_mode(0o777)).unwrap();
        let outcomes = journal.recover();
        assert_eq!(
            outcomes.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [format!(
                "netlat: not acting on the restore records in {}: it is writable by others than its owner (mode 777); nothing was restored (look at it, then remove it or make it root's, mode 700)",
                journal.dir.display()
            )]
        );
        assert!(outcomes[0].is_failure());
        assert_eq!(value(&dir), "8192\n", "nothing written");
        assert!(matches!(
            journal.claim("net.core.somaxconn"),
            Err(JournalError::Dir { .. })
        ));
        // A symbolic link in its place is not followed either.
        fs::remove_dir_all(&journal.dir).unwrap();
        fs::create_dir(dir.join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(dir.join("elsewhere"), &journal.dir).unwrap();
        assert!(
            journal.recover()[0]
                .to_string()
                .contains("it is a symbolic link"),
        );
        assert!(journal.claim("net.core.somaxconn").is_err());
        assert_eq!(fs::read_dir(dir.join("elsewhere")).unwrap().count(), 0);
    }

    /// Each hostile record is reported in one line, left as it is, and
    /// nothing is written: not the sysctl, not the file a key points at.
    #[test]
    fn records_not_fit_to_act_on_are_reported_not_acted_on() {
        let (dir, journal) = scratch("8192");
        trust::create_dir(&journal.dir).unwrap();
        let victim = dir.join("victim");
        fs::write(&victim, "keep").unwrap();
        let text = |r: &Record| serde_json::to_string(r).unwrap();
        let planted = |name: &str, body: &str| {
            let path = journal.dir.join(name);
            fs::write(&path, body).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
            path
        };
        let outside = Record {
            key: victim.display().to_string(),
            ..dead("keep")
        };
        planted(
            &format!("sysctl.{}.json", outside.key.replace('/', "%")),
            &text(&outside),
        );
        let dotdot = Record {
            key: "net/../../victim".into(),
            ..dead("8192")
        };
        planted("sysctl.net%..%..%victim.json", &text(&dotdot));
        let elsewhere = planted("sysctl.net.core.other.json", &text(&dead("8192")));
        let writable = planted("sysctl.net.core.somaxconn.json", &text(&dead("8192")));
        fs::set_permissions(&writable, fs::Permissions::from_mode(0o666)).unwrap();
        planted(
            "sysctl.big.json",
            &" ".repeat(MAX_RECORD_BYTES as usize + 1),
        );
        planted("sysctl.junk.json", "{\"key\": 1}");
        std::os::unix::fs::symlink(&victim, journal.dir.join("sysctl.link.json")).unwrap();
        let fifo = std::ffi::CString::new(
            journal
                .dir
                .join("sysctl.fifo.json")
                .as_os_str()
                .as_encoded_bytes(),
        )
        .unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let t = std::time::Instant::now();
        let lines: Vec<String> = journal.recover().iter().map(ToString::to_string).collect();
        assert!(
            t.elapsed() < std::time::Duration::from_secs(2),
            "a FIFO never blocks"
        );
        println!("{}", lines.join("\n"));
        let why = |name: &str| {
            let file = journal.dir.join(name).display().to_string();
            lines
                .iter()
                .find(|l| l.contains(&format!("record {file}: ")))
                .unwrap_or_else(|| panic!("{name} not reported: {lines:?}"))
                .clone()
        };
        assert!(why("sysctl.big.json").contains(
            ": it is larger than 8192 bytes; nothing was written (look at it, then remove it)"
        ));
        assert!(why("sysctl.junk.json").contains("it is not a restore record"));
        assert!(why("sysctl.link.json").contains("it is a symbolic link"));
        assert!(why("sysctl.fifo.json").contains("it is not a regular file"));
        assert!(why("sysctl.net.core.somaxconn.json").contains("writable by others"));
        assert!(why("sysctl.net.core.other.json").contains("belongs in another file"));
        assert!(why("sysctl.net%..%..%victim.json").contains("it has a . or .. component"));
        assert!(
            lines
                .iter()
                .any(|l| l.contains("is not a sysctl name: it starts with /"))
        );
        assert_eq!(lines.len(), 8, "{lines:?}");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(value(&dir), "8192\n");
        assert!(elsewhere.exists() && writable.exists(), "left as they are");
    }

    #[test]
    fn a_record_owned_by_another_user_is_not_acted_on() {
        if !is_root() {
            return println!("skipped: chown needs root");
        }
        let (dir, journal) = scratch("8192");
        put(&journal, &dead("8192"));
        let file = journal.file("net.core.somaxconn");
        std::os::unix::fs::chown(&file, Some(65534), Some(65534)).unwrap();
        let lines: Vec<String> = journal.recover().iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].contains("it is owned by uid 65534, not by uid 0 (this netlat)"),
            "{lines:?}"
        );
        assert_eq!(value(&dir), "8192\n");
        assert!(matches!(
            journal.claim("net.core.somaxconn"),
            Err(JournalError::Untrusted { .. })
        ));
        std::os::unix::fs::chown(&journal.dir, Some(65534), None).unwrap();
        assert!(
            journal.recover()[0]
                .to_string()
                .contains("owned by uid 65534")
        );
        assert_eq!(fs::metadata(&file).unwrap().uid(), 65534, "left as it is");
    }

    #[test]
    fn a_gone_key_is_dropped_after_one_warning_and_values_are_escaped() {
        let (dir, journal) = scratch("8192");
        put(
            &journal,
            &Record {
                key: "net.core.gone".into(),
                ..dead("8192")
            },
        );
        let lines: Vec<String> = journal.recover().iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "netlat: dropped the restore record of netlat pid 2147483632 for net.core.gone: the key no longer exists (its device is gone?)"
            ]
        );
        assert_eq!(journal.recover(), []);
        put(
            &journal,
            &Record {
                original: Some("4096\u{1b}[2J\u{202e}".into()),
                ..dead("1")
            },
        );
        let line = journal.recover()[0].to_string();
        assert!(
            !line.chars().any(|c| c.is_control() || c == '\u{202e}'),
            "{line:?}"
        );
        assert!(line.contains("4096\\u{1b}[2J\\u{202e}"), "{line}");
        // Unreadable now is not "changed by someone": the record stays.
        fs::remove_file(dir.join("sys/net/core/somaxconn")).unwrap();
        fs::create_dir(dir.join("sys/net/core/somaxconn")).unwrap();
        put(&journal, &dead("8192"));
        assert!(matches!(journal.recover()[..], [Outcome::Failed { .. }]));
        assert!(journal.file("net.core.somaxconn").exists());
    }

    #[test]
    fn start_time_is_field_22_even_with_odd_names() {
        let stat = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100";
        assert_eq!(parse_start_time(stat), Some(987654));
        assert!(start_time(std::process::id()).is_some());
        assert_eq!(start_time(0x7fff_fff0), None);
    }
}
