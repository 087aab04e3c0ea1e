//! Interop with a real client: the official Python `mcp` SDK (pinned in
//! tests/interop/setup.sh) drives `capmux serve` on the bundled plugins and skills over
//! stdio, plus one extra skill whose `outside.md` links to a file outside it (which must
//! never reach the client).
//!
//! The SDK is installed into `target/interop/venv` on first use; a machine that cannot
//! install it fails this test rather than skipping it, so CI never passes without it.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::support::{self, capmux};

#[test]
fn the_python_sdk_client_lists_calls_and_reads_everything() {
    let repo = support::repo();
    let setup = Command::new("bash")
        .arg(repo.join("tests/interop/setup.sh"))
        .output()
        .expect("bash runs");
    assert!(
        setup.status.success(),
        "installing the Python mcp SDK failed:\n{}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let stdout = String::from_utf8_lossy(&setup.stdout);
    let python = stdout
        .lines()
        .last()
        .expect("setup.sh prints the venv python")
        .trim()
        .to_owned();

    let home = tempfile::tempdir().expect("tempdir");
    // A skill collection with one skill, `linky`, whose outside.md links to a file
    // outside the skill; the marker in that file must appear in no answer.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    let marker = format!("capmux-link-marker-{}-{nanos}", std::process::id());
    let secret = home.path().join("secret.md");
    std::fs::write(&secret, format!("Outside the skill: {marker}\n")).expect("write secret");
    let extra = home.path().join("extra-skills");
    let linky = extra.join("linky");
    std::fs::create_dir_all(&linky).expect("skill folder");
    std::fs::write(
        linky.join("SKILL.md"),
        "---\nname: linky\ndescription: A test skill whose outside.md links to a file outside it.\n---\n# Linky\n\nSee outside.md.\n",
    )
    .expect("write SKILL.md");
    std::os::unix::fs::symlink(&secret, linky.join("outside.md")).expect("symlink");

    // The client passes its environment on to the server it spawns; `capmux(..)` only
    // provides that environment (a home without the developer's config or packages).
    let reference = capmux(home.path());
    let mut client = Command::new(&python);
    client
        .current_dir(&repo)
        .arg(repo.join("tests/interop/sdk_client.py"))
        .arg("--repo")
        .arg(&repo)
        .args([
            "--link-skill",
            "extra-skills__linky",
            "--link-marker",
            marker.as_str(),
        ])
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_capmux"))
        .arg("--package")
        .arg(&extra)
        .arg("serve");
    for (key, value) in reference.get_envs() {
        match value {
            Some(value) => client.env(key, value),
            None => client.env_remove(key),
        };
    }
    let output = client.output().expect("the SDK client runs");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains("\n20 passed, 0 failed"), "{report}");
}
