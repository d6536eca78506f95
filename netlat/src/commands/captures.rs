//! `netlat captures [show ID]`: the flight recorder's captures, read from
//! the store's directory or from a running `netlat serve` over HTTP.

use std::{
    io::{self, Write as _},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};

use crate::{
    recorder::{
        document::{Capture, Listing},
        flame,
        store::{self, DEFAULT_DIR, Store, StoreError},
    },
    render::{capture as render, slow::Zone},
    system::atomic_file,
};

pub(crate) mod http_source;

#[derive(clap::Args, Debug, Clone)]
#[command(disable_help_subcommand = true)]
pub struct CapturesArgs {
    #[command(subcommand)]
    pub action: Option<Action>,
    /// Where the captures are: the store's directory, or a running
    /// `netlat serve --capture` as http://HOST:PORT.
    #[arg(long, global = true, value_name = "DIR|URL", default_value = DEFAULT_DIR)]
    pub from: String,
    /// Times in UTC instead of the host's local time.
    #[arg(long, global = true)]
    pub utc: bool,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum Action {
    /// Print one capture: its trigger, its slow calls, the accounting of
    /// every call over the threshold, and where the slow calls spent
    /// their time.
    Show(ShowArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct ShowArgs {
    /// The capture's id, as the listing prints it.
    pub id: String,
    /// Also write its flame graph (the stacks sampled in the slow calls)
    /// to this SVG file.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Print the capture document (JSON) instead of the text.
    #[arg(long)]
    pub json: bool,
}

/// Where captures are read from.
#[derive(Debug, PartialEq, Eq)]
enum Source {
    Dir(PathBuf),
    Http(http_source::Server),
}

impl Source {
    fn parse(from: &str) -> Result<Source> {
        if from.starts_with("https://") {
            bail!(
                "--from {from}: netlat serve speaks plain HTTP; give http://HOST:PORT (through an SSH tunnel for another network)"
            );
        }
        if from.starts_with("http://") {
            return Ok(Source::Http(http_source::Server::parse(from)?));
        }
        if from.contains("://") {
            bail!("--from {from}: give a directory or http://HOST:PORT");
        }
        Ok(Source::Dir(PathBuf::from(from)))
    }
}

pub fn run(args: &CapturesArgs) -> Result<()> {
    let source = Source::parse(&args.from)?;
    let zone = if args.utc { Zone::Utc } else { Zone::Local };
    match &args.action {
        None => list(&source, zone),
        Some(Action::Show(show)) => show_one(&source, show, zone),
    }
}

fn list(source: &Source, zone: Zone) -> Result<()> {
    let listings: Vec<Listing> = match source {
        Source::Dir(dir) => open(dir)?.list(),
        Source::Http(server) => {
            let bytes = http_source::get(server, "/captures", None)?;
            serde_json::from_slice(&bytes).with_context(|| {
                format!("{}/captures did not answer with a capture listing", server)
            })?
        }
    };
    if listings.is_empty() {
        let _ = writeln!(io::stderr(), "netlat: no captures in {}", shown(source));
        return Ok(());
    }
    let mut out = io::stdout().lock();
    for l in &listings {
        out.write_all(render::list_line(l, zone).as_bytes())?;
    }
    Ok(())
}

fn show_one(source: &Source, args: &ShowArgs, zone: Zone) -> Result<()> {
    if !store::valid_id(&args.id) {
        bail!(
            "{}",
            StoreError::InvalidId {
                id: crate::render::printable(&args.id).into_owned()
            }
        );
    }
    if let Some(svg) = &args.svg {
        crate::commands::check_writable(svg)?;
    }
    let bytes = match source {
        Source::Dir(dir) => open(dir)?.read(&args.id).map_err(|e| match e {
            StoreError::NotFound { id } => anyhow::anyhow!(
                "no capture {id} in {} (netlat captures --from {} lists them)",
                dir.display(),
                dir.display()
            ),
            e => e.into(),
        })?,
        Source::Http(server) => {
            http_source::get(server, &format!("/captures/{}", args.id), Some(&args.id))?
        }
    };
    let capture: Capture = store::parse(&bytes)
        .map_err(|why| anyhow::anyhow!("capture {} does not parse: {why}", args.id))?;
    let mut out = io::stdout().lock();
    if args.json {
        out.write_all(&bytes)?;
        if !bytes.ends_with(b"\n") {
            out.write_all(b"\n")?;
        }
    } else {
        out.write_all(render::show(&capture, zone).as_bytes())?;
    }
    out.flush()?;
    if let Some(path) = &args.svg {
        let svg = flame::render(&capture)?;
        atomic_file::write(path, &svg)?;
        let _ = writeln!(
            io::stderr(),
            "netlat: flame graph of {} written to {}",
            args.id,
            path.display()
        );
    }
    Ok(())
}

fn open(dir: &Path) -> Result<Store> {
    Store::open_read_only(dir).map_err(|e| match e {
        // Serve keeps its directory 0700: root's.
        StoreError::ReadDir { ref why, .. }
            // SAFETY: geteuid has no preconditions.
            if why.contains("Permission denied") && unsafe { libc::geteuid() } != 0 =>
        {
            anyhow::anyhow!("{e} (captures are readable by root only: try sudo)")
        }
        e => e.into(),
    })
}

fn shown(source: &Source) -> String {
    match source {
        Source::Dir(dir) => dir.display().to_string(),
        Source::Http(server) => server.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        assert_eq!(
            Source::parse("/var/lib/x").unwrap(),
            Source::Dir("/var/lib/x".into())
        );
        assert!(matches!(
            Source::parse("http://127.0.0.1:9435").unwrap(),
            Source::Http(_)
        ));
        let https = Source::parse("https://h:1").unwrap_err().to_string();
        assert!(https.contains("plain HTTP"), "{https}");
        assert!(Source::parse("ftp://h").is_err());
    }
}
