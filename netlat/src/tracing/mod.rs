//! Attaching the timing programs and reading what they counted: backend
//! choice and attach, the per-CPU map reader, `--by` keys and the kernel BTF
//! they come from.

pub mod backend;
pub mod capabilities;
pub mod collect;
pub mod group_by;
pub mod kernel_btf;
pub mod missed;
pub mod net_rx;
mod object_names;
pub mod session;
pub mod slow_records;
pub mod sock_fields;
