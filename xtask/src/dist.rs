//! `cargo xtask dist`: the release files in target/dist/. A plain list of
//! steps in [`run`]; adding one is a line there.
//!
//! The binaries are fully static (glibc with crt-static), stripped, with
//! the eBPF object embedded and built for their own architecture (aya-build
//! passes the cargo target's arch to the eBPF build as `bpf_target_arch`,
//! which decides how kprobes read arguments from pt_regs). The VM stage
//! boots these same files.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::{arch::Arch, cmd, workspace_root};

pub fn run() -> Result<()> {
    crate::setup::all()?;
    let mut files = Vec::new();
    for arch in Arch::ALL {
        files.push(binary(arch)?);
    }
    // Completions and man pages come from the clap definitions, through
    // the x86_64 binary (it runs here).
    crate::docs::generate_with(&files[0], &dist_dir())?;
    checksums(&files)?;
    println!("dist: {}", dist_dir().display());
    Ok(())
}

const SUMS: &str = "SHA256SUMS";

pub fn dist_dir() -> PathBuf {
    target_dir().join("dist")
}

/// Builds target/dist/netlat-ARCH-linux and checks it is what it claims.
pub fn binary(arch: Arch) -> Result<PathBuf> {
    let built = static_build(arch, "netlat", "netlat")?;
    check_static_stripped(&built, arch)?;
    let out = dist_dir().join(format!("netlat-{}-linux", arch.name()));
    let bytes = fs::read(&built).with_context(|| format!("failed to read {}", built.display()))?;
    if fs::read(&out).ok().as_deref() != Some(bytes.as_slice()) {
        // The sums no longer describe the files: gone until `dist` writes
        // them again (the VM stage rebuilds only what it boots).
        let _ = fs::remove_file(dist_dir().join(SUMS));
        write_atomically(&out, &bytes, 0o755)?;
    }
    Ok(out)
}

/// `cargo build --release` of one binary, static and stripped, for `arch`.
/// Everything built for the VM stage goes through here with the same flags,
/// so the dependencies are built once per architecture.
pub fn static_build(arch: Arch, package: &str, bin: &str) -> Result<PathBuf> {
    let target = arch.rust_target();
    let env_key = |what: &str| {
        format!(
            "CARGO_TARGET_{}_{what}",
            target.to_uppercase().replace('-', "_")
        )
    };
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args([
            "build",
            "--release",
            "--target",
            target,
            "--package",
            package,
            "--bin",
            bin,
        ])
        // In the environment, not in config: a config-wide crt-static
        // breaks proc-macro builds. Per target, so the eBPF build nested in
        // netlat's build.rs (another target) is left alone.
        .env(
            env_key("RUSTFLAGS"),
            "-C target-feature=+crt-static -C strip=symbols",
        )
        .current_dir(workspace_root());
    if let Some(linker) = arch.cross_linker() {
        cargo.env(env_key("LINKER"), linker);
    }
    cmd::run(&mut cargo)?;
    Ok(target_dir().join(target).join("release").join(bin))
}

/// Where cargo puts its output: CARGO_TARGET_DIR when set, else ./target.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// No ELF interpreter (static), no symbol table (stripped), and the
/// machine it is meant for.
fn check_static_stripped(path: &Path, arch: Arch) -> Result<()> {
    let elf = fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
    let facts =
        elf_facts(&elf).with_context(|| format!("{} is not an ELF64 file", path.display()))?;
    if facts.machine != arch.elf_machine() {
        bail!(
            "{} is for ELF machine {}, not {arch}",
            path.display(),
            facts.machine
        );
    }
    if facts.interpreter {
        bail!(
            "{} is dynamically linked (has an ELF interpreter)",
            path.display()
        );
    }
    if facts.symtab {
        bail!("{} is not stripped (has .symtab)", path.display());
    }
    Ok(())
}

struct ElfFacts {
    machine: u16,
    interpreter: bool,
    symtab: bool,
}

/// The three facts above, from a little-endian ELF64 image.
fn elf_facts(elf: &[u8]) -> Option<ElfFacts> {
    const PT_INTERP: u32 = 3;
    const SHT_SYMTAB: u32 = 2;
    let u16_at = |o: usize| Some(u16::from_le_bytes(elf.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(elf.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(elf.get(o..o + 8)?.try_into().ok()?));
    // ELFCLASS64, little-endian.
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let (phoff, shoff) = (u64_at(32)? as usize, u64_at(40)? as usize);
    let (phentsize, phnum) = (u16_at(54)? as usize, u16_at(56)? as usize);
    let (shentsize, shnum) = (u16_at(58)? as usize, u16_at(60)? as usize);
    let mut interpreter = false;
    for i in 0..phnum {
        interpreter |= u32_at(phoff + i * phentsize)? == PT_INTERP;
    }
    let mut symtab = false;
    for i in 0..shnum {
        symtab |= u32_at(shoff + i * shentsize + 4)? == SHT_SYMTAB;
    }
    Some(ElfFacts {
        machine: u16_at(18)?,
        interpreter,
        symtab,
    })
}

/// SHA256SUMS beside the files, in `sha256sum -c` format.
fn checksums(files: &[PathBuf]) -> Result<()> {
    let dir = dist_dir();
    let mut sums = Command::new("sha256sum");
    for f in files {
        sums.arg(f.file_name().context("a dist file without a name")?);
    }
    let text = cmd::output(sums.current_dir(&dir)).context("sha256sum failed")?;
    write_atomically(&dir.join(SUMS), text.as_bytes(), 0o644)
}

/// Nothing in target/dist is ever left half-written: temp file + rename.
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = path.parent().context("a path without a directory")?;
    fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes).with_context(|| format!("failed to write {}", tmp.display()))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))
        .with_context(|| format!("failed to chmod {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("failed to rename {}", tmp.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 header with one program header of type `ptype` and
    /// one section header of type `stype`.
    fn elf(machine: u16, ptype: u32, stype: u32) -> Vec<u8> {
        let mut e = vec![0u8; 64 + 56 + 64];
        e[..6].copy_from_slice(b"\x7fELF\x02\x01");
        e[18..20].copy_from_slice(&machine.to_le_bytes());
        e[32..40].copy_from_slice(&64u64.to_le_bytes());
        e[40..48].copy_from_slice(&120u64.to_le_bytes());
        e[54..56].copy_from_slice(&56u16.to_le_bytes());
        e[56..58].copy_from_slice(&1u16.to_le_bytes());
        e[58..60].copy_from_slice(&64u16.to_le_bytes());
        e[60..62].copy_from_slice(&1u16.to_le_bytes());
        e[64..68].copy_from_slice(&ptype.to_le_bytes());
        e[124..128].copy_from_slice(&stype.to_le_bytes());
        e
    }

    #[test]
    fn a_static_stripped_arm64_image() {
        let f = elf_facts(&elf(183, 1, 1)).unwrap();
        assert_eq!(f.machine, 183);
        assert!(!f.interpreter && !f.symtab);
    }

    #[test]
    fn an_interpreter_or_a_symbol_table_is_seen() {
        assert!(elf_facts(&elf(62, 3, 1)).unwrap().interpreter);
        assert!(elf_facts(&elf(62, 1, 2)).unwrap().symtab);
    }

    #[test]
    fn not_elf64() {
        assert!(elf_facts(b"#!/bin/sh\n").is_none());
        assert!(elf_facts(&elf(62, 1, 1)[..40]).is_none());
    }
}
