use std::os::unix::fs::PermissionsExt as _;

use super::*;
use crate::recorder::fixture;

/// 2026-12-03T03:12:00.123456789Z
const T0: u64 = 1_796_267_520_123_456_789;

const ROOMY: Limits = Limits {
    max_files: 100,
    max_bytes: 1 << 30,
};

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("netlat-store-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        Scratch(dir)
    }

    fn names(&self, sub: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.0.join(sub))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn ids_sort_by_time_and_carry_the_function() {
    assert_eq!(
        make_id("net_rx_action", T0),
        "20261203T031200.123456Z-net_rx_action"
    );
    assert_eq!(make_id("x", 0), "19700101T000000.000000Z-x");
    // Leap day, and characters outside the id set.
    assert_eq!(
        make_id("tcp_collapse.constprop..0/€", 1_709_164_800_000_001_000),
        "20240229T000000.000001Z-tcp_collapse.constprop._0__"
    );
    let long = make_id(&"f".repeat(400), T0);
    assert_eq!(long.len(), MAX_ID_LEN);
    assert!(valid_id(&long));
    assert!(make_id("a", T0) < make_id("a", T0 + 1_000));
}

#[test]
fn bad_ids_are_refused() {
    for bad in [
        "../x",
        "a/b",
        ".x",
        "",
        "a..b",
        "a b",
        "x%2e",
        &"a".repeat(161),
    ] {
        assert!(!valid_id(bad), "{bad:?}");
    }
    assert!(valid_id(&"a".repeat(160)));
    assert!(valid_id("20261203T031200.123456Z-net_rx_action"));
}

#[test]
fn write_list_read_round_trip_with_modes() {
    let scratch = Scratch::new("round");
    let dir = scratch.0.join("deep/captures");
    let store = Store::open(&dir, ROOMY).unwrap();
    assert_eq!(mode(&dir), 0o700);
    let older = fixture::capture(T0, 3);
    let newer = fixture::capture(T0 + 60_000_000_000, 1);
    let listing = store.write(&older).unwrap();
    assert_eq!(listing, older.listing());
    assert_eq!(listing.slow_calls, 3);
    assert_eq!(listing.max_duration_ns, 8_000_000);
    assert_eq!(listing.top_culprit.as_deref(), Some("tcp_collapse"));
    store.write(&newer).unwrap();
    let file = dir.join(format!("{}.json", older.id));
    assert_eq!(mode(&file), 0o600);
    let ids: Vec<String> = store.list().into_iter().map(|l| l.id).collect();
    assert_eq!(ids, [newer.id.clone(), older.id.clone()]);
    assert_eq!(store.read(&older.id).unwrap(), fs::read(&file).unwrap());
    assert_eq!(store.capture(&older.id).unwrap(), older);
    assert!(matches!(
        store.read("19700101T000000.000000Z-nope"),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.read("../../etc/passwd"),
        Err(StoreError::InvalidId { .. })
    ));
    // A restart finds them again.
    drop(store);
    let again = Store::open(&dir, ROOMY).unwrap();
    assert_eq!(again.list(), [newer.listing(), older.listing()]);
    let read_only = Store::open_read_only(&dir).unwrap();
    assert_eq!(read_only.list().len(), 2);
    assert!(matches!(
        read_only.write(&older),
        Err(StoreError::ReadOnly { .. })
    ));
}

#[test]
fn pruning_by_count_removes_the_oldest() {
    let scratch = Scratch::new("count");
    let store = Store::open(
        &scratch.0,
        Limits {
            max_files: 2,
            max_bytes: 1 << 30,
        },
    )
    .unwrap();
    let captures: Vec<Capture> = (0..4)
        .map(|i| fixture::capture(T0 + i * 1_000_000_000, 1))
        .collect();
    // Written out of order: age is the capture's start, not the write.
    for i in [1, 0, 3, 2] {
        store.write(&captures[i]).unwrap();
    }
    let ids: Vec<String> = store.list().into_iter().map(|l| l.id).collect();
    assert_eq!(ids, [captures[3].id.clone(), captures[2].id.clone()]);
    assert_eq!(
        scratch.names(""),
        [
            format!("{}.json", captures[2].id),
            format!("{}.json", captures[3].id)
        ]
    );
}

#[test]
fn limits_lowered_since_the_last_run_hold_at_open() {
    let scratch = Scratch::new("reopen");
    let store = Store::open(&scratch.0, ROOMY).unwrap();
    let captures: Vec<Capture> = (0..3)
        .map(|i| fixture::capture(T0 + i * 1_000_000_000, 1))
        .collect();
    for c in &captures {
        store.write(c).unwrap();
    }
    drop(store);
    let fewer = Limits {
        max_files: 1,
        max_bytes: 1 << 30,
    };
    let store = Store::open(&scratch.0, fewer).unwrap();
    assert_eq!(store.list(), [captures[2].listing()]);
    assert_eq!(scratch.names(""), [format!("{}.json", captures[2].id)]);
}

#[test]
fn pruning_by_bytes_keeps_the_new_one_and_refuses_one_too_large() {
    let scratch = Scratch::new("bytes");
    let one = serde_json::to_vec(&fixture::capture(T0, 1)).unwrap().len() as u64;
    let store = Store::open(
        &scratch.0,
        Limits {
            max_files: 100,
            max_bytes: one * 2 + one / 2,
        },
    )
    .unwrap();
    let captures: Vec<Capture> = (0..3)
        .map(|i| fixture::capture(T0 + i * 1_000_000_000, 1))
        .collect();
    for c in &captures {
        store.write(c).unwrap();
    }
    let ids: Vec<String> = store.list().into_iter().map(|l| l.id).collect();
    assert_eq!(ids, [captures[2].id.clone(), captures[1].id.clone()]);
    // An older capture written last is still the one kept.
    let ancient = fixture::capture(T0 - 1_000_000_000, 1);
    store.write(&ancient).unwrap();
    let ids: Vec<String> = store.list().into_iter().map(|l| l.id).collect();
    assert_eq!(ids, [captures[2].id.clone(), ancient.id.clone()]);
    let huge = fixture::capture(T0 + 9_000_000_000, 40);
    match store.write(&huge) {
        Err(StoreError::TooLarge { bytes, .. }) => assert!(bytes > one * 2),
        other => panic!("{other:?}"),
    }
    assert!(!scratch.0.join(format!("{}.json", huge.id)).exists());
    assert_eq!(store.list().len(), 2);
}

#[test]
fn open_removes_stale_temporaries_and_skips_what_does_not_parse() {
    let scratch = Scratch::new("stale");
    fs::create_dir_all(&scratch.0).unwrap();
    let capture = fixture::capture(T0, 1);
    fs::write(
        scratch.0.join(format!("{}.json", capture.id)),
        serde_json::to_vec(&capture).unwrap(),
    )
    .unwrap();
    // A write killed mid-way: its process is gone (4194304 is above the
    // kernel's largest pid_max).
    let stale = format!(".{}.json.netlat-4194304.tmp", capture.id);
    fs::write(scratch.0.join(&stale), b"{\"netlat_cap").unwrap();
    // A live process's temporary is left alone.
    let live = format!(".x.json.netlat-{}.tmp", std::os::unix::process::parent_id());
    fs::write(scratch.0.join(&live), b"").unwrap();
    fs::write(
        scratch.0.join("19700101T000000.000000Z-junk.json"),
        b"not json",
    )
    .unwrap();
    let store = Store::open(&scratch.0, ROOMY).unwrap();
    assert_eq!(store.list(), [capture.listing()]);
    let names = scratch.names("");
    assert!(!names.contains(&stale), "{names:?}");
    assert!(names.contains(&live), "{names:?}");
    assert!(
        names.contains(&"19700101T000000.000000Z-junk.json".to_owned()),
        "not deleted: {names:?}"
    );
}

#[test]
fn a_newer_format_is_skipped_not_misread() {
    let mut capture = fixture::capture(T0, 1);
    capture.netlat_capture = FORMAT + 1;
    let why = parse(&serde_json::to_vec(&capture).unwrap()).unwrap_err();
    assert!(why.contains("newer than this netlat reads"), "{why}");
}

#[test]
fn a_file_or_symlink_for_the_directory_is_refused_in_one_line() {
    let scratch = Scratch::new("notdir");
    fs::create_dir_all(&scratch.0).unwrap();
    let file = scratch.0.join("plain");
    fs::write(&file, b"").unwrap();
    let e = Store::open(&file, ROOMY).unwrap_err();
    assert!(matches!(e, StoreError::NotADirectory { .. }), "{e:?}");
    let text = e.to_string();
    assert_eq!(text.lines().count(), 1);
    assert!(text.contains("give a directory"), "{text}");
    let link = scratch.0.join("link");
    std::os::unix::fs::symlink(&scratch.0, &link).unwrap();
    assert!(matches!(
        Store::open(&link, ROOMY),
        Err(StoreError::Symlink { .. })
    ));
    assert!(matches!(
        Store::open_read_only(&scratch.0.join("missing")),
        Err(StoreError::Missing { .. })
    ));
}

#[test]
fn a_directory_others_can_write_is_refused_and_links_are_not_followed() {
    let scratch = Scratch::new("unsafe");
    fs::create_dir_all(&scratch.0).unwrap();
    fs::set_permissions(&scratch.0, fs::Permissions::from_mode(0o777)).unwrap();
    let e = Store::open(&scratch.0, ROOMY).unwrap_err();
    assert!(matches!(e, StoreError::Unsafe { mode: 0o777, .. }), "{e:?}");
    assert!(e.to_string().contains("chmod 700"), "{e}");
    fs::set_permissions(&scratch.0, fs::Permissions::from_mode(0o755)).unwrap();
    let store = Store::open(&scratch.0, ROOMY).unwrap();
    // A capture file swapped for a symlink after the index was built
    // (to a file root can read) is not served.
    let capture = fixture::capture(T0, 1);
    store.write(&capture).unwrap();
    let file = scratch.0.join(format!("{}.json", capture.id));
    let elsewhere = scratch.0.join("elsewhere");
    fs::rename(&file, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &file).unwrap();
    assert!(matches!(
        store.read(&capture.id),
        Err(StoreError::Read { .. })
    ));
    drop(store);
    assert!(Store::open(&scratch.0, ROOMY).unwrap().list().is_empty());
}

#[test]
fn the_store_can_be_shared_between_tasks() {
    fn shared<T: Send + Sync>() {}
    shared::<Store>();
}
