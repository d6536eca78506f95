//! A recorded run read back from disk for `netlat compare`: a regular file
//! under a size cap, opened without blocking, then parsed by model/compare.

use std::{io::Read as _, path::Path};

use crate::model::compare::{CompareError, MAX_FILE_BYTES, Named, parse};

/// Opens `path` for reading if it is a regular file of at most `cap`
/// bytes. Never blocks on the open (a FIFO), never reads a device.
pub(crate) fn open_capped(
    path: &Path,
    shown: &str,
    cap: u64,
) -> Result<std::fs::File, CompareError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let unreadable = |e: std::io::Error| CompareError::Unreadable {
        path: shown.to_owned(),
        why: crate::oneline::io_text(&e),
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    if !meta.is_file() {
        return Err(CompareError::NotAFile {
            path: shown.to_owned(),
        });
    }
    if meta.len() > cap {
        return Err(CompareError::TooLarge {
            path: shown.to_owned(),
        });
    }
    Ok(file)
}

pub fn load(path: &Path) -> Result<Named, CompareError> {
    let shown = path.display().to_string();
    let file = open_capped(path, &shown, MAX_FILE_BYTES)?;
    let mut text = String::new();
    // The cap again: the file may have grown since it was measured.
    file.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| CompareError::NotAResult {
            path: shown.clone(),
            why: crate::oneline::io_text(&e),
        })?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(CompareError::TooLarge { path: shown });
    }
    parse(&shown, &text).map(|report| Named {
        name: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or(shown),
        report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_missing_files_files_past_the_cap_devices_and_fifos_without_blocking() {
        let missing = load(Path::new("/nonexistent/run.json"))
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            missing,
            "cannot read /nonexistent/run.json: No such file or directory"
        );
        let scratch = netlat_testkit::scratch::Scratch::new("compare-cap");
        let path = scratch.join("big.json");
        std::fs::write(&path, " ".repeat(2000)).unwrap();
        let err = open_capped(&path, "big.json", 1000).unwrap_err();
        assert_eq!(
            err,
            CompareError::TooLarge {
                path: "big.json".into()
            }
        );
        assert!(open_capped(&path, "big.json", 2000).is_ok());
        let err = load(Path::new("/dev/zero")).err().unwrap();
        assert_eq!(
            err.to_string(),
            "/dev/zero is not a regular file: give a result file (netlat compare does not read pipes or devices)"
        );
        // A FIFO with no writer used to block the open forever.
        let fifo = scratch.join("fifo.json");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let t = std::time::Instant::now();
        assert!(matches!(load(&fifo), Err(CompareError::NotAFile { .. })));
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        std::fs::write(&path, " ".repeat(MAX_FILE_BYTES as usize + 1)).unwrap();
        assert!(load(&path).err().unwrap().to_string().ends_with(
            "is larger than 64 MiB: not a netlat result (a run's file is a few kB to a few MB)"
        ),);
    }
}
