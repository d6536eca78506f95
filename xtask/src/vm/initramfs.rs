//! The guest's whole userspace, one newc initramfs per architecture: a
//! static busybox, the release netlat binary and the guest test driver.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result};

use crate::{arch::Arch, cmd, workspace_root};

const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
ip link set lo up
if /bin/netlat-vm-guest; then echo "init: success"; else echo "init: failure"; fi
poweroff -f
"#;

pub struct Contents<'a> {
    pub busybox: &'a Path,
    pub netlat: &'a Path,
    pub guest: &'a Path,
}

pub fn pack(arch: Arch, contents: &Contents) -> Result<PathBuf> {
    let out = workspace_root().join("target/vm").join(arch.name());
    let root = out.join("initramfs");
    if root.exists() {
        fs::remove_dir_all(&root).with_context(|| format!("failed to clear {}", root.display()))?;
    }
    for dir in ["bin", "dev", "proc", "sys", "tmp"] {
        fs::create_dir_all(root.join(dir))?;
    }
    for (from, to) in [
        (contents.busybox, "bin/busybox"),
        (contents.netlat, "bin/netlat"),
        (contents.guest, "bin/netlat-vm-guest"),
    ] {
        fs::copy(from, root.join(to))
            .with_context(|| format!("failed to copy {}", from.display()))?;
    }
    let init = root.join("init");
    fs::write(&init, INIT)?;
    cmd::run(Command::new("chmod").arg("755").arg(&init))?;
    let cpio = out.join("initramfs.cpio");
    cmd::run(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "find . | cpio --quiet -o -H newc > '{}'",
                cpio.display()
            ))
            .current_dir(&root),
    )?;
    Ok(cpio)
}
