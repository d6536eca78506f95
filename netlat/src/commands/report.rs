//! `netlat report FILE... -o PAGE.html [--svg HEAT.svg]`: no root needed.
//! One or two runs (recordings, serve's captures, `slow --json` output)
//! become one self-contained page, or a static SVG heat map.

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::timeline::{build, heat_svg, html, input};

#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "Examples:
  netlat report run.nlat -o run.html
  netlat report before.nlat after.nlat -o ab.html
  netlat report run.nlat --svg heat.svg")]
pub struct ReportArgs {
    /// A recording (netlat record -o), a capture (serve --capture) or
    /// slow --json output; two to put a before and an after on one scale.
    #[arg(required = true, num_args = 1..=2, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The HTML page to write (self-contained: opens from file://).
    #[arg(short = 'o', long, value_name = "PAGE.html")]
    pub output: Option<PathBuf>,
    /// Also (or only) write the heat map alone as a static SVG.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
}

pub fn run(args: &ReportArgs) -> Result<()> {
    if args.output.is_none() && args.svg.is_none() {
        bail!("say where the report goes: -o PAGE.html, --svg HEAT.svg, or both");
    }
    for path in args.output.iter().chain(&args.svg) {
        super::check_writable(path)?;
    }
    let runs = args
        .files
        .iter()
        .map(|f| input::load(f))
        .collect::<Result<Vec<_>, _>>()?;
    let data = build::page_data(&runs);
    if let Some(path) = &args.output {
        crate::system::atomic_file::write(path, html::page(&data).as_bytes())?;
        eprintln!("netlat: wrote {}", path.display());
    }
    if let Some(path) = &args.svg {
        crate::system::atomic_file::write(path, heat_svg::render(&data).as_bytes())?;
        eprintln!("netlat: wrote {}", path.display());
    }
    Ok(())
}
