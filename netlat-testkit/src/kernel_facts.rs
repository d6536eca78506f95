//! What `netlat info --json` finds on the running kernel, for host tests
//! that must pass on any kernel: this project's CI host (no kprobes, fentry
//! refused) and a contributor's laptop (both, usually) expect different
//! backends, and the test should expect what the kernel offers rather than
//! what one machine had.

use std::path::Path;

use serde_json::Value;

pub struct KernelFacts {
    info: Value,
}

impl KernelFacts {
    /// Runs `BIN info --json` (root: info loads programs to probe).
    pub fn probe(bin: &Path) -> KernelFacts {
        let out = crate::netlat::run(bin, &["info", "--json"]);
        assert!(out.success, "netlat info failed: {}", out.stderr);
        let info = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("netlat info --json: bad JSON ({e}): {}", out.stdout));
        KernelFacts { info }
    }

    /// A capability's status ("yes", "no", "needs_root"), by info's key
    /// (`kprobes`, `fentry`, `raw_tp`...).
    pub fn status(&self, capability: &str) -> &str {
        self.info["capabilities"][capability]["status"]
            .as_str()
            .unwrap_or_else(|| panic!("no capability {capability} in {:#}", self.info))
    }

    pub fn has(&self, capability: &str) -> bool {
        self.status(capability) == "yes"
    }

    /// The backend `histogram FUNCTION` picks here, or None where info
    /// says none works.
    pub fn backend(&self, function: &str) -> Option<&str> {
        let picked = &self.info["backends"][function];
        match picked["status"].as_str() {
            Some("yes") => picked["backend"].as_str(),
            _ => None,
        }
    }
}
