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

use std::{
    fs,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use super::{atomic_file, procfs::sysctl};

pub const DIR: &str = "/run/netlat";

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot keep a restore record in {dir}, so nothing was changed: {why}")]
    Dir { dir: String, why: String },
    #[error(transparent)]
    Write(#[from] atomic_file::WriteError),
    #[error("{key} is being changed by another netlat (pid {pid}): wait for it to end")]
    Busy { key: String, pid: u32 },
}

/// A change in force: what to put back, and who may still do it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub key: String,
    /// The value before netlat changed it.
    pub original: String,
    /// The value netlat set: only this is ever overwritten on restore.
    pub set: String,
    pub pid: u32,
    /// The process's start time (clock ticks since boot, /proc/PID/stat
    /// field 22), so a reused pid is not taken for the writer.
    pub pid_start: u64,
}

impl Record {
    /// A record for this process.
    pub fn mine(key: &str, original: &str, set: &str) -> Record {
        let pid = std::process::id();
        Record {
            key: key.to_owned(),
            original: original.to_owned(),
            set: set.to_owned(),
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
        record: Record,
        now: String,
    },
    /// Its process still runs: it will restore the value itself.
    InUse {
        key: String,
        pid: u32,
    },
    Failed {
        key: String,
        why: String,
    },
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Restored { key, value, pid } => write!(
                f,
                "netlat: restored {key} = {value} (netlat pid {pid} changed it and ended without restoring it)"
            ),
            Outcome::ChangedMeanwhile { record, now } => write!(
                f,
                "netlat: not restoring {}: it is now {now}, not the {} netlat pid {} set, so someone changed it since; it was {} before netlat",
                record.key, record.set, record.pid, record.original
            ),
            Outcome::InUse { key, pid } => {
                write!(
                    f,
                    "netlat: {key} is changed by netlat pid {pid}, still running: left to it"
                )
            }
            Outcome::Failed { key, why } => write!(f, "netlat: cannot restore {key}: {why}"),
        }
    }
}

pub struct Journal {
    dir: PathBuf,
    proc_sys: PathBuf,
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
        }
    }

    fn file(&self, key: &str) -> PathBuf {
        self.dir
            .join(format!("sysctl.{}.json", key.replace('/', "%")))
    }

    /// Writes `record` before the change it describes; refuses while another
    /// live netlat holds a record for the same key.
    pub fn record(&self, record: &Record) -> Result<(), JournalError> {
        fs::create_dir_all(&self.dir).map_err(|e| JournalError::Dir {
            dir: self.dir.display().to_string(),
            why: crate::oneline::io_text(&e),
        })?;
        let text = serde_json::to_string(record).expect("a record serializes") + "\n";
        let path = self.file(&record.key);
        // Claimed in one step: two netlat runs changing one key at the same
        // moment cannot both pass a look-then-write.
        if atomic_file::create(&path, text.as_bytes())? {
            return Ok(());
        }
        if let Some(other) = self.read(&record.key)
            && other.pid != record.pid
            && other.writer_alive()
        {
            return Err(JournalError::Busy {
                key: record.key.clone(),
                pid: other.pid,
            });
        }
        // Ours (a value re-read after writing it), or a dead writer's.
        atomic_file::write(&path, text.as_bytes())?;
        Ok(())
    }

    /// Drops the record once the original value is back.
    pub fn forget(&self, key: &str) {
        let _ = fs::remove_file(self.file(key));
    }

    fn read(&self, key: &str) -> Option<Record> {
        let text = fs::read_to_string(self.file(key)).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn records(&self) -> Vec<Record> {
        // No directory is the common case: one failed syscall.
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut records: Vec<Record> = entries
            .filter_map(Result::ok)
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.starts_with("sysctl.") && name.ends_with(".json")
            })
            .filter_map(|e| serde_json::from_str(&fs::read_to_string(e.path()).ok()?).ok())
            .collect();
        records.sort_by(|a: &Record, b| a.key.cmp(&b.key));
        records
    }

    /// Puts back every value whose writer is gone; one outcome per record.
    pub fn recover(&self) -> Vec<Outcome> {
        self.records()
            .into_iter()
            .map(|r| self.recover_one(r))
            .collect()
    }

    fn recover_one(&self, record: Record) -> Outcome {
        if record.writer_alive() {
            return Outcome::InUse {
                key: record.key,
                pid: record.pid,
            };
        }
        let path = self.proc_sys.join(record.key.replace('.', "/"));
        let now = match fs::read_to_string(&path) {
            Ok(v) => sysctl::normalize(&v),
            Err(e) => {
                return Outcome::Failed {
                    key: record.key,
                    why: crate::oneline::io_text(&e),
                };
            }
        };
        if now != record.set {
            self.forget(&record.key);
            return Outcome::ChangedMeanwhile { record, now };
        }
        if let Err(e) = fs::write(&path, &record.original) {
            // Kept, so a later run (or --restore) can try again.
            return Outcome::Failed {
                key: record.key,
                why: crate::oneline::io_text(&e),
            };
        }
        self.forget(&record.key);
        Outcome::Restored {
            key: record.key,
            value: record.original,
            pid: record.pid,
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
    use super::*;

    /// A journal and a fake /proc/sys with one key.
    fn scratch(name: &str, value: &str) -> (PathBuf, Journal) {
        let dir =
            std::env::temp_dir().join(format!("netlat-journal-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("sys/net/core")).unwrap();
        fs::write(dir.join("sys/net/core/somaxconn"), format!("{value}\n")).unwrap();
        let journal = Journal::at(&dir.join("run"), &dir.join("sys"));
        (dir, journal)
    }

    fn dead(set: &str) -> Record {
        Record {
            key: "net.core.somaxconn".into(),
            original: "4096".into(),
            set: set.into(),
            // Above any pid_max (4194304).
            pid: 0x7fff_fff0,
            pid_start: 1,
        }
    }

    fn value(dir: &Path) -> String {
        fs::read_to_string(dir.join("sys/net/core/somaxconn")).unwrap()
    }

    #[test]
    fn a_dead_writers_value_is_put_back_once() {
        let (dir, journal) = scratch("dead", "8192");
        journal.record(&dead("8192")).unwrap();
        let outcomes = journal.recover();
        assert_eq!(
            outcomes[0].to_string(),
            "netlat: restored net.core.somaxconn = 4096 (netlat pid 2147483632 changed it and ended without restoring it)"
        );
        assert_eq!(value(&dir), "4096");
        assert_eq!(journal.recover(), [], "the record is gone");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_value_someone_else_changed_is_left_and_said() {
        let (dir, journal) = scratch("changed", "1000");
        journal.record(&dead("8192")).unwrap();
        let outcomes = journal.recover();
        assert_eq!(
            outcomes[0].to_string(),
            "netlat: not restoring net.core.somaxconn: it is now 1000, not the 8192 netlat pid 2147483632 set, so someone changed it since; it was 4096 before netlat"
        );
        assert_eq!(value(&dir), "1000\n");
        assert_eq!(journal.recover(), []);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_live_writer_keeps_its_record_and_blocks_others() {
        let (dir, journal) = scratch("live", "8192");
        // The parent process (cargo's test runner) stands in for another
        // netlat that is still running.
        let parent = std::os::unix::process::parent_id();
        let other = Record {
            pid: parent,
            pid_start: start_time(parent).unwrap(),
            ..Record::mine("net.core.somaxconn", "4096", "8192")
        };
        journal.record(&other).unwrap();
        assert!(matches!(journal.recover()[..], [Outcome::InUse { .. }]));
        assert_eq!(value(&dir), "8192\n");
        let err = journal
            .record(&Record::mine("net.core.somaxconn", "8192", "1"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "net.core.somaxconn is being changed by another netlat (pid {parent}): wait for it to end"
            )
        );
        // A reused pid (same number, other start time) is not the writer.
        journal
            .record(&Record {
                pid_start: other.pid_start + 1,
                ..other
            })
            .unwrap();
        assert!(matches!(journal.recover()[..], [Outcome::Restored { .. }]));
        assert_eq!(value(&dir), "4096");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn start_time_is_field_22_even_with_odd_names() {
        let stat = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100";
        assert_eq!(parse_start_time(stat), Some(987654));
        assert!(start_time(std::process::id()).is_some());
        assert_eq!(start_time(0x7fff_fff0), None);
    }
}
