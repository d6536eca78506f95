//! Where `struct sock` keeps what a slow-call record shows (addresses,
//! ports, receive buffer and memory), found in the running kernel's BTF and
//! handed to the entry program: no struct layout is compiled in.

use std::path::Path;

use netlat_common::{NO_OFFSET, SockOffsets};

use super::kernel_btf::KernelBtf;

/// What the kernel's BTF says about a function's first argument.
#[derive(Debug, PartialEq, Eq)]
pub enum SocketArg {
    /// A `struct sock *`, with where its fields are.
    Socket(SockOffsets),
    /// Something else (its C type), or no argument at all ("void").
    NotASocket(String),
    /// BTF could not tell (no BTF, or the function is not in it): why.
    Unknown(String),
}

/// Members read, as `(SockOffsets field, path in struct sock, size)`.
/// `skc_*` live in the `sock_common` at the start of every socket;
/// `sk_rmem_alloc` is a macro for `sk_backlog.rmem_alloc` (an atomic_t).
/// The IPv6 addresses exist only with CONFIG_IPV6, so they are optional.
const FIELDS: &[(&str, &str, usize, bool)] = &[
    ("family", "__sk_common.skc_family", 2, true),
    ("local_port", "__sk_common.skc_num", 2, true),
    ("remote_port", "__sk_common.skc_dport", 2, true),
    ("local_v4", "__sk_common.skc_rcv_saddr", 4, true),
    ("remote_v4", "__sk_common.skc_daddr", 4, true),
    ("local_v6", "__sk_common.skc_v6_rcv_saddr", 16, false),
    ("remote_v6", "__sk_common.skc_v6_daddr", 16, false),
    ("rcvbuf", "sk_rcvbuf", 4, true),
    ("rmem_alloc", "sk_backlog.rmem_alloc.counter", 4, true),
];

impl SocketArg {
    pub fn find(function: &str, btf: &Path) -> SocketArg {
        if !btf.exists() {
            return SocketArg::Unknown(format!(
                "this kernel has no BTF ({}, CONFIG_DEBUG_INFO_BTF)",
                btf.display()
            ));
        }
        let btf = match KernelBtf::open(btf) {
            Ok(b) => b,
            Err(e) => return SocketArg::Unknown(e),
        };
        let first = match btf.first_param(function) {
            Ok(t) => t,
            Err(e) => return SocketArg::Unknown(e),
        };
        if first != super::kernel_btf::SOCKET_POINTER {
            return SocketArg::NotASocket(first);
        }
        match offsets(&btf) {
            Ok(o) => SocketArg::Socket(o),
            Err(e) => SocketArg::Unknown(e),
        }
    }
}

fn offsets(btf: &KernelBtf) -> Result<SockOffsets, String> {
    let mut o = SockOffsets {
        enabled: 1,
        ..SockOffsets::NONE
    };
    for &(field, path, size, required) in FIELDS {
        let offset = match btf.member("sock", path) {
            Ok(m) if m.size == size => m.offset,
            Ok(m) => {
                return Err(format!(
                    "struct sock.{path} is {} bytes in this kernel's BTF, not {size}",
                    m.size
                ));
            }
            Err(_) if !required => NO_OFFSET,
            Err(e) => return Err(e),
        };
        let slot = match field {
            "family" => &mut o.family,
            "local_port" => &mut o.local_port,
            "remote_port" => &mut o.remote_port,
            "local_v4" => &mut o.local_v4,
            "remote_v4" => &mut o.remote_v4,
            "local_v6" => &mut o.local_v6,
            "remote_v6" => &mut o.remote_v6,
            "rcvbuf" => &mut o.rcvbuf,
            _ => &mut o.rmem_alloc,
        };
        *slot = offset;
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracing::kernel_btf::VMLINUX;

    // The running kernel's own BTF (world-readable).
    #[test]
    fn finds_every_field_of_a_socket_argument() {
        let SocketArg::Socket(o) = SocketArg::find("tcp_sendmsg", Path::new(VMLINUX)) else {
            panic!("tcp_sendmsg takes a struct sock * on every kernel with BTF");
        };
        for (name, offset) in [
            ("family", o.family),
            ("local_port", o.local_port),
            ("remote_port", o.remote_port),
            ("local_v4", o.local_v4),
            ("remote_v4", o.remote_v4),
            ("rcvbuf", o.rcvbuf),
            ("rmem_alloc", o.rmem_alloc),
        ] {
            assert_ne!(offset, NO_OFFSET, "{name}");
        }
        // sock_common comes first; the ports sit next to each other in
        // skc_portpair (dport, then num); the buffer lies after sock_common.
        assert!(o.family < o.rcvbuf && o.rmem_alloc < 4096, "{o:?}");
        assert_eq!(o.local_port, o.remote_port + 2, "{o:?}");
        assert_eq!(o.enabled, 1);
    }

    #[test]
    fn other_first_arguments_are_not_sockets() {
        assert_eq!(
            SocketArg::find("tcp_v4_rcv", Path::new(VMLINUX)),
            SocketArg::NotASocket("struct sk_buff *".into())
        );
        assert!(matches!(
            SocketArg::find("tcp_sendmsg", Path::new("/nonexistent")),
            SocketArg::Unknown(why) if why.contains("no BTF")
        ));
    }
}
