//! `netlat doctor` (issue 6): placeholder until the checklist lands.

#[derive(clap::Args, Debug)]
pub struct DoctorArgs {}

pub fn run(_args: &DoctorArgs) -> anyhow::Result<()> {
    anyhow::bail!("netlat doctor is not implemented yet")
}
