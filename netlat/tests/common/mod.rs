//! Running the real netlat binary from integration tests.
#![allow(dead_code, reason = "each test binary uses a different part")]

use std::{
    io::{BufRead as _, BufReader, Read as _},
    process::{Child, ChildStderr, Command, Stdio},
    time::{Duration, Instant},
};

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub fn skip(why: &str) {
    println!("skipped: {why}");
}

pub const BIN: &str = env!("CARGO_BIN_EXE_netlat");

pub struct Output {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs netlat to completion.
pub fn run(args: &[&str]) -> Output {
    let out = Command::new(BIN).args(args).output().expect("run netlat");
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
    pub first_line: String,
}

impl Netlat {
    pub fn run(args: &[&str]) -> Output {
        run(args)
    }

    /// Starts netlat and returns once it says its probes are attached.
    pub fn start(args: &[&str]) -> Netlat {
        let mut child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn netlat");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let mut first_line = String::new();
        stderr
            .read_line(&mut first_line)
            .expect("read netlat's stderr");
        assert!(
            first_line.starts_with("netlat: tracing "),
            "netlat did not attach: {first_line}"
        );
        Netlat {
            child,
            stderr,
            first_line,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn signal_and_wait(mut self, sig: i32) -> Output {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(self.pid(), sig) };
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "netlat did not exit after signal {sig}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stdout = String::new();
        if let Some(mut out) = self.child.stdout.take() {
            out.read_to_string(&mut stdout).expect("stdout");
        }
        let mut stderr = self.first_line.clone();
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
