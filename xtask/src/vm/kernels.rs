//! The kernel matrix: which Debian kernels the VM stage boots, and getting
//! each one's image (resolved to the newest matching package at run time,
//! cached in ~/.cache/netlat/kernels, shared with other checkouts).

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use super::apt::Apt;
use crate::{arch::Arch, cmd};

/// A kernel of the matrix.
pub struct Kernel {
    /// Its name in the report.
    pub label: String,
    pub arch: Arch,
    /// An apt package name pattern (extended regex; the newest match wins),
    /// or a path to a vmlinuz.
    pub package: String,
    /// Guest tests to run, when not all of them (passed to the guest as
    /// `netlat_tests=`): for a kernel too slow to emulate for the whole
    /// suite. Every kernel of the list runs all of them today (arm64 under
    /// TCG with `pauth-impdef` is no slower than x86_64).
    pub tests: Option<&'static [&'static str]>,
}

/// The one kernel list. Adding a kernel is adding a line; the pattern
/// names the Debian release through its version scheme (deb12, deb14).
const KERNELS: &[(&str, Arch, &str, Option<&[&str]>)] = &[
    // Debian 11's kernel, the oldest still common in fleets.
    (
        "5.10",
        Arch::X86_64,
        r"^linux-image-5\.10\.0-[0-9]+-cloud-amd64-unsigned$",
        None,
    ),
    (
        "6.1",
        Arch::X86_64,
        r"^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$",
        None,
    ),
    (
        "6.12",
        Arch::X86_64,
        r"^linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64-unsigned$",
        None,
    ),
    // Unstable's newest: its vmlinuz is in the linux-binary package.
    (
        "sid",
        Arch::X86_64,
        r"^linux-binary-[0-9.]+\+deb[0-9]+-cloud-amd64$",
        None,
    ),
    (
        "6.1-arm64",
        Arch::Aarch64,
        r"^linux-image-6\.1\.0-[0-9]+-cloud-arm64-unsigned$",
        None,
    ),
];

pub fn default_list() -> Vec<Kernel> {
    KERNELS
        .iter()
        .map(|&(label, arch, package, tests)| Kernel {
            label: label.to_owned(),
            arch,
            package: package.to_owned(),
            tests,
        })
        .collect()
}

/// `--kernel SPEC`: a label of the list (`5.10`, `6.1-arm64`), a package
/// pattern, or a vmlinuz path; arm64 when the name says so.
pub fn from_spec(spec: &str) -> Kernel {
    if let Some(k) = default_list().into_iter().find(|k| k.label == spec) {
        return k;
    }
    let arch = if spec.contains("arm64") || spec.contains("aarch64") {
        Arch::Aarch64
    } else {
        Arch::X86_64
    };
    Kernel {
        label: spec.to_owned(),
        arch,
        package: spec.to_owned(),
        tests: None,
    }
}

pub fn cache_root() -> Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    Ok(PathBuf::from(home).join(".cache/netlat"))
}

/// The kernel's vmlinuz and the package it came from: the newest package
/// matching the pattern that the pool still has (the newest listed one
/// sometimes 404s there: then the next older), unpacked once into the
/// cache. Err, in one line, when none can be had.
pub fn image(apt: &Apt, kernel: &Kernel) -> Result<(PathBuf, String)> {
    if Path::new(&kernel.package).is_file() {
        return Ok((PathBuf::from(&kernel.package), kernel.package.clone()));
    }
    let candidates = apt.search(&kernel.package)?;
    if candidates.is_empty() {
        bail!(
            "no package in the private apt lists matches {}",
            kernel.package
        );
    }
    let cache = cache_root()?.join("kernels");
    let mut refused = Vec::new();
    for package in &candidates {
        let dir = cache.join(package);
        if let Some(found) = find_vmlinuz(&dir.join("root")) {
            return Ok((found, package.clone()));
        }
        if apt.known_missing(package) {
            continue;
        }
        println!("vm: {}: downloading {package}", kernel.label);
        match fetch(apt, package, kernel.arch, &dir) {
            Ok(found) => return Ok((found, package.clone())),
            Err(e) => {
                // Only this run's empty directory: the cache is shared.
                let _ = fs::remove_dir(&dir);
                let e = format!("{e:#}");
                refused.push(format!("{package}: {e}"));
                // The lists can name packages the pool no longer has; any
                // other failure (no network) would fail the older ones too.
                if !e.contains("404") {
                    break;
                }
                apt.note_missing(package);
                println!(
                    "vm: {}: {package} is not in the pool (404); trying the next older",
                    kernel.label
                );
            }
        }
    }
    bail!("cannot fetch a kernel package: {}", refused.join("; "))
}

/// Downloads and unpacks a kernel package, keeping only its vmlinuz, at
/// DIR/root/boot/vmlinuz-VERSION (moved there last, so a concurrent run
/// never sees half a kernel).
fn fetch(apt: &Apt, package: &str, arch: Arch, dir: &Path) -> Result<PathBuf> {
    let work = dir.join(format!("unpack.{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).with_context(|| format!("failed to create {}", work.display()))?;
    let result = (|| {
        let deb = apt.download(package, arch, None, &work)?;
        let tree = work.join("tree");
        cmd::run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tree))?;
        let vmlinuz = find_vmlinuz(&tree).with_context(|| format!("no vmlinuz in {package}"))?;
        let version = vmlinuz_version(&vmlinuz)
            .with_context(|| format!("cannot tell the version of {}", vmlinuz.display()))?;
        let boot = work.join("root/boot");
        fs::create_dir_all(&boot)?;
        fs::rename(&vmlinuz, boot.join(format!("vmlinuz-{version}")))?;
        let root = dir.join("root");
        fs::rename(work.join("root"), &root)
            .with_context(|| format!("failed to move the kernel to {}", root.display()))?;
        find_vmlinuz(&root).context("the unpacked kernel vanished")
    })();
    let _ = fs::remove_dir_all(&work);
    result
}

/// boot/vmlinuz-VERSION (linux-image packages) or
/// usr/lib/modules/VERSION/vmlinuz (sid's linux-binary packages).
fn find_vmlinuz(root: &Path) -> Option<PathBuf> {
    let in_boot = fs::read_dir(root.join("boot")).ok().and_then(|d| {
        d.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
    });
    in_boot.or_else(|| {
        fs::read_dir(root.join("usr/lib/modules"))
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("vmlinuz"))
            .find(|p| p.is_file())
    })
}

fn vmlinuz_version(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    match name.strip_prefix("vmlinuz-") {
        Some(v) => Some(v.to_owned()),
        None => Some(path.parent()?.file_name()?.to_string_lossy().into_owned()),
    }
}

/// A static busybox for the guest's architecture, from Debian 12 (the
/// host's release), cached like the kernels.
pub fn busybox(apt: &Apt, arch: Arch) -> Result<PathBuf> {
    let dir = cache_root()?.join(format!("guest/busybox-static-{}", arch.debian()));
    // Debian 12 ships it in /bin; later releases in /usr/bin.
    let find = || {
        ["root/bin/busybox", "root/usr/bin/busybox"]
            .iter()
            .map(|p| dir.join(p))
            .find(|p| p.is_file())
    };
    if let Some(bin) = find() {
        return Ok(bin);
    }
    let work = dir.join(format!("unpack.{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    let result = (|| {
        let deb = apt
            .download("busybox-static", arch, Some("bookworm"), &work)
            .context("cannot fetch busybox-static")?;
        cmd::run(
            Command::new("dpkg-deb")
                .arg("-x")
                .arg(&deb)
                .arg(work.join("root")),
        )?;
        let _ = fs::remove_dir_all(dir.join("root"));
        fs::rename(work.join("root"), dir.join("root"))?;
        find().context("no busybox in busybox-static")
    })();
    let _ = fs::remove_dir_all(&work);
    result
}

#[cfg(test)]
mod tests {
    use std::ffi::CString;

    use super::*;

    /// POSIX extended regex matching, as apt-cache does it.
    fn ere_matches(pattern: &str, text: &str) -> bool {
        let pattern = CString::new(pattern).unwrap();
        let text = CString::new(text).unwrap();
        // SAFETY: regcomp fills the zeroed regex_t, freed below; both
        // strings outlive the calls.
        unsafe {
            let mut re: libc::regex_t = std::mem::zeroed();
            assert_eq!(
                libc::regcomp(
                    &mut re,
                    pattern.as_ptr(),
                    libc::REG_EXTENDED | libc::REG_NOSUB
                ),
                0,
                "bad pattern {pattern:?}"
            );
            let found = libc::regexec(&re, text.as_ptr(), 0, std::ptr::null_mut(), 0) == 0;
            libc::regfree(&mut re);
            found
        }
    }

    /// Names from the mirror's lists (2026-12), each the kernel of one row.
    const SEEN: &[(&str, &str)] = &[
        ("5.10", "linux-image-5.10.0-43-cloud-amd64-unsigned"),
        ("6.1", "linux-image-6.1.0-57-cloud-amd64-unsigned"),
        ("6.12", "linux-image-6.12.117+deb12-cloud-amd64-unsigned"),
        ("sid", "linux-binary-7.2.13+deb14-cloud-amd64"),
        ("6.1-arm64", "linux-image-6.1.0-57-cloud-arm64-unsigned"),
    ];

    /// Names that sit beside them in the lists and must match no row.
    const NEIGHBOURS: &[&str] = &[
        "linux-image-6.1.0-57-cloud-amd64",
        "linux-image-6.1.0-57-cloud-amd64-dbg",
        "linux-image-6.12.117+deb12-cloud-amd64",
        "linux-image-7.2.13+deb14-cloud-amd64",
        "linux-binary-unsigned-7.2.13+deb14-cloud-amd64",
        "linux-binary-7.2.13+deb14-cloud-arm64",
        "linux-image-cloud-amd64",
    ];

    #[test]
    fn each_pattern_picks_its_own_kernel_and_no_other() {
        for kernel in default_list() {
            for (label, name) in SEEN {
                assert_eq!(
                    ere_matches(&kernel.package, name),
                    *label == kernel.label,
                    "{} vs {name}",
                    kernel.label
                );
            }
            for name in NEIGHBOURS {
                assert!(
                    !ere_matches(&kernel.package, name),
                    "{} matches {name}",
                    kernel.label
                );
            }
        }
    }

    #[test]
    fn a_spec_is_a_label_or_a_pattern() {
        let k = from_spec("6.1-arm64");
        assert_eq!((k.arch, k.package.contains("arm64")), (Arch::Aarch64, true));
        let k = from_spec(r"^linux-image-6\.1\.0-[0-9]+-cloud-arm64-unsigned$");
        assert_eq!(k.arch, Arch::Aarch64);
        let k = from_spec(r"^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$");
        assert_eq!(k.arch, Arch::X86_64);
    }

    #[test]
    fn sid_keeps_its_vmlinuz_under_usr_lib_modules() {
        let root = std::env::temp_dir().join(format!("netlat-kernels-{}", std::process::id()));
        let image = root.join("usr/lib/modules/7.2.13+deb14-cloud-amd64/vmlinuz");
        fs::create_dir_all(image.parent().unwrap()).unwrap();
        fs::write(&image, b"").unwrap();
        let found = find_vmlinuz(&root).unwrap();
        assert_eq!(
            vmlinuz_version(&found).as_deref(),
            Some("7.2.13+deb14-cloud-amd64")
        );
        fs::remove_dir_all(&root).unwrap();
    }
}
