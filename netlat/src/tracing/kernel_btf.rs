//! Questions netlat asks of the running kernel's BTF: where a struct member
//! lies, and what a function's first argument is. Offsets come from here and
//! are handed to the eBPF programs, so no struct layout is compiled in.
//!
//! Parsed only when a run needs it (`--by`): a whole vmlinux is ~6 MB.

use std::path::Path;

use btfparse::{Offset, Readable, TypeInformation, TypeVariant};

pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// Why BTF-typed programs (fentry, tp_btf) cannot load here.
pub fn kernel_btf_file() -> Result<(), String> {
    if std::path::Path::new(VMLINUX).exists() {
        Ok(())
    } else {
        Err(format!(
            "this kernel has no BTF ({VMLINUX}, CONFIG_DEBUG_INFO_BTF)"
        ))
    }
}

pub struct KernelBtf {
    types: TypeInformation,
}

/// btfparse reads through this; the file is read once, whole.
struct Bytes(Vec<u8>);

impl Readable for Bytes {
    fn read(&self, offset: u64, buffer: &mut [u8]) -> btfparse::Result<()> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match start
            .checked_add(buffer.len())
            .and_then(|end| self.0.get(start..end))
        {
            Some(bytes) => {
                buffer.copy_from_slice(bytes);
                Ok(())
            }
            None => Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into()),
        }
    }
}

/// A member's place in its struct.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    pub offset: u32,
    pub size: usize,
}

impl KernelBtf {
    pub fn open(path: &Path) -> Result<KernelBtf, String> {
        let bytes = std::fs::read(path).map_err(|e| {
            format!(
                "cannot read kernel BTF {}: {}",
                path.display(),
                crate::oneline::io_text(&e)
            )
        })?;
        KernelBtf::parse(bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(bytes: Vec<u8>) -> Result<KernelBtf, String> {
        let types =
            TypeInformation::new(&Bytes(bytes)).map_err(|e| format!("cannot parse BTF: {e:?}"))?;
        Ok(KernelBtf { types })
    }

    /// Where `member` of `struct strukt` lies, looking through anonymous
    /// unions and structs as C does.
    pub fn member(&self, strukt: &str, member: &str) -> Result<Member, String> {
        let id = self
            .struct_id(strukt)
            .ok_or_else(|| format!("the kernel's BTF has no struct {strukt}"))?;
        let (member_id, offset) = self
            .types
            .offset_of(id, member)
            .map_err(|_| format!("struct {strukt} has no member {member} in the kernel's BTF"))?;
        let Offset::ByteOffset(offset) = offset else {
            return Err(format!("{strukt}.{member} is a bit field"));
        };
        let size = self
            .types
            .size_of(member_id)
            .map_err(|e| format!("cannot size {strukt}.{member}: {e:?}"))?;
        Ok(Member { offset, size })
    }

    /// The C type of `function`'s first parameter (`struct sock *`), or why
    /// it cannot be known.
    pub fn first_param(&self, function: &str) -> Result<String, String> {
        let proto = self
            .types
            .get()
            .values()
            .find_map(|t| match t {
                TypeVariant::Func(f) if f.name().as_deref() == Some(function) => {
                    Some(*f.prototype_tid())
                }
                _ => None,
            })
            .ok_or_else(|| format!("{function} is not in the kernel's BTF"))?;
        match self.types.from_id(proto) {
            Some(TypeVariant::FuncProto(p)) => match p.parameter_list().first() {
                Some(param) => Ok(self.c_type(param.tid(), 0)),
                None => Ok("void".to_owned()),
            },
            _ => Err(format!("{function} has no prototype in the kernel's BTF")),
        }
    }

    fn struct_id(&self, name: &str) -> Option<u32> {
        self.types.get().iter().find_map(|(id, t)| match t {
            TypeVariant::Struct(s) if s.name().as_deref() == Some(name) => Some(*id),
            _ => None,
        })
    }

    /// A type as C spells it, qualifiers dropped: enough to compare.
    fn c_type(&self, id: u32, depth: usize) -> String {
        if depth > 16 {
            return "?".to_owned();
        }
        let named = |kind: &str, name: &Option<String>| match name {
            Some(n) => format!("{kind}{n}"),
            None => format!("{kind}(anonymous)"),
        };
        match self.types.from_id(id) {
            Some(TypeVariant::Void) => "void".to_owned(),
            Some(TypeVariant::Ptr(p)) => format!("{} *", self.c_type(*p.tid(), depth + 1)),
            Some(TypeVariant::Const(c)) => self.c_type(*c.tid(), depth + 1),
            Some(TypeVariant::Volatile(v)) => self.c_type(*v.tid(), depth + 1),
            Some(TypeVariant::Restrict(r)) => self.c_type(*r.tid(), depth + 1),
            Some(TypeVariant::TypeTag(t)) => self.c_type(*t.tid(), depth + 1),
            Some(TypeVariant::Struct(s)) => named("struct ", s.name()),
            Some(TypeVariant::Union(u)) => named("union ", u.name()),
            _ => self.types.name_of(id).unwrap_or_else(|| "?".to_owned()),
        }
    }
}

/// The first-parameter type (as [`KernelBtf::first_param`] spells it,
/// qualifiers dropped, so `const struct sock *` too) that carries the
/// socket fields: the one rule for `--by rcvbuf` and slow's socket fields.
pub const SOCKET_POINTER: &str = "struct sock *";

#[cfg(test)]
mod tests {
    use super::*;

    // The running kernel's own BTF (world-readable): the facts below hold
    // on every kernel with BTF since 5.x.
    fn vmlinux() -> KernelBtf {
        KernelBtf::open(Path::new(VMLINUX)).expect("this test needs /sys/kernel/btf/vmlinux")
    }

    #[test]
    fn finds_sk_rcvbuf_inside_struct_sock() {
        let btf = vmlinux();
        let rcvbuf = btf.member("sock", "sk_rcvbuf").unwrap();
        assert_eq!(rcvbuf.size, 4);
        // struct sock starts with the anonymous-union-laden sock_common;
        // sk_rcvbuf comes after it, so the lookup went through it.
        let common = btf.member("sock", "__sk_common").unwrap();
        assert!(rcvbuf.offset >= common.size as u32, "{rcvbuf:?} {common:?}");
        // A member of an anonymous union inside sock_common.
        assert!(btf.member("sock", "__sk_common.skc_daddr").is_ok());
        let err = btf.member("sock", "no_such_member").unwrap_err();
        assert!(err.contains("no member no_such_member"), "{err}");
    }

    #[test]
    fn names_first_parameters() {
        let btf = vmlinux();
        assert_eq!(btf.first_param("tcp_sendmsg").unwrap(), "struct sock *");
        assert_eq!(btf.first_param("tcp_v4_rcv").unwrap(), "struct sk_buff *");
        // `const struct sock *sk` is a socket too (net/core/sock.c,
        // net/ipv4/inet_connection_sock.c: one of them in any kernel).
        let consts = ["sk_mc_loop", "inet_sk_get_local_port_range", "sock_i_uid"];
        let found: Vec<_> = consts
            .iter()
            .filter_map(|f| btf.first_param(f).ok())
            .collect();
        assert!(!found.is_empty(), "none of {consts:?} in BTF");
        assert!(found.iter().all(|t| t == SOCKET_POINTER), "{found:?}");
        let err = btf.first_param("no_such_function_netlat").unwrap_err();
        assert!(err.contains("not in the kernel's BTF"), "{err}");
    }
}
