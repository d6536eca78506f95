//! A headless Chromium driven over the DevTools protocol, for the tests of
//! `netlat report`'s page: its heat map, selection and flame graph are
//! JavaScript, which only a real browser runs as users will.
//!
//! `--remote-debugging-pipe` makes Chromium read NUL-terminated JSON
//! commands on fd 3 and write responses and events on fd 4: no port, no
//! WebSocket, no crate beyond serde_json and libc. One page target, attached
//! with a flattened session (its `sessionId` on every message).

use std::{
    collections::VecDeque,
    fs::File,
    io::{Read, Write},
    os::{
        fd::{FromRawFd, RawFd},
        unix::process::CommandExt,
    },
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc::{self, Receiver, RecvTimeoutError},
    time::{Duration, Instant},
};

use netlat_testkit::scratch::Scratch;
use serde_json::{Value, json};

/// Longest wait for one protocol answer.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Browser {
    child: Child,
    commands: File,
    messages: Receiver<Value>,
    /// Events read while waiting for something else, oldest first.
    events: VecDeque<Value>,
    next_id: u64,
    session: String,
    errors: Vec<String>,
    profile: Scratch,
}

fn find_chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    let fixed = Path::new("/usr/bin/chromium");
    fixed.is_file().then(|| fixed.to_owned())
}

/// A pipe, both ends close-on-exec (the child gets its copies by dup2).
fn pipe() -> (RawFd, RawFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array it is given.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    (fds[0], fds[1])
}

impl Browser {
    pub fn launch() -> Browser {
        let chromium = find_chromium().expect("chromium not found: run `cargo xtask setup`");
        let profile = Scratch::new("chromium");
        let (cmd_read, cmd_write) = pipe();
        let (msg_read, msg_write) = pipe();
        let stderr = File::create(profile.join("stderr.log")).expect("chromium's log file");
        let mut command = Command::new(&chromium);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-pipe",
                "--no-first-run",
                "--window-size=1400,1000",
            ])
            .arg(format!(
                "--user-data-dir={}",
                profile.join("profile").display()
            ))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            // Its own group, so Drop ends the renderers and helpers too.
            .process_group(0);
        // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork
        // and exec. The ends go up high first, so one already numbered 3
        // or 4 is not overwritten by the other's dup2.
        unsafe {
            command.pre_exec(move || {
                let r = libc::fcntl(cmd_read, libc::F_DUPFD, 10);
                let w = libc::fcntl(msg_write, libc::F_DUPFD, 10);
                if r < 0 || w < 0 || libc::dup2(r, 3) < 0 || libc::dup2(w, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium.display()));
        // SAFETY: the fds are ours; each is owned by exactly one File.
        let (commands, mut incoming) = unsafe {
            libc::close(cmd_read);
            libc::close(msg_write);
            (File::from_raw_fd(cmd_write), File::from_raw_fd(msg_read))
        };
        let (tx, messages) = mpsc::channel();
        std::thread::spawn(move || {
            let mut pending = Vec::new();
            let mut buf = vec![0u8; 1 << 16];
            loop {
                match incoming.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => pending.extend_from_slice(&buf[..n]),
                }
                while let Some(end) = pending.iter().position(|&b| b == 0) {
                    let message: Vec<u8> = pending.drain(..=end).collect();
                    if let Ok(v) = serde_json::from_slice(&message[..end])
                        && tx.send(v).is_err()
                    {
                        return;
                    }
                }
            }
        });
        let mut browser = Browser {
            child,
            commands,
            messages,
            events: VecDeque::new(),
            next_id: 0,
            session: String::new(),
            errors: Vec::new(),
            profile,
        };
        let target = browser.call("Target.createTarget", json!({ "url": "about:blank" }));
        let target_id = target["targetId"].as_str().expect("a target id").to_owned();
        let attached = browser.call(
            "Target.attachToTarget",
            json!({ "targetId": target_id, "flatten": true }),
        );
        browser.session = attached["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            browser.call(domain, json!({}));
        }
        browser
    }

    /// Chromium's stderr so far, for failure messages.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.profile.join("stderr.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The next message, within `deadline`; gathers console errors.
    fn next_message(&mut self, deadline: Instant, waiting_for: &str) -> Value {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.messages.recv_timeout(left) {
            Ok(v) => {
                self.note_error(&v);
                v
            }
            Err(RecvTimeoutError::Timeout) => panic!(
                "chromium: no {waiting_for} within {:?}; its log:\n{}",
                COMMAND_TIMEOUT,
                self.log_tail()
            ),
            Err(RecvTimeoutError::Disconnected) => panic!(
                "chromium closed its pipe while waiting for {waiting_for}; its log:\n{}",
                self.log_tail()
            ),
        }
    }

    fn note_error(&mut self, v: &Value) {
        let params = &v["params"];
        let error = match v["method"].as_str() {
            Some("Runtime.exceptionThrown") => {
                let d = &params["exceptionDetails"];
                Some(format!(
                    "exception: {} {} (line {})",
                    d["text"].as_str().unwrap_or(""),
                    d["exception"]["description"].as_str().unwrap_or(""),
                    d["lineNumber"]
                ))
            }
            Some("Runtime.consoleAPICalled") if params["type"] == "error" => {
                let args: Vec<String> = params["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| a["value"].to_string())
                    .collect();
                Some(format!("console.error: {}", args.join(" ")))
            }
            Some("Log.entryAdded") if params["entry"]["level"] == "error" => Some(format!(
                "log: {} {}",
                params["entry"]["text"].as_str().unwrap_or(""),
                params["entry"]["url"].as_str().unwrap_or("")
            )),
            _ => None,
        };
        self.errors.extend(error);
    }

    /// Sends a command (on the page's session once attached) and returns
    /// its result; a protocol error fails the test.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&message).expect("a command serializes");
        bytes.push(0);
        self.commands
            .write_all(&bytes)
            .unwrap_or_else(|e| panic!("cannot send {method} to chromium: {e}"));
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            let v = self.next_message(deadline, &format!("answer to {method}"));
            if v["id"] == id {
                if let Some(e) = v.get("error") {
                    panic!("chromium refused {method}: {e}");
                }
                return v["result"].clone();
            }
            if v.get("method").is_some() {
                self.events.push_back(v);
            }
        }
    }

    /// Waits for the event `method`, taking it and everything before it.
    fn wait_event(&mut self, method: &str, timeout: Duration) -> Value {
        while let Some(v) = self.events.pop_front() {
            if v["method"] == method {
                return v;
            }
        }
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.next_message(deadline, &format!("event {method}"));
            if v["method"] == method {
                return v;
            }
        }
    }

    /// Loads `url` and waits until the report page says it has painted.
    pub fn open(&mut self, url: &str, timeout: Duration) {
        self.events.clear();
        let nav = self.call("Page.navigate", json!({ "url": url }));
        if let Some(e) = nav.get("errorText") {
            panic!("chromium cannot open {url}: {e}");
        }
        self.wait_event("Page.loadEventFired", timeout);
        let deadline = Instant::now() + timeout;
        while self.evaluate("!!(window.netlatReport && window.netlatReport.ready)") != json!(true) {
            assert!(
                Instant::now() < deadline,
                "{url}: window.netlatReport.ready not set within {timeout:?}; errors: {:?}",
                self.errors
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The value of a JavaScript expression (a promise is awaited); an
    /// exception fails the test.
    pub fn evaluate(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        if let Some(d) = r.get("exceptionDetails") {
            panic!("{expression} threw: {d}");
        }
        r["result"].get("value").cloned().unwrap_or(Value::Null)
    }

    fn mouse(&mut self, kind: &str, x: f64, y: f64, buttons: u32) {
        self.call(
            "Input.dispatchMouseEvent",
            json!({ "type": kind, "x": x, "y": y, "button": "left", "buttons": buttons, "clickCount": 1 }),
        );
    }

    /// Moves the mouse, no button held.
    pub fn mouse_move(&mut self, x: f64, y: f64) {
        self.mouse("mouseMoved", x, y, 0);
    }

    /// Presses the left button at (x0, y0), moves to (x1, y1) in steps,
    /// releases there: viewport CSS pixels.
    pub fn drag(&mut self, x0: f64, y0: f64, x1: f64, y1: f64) {
        self.mouse("mouseMoved", x0, y0, 0);
        self.mouse("mousePressed", x0, y0, 1);
        const STEPS: u32 = 8;
        for i in 1..=STEPS {
            let f = f64::from(i) / f64::from(STEPS);
            self.mouse("mouseMoved", x0 + (x1 - x0) * f, y0 + (y1 - y0) * f, 1);
        }
        self.mouse("mouseReleased", x1, y1, 0);
    }

    /// Presses and releases a key such as "Escape".
    pub fn key(&mut self, key: &str, code: u32) {
        for kind in ["keyDown", "keyUp"] {
            self.call(
                "Input.dispatchKeyEvent",
                json!({ "type": kind, "key": key, "code": key, "windowsVirtualKeyCode": code }),
            );
        }
    }

    /// A PNG of the whole page (not only the viewport) at `path`.
    pub fn screenshot(&mut self, path: &Path) {
        let metrics = self.call("Page.getLayoutMetrics", json!({}));
        let size = &metrics["cssContentSize"];
        let shot = self.call(
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": { "x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1 },
            }),
        );
        let png = base64_decode(shot["data"].as_str().expect("screenshot data"));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// Console errors and uncaught exceptions since the last call.
    pub fn take_errors(&mut self) -> Vec<String> {
        // Drain what has arrived, so an error just logged is not missed.
        while let Ok(v) = self.messages.try_recv() {
            self.note_error(&v);
            if v.get("method").is_some() {
                self.events.push_back(v);
            }
        }
        std::mem::take(&mut self.errors)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // SAFETY: signalling our own child's process group.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Standard base64 (the screenshot's encoding).
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let bytes: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c) << (18 - 6 * i);
        }
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}
