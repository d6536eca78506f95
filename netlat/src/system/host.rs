//! Facts about the host recorded beside every result.

use std::{ffi::CStr, time::SystemTime};

pub struct HostInfo {
    pub hostname: String,
    pub kernel: String,
    pub cpus: usize,
}

impl HostInfo {
    pub fn read() -> HostInfo {
        // SAFETY: uname fills a zeroed struct of C strings.
        let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
        let ok = unsafe { libc::uname(&mut uts) } == 0;
        let field = |f: &[libc::c_char]| {
            // SAFETY: uname NUL-terminates every field.
            unsafe { CStr::from_ptr(f.as_ptr()) }
                .to_string_lossy()
                .into_owned()
        };
        HostInfo {
            hostname: if ok {
                field(&uts.nodename)
            } else {
                String::new()
            },
            kernel: if ok {
                field(&uts.release)
            } else {
                String::new()
            },
            cpus: aya::util::online_cpus().map(|c| c.len()).unwrap_or(0),
        }
    }
}

/// To the microsecond: `--interval` windows are as short as 10 ms.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_micros(t).to_string()
}
