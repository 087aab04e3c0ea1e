//! Interop with a real client: the official Python `mcp` SDK (pinned in
//! tests/interop/setup.sh) drives `capmux serve` on the bundled plugins over stdio.
//!
//! The SDK is installed into `target/interop/venv` on first use; a machine that cannot
//! install it fails this test rather than skipping it, so CI never passes without it.

use std::process::Command;

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
    // The client passes its environment on to the server it spawns; `capmux(..)` only
    // provides that environment (a home without the developer's config or packages).
    let reference = capmux(home.path());
    let mut client = Command::new(&python);
    client
        .current_dir(&repo)
        .arg(repo.join("tests/interop/sdk_client.py"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_capmux"))
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
    assert!(report.contains("\n12 passed, 0 failed"), "{report}");
}
