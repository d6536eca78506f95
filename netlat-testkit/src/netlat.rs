//! Running the real netlat binary from tests, on the host or in the VM.

use std::{
    io::{BufRead as _, BufReader, Read as _},
    path::{Path, PathBuf},
    process::{Child, ChildStderr, Command, Stdio},
    time::{Duration, Instant},
};

pub struct Output {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs netlat to completion.
pub fn run(bin: &Path, args: &[&str]) -> Output {
    let out = Command::new(bin).args(args).output().expect("run netlat");
    Output {
        success: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A netlat run in the background, already attached.
pub struct Netlat {
    child: Child,
    stderr: BufReader<ChildStderr>,
    /// Reads stdout as it comes: a command that prints while it runs
    /// (`netlat slow`) would otherwise block on a full pipe.
    stdout: Option<std::thread::JoinHandle<String>>,
    preamble: String,
    pub first_line: String,
}

impl Netlat {
    /// Starts netlat and returns once it says its probes are attached.
    pub fn start(bin: impl Into<PathBuf>, args: &[&str]) -> Netlat {
        let bin = bin.into();
        let mut child = Command::new(&bin)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let mut out = child.stdout.take().expect("stdout");
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = out.read_to_string(&mut text);
            text
        });
        // Commands that say something before attaching (experiment's "run 1
        // of 2") have those lines kept, in front of the rest of stderr.
        let mut preamble = String::new();
        let first_line = loop {
            let mut line = String::new();
            let n = stderr.read_line(&mut line).expect("read netlat's stderr");
            if line.starts_with("netlat: tracing ")
                || line.starts_with("netlat: sampling ")
                || line.starts_with("netlat: serving ")
            {
                break line;
            }
            preamble.push_str(&line);
            assert!(
                n > 0 && line.starts_with("netlat: "),
                "netlat did not attach: {preamble}"
            );
        };
        Netlat {
            child,
            stderr,
            stdout: Some(stdout),
            preamble,
            first_line,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn signal_and_wait(self, sig: i32) -> Output {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(self.pid(), sig) };
        self.wait_at_most(Duration::from_secs(30), &format!("after signal {sig}"))
    }

    /// Waits for a run with its own duration to end by itself.
    pub fn wait(self, timeout: Duration) -> Output {
        self.wait_at_most(timeout, "on its own")
    }

    fn wait_at_most(mut self, timeout: Duration, how: &str) -> Output {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "netlat did not exit {how} within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = self
            .stdout
            .take()
            .map(|t| t.join().expect("stdout reader"))
            .unwrap_or_default();
        let mut stderr = format!("{}{}", self.preamble, self.first_line);
        self.stderr.read_to_string(&mut stderr).expect("stderr");
        Output {
            success: status.success(),
            code: status.code(),
            stdout,
            stderr,
        }
    }

    pub fn interrupt(self) -> Output {
        self.signal_and_wait(libc::SIGINT)
    }

    pub fn terminate(self) -> Output {
        self.signal_and_wait(libc::SIGTERM)
    }

    pub fn kill(self) -> Output {
        self.signal_and_wait(libc::SIGKILL)
    }
}

impl Drop for Netlat {
    /// A test that panics before stopping netlat must not leave it running
    /// (and attached) behind the next test.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Names of loaded BPF programs that are netlat's (the kernel keeps the
/// first 15 bytes of a program's name).
pub fn loaded_programs() -> Vec<String> {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .filter_map(|p| p.name_as_str().map(str::to_owned))
        .filter(|name| name.starts_with("netlat_"))
        .collect()
}

/// Waits until no netlat program is loaded (they are freed after an RCU
/// grace period, not at close()); returns what is left after `timeout`.
pub fn wait_until_unloaded(timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = loaded_programs();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sum of a JSON report's bucket counts.
pub fn bucket_total(report: &serde_json::Value) -> u64 {
    report["buckets"]
        .as_array()
        .expect("buckets array")
        .iter()
        .map(|b| b["count"].as_u64().expect("bucket count"))
        .sum()
}
