//! Placeholder: the QEMU kernel-test runner lands here (issue 3).

use anyhow::Result;

#[derive(clap::Args, Default)]
pub struct VmArgs {}

pub fn run(_args: &VmArgs) -> Result<()> {
    anyhow::bail!("the VM stage is not written yet")
}
