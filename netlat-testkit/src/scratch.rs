//! Scratch directories for tests, removed when the test ends, pass or
//! panic, so a test run leaves nothing behind in /tmp.

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
};

/// A fresh directory under the system's temporary directory; removed with
/// everything in it on drop.
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// `netlat-{what}-{pid}-{n}`: unique per process and call, so tests
    /// running at once never share one.
    pub fn new(what: &str) -> Scratch {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("netlat-{what}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        Scratch { dir }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directory_goes_when_the_scratch_does() {
        let scratch = Scratch::new("scratch-test");
        std::fs::create_dir_all(scratch.join("a/b")).unwrap();
        std::fs::write(scratch.join("a/b/c"), "x").unwrap();
        let dir = scratch.path().to_owned();
        let other = Scratch::new("scratch-test");
        assert_ne!(other.path(), dir);
        drop(scratch);
        assert!(!dir.exists(), "{} left behind", dir.display());
        let panicked = std::panic::catch_unwind(|| {
            let s = Scratch::new("scratch-test");
            std::fs::write(s.join("f"), "x").unwrap();
            let p = s.path().to_owned();
            std::panic::panic_any(p);
        })
        .unwrap_err();
        let p = panicked.downcast_ref::<PathBuf>().unwrap();
        assert!(!p.exists(), "{} left behind after a panic", p.display());
    }
}
