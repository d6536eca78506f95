//! A real Prometheus (Debian's package, installed by `cargo xtask setup`)
//! scraping netlat every second, in a scratch directory.

use std::{
    net::{SocketAddr, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use netlat_testkit::scrape::{free_port, get};
use serde_json::Value;

/// A Prometheus scraping netlat every second, in a scratch directory.
pub struct Prometheus {
    child: Child,
    pub api: SocketAddr,
    dir: PathBuf,
}

impl Prometheus {
    pub fn start(target: SocketAddr) -> Prometheus {
        Prometheus::start_with(target, &[])
    }

    /// With extra flags, e.g. `--enable-feature=exemplar-storage`.
    pub fn start_with(target: SocketAddr, flags: &[&str]) -> Prometheus {
        let dir = std::env::temp_dir().join(format!("netlat-prometheus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: netlat\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let api: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={api}"))
            .args(flags)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("log")).unwrap())
            .spawn()
            .expect("prometheus is not installed: run `cargo xtask setup`");
        let p = Prometheus { child, api, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(p.api).is_err() || get(p.api, "/-/ready").0 != 200 {
            assert!(
                Instant::now() < deadline,
                "prometheus not ready: {}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        p
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// An instant query's single value, if it has one.
    pub fn query(&self, promql: &str) -> Option<f64> {
        let encoded: String = promql
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let (status, body) = get(self.api, &format!("/api/v1/query?query={encoded}"));
        assert_eq!(status, 200, "{promql}: {body}");
        let v: Value = serde_json::from_str(&body).expect("Prometheus JSON");
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }

    pub fn wait_for(&self, promql: &str, ok: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(v) = self.query(promql).filter(|&v| ok(v)) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{promql} never came: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
