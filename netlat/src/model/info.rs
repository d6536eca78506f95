//! `netlat info` as plain data: what the kernel offers, and which backend
//! the tracing commands would pick for the functions of "The story of one
//! latency spike".

use serde::{Serialize, Serializer, ser::SerializeMap as _};

pub const INFO_SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Yes,
    No,
    /// The probe could not tell (say why in the detail).
    Unknown,
    /// Only root can run this probe.
    NeedsRoot,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Yes => "yes",
            Status::No => "no",
            Status::Unknown => "unknown",
            Status::NeedsRoot => "needs root",
        }
    }
}

/// One probe's answer: for "yes", what was seen; otherwise the reason.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Answer {
    pub status: Status,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InfoReport {
    pub schema: u32,
    /// `netlat --version`'s text.
    pub version: String,
    pub kernel: String,
    pub arch: String,
    /// Whether this run could do the probes that need root.
    pub root: bool,
    /// In table order; JSON: an object keyed by each check's key.
    #[serde(serialize_with = "keyed")]
    pub capabilities: Vec<Capability>,
    /// The commands that pick a backend as `backends` says.
    pub picked_by: Vec<String>,
    #[serde(serialize_with = "keyed")]
    pub backends: Vec<Pick>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Capability {
    #[serde(skip)]
    pub key: String,
    pub name: String,
    #[serde(flatten)]
    pub answer: Answer,
}

/// What `--backend auto` does for one function on this kernel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Pick {
    #[serde(skip)]
    pub function: String,
    pub status: Status,
    /// The backend that attached (status yes).
    pub backend: Option<String>,
    pub detail: Option<String>,
    /// Backends tried before it, each with why it could not serve.
    pub skipped: Vec<Skipped>,
    /// Why none could (status no), or what stopped the check.
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub backend: String,
    pub reason: String,
}

/// Rows that serialize as `{key: row, ...}`, in their order.
trait Keyed {
    fn key(&self) -> &str;
}

impl Keyed for Capability {
    fn key(&self) -> &str {
        &self.key
    }
}

impl Keyed for Pick {
    fn key(&self) -> &str {
        &self.function
    }
}

fn keyed<S: Serializer, T: Keyed + Serialize>(rows: &[T], s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(rows.len()))?;
    for row in rows {
        map.serialize_entry(row.key(), row)?;
    }
    map.end()
}
