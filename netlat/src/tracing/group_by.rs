//! `--by`: one histogram per group of calls, keyed by something the entry
//! program reads from the function's arguments.

use std::path::Path;

use crate::{
    tracing::backend::Backend,
    tracing::kernel_btf::{KernelBtf, VMLINUX},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GroupBy {
    /// The socket's receive buffer (sk_rcvbuf) when the call starts, in
    /// power-of-two bands; for functions whose first argument is a
    /// `struct sock *`, such as tcp_collapse.
    Rcvbuf,
}

impl GroupBy {
    pub fn name(self) -> &'static str {
        match self {
            GroupBy::Rcvbuf => "rcvbuf",
        }
    }
}

/// Where the entry program finds the key, for the running kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySource {
    pub by: GroupBy,
    /// Byte offset of `sk_rcvbuf` in `struct sock`.
    pub offset: u32,
}

impl KeySource {
    /// Checks in the kernel's BTF that `function` takes a socket first and
    /// where that socket keeps `sk_rcvbuf`; one line on why not.
    pub fn find(by: GroupBy, function: &str) -> Result<KeySource, String> {
        KeySource::find_in(by, function, Path::new(VMLINUX))
    }

    pub fn find_in(by: GroupBy, function: &str, btf: &Path) -> Result<KeySource, String> {
        let flag = format!("--by {}", by.name());
        if !btf.exists() {
            return Err(format!(
                "{flag} needs kernel BTF ({}, CONFIG_DEBUG_INFO_BTF) to find sk_rcvbuf, and this kernel has none",
                btf.display()
            ));
        }
        let btf = KernelBtf::open(btf).map_err(|e| format!("{flag}: {e}"))?;
        let first = btf.first_param(function).map_err(|e| {
            format!("{flag}: {e}, so netlat cannot tell what its first argument is")
        })?;
        if first != super::kernel_btf::SOCKET_POINTER {
            return Err(format!(
                "{flag} needs a function whose first argument is a struct sock *, and {function}'s is {first} (try tcp_collapse)"
            ));
        }
        let member = btf
            .member("sock", "sk_rcvbuf")
            .map_err(|e| format!("{flag}: {e}"))?;
        if member.size != 4 {
            return Err(format!(
                "{flag}: sk_rcvbuf is {} bytes in this kernel, not an int",
                member.size
            ));
        }
        Ok(KeySource {
            by,
            offset: member.offset,
        })
    }

    /// Where the key was read, for the report.
    pub fn describe(&self) -> String {
        format!(
            "struct sock.sk_rcvbuf at offset {} (kernel BTF)",
            self.offset
        )
    }
}

/// The backends that can read arguments, in the order given.
pub fn argument_backends(by: GroupBy, candidates: &[Backend]) -> Result<Vec<Backend>, String> {
    let usable: Vec<Backend> = candidates
        .iter()
        .copied()
        .filter(|b| b.reads_arguments())
        .collect();
    if usable.is_empty() {
        return Err(format!(
            "--by {} reads the function's first argument, which only the kprobe and fentry backends can do",
            by.name()
        ));
    }
    Ok(usable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_argument_reading_backends() {
        let all = [
            Backend::RawTp,
            Backend::TpBtf,
            Backend::Fentry,
            Backend::Kprobe,
        ];
        assert_eq!(
            argument_backends(GroupBy::Rcvbuf, &all).unwrap(),
            [Backend::Fentry, Backend::Kprobe]
        );
        let err = argument_backends(GroupBy::Rcvbuf, &[Backend::RawTp]).unwrap_err();
        assert!(err.contains("kprobe and fentry"), "{err}");
    }

    #[test]
    fn missing_btf_is_one_line() {
        let err = KeySource::find_in(GroupBy::Rcvbuf, "tcp_collapse", Path::new("/nonexistent"))
            .unwrap_err();
        assert!(
            err.contains("needs kernel BTF") && !err.contains('\n'),
            "{err}"
        );
    }
}
