//! A private apt configuration for the VM stage's packages (kernels of other
//! Debian releases, a static busybox per architecture): its own sources
//! list, package lists and cache under ~/.cache/netlat/apt, passed to
//! apt-get with `-o Dir::...`. The machine's own sources are never touched.

use std::{
    fs,
    os::fd::AsRawFd as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, SystemTime},
};

use anyhow::{Context as _, Result, bail};

use crate::arch::Arch;

/// The suites the kernel list draws from: 5.10 (bullseye), 6.1 and 6.12
/// (bookworm), the newest kernel (sid). Security suites carry the newest
/// stable kernels.
const SOURCES: &[(&str, &str)] = &[
    ("debian", "bullseye"),
    ("debian-security", "bullseye-security"),
    ("debian", "bookworm"),
    ("debian-security", "bookworm-security"),
    ("debian", "sid"),
];

/// Used when the machine's own sources name no Debian mirror.
const DEFAULT_MIRROR: &str = "http://deb.debian.org";
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// Security updates rename kernels: lists older than this are refreshed.
const LISTS_MAX_AGE: Duration = Duration::from_secs(12 * 3600);

pub struct Apt {
    dir: PathBuf,
}

impl Apt {
    /// The configuration under `cache` (~/.cache/netlat), created if missing.
    pub fn new(cache: &Path) -> Result<Apt> {
        let dir = cache.join("apt");
        for sub in ["lists/partial", "cache/archives/partial"] {
            fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("failed to create {}", dir.join(sub).display()))?;
        }
        let apt = Apt { dir };
        let sources = apt.sources_text(&mirror());
        let path = apt.dir.join("sources.list");
        if fs::read_to_string(&path).ok().as_deref() != Some(sources.as_str()) {
            let tmp = path.with_extension("tmp");
            fs::write(&tmp, &sources)?;
            fs::rename(&tmp, &path)?;
            // New sources: the lists must be fetched again.
            let _ = fs::remove_file(apt.stamp());
        }
        Ok(apt)
    }

    fn sources_text(&self, mirror: &str) -> String {
        let archs: Vec<&str> = Arch::ALL.iter().map(|a| a.debian()).collect();
        SOURCES
            .iter()
            .map(|(archive, suite)| {
                format!(
                    "deb [arch={} signed-by={KEYRING}] {mirror}/{archive} {suite} main\n",
                    archs.join(",")
                )
            })
            .collect()
    }

    /// When the lists were last fetched (outside lists/: apt cleans it).
    fn stamp(&self) -> PathBuf {
        self.dir.join("updated")
    }

    /// Packages the lists name but the pool answered 404 for, since the
    /// lists were fetched: not asked for again until they are refreshed.
    fn missing_file(&self) -> PathBuf {
        self.dir.join("not-in-pool")
    }

    pub fn known_missing(&self, package: &str) -> bool {
        fs::read_to_string(self.missing_file()).is_ok_and(|t| t.lines().any(|l| l == package))
    }

    pub fn note_missing(&self, package: &str) {
        use std::io::Write as _;
        if let Ok(mut f) = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.missing_file())
        {
            let _ = writeln!(f, "{package}");
        }
    }

    /// apt-get/apt-cache with this configuration.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        let d = |p: &str| self.dir.join(p).display().to_string();
        for option in [
            format!("Dir::Etc::SourceList={}", d("sources.list")),
            "Dir::Etc::SourceParts=/dev/null".to_owned(),
            format!("Dir::State::Lists={}", d("lists")),
            format!("Dir::Cache={}", d("cache")),
            // Only package lists: no translations, no AppStream metadata.
            "Acquire::Languages=none".to_owned(),
            "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false".to_owned(),
            // Downloads land in root-owned cache directories.
            "APT::Sandbox::User=root".to_owned(),
        ] {
            cmd.arg("-o").arg(option);
        }
        for arch in Arch::ALL {
            cmd.arg("-o")
                .arg(format!("APT::Architectures::={}", arch.debian()));
        }
        cmd
    }

    /// Held around every apt run: engineers sharing this cache run the VM
    /// stage at the same time, and apt refuses a locked lists directory.
    fn lock(&self) -> Result<fs::File> {
        let path = self.dir.join("netlat.lock");
        let file = fs::File::create(&path)
            .with_context(|| format!("failed to open {}", path.display()))?;
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            bail!("failed to lock {}", path.display());
        }
        Ok(file)
    }

    /// Fetches the package lists when they are missing or stale.
    pub fn update_if_stale(&self) -> Result<()> {
        let _lock = self.lock()?;
        let fresh = fs::metadata(self.stamp())
            .and_then(|m| m.modified())
            .is_ok_and(|t| {
                SystemTime::now()
                    .duration_since(t)
                    .is_ok_and(|age| age < LISTS_MAX_AGE)
            });
        if fresh {
            return Ok(());
        }
        println!("vm: fetching package lists for {}", self.suites());
        let out = self
            .command("apt-get")
            .arg("update")
            .stdout(Stdio::null())
            .output()
            .context("failed to run apt-get update")?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        // apt-get update exits 0 even when a suite failed; its E: lines say so.
        if let Some(error) = stderr.lines().find(|l| l.starts_with("E:")) {
            bail!("apt-get update ({}) failed: {error}", self.suites());
        }
        if !out.status.success() {
            bail!("apt-get update ({}) failed: {}", self.suites(), out.status);
        }
        let _ = fs::remove_file(self.missing_file());
        fs::write(self.stamp(), b"")?;
        Ok(())
    }

    fn suites(&self) -> String {
        SOURCES
            .iter()
            .map(|(_, s)| *s)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Package names matching an extended regular expression, newest first.
    pub fn search(&self, pattern: &str) -> Result<Vec<String>> {
        let _lock = self.lock()?;
        let out = self
            .command("apt-cache")
            .args(["search", "--names-only", pattern])
            .stderr(Stdio::null())
            .output()
            .context("failed to run apt-cache search")?;
        let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .collect();
        names.sort_by_key(|n| std::cmp::Reverse(natural_key(n)));
        names.dedup();
        Ok(names)
    }

    /// Downloads PACKAGE:ARCH (the candidate version, or the newest in
    /// `release` when given) into `dir`; Err with apt's one-line reason.
    pub fn download(
        &self,
        package: &str,
        arch: Arch,
        release: Option<&str>,
        dir: &Path,
    ) -> Result<PathBuf> {
        let _lock = self.lock()?;
        let mut cmd = self.command("apt-get");
        if let Some(release) = release {
            cmd.arg("-o").arg(format!("APT::Default-Release={release}"));
        }
        let out = cmd
            .args(["download", &format!("{package}:{}", arch.debian())])
            .current_dir(dir)
            .stdout(Stdio::null())
            .output()
            .context("failed to run apt-get download")?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        let deb = fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "deb"));
        match deb {
            Some(deb) if out.status.success() => Ok(deb),
            _ => {
                let why = stderr
                    .lines()
                    .find(|l| l.starts_with("E:"))
                    .unwrap_or("no .deb downloaded")
                    .trim_start_matches("E: ");
                bail!("{why}")
            }
        }
    }
}

/// The Debian mirror this machine's own apt uses (its deb822 `URIs:` or a
/// one-line `deb` entry), so the extra suites come from the same place.
fn mirror() -> String {
    let mut texts = Vec::new();
    if let Ok(t) = fs::read_to_string("/etc/apt/sources.list") {
        texts.push(t);
    }
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        for entry in dir.filter_map(|e| e.ok()) {
            let path = entry.path();
            if path
                .extension()
                .is_some_and(|x| x == "sources" || x == "list")
                && let Ok(t) = fs::read_to_string(&path)
            {
                texts.push(t);
            }
        }
    }
    texts
        .iter()
        .find_map(|t| mirror_in(t))
        .unwrap_or_else(|| DEFAULT_MIRROR.to_owned())
}

/// `http://host` of the first `.../debian` URI in a sources file.
fn mirror_in(text: &str) -> Option<String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.split_whitespace())
        .find_map(|word| {
            let url = word.trim_end_matches('/');
            let base = url.strip_suffix("/debian")?;
            (base.starts_with("http://") || base.starts_with("https://")).then(|| base.to_owned())
        })
}

/// Orders "6.12.9" before "6.12.117": numbers compare as numbers.
fn natural_key(s: &str) -> Vec<(u64, String)> {
    let mut key = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 {
            key.push((rest[..digits].parse().unwrap_or(u64::MAX), String::new()));
            rest = &rest[digits..];
        } else {
            let text = rest.len() - rest.trim_start_matches(|c: char| !c.is_ascii_digit()).len();
            key.push((0, rest[..text].to_owned()));
            rest = &rest[text..];
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mirror_of_a_deb822_or_one_line_source() {
        let deb822 = "Types: deb\n# http://snapshot.debian.org/archive/debian/2025\nURIs: http://deb.debian.org/debian\nSuites: bookworm\n";
        assert_eq!(mirror_in(deb822).as_deref(), Some("http://deb.debian.org"));
        let line = "deb [arch=amd64] https://mirror.example/debian/ bookworm main\n";
        assert_eq!(mirror_in(line).as_deref(), Some("https://mirror.example"));
        assert_eq!(
            mirror_in("deb https://packages.cloud.google.com/apt x main"),
            None
        );
    }

    #[test]
    fn newest_kernel_first() {
        let mut names = [
            "linux-image-6.12.9+deb12-cloud-amd64-unsigned",
            "linux-image-6.12.117+deb12-cloud-amd64-unsigned",
            "linux-image-6.12.99+deb12-cloud-amd64-unsigned",
        ];
        names.sort_by_key(|n| std::cmp::Reverse(natural_key(n)));
        assert_eq!(names[0], "linux-image-6.12.117+deb12-cloud-amd64-unsigned");
        assert_eq!(names[2], "linux-image-6.12.9+deb12-cloud-amd64-unsigned");
    }
}
