//! Changing one sysctl for a while and putting it back: journaled before
//! the write (see `journal`), restored on every way out of the process
//! that runs destructors, and never over a value someone else set meanwhile.

use super::{
    journal::{Journal, JournalError, Record},
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
pub struct Change<'a> {
    journal: &'a Journal,
    key: String,
    original: String,
    /// The value as the kernel reads it back after the write.
    set: String,
    done: bool,
}

impl<'a> Change<'a> {
    /// Journals, then writes `value`.
    pub fn apply(
        journal: &'a Journal,
        key: &str,
        value: &str,
        original: &str,
    ) -> Result<Change<'a>, ChangeError> {
        let journaled = |set: &str| {
            journal
                .record(&Record::mine(key, original, set))
                .map_err(ChangeError::Journal)
        };
        journaled(value)?;
        if let Err(why) = write(key, value) {
            journal.forget(key);
            return Err(ChangeError::Write {
                key: key.to_owned(),
                value: value.to_owned(),
                why,
            });
        }
        // The kernel may print the value differently from how it was given;
        // the journal must hold what a later run will read.
        let set = sysctl::read(key).unwrap_or_else(|| value.to_owned());
        if set != value {
            journaled(&set)?;
        }
        Ok(Change {
            journal,
            key: key.to_owned(),
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
        let now = sysctl::read(&self.key).unwrap_or_default();
        if now != self.set {
            self.journal.forget(&self.key);
            return Ok(Restore::LeftAlone { now });
        }
        write(&self.key, &self.original).map_err(|why| ChangeError::Write {
            key: self.key.clone(),
            value: self.original.clone(),
            why,
        })?;
        self.journal.forget(&self.key);
        Ok(Restore::Restored)
    }
}

impl Drop for Change<'_> {
    fn drop(&mut self) {
        if !self.done && sysctl::read(&self.key).as_deref() == Some(self.set.as_str()) {
            // The record stays if this fails, for the next netlat run.
            if write(&self.key, &self.original).is_ok() {
                self.journal.forget(&self.key);
            }
        }
    }
}

/// Writes `value`, reads it back and restores at once, so a bad value or a
/// read-only key is found before a long run rather than after it. Returns
/// the value as the kernel reads it back.
pub fn trial(
    journal: &Journal,
    key: &str,
    value: &str,
    original: &str,
) -> Result<String, ChangeError> {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(sysctl::path(key))
        && meta.permissions().mode() & 0o222 == 0
    {
        return Err(ChangeError::ReadOnly {
            key: key.to_owned(),
        });
    }
    let change = Change::apply(journal, key, value, original)?;
    let set = change.value().to_owned();
    change.restore()?;
    Ok(set)
}

fn write(key: &str, value: &str) -> Result<(), String> {
    std::fs::write(sysctl::path(key), value).map_err(|e| crate::oneline::io_text(&e))
}
