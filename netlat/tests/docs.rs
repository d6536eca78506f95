//! Completions and man pages come out of the real binary and cover every
//! subcommand clap knows (the list is clap's, not written down here).
//! No root, no kernel.

mod common;

use std::process::Command;

use common::run;

#[test]
fn completions_name_every_subcommand() {
    let subcommands = netlat::docs::subcommands(&netlat::cli::command());
    assert!(subcommands.iter().any(|s| s == "info"), "{subcommands:?}");
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&["completions", shell]);
        assert!(out.success, "{shell}: {}", out.stderr);
        for sub in &subcommands {
            assert!(
                out.stdout.contains(sub.as_str()),
                "{shell} completions lack {sub}"
            );
        }
    }
    // Options come along too, not just names.
    let bash = run(&["completions", "bash"]).stdout;
    assert!(
        bash.contains("--backend") && bash.contains("--slower-than"),
        "{bash}"
    );
    let out = run(&["completions", "tcsh"]);
    assert!(
        !out.success && out.stderr.lines().count() == 1,
        "{}",
        out.stderr
    );
}

#[test]
fn one_man_page_per_subcommand() {
    let dir = std::env::temp_dir().join(format!("netlat-man-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = run(&["man-pages", "--out", dir.to_str().unwrap()]);
    assert!(out.success, "{}", out.stderr);
    let top = std::fs::read_to_string(dir.join("netlat.1")).expect("netlat.1");
    for sub in netlat::docs::subcommands(&netlat::cli::command()) {
        let page = dir.join(format!("netlat-{sub}.1"));
        let text =
            std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{text}");
        // roff escapes every hyphen of the page's name.
        let roff_name = format!("netlat-{sub}").replace('-', "\\-");
        assert!(text.contains(&roff_name), "{sub}: {text}");
        assert!(
            top.contains(&sub.replace('-', "\\-")),
            "netlat.1 does not list {sub}"
        );
        // man renders it without complaint, where man is installed.
        if let Ok(rendered) = Command::new("man")
            .arg("-l")
            .arg(&page)
            .env("MANWIDTH", "80")
            .output()
            && rendered.status.success()
        {
            assert!(String::from_utf8_lossy(&rendered.stdout).contains(&sub));
        }
    }
    let listed = out.stdout.lines().count();
    assert_eq!(
        listed,
        netlat::docs::subcommands(&netlat::cli::command()).len() + 1,
        "{}",
        out.stdout
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let missing = run(&["man-pages", "--out", "/nonexistent/netlat-man"]);
    assert!(
        !missing.success && missing.stderr.contains("not a directory"),
        "{}",
        missing.stderr
    );
}
