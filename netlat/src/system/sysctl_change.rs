//! Changing one sysctl for a while and putting it back: journaled before
//! the write (see `journal`), restored on every way out of the process
//! that runs destructors, and never over a value someone else set meanwhile.
//! When in doubt (the journal cannot be updated, the value cannot be read)
//! the record stays and the error says what is left.

use std::path::PathBuf;

use super::{
    journal::{Claim, JournalError},
    procfs::sysctl,
};

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("{key} is read-only (its /proc/sys file has no write permission)")]
    ReadOnly { key: String },
    #[error("cannot set {key} = {value}: {why}")]
    Write {
        key: String,
        value: String,
        why: String,
    },
    #[error("{key} = {set} was set, but its restore record could not be updated ({why}); {left}")]
    Unjournaled {
        key: String,
        set: String,
        why: String,
        left: String,
    },
    #[error(
        "cannot read {key} to put it back ({why}): it may still be {set} (it was {original}); its restore record stays, for `netlat experiment --restore`"
    )]
    Unread {
        key: String,
        set: String,
        original: String,
        why: String,
    },
    #[error(
        "cannot put {key} back to {original} ({why}): it is still {set}; its restore record stays, for `netlat experiment --restore`"
    )]
    Unrestored {
        key: String,
        set: String,
        original: String,
        why: String,
    },
}

/// What putting the original back did.
#[derive(Debug, PartialEq, Eq)]
pub enum Restore {
    Restored,
    /// Someone changed the value during the run: left as they set it.
    LeftAlone {
        now: String,
    },
}

/// A sysctl set to a new value; dropping it puts the original back, so an
/// error or a panic between apply and restore cannot leave the host tuned.
pub struct Change<'c, 'j> {
    claim: &'c Claim<'j>,
    path: PathBuf,
    original: String,
    /// The value as the kernel reads it back after the write.
    set: String,
    done: bool,
}

impl<'c, 'j> Change<'c, 'j> {
    /// Journals, then writes `value`, on the key `claim` holds.
    pub fn apply(
        claim: &'c Claim<'j>,
        value: &str,
        original: &str,
    ) -> Result<Change<'c, 'j>, ChangeError> {
        let key = claim.key();
        let path = claim
            .journal()
            .sysctl_path(key)
            .map_err(JournalError::Key)?;
        claim.changing(original, value)?;
        if let Err(why) = write(&path, value) {
            // Nothing was written; if the record cannot say so, a later run
            // finds the original in force and drops it.
            let _ = claim.unchanged();
            return Err(ChangeError::Write {
                key: key.to_owned(),
                value: value.to_owned(),
                why,
            });
        }
        // The kernel may print the value differently from how it was given;
        // the journal must hold what a later run will read.
        let set = read(&path).unwrap_or_else(|_| value.to_owned());
        if set != value
            && let Err(e) = claim.changing(original, &set)
        {
            // The record names a value that is not in force: a later run
            // would take it for someone else's. Put the original back now.
            let left = match write(&path, original) {
                Ok(()) => {
                    let _ = claim.unchanged();
                    format!("it was put back to {original} at once, nothing is left changed")
                }
                Err(why) => format!(
                    "putting it back failed too ({why}): it is left at {set}; set it back with sysctl -w '{key}={original}'"
                ),
            };
            return Err(ChangeError::Unjournaled {
                key: key.to_owned(),
                set,
                why: e.to_string(),
                left,
            });
        }
        Ok(Change {
            claim,
            path,
            original: original.to_owned(),
            set,
            done: false,
        })
    }

    /// The value in force, as the kernel prints it.
    pub fn value(&self) -> &str {
        &self.set
    }

    /// Puts the original back unless the value is no longer the one set.
    pub fn restore(mut self) -> Result<Restore, ChangeError> {
        self.done = true;
        let key = self.claim.key().to_owned();
        // Unreadable is not "changed by someone": keep the record.
        let now = read(&self.path).map_err(|why| ChangeError::Unread {
            key: key.clone(),
            set: self.set.clone(),
            original: self.original.clone(),
            why,
        })?;
        if now != self.set {
            // The newer value was somebody's choice; nothing of ours is left.
            let _ = self.claim.unchanged();
            return Ok(Restore::LeftAlone { now });
        }
        write(&self.path, &self.original).map_err(|why| ChangeError::Unrestored {
            key,
            set: self.set.clone(),
            original: self.original.clone(),
            why,
        })?;
        // If this fails the record still names the change, and a later run
        // finds the original back and drops it.
        let _ = self.claim.unchanged();
        Ok(Restore::Restored)
    }
}

impl Drop for Change<'_, '_> {
    fn drop(&mut self) {
        if !self.done
            && read(&self.path).as_deref() == Ok(self.set.as_str())
            && write(&self.path, &self.original).is_ok()
        {
            // If it fails, the record stays for the next netlat run.
            let _ = self.claim.unchanged();
        }
    }
}

/// Writes `value`, reads it back and restores at once, so a bad value or a
/// read-only key is found before a long run rather than after it. Returns
/// the value as the kernel reads it back.
pub fn trial(claim: &Claim<'_>, value: &str, original: &str) -> Result<String, ChangeError> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = claim
        .journal()
        .sysctl_path(claim.key())
        .map_err(JournalError::Key)?;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o222 == 0
    {
        return Err(ChangeError::ReadOnly {
            key: claim.key().to_owned(),
        });
    }
    let change = Change::apply(claim, value, original)?;
    let set = change.value().to_owned();
    change.restore()?;
    Ok(set)
}

fn read(path: &std::path::Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|v| sysctl::normalize(&v))
        .map_err(|e| crate::oneline::io_text(&e))
}

fn write(path: &std::path::Path, value: &str) -> Result<(), String> {
    // Never creates a file: the key exists, or the write fails.
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, value.as_bytes()))
        .map_err(|e| crate::oneline::io_text(&e))
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::system::journal::Journal;
    use netlat_testkit::scratch::Scratch;

    fn scratch(value: &str) -> (Scratch, Journal) {
        let dir = Scratch::new("sysctl-change");
        fs::create_dir_all(dir.join("sys/net/core")).unwrap();
        fs::write(dir.join("sys/net/core/somaxconn"), value).unwrap();
        let journal = Journal::at(&dir.join("run"), &dir.join("sys"));
        (dir, journal)
    }

    fn record(dir: &Scratch) -> Option<serde_json::Value> {
        let text = fs::read_to_string(dir.join("run/sysctl.net.core.somaxconn.json")).ok()?;
        Some(serde_json::from_str(&text).unwrap())
    }

    /// The kernel reads "1  2" back as "1 2": the record must be updated
    /// to that. If that write fails, the original goes back at once.
    #[test]
    fn a_failed_second_journal_write_puts_the_original_back() {
        let (dir, journal) = scratch("4096");
        let claim = journal.claim("net.core.somaxconn").unwrap();
        journal.puts_left.set(Some(1));
        let err = Change::apply(&claim, "1  2", "4096").err().unwrap();
        assert_eq!(
            err.to_string(),
            format!(
                "net.core.somaxconn = 1 2 was set, but its restore record could not be updated (cannot write the restore record {}: No space left on device); it was put back to 4096 at once, nothing is left changed",
                dir.join("run/sysctl.net.core.somaxconn.json").display()
            )
        );
        assert_eq!(
            fs::read_to_string(dir.join("sys/net/core/somaxconn")).unwrap(),
            "4096"
        );
        // The record still names the first write; a later run finds the
        // original in force and drops it.
        assert_eq!(record(&dir).unwrap()["set"], "1  2");
        drop(claim);
        journal.puts_left.set(None);
        let outcomes = journal.recover();
        assert!(
            matches!(
                outcomes[..],
                [crate::system::journal::Outcome::InUse { .. }]
            ),
            "this process still holds it: {outcomes:?}"
        );
    }

    /// Unreadable at restore time is not "changed by someone else".
    #[test]
    fn an_unreadable_value_at_restore_keeps_the_record() {
        let (dir, journal) = scratch("4096");
        let claim = journal.claim("net.core.somaxconn").unwrap();
        let change = Change::apply(&claim, "8192", "4096").unwrap();
        let path = dir.join("sys/net/core/somaxconn");
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        let err = change.restore().unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read net.core.somaxconn to put it back (Is a directory): it may still be 8192 (it was 4096); its restore record stays, for `netlat experiment --restore`"
        );
        drop(claim);
        let kept = record(&dir).expect("the record stays");
        assert_eq!(
            (&kept["original"], &kept["set"]),
            (&"4096".into(), &"8192".into())
        );
    }

    #[test]
    fn a_normal_change_and_restore_leaves_nothing() {
        let (dir, journal) = scratch("4096");
        let claim = journal.claim("net.core.somaxconn").unwrap();
        assert_eq!(trial(&claim, "8192", "4096").unwrap(), "8192");
        assert_eq!(
            record(&dir).unwrap()["set"],
            serde_json::Value::Null,
            "held, unchanged"
        );
        let change = Change::apply(&claim, "8192", "4096").unwrap();
        assert_eq!(record(&dir).unwrap()["set"], "8192");
        assert_eq!(change.restore().unwrap(), Restore::Restored);
        assert_eq!(
            fs::read_to_string(dir.join("sys/net/core/somaxconn")).unwrap(),
            "4096"
        );
        drop(claim);
        assert_eq!(record(&dir), None);
    }
}
