//! Parsers of /proc and /sys files. Each takes text, so fixtures test them;
//! the live readers are thin wrappers that take a [`Root`], so a test can
//! point them at a fixture tree or at another network namespace.
//!
//! Hand-written: /proc/net/netstat and /proc/net/snmp (one generic parser
//! for both: the `procfs` crate has no netstat parser, and its `Snmp`
//! fails whole when a kernel drops or adds one field), softnet_stat,
//! /proc/interrupts and /sys/class/net (not covered by any crate).
//! /proc/net/tcp{,6} is parsed by `procfs-core`.

pub mod interrupts;
pub mod netdev;
pub mod netstat;
pub mod softnet;
pub mod sysctl;
pub mod tcp;
pub mod timer_list;

use std::{
    io,
    path::{Path, PathBuf},
};

/// Why a /proc or /sys file could not be read or understood.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    // The io::Error is in the message rather than a `source`, so a chain
    // printed with `{:#}` does not say it twice.
    #[error("cannot read {}: {}", path.display(), crate::oneline::io_text(error))]
    Io { path: PathBuf, error: io::Error },
    #[error("{what}: line {line}: {why}")]
    Parse {
        what: &'static str,
        line: usize,
        why: String,
    },
}

impl ProcError {
    pub(crate) fn parse(what: &'static str, line: usize, why: impl Into<String>) -> Self {
        ProcError::Parse {
            what,
            line,
            why: why.into(),
        }
    }

    /// True when the file does not exist (an older kernel, a module not
    /// loaded), as opposed to existing but unreadable.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ProcError::Io { error, .. } if error.kind() == io::ErrorKind::NotFound)
    }
}

/// Where the readers look. `/proc/net` is per network namespace: a thread
/// that entered another namespace with `setns` must read
/// `/proc/thread-self/net`, because `/proc/self/net` follows the thread
/// group leader. `/sys/class/net` shows the namespace sysfs was mounted in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Root {
    /// `/proc`: interrupts.
    pub proc: PathBuf,
    /// `/proc/net`: netstat, snmp, softnet_stat, tcp, tcp6.
    pub proc_net: PathBuf,
    /// `/proc/sys`: sysctls.
    pub proc_sys: PathBuf,
    /// `/sys/class/net`: one directory per interface.
    pub sys_class_net: PathBuf,
}

impl Default for Root {
    fn default() -> Self {
        Root::host()
    }
}

impl Root {
    /// The running system, as seen by the process's namespaces.
    pub fn host() -> Root {
        Root {
            proc: "/proc".into(),
            proc_net: "/proc/net".into(),
            proc_sys: "/proc/sys".into(),
            sys_class_net: "/sys/class/net".into(),
        }
    }

    /// The network namespace of the calling thread (after `setns`).
    pub fn this_thread() -> Root {
        Root {
            proc_net: "/proc/thread-self/net".into(),
            ..Root::host()
        }
    }

    /// A copy of the tree under `dir` (`dir/proc/...`, `dir/sys/class/net`),
    /// for fixtures.
    pub fn under(dir: &Path) -> Root {
        Root {
            proc: dir.join("proc"),
            proc_net: dir.join("proc/net"),
            proc_sys: dir.join("proc/sys"),
            sys_class_net: dir.join("sys/class/net"),
        }
    }
}

pub(crate) fn read_text(path: &Path) -> Result<String, ProcError> {
    std::fs::read_to_string(path).map_err(|error| ProcError::Io {
        path: path.to_owned(),
        error,
    })
}
