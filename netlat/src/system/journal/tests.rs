use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};

use super::*;
use netlat_testkit::scratch::Scratch;

/// A journal and a fake /proc/sys with one key.
fn scratch(value: &str) -> (Scratch, Journal) {
    let dir = Scratch::new("journal");
    fs::create_dir_all(dir.join("sys/net/core")).unwrap();
    fs::write(dir.join("sys/net/core/somaxconn"), format!("{value}\n")).unwrap();
    let journal = Journal::at(&dir.join("run"), &dir.join("sys"));
    (dir, journal)
}

fn dead(set: &str) -> Record {
    Record {
        key: "net.core.somaxconn".into(),
        original: Some("4096".into()),
        set: Some(set.into()),
        // Above any pid_max (4194304).
        pid: 0x7fff_fff0,
        pid_start: 1,
    }
}

/// Writes a record as a netlat would have (the directory made first).
fn put(journal: &Journal, record: &Record) {
    trust::create_dir(&journal.dir).unwrap();
    journal.put(record, false).unwrap();
}

fn value(dir: &Scratch) -> String {
    fs::read_to_string(dir.join("sys/net/core/somaxconn")).unwrap()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn a_dead_writers_value_is_put_back_once() {
    let (dir, journal) = scratch("8192");
    put(&journal, &dead("8192"));
    let outcomes = journal.recover();
    assert_eq!(
        outcomes[0].to_string(),
        "netlat: restored net.core.somaxconn = 4096 (netlat pid 2147483632 changed it and ended without restoring it)"
    );
    assert_eq!(value(&dir), "4096");
    assert_eq!(journal.recover(), [], "the record is gone");
}

#[test]
fn a_value_someone_else_changed_is_left_and_said() {
    let (dir, journal) = scratch("1000");
    put(&journal, &dead("8192"));
    let outcomes = journal.recover();
    assert_eq!(
        outcomes[0].to_string(),
        "netlat: not restoring net.core.somaxconn: it is now 1000, not the 8192 netlat pid 2147483632 set, so someone changed it since; it was 4096 before netlat"
    );
    assert_eq!(value(&dir), "1000\n");
    assert_eq!(journal.recover(), []);
}

#[test]
fn a_live_writer_keeps_its_record_and_blocks_claims() {
    let (dir, journal) = scratch("8192");
    // The parent process (cargo's test runner) stands in for another
    // netlat that is still running.
    let parent = std::os::unix::process::parent_id();
    let other = Record {
        pid: parent,
        pid_start: start_time(parent).unwrap(),
        ..Record::mine("net.core.somaxconn", Some(("4096", "8192")))
    };
    put(&journal, &other);
    assert!(matches!(journal.recover()[..], [Outcome::InUse { .. }]));
    assert_eq!(value(&dir), "8192\n");
    let err = journal.claim("net.core.somaxconn").err().unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "net.core.somaxconn is being changed by another netlat (pid {parent}): wait for it to end"
        )
    );
    // A reused pid (same number, other start time) is not the writer,
    // and its change is not taken over before it is restored.
    put(
        &journal,
        &Record {
            pid_start: other.pid_start + 1,
            ..other
        },
    );
    assert!(matches!(
        journal.claim("net/core/somaxconn"),
        Err(JournalError::Unrestored { .. })
    ));
    assert!(matches!(journal.recover()[..], [Outcome::Restored { .. }]));
    assert_eq!(value(&dir), "4096");
}

#[test]
fn a_claim_holds_the_key_until_dropped() {
    let (_dir, journal) = scratch("4096");
    let claim = journal.claim("net/core/somaxconn").unwrap();
    assert_eq!(claim.key(), "net.core.somaxconn");
    let file = journal.file("net.core.somaxconn");
    let held: Record = serde_json::from_str(&fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!((held.original, held.set), (None, None));
    assert_eq!(held.pid, std::process::id());
    claim.changing("4096", "8192").unwrap();
    drop(claim);
    assert!(file.exists(), "a change in force keeps its record");
    put(
        &journal,
        &Record {
            pid: 0x7fff_fff0,
            ..Record::mine("net.core.somaxconn", None)
        },
    );
    // A dead netlat's claim that changed nothing is taken over.
    let claim = journal.claim("net.core.somaxconn").unwrap();
    claim.unchanged().unwrap();
    drop(claim);
    assert!(!file.exists(), "released");
    assert!(matches!(
        journal.claim("net.core.nonexistent"),
        Err(JournalError::Unknown { .. })
    ));
    assert!(matches!(
        journal.claim("../../etc/passwd"),
        Err(JournalError::Key(_))
    ));
}

#[test]
fn the_directory_and_records_are_private_whatever_the_umask() {
    let (_dir, journal) = scratch("4096");
    // SAFETY: umask has no preconditions; restored below.
    let old = unsafe { libc::umask(0) };
    let claim = journal.claim("net.core.somaxconn");
    unsafe { libc::umask(old) };
    let claim = claim.unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&journal.dir), 0o700);
    assert_eq!(mode(&journal.file("net.core.somaxconn")), 0o600);
    drop(claim);
}

#[test]
fn a_directory_others_can_write_is_not_acted_on() {
    let (dir, journal) = scratch("8192");
    put(&journal, &dead("8192"));
    fs::set_permissions(&journal.dir, fs::Permissions::from_mode(0o777)).unwrap();
    let outcomes = journal.recover();
    assert_eq!(
        outcomes.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [format!(
            "netlat: not acting on the restore records in {}: it is writable by others than its owner (mode 777); nothing was restored (look at it, then remove it or make it root's, mode 700)",
            journal.dir.display()
        )]
    );
    assert!(outcomes[0].is_failure());
    assert_eq!(value(&dir), "8192\n", "nothing written");
    assert!(matches!(
        journal.claim("net.core.somaxconn"),
        Err(JournalError::Dir { .. })
    ));
    // A symbolic link in its place is not followed either.
    fs::remove_dir_all(&journal.dir).unwrap();
    fs::create_dir(dir.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(dir.join("elsewhere"), &journal.dir).unwrap();
    assert!(
        journal.recover()[0]
            .to_string()
            .contains("it is a symbolic link"),
    );
    assert!(journal.claim("net.core.somaxconn").is_err());
    assert_eq!(fs::read_dir(dir.join("elsewhere")).unwrap().count(), 0);
}

/// Each hostile record is reported in one line, left as it is, and
/// nothing is written: not the sysctl, not the file a key points at.
#[test]
fn records_not_fit_to_act_on_are_reported_not_acted_on() {
    let (dir, journal) = scratch("8192");
    trust::create_dir(&journal.dir).unwrap();
    let victim = dir.join("victim");
    fs::write(&victim, "keep").unwrap();
    let text = |r: &Record| serde_json::to_string(r).unwrap();
    let planted = |name: &str, body: &str| {
        let path = journal.dir.join(name);
        fs::write(&path, body).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        path
    };
    let outside = Record {
        key: victim.display().to_string(),
        ..dead("keep")
    };
    planted(
        &format!("sysctl.{}.json", outside.key.replace('/', "%")),
        &text(&outside),
    );
    let dotdot = Record {
        key: "net/../../victim".into(),
        ..dead("8192")
    };
    planted("sysctl.net%..%..%victim.json", &text(&dotdot));
    let elsewhere = planted("sysctl.net.core.other.json", &text(&dead("8192")));
    let writable = planted("sysctl.net.core.somaxconn.json", &text(&dead("8192")));
    fs::set_permissions(&writable, fs::Permissions::from_mode(0o666)).unwrap();
    planted(
        "sysctl.big.json",
        &" ".repeat(MAX_RECORD_BYTES as usize + 1),
    );
    planted("sysctl.junk.json", "{\"key\": 1}");
    std::os::unix::fs::symlink(&victim, journal.dir.join("sysctl.link.json")).unwrap();
    let fifo = std::ffi::CString::new(
        journal
            .dir
            .join("sysctl.fifo.json")
            .as_os_str()
            .as_encoded_bytes(),
    )
    .unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let t = std::time::Instant::now();
    let lines: Vec<String> = journal.recover().iter().map(ToString::to_string).collect();
    assert!(
        t.elapsed() < std::time::Duration::from_secs(2),
        "a FIFO never blocks"
    );
    println!("{}", lines.join("\n"));
    let why = |name: &str| {
        let file = journal.dir.join(name).display().to_string();
        lines
            .iter()
            .find(|l| l.contains(&format!("record {file}: ")))
            .unwrap_or_else(|| panic!("{name} not reported: {lines:?}"))
            .clone()
    };
    assert!(why("sysctl.big.json").contains(
        ": it is larger than 8192 bytes; nothing was written (look at it, then remove it)"
    ));
    assert!(why("sysctl.junk.json").contains("it is not a restore record"));
    assert!(why("sysctl.link.json").contains("it is a symbolic link"));
    assert!(why("sysctl.fifo.json").contains("it is not a regular file"));
    assert!(why("sysctl.net.core.somaxconn.json").contains("writable by others"));
    assert!(why("sysctl.net.core.other.json").contains("belongs in another file"));
    assert!(why("sysctl.net%..%..%victim.json").contains("it has a . or .. component"));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("is not a sysctl name: it starts with /"))
    );
    assert_eq!(lines.len(), 8, "{lines:?}");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
    assert_eq!(value(&dir), "8192\n");
    assert!(elsewhere.exists() && writable.exists(), "left as they are");
}

#[test]
fn a_record_owned_by_another_user_is_not_acted_on() {
    if !is_root() {
        return println!("skipped: chown needs root");
    }
    let (dir, journal) = scratch("8192");
    put(&journal, &dead("8192"));
    let file = journal.file("net.core.somaxconn");
    std::os::unix::fs::chown(&file, Some(65534), Some(65534)).unwrap();
    let lines: Vec<String> = journal.recover().iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].contains("it is owned by uid 65534, not by uid 0 (this netlat)"),
        "{lines:?}"
    );
    assert_eq!(value(&dir), "8192\n");
    assert!(matches!(
        journal.claim("net.core.somaxconn"),
        Err(JournalError::Untrusted { .. })
    ));
    std::os::unix::fs::chown(&journal.dir, Some(65534), None).unwrap();
    assert!(
        journal.recover()[0]
            .to_string()
            .contains("owned by uid 65534")
    );
    assert_eq!(fs::metadata(&file).unwrap().uid(), 65534, "left as it is");
}

#[test]
fn a_gone_key_is_dropped_after_one_warning_and_values_are_escaped() {
    let (dir, journal) = scratch("8192");
    put(
        &journal,
        &Record {
            key: "net.core.gone".into(),
            ..dead("8192")
        },
    );
    let lines: Vec<String> = journal.recover().iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "netlat: dropped the restore record of netlat pid 2147483632 for net.core.gone: the key no longer exists (its device is gone?)"
        ]
    );
    assert_eq!(journal.recover(), []);
    put(
        &journal,
        &Record {
            original: Some("4096\u{1b}[2J\u{202e}".into()),
            ..dead("1")
        },
    );
    let line = journal.recover()[0].to_string();
    assert!(
        !line.chars().any(|c| c.is_control() || c == '\u{202e}'),
        "{line:?}"
    );
    assert!(line.contains("4096\\u{1b}[2J\\u{202e}"), "{line}");
    // Unreadable now is not "changed by someone": the record stays.
    fs::remove_file(dir.join("sys/net/core/somaxconn")).unwrap();
    fs::create_dir(dir.join("sys/net/core/somaxconn")).unwrap();
    put(&journal, &dead("8192"));
    assert!(matches!(journal.recover()[..], [Outcome::Failed { .. }]));
    assert!(journal.file("net.core.somaxconn").exists());
}

#[test]
fn start_time_is_field_22_even_with_odd_names() {
    let stat = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100";
    assert_eq!(parse_start_time(stat), Some(987654));
    assert!(start_time(std::process::id()).is_some());
    assert_eq!(start_time(0x7fff_fff0), None);
}
