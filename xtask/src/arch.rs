//! The CPU architectures netlat ships for: what each needs to build a
//! static binary and to boot a kernel under QEMU.

/// An architecture netlat is built and tested for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

    /// glibc with crt-static rather than musl: the x86_64 VM stage has long
    /// built that way, and Debian's cross toolchain has arm64's static glibc.
    pub fn rust_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-gnu",
            Arch::Aarch64 => "aarch64-unknown-linux-gnu",
        }
    }

    /// The name in release file names (`netlat-aarch64-linux`).
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// Debian's name, for `apt-get download PACKAGE:ARCH`.
    pub fn debian(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
        }
    }

    /// The linker when cross-compiling from x86_64 (Debian's gcc cross
    /// toolchain); `None` for the host's own.
    pub fn cross_linker(self) -> Option<&'static str> {
        match self {
            Arch::X86_64 => None,
            Arch::Aarch64 => Some("aarch64-linux-gnu-gcc"),
        }
    }

    /// ELF `e_machine` of this architecture's binaries.
    pub fn elf_machine(self) -> u16 {
        match self {
            Arch::X86_64 => 62,
            Arch::Aarch64 => 183,
        }
    }

    /// QEMU's system emulator and its Debian package.
    pub fn qemu(self) -> (&'static str, &'static str) {
        match self {
            Arch::X86_64 => ("qemu-system-x86_64", "qemu-system-x86"),
            Arch::Aarch64 => ("qemu-system-aarch64", "qemu-system-arm"),
        }
    }

    /// Machine and CPU options for TCG (nested KVM does not work here).
    /// arm64's `pauth-impdef` swaps the architected pointer-authentication
    /// hash for a cheap one, which TCG emulates several times faster.
    pub fn qemu_machine(self) -> &'static [&'static str] {
        match self {
            Arch::X86_64 => &["-accel", "tcg,thread=multi", "-cpu", "max"],
            Arch::Aarch64 => &[
                "-accel",
                "tcg,thread=multi",
                "-M",
                "virt",
                "-cpu",
                "max,pauth-impdef=on",
            ],
        }
    }

    /// The serial console the guest's kernel writes to.
    pub fn console(self) -> &'static str {
        match self {
            Arch::X86_64 => "ttyS0",
            Arch::Aarch64 => "ttyAMA0",
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
