//! `capmux install` and the lifecycle commands, run as the binary with HOME and the XDG
//! folders in a temporary folder: folders, `npm pack` tarballs, git repositories at a tag,
//! hostile archives, a killed install, concurrent installs, and a running server that sees
//! installs and removals.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::support::{self, capmux};

fn run(home: &Path, args: &[&str]) -> Output {
    capmux(home)
        .current_dir(home)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("capmux runs")
}

fn ok(home: &Path, args: &[&str]) -> String {
    let out = run(home, args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "capmux {args:?} failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn fails(home: &Path, args: &[&str]) -> String {
    let out = run(home, args);
    assert!(!out.status.success(), "capmux {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn registry(home: &Path) -> Value {
    let text = std::fs::read_to_string(home.join("data/capmux/registry.json")).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("registry is not JSON ({e}):\n{text}"))
}

fn store_dirs(home: &Path) -> Vec<String> {
    let mut dirs: Vec<String> = std::fs::read_dir(home.join("data/capmux/store"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with(".staging-"))
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}

/// A native package `name` with a command tool `hello` that prints `greeting`.
fn native_package(dir: &Path, name: &str, version: &str, greeting: &str) -> PathBuf {
    let tool = json!({
        "name": "hello", "description": "says hello",
        "inputSchema": {"type": "object"},
        "command": ["python3", "hello.py"]
    });
    support::package(
        dir,
        name,
        json!({"permissions": ["shell:execute"], "tools": [tool],
               "settings": {"who": {"type": "string", "default": "world"},
                            "token": {"type": "string", "secret": true}}}),
        &[("hello.py", &format!("print('{greeting}')\n"))],
    );
    let manifest = dir.join(name).join("package.json");
    let mut json: Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).expect("test step"))
            .expect("test step");
    json["version"] = version.into();
    std::fs::write(&manifest, json.to_string()).expect("test step");
    dir.join(name)
}

#[test]
fn a_folder_installs_and_goes_through_its_lifecycle() {
    let home = tempfile::tempdir().expect("tempdir");
    let h = home.path();
    let src = native_package(&h.join("src"), "greeter", "1.0.0", "hello v1");

    // Without a terminal and without --yes: installed, but disabled and granted nothing.
    let out = ok(h, &["install", src.to_str().expect("test step")]);
    assert!(out.contains("permissions: shell:execute"), "{out}");
    assert!(out.contains("tool hello: python3 hello.py"), "{out}");
    assert!(out.contains("disabled"), "{out}");
    let entry = &registry(h)["packages"]["greeter"];
    assert_eq!(entry["enabled"], false);
    assert_eq!(entry["kind"], "folder");
    assert!(
        entry["digest"]
            .as_str()
            .expect("test step")
            .starts_with("sha256:")
    );
    assert!(!ok(h, &["--no-bundled", "tools"]).contains("greeter__hello"));

    ok(h, &["grant", "greeter", "shell:execute"]);
    assert!(ok(h, &["--no-bundled", "call", "greeter__hello"]).contains("hello v1"));
    ok(h, &["disable", "greeter"]);
    assert!(!ok(h, &["--no-bundled", "tools"]).contains("greeter__hello"));
    ok(h, &["enable", "greeter"]);
    assert!(ok(h, &["--no-bundled", "tools"]).contains("greeter__hello"));
    assert!(fails(h, &["grant", "greeter", "fs:write"]).contains("does not ask for fs:write"));
    ok(h, &["revoke", "greeter", "shell:execute"]);
    assert!(
        run(h, &["--no-bundled", "call", "greeter__hello"])
            .status
            .code()
            != Some(0)
    );
    ok(h, &["grant", "greeter", "shell:execute"]);

    // Settings: checked against the package; a secret is stored but never printed.
    assert_eq!(
        ok(h, &["config", "get", "greeter", "who"]).trim(),
        "\"world\" (default)"
    );
    ok(h, &["config", "set", "greeter", "who", "moon"]);
    assert_eq!(
        ok(h, &["config", "get", "greeter", "who"]).trim(),
        "\"moon\""
    );
    assert!(fails(h, &["config", "set", "greeter", "nope", "1"]).contains("no setting `nope`"));
    let secret = ok(h, &["config", "set", "greeter", "token", "s3cr3t-value"]);
    assert!(!secret.contains("s3cr3t-value"), "{secret}");
    assert!(!ok(h, &["config", "get", "greeter", "token"]).contains("s3cr3t"));
    assert!(!ok(h, &["info", "greeter"]).contains("s3cr3t"));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(h.join("data/capmux/registry.json"))
            .expect("test step")
            .permissions(),
    );
    assert_eq!(
        mode & 0o077,
        0,
        "the registry holds secrets: only the user reads it"
    );

    // Update: the new version is staged and swapped in; settings and grants stay.
    let old_dirs = store_dirs(h);
    native_package(&h.join("src"), "greeter", "1.1.0", "hello v2");
    ok(h, &["update", "greeter"]);
    assert_eq!(registry(h)["packages"]["greeter"]["version"], "1.1.0");
    assert!(ok(h, &["--no-bundled", "call", "greeter__hello"]).contains("hello v2"));
    assert_eq!(
        registry(h)["packages"]["greeter"]["settings"]["who"],
        "moon"
    );
    let new_dirs = store_dirs(h);
    assert_eq!(
        new_dirs.len(),
        1,
        "the old version is gone: {old_dirs:?} → {new_dirs:?}"
    );
    assert_ne!(old_dirs, new_dirs);

    // verify: a file changed behind capmux's back holds the package.
    assert!(ok(h, &["verify"]).contains("ok greeter"));
    let installed = PathBuf::from(
        registry(h)["packages"]["greeter"]["path"]
            .as_str()
            .expect("test step"),
    );
    std::fs::write(installed.join("hello.py"), "print('tampered')\n").expect("test step");
    let verify = run(h, &["verify"]);
    assert_eq!(verify.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&verify.stdout).contains("HELD greeter"));
    assert!(!ok(h, &["--no-bundled", "tools"]).contains("greeter__hello"));

    ok(h, &["remove", "greeter"]);
    assert!(
        registry(h)["packages"]
            .as_object()
            .expect("test step")
            .is_empty()
    );
    assert!(store_dirs(h).is_empty(), "{:?}", store_dirs(h));
}

#[test]
fn an_npm_pack_tarball_installs_without_running_its_scripts() {
    let home = tempfile::tempdir().expect("tempdir");
    let h = home.path();
    let src = native_package(&h.join("src"), "scripted", "2.0.0", "hi");
    let marker = h.join("postinstall-ran");
    let manifest = src.join("package.json");
    let mut json: Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).expect("test step"))
            .expect("test step");
    let touch = format!("touch {}", marker.display());
    json["scripts"] =
        json!({"postinstall": touch, "preinstall": touch, "prepare": touch, "prepack": touch});
    std::fs::write(&manifest, json.to_string()).expect("test step");
    let pack = Command::new("npm")
        .args(["pack", "--ignore-scripts", "--pack-destination"])
        .arg(h)
        .current_dir(&src)
        .output()
        .expect("npm runs");
    assert!(
        pack.status.success(),
        "{}",
        String::from_utf8_lossy(&pack.stderr)
    );
    let tarball = h.join("scripted-2.0.0.tgz");
    assert!(tarball.is_file());

    let out = ok(
        h,
        &["install", tarball.to_str().expect("test step"), "--yes"],
    );
    assert!(out.contains("installed scripted 2.0.0"), "{out}");
    assert!(!marker.exists(), "a script of the package ran");
    assert_eq!(registry(h)["packages"]["scripted"]["kind"], "tarball");
    assert!(ok(h, &["--no-bundled", "call", "scripted__hello"]).contains("hi"));
    // The same install through npm's own spec of a local file: `npm pack` runs no script.
    let out = ok(
        h,
        &["install", &format!("file:{}", tarball.display()), "--yes"],
    );
    assert!(out.contains("installed scripted"), "{out}");
    assert_eq!(registry(h)["packages"]["scripted"]["kind"], "npm");
    assert!(
        registry(h)["packages"]["scripted"]["integrity"]
            .as_str()
            .expect("test step")
            .starts_with("sha512-")
    );
    assert!(!marker.exists(), "a script of the package ran");
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn a_git_repository_installs_at_a_tag_with_its_commit_recorded() {
    let home = tempfile::tempdir().expect("tempdir");
    let h = home.path();
    let repo = native_package(&h.join("src"), "from-git", "1.0.0", "tagged");
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "v1"]);
    git(&repo, &["tag", "v1"]);
    let tagged = git(&repo, &["rev-parse", "HEAD"]);
    native_package(&h.join("src"), "from-git", "2.0.0", "later");
    git(&repo, &["commit", "-qam", "v2"]);

    let url = format!("file://{}#v1", repo.display());
    ok(h, &["install", &url, "--yes"]);
    let entry = &registry(h)["packages"]["from-git"];
    assert_eq!(entry["commit"], tagged.as_str());
    assert_eq!(entry["version"], "1.0.0");
    assert_eq!(entry["kind"], "git");
    let installed = PathBuf::from(entry["path"].as_str().expect("test step"));
    assert!(!installed.join(".git").exists());
    assert!(ok(h, &["--no-bundled", "call", "from-git__hello"]).contains("tagged"));
}

/// A `.tgz` with `package/package.json` (a valid package) and one hostile `entry`.
fn hostile_tarball(dir: &Path, name: &str, entry: &str) -> PathBuf {
    let path = dir.join(format!("{name}.tgz"));
    let script = r#"
import io, json, sys, tarfile
path, kind, name = sys.argv[1], sys.argv[2], sys.argv[3]
manifest = json.dumps({"name": name, "version": "1.0.0", "capmux": {"prompts": [
    {"name": "p", "content": "x"}]}}).encode()
with tarfile.open(path, "w:gz") as tar:
    info = tarfile.TarInfo("package/package.json"); info.size = len(manifest)
    tar.addfile(info, io.BytesIO(manifest))
    if kind == "symlink":
        info = tarfile.TarInfo("package/link"); info.type = tarfile.SYMTYPE; info.linkname = "/etc/passwd"
        tar.addfile(info)
    else:
        data = b"evil"
        info = tarfile.TarInfo(kind); info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&path)
        .arg(entry)
        .arg(name)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

#[test]
fn hostile_tarballs_are_refused_and_nothing_lands_outside_the_staging_folder() {
    let home = tempfile::tempdir().expect("tempdir");
    let h = home.path();
    let outside = h.join("outside");
    std::fs::create_dir_all(&outside).expect("test step");
    let evil_abs = outside.join("evil-abs");
    let cases = [
        ("with-link", "symlink".to_owned(), "symbolic link"),
        (
            "with-dotdot",
            "package/../../../../outside/evil-dotdot".to_owned(),
            "climbing out",
        ),
        ("with-abs", evil_abs.display().to_string(), "absolute path"),
    ];
    for (name, entry, why) in &cases {
        let tarball = hostile_tarball(h, name, entry);
        let err = fails(
            h,
            &["install", tarball.to_str().expect("test step"), "--yes"],
        );
        assert!(
            err.contains("refused") && err.contains(why),
            "{name}: {err}"
        );
    }
    assert_eq!(
        std::fs::read_dir(&outside).expect("test step").count(),
        0,
        "something was written outside"
    );
    assert!(!evil_abs.exists());
    assert!(store_dirs(h).is_empty(), "{:?}", store_dirs(h));
    let staging: Vec<_> = std::fs::read_dir(h.join("data/capmux/store"))
        .expect("test step")
        .collect();
    assert!(
        staging.is_empty(),
        "staging folders are removed after a refusal"
    );
    assert!(registry_or_empty(h).is_empty());
}

fn registry_or_empty(home: &Path) -> serde_json::Map<String, Value> {
    if !home.join("data/capmux/registry.json").exists() {
        return serde_json::Map::new();
    }
    registry(home)["packages"]
        .as_object()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn a_killed_install_leaves_a_valid_registry_and_no_half_package() {
    let home = tempfile::tempdir().expect("tempdir");
    let h = home.path();
    ok(
        h,
        &[
            "install",
            native_package(&h.join("src"), "first", "1.0.0", "x")
                .to_str()
                .expect("test step"),
            "--yes",
        ],
    );
    let big = native_package(&h.join("src"), "big", "1.0.0", "x");
    for i in 0..2000 {
        std::fs::write(big.join(format!("file-{i}.txt")), vec![b'x'; 8 * 1024]).expect("test step");
    }
    for delay_ms in [5u64, 20, 60, 150] {
        let mut child = capmux(h)
            .current_dir(h)
            .args(["install", big.to_str().expect("test step"), "--yes"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = child.wait();
        let packages = registry(h)["packages"]
            .as_object()
            .cloned()
            .expect("test step");
        assert!(packages.contains_key("first"));
        if let Some(entry) = packages.get("big") {
            // It finished before the kill: then it is whole.
            let path = PathBuf::from(entry["path"].as_str().expect("test step"));
            assert_eq!(std::fs::read_dir(&path).expect("test step").count(), 2002);
            ok(h, &["remove", "big"]);
        }
        // Any folder in the store is a whole, registered package (staging is hidden).
        for dir in store_dirs(h) {
            assert!(dir.starts_with("first-"), "half package left: {dir}");
        }
    }
}

#[test]
fn eight_processes_installing_and_removing_lose_nothing() {
    let home = tempfile::tempdir().expect("tempdir");
    let h = home.path().to_path_buf();
    let sources = h.join("src");
    const PROCS: usize = 8;
    const EACH: usize = 100;
    for p in 0..PROCS {
        for i in 0..EACH {
            support::package(
                &sources,
                &format!("p{p}-{i}"),
                json!({"prompts": [{"name": "x", "content": "y"}]}),
                &[],
            );
        }
    }
    let workers: Vec<_> = (0..PROCS)
        .map(|p| {
            let h = h.clone();
            let sources = sources.clone();
            std::thread::spawn(move || {
                for i in 0..EACH {
                    let id = format!("p{p}-{i}");
                    ok(
                        &h,
                        &[
                            "install",
                            sources.join(&id).to_str().expect("test step"),
                            "--yes",
                        ],
                    );
                    if i % 2 == 1 {
                        ok(&h, &["remove", &id]);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    let packages = registry(&h)["packages"]
        .as_object()
        .cloned()
        .expect("test step");
    let mut expected: Vec<String> = (0..PROCS)
        .flat_map(|p| {
            (0..EACH)
                .filter(|i| i % 2 == 0)
                .map(move |i| format!("p{p}-{i}"))
        })
        .collect();
    expected.sort();
    let mut got: Vec<String> = packages.keys().cloned().collect();
    got.sort();
    assert_eq!(got, expected);
    assert_eq!(store_dirs(&h).len(), expected.len());
}

#[test]
fn a_marketplace_plugin_installs_by_name() {
    let home = tempfile::tempdir().expect("tempdir");
    let h = home.path();
    let market = crate::formats::stage(h, "claude-marketplace");
    let out = ok(
        h,
        &["marketplace", "add", market.to_str().expect("test step")],
    );
    assert!(
        out.contains("added marketplace team-market (7 plugins)"),
        "{out}"
    );
    let listed = ok(h, &["marketplace", "list"]);
    assert!(
        listed.contains("alpha@team-market") && listed.contains("remote-npm@team-market"),
        "{listed}"
    );
    ok(h, &["install", "beta-skills@team-market", "--yes"]);
    ok(h, &["install", "alpha@team-market", "--yes"]);
    let prompts = ok(h, &["--no-bundled", "list"]);
    assert!(
        prompts.contains("alpha") && prompts.contains("beta-skills"),
        "{prompts}"
    );
    assert!(
        !prompts.contains("gamma"),
        "only installed plugins are served: {prompts}"
    );
    assert!(ok(h, &["marketplace", "list"]).contains("alpha@team-market [installed]"));
    let err = fails(h, &["install", "nope@team-market"]);
    assert!(err.contains("has no plugin `nope`"), "{err}");
    ok(h, &["remove", "alpha"]);
    assert!(!ok(h, &["--no-bundled", "list"]).contains("alpha "));
}

#[test]
fn marketplace_entries_from_git_install_from_their_source() {
    let home = tempfile::tempdir().expect("tempdir");
    let h = home.path();
    // One repository holding a plugin at its root and another in a sub-folder.
    let repo = h.join("repo");
    std::fs::create_dir_all(repo.join("plugins/sub/commands")).expect("mkdir");
    std::fs::create_dir_all(repo.join(".claude-plugin")).expect("mkdir");
    std::fs::create_dir_all(repo.join("commands")).expect("mkdir");
    std::fs::write(
        repo.join(".claude-plugin/plugin.json"),
        r#"{"name": "rooted", "version": "3.0.0"}"#,
    )
    .expect("write");
    std::fs::write(repo.join("commands/r.md"), "Root command.").expect("write");
    std::fs::write(repo.join("plugins/sub/commands/s.md"), "Sub command.").expect("write");
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "one"]);
    git(&repo, &["tag", "v3"]);
    let url = format!("file://{}", repo.display());
    let market = h.join("market");
    std::fs::create_dir_all(market.join(".claude-plugin")).expect("mkdir");
    let manifest = json!({"name": "gitmarket", "owner": {"name": "t"}, "plugins": [
        {"name": "rooted", "source": {"source": "url", "url": url, "ref": "v3"}},
        {"name": "sub", "source": {"source": "git-subdir", "url": url, "path": "plugins/sub"}},
    ]});
    std::fs::write(
        market.join(".claude-plugin/marketplace.json"),
        manifest.to_string(),
    )
    .expect("write");
    ok(h, &["marketplace", "add", market.to_str().expect("utf-8")]);
    ok(h, &["install", "rooted@gitmarket", "--yes"]);
    ok(h, &["install", "sub@gitmarket", "--yes"]);
    let reg = registry(h);
    assert_eq!(reg["packages"]["rooted"]["kind"], "git");
    assert_eq!(reg["packages"]["rooted"]["version"], "3.0.0");
    assert!(
        reg["packages"]["rooted"]["commit"]
            .as_str()
            .is_some_and(|c| c.len() == 40)
    );
    assert!(
        reg["packages"]["sub"]["source"]
            .as_str()
            .expect("source")
            .ends_with("#:plugins/sub")
    );
    let list = ok(h, &["--no-bundled", "list"]);
    assert!(list.contains("rooted") && list.contains("sub"), "{list}");
}

#[test]
fn a_corrupt_registry_is_an_error_that_changes_nothing() {
    let home = tempfile::tempdir().expect("tempdir");
    let h = home.path();
    let src = native_package(&h.join("src"), "one", "1.0.0", "x");
    ok(h, &["install", src.to_str().expect("utf-8"), "--yes"]);
    ok(h, &["disable", "one"]);
    let file = h.join("data/capmux/registry.json");
    std::fs::write(&file, "{ \"version\": 1, \"packages\": {").expect("write");
    let err = fails(h, &["enable", "one"]);
    assert!(
        err.contains("is corrupt") && err.contains("registry.json.bak"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).expect("read"),
        "{ \"version\": 1, \"packages\": {"
    );
    let backup: Value = serde_json::from_str(
        &std::fs::read_to_string(h.join("data/capmux/registry.json.bak")).expect("backup"),
    )
    .expect("the backup is JSON");
    assert!(backup["packages"]["one"].is_object());
    let list = run(h, &["--no-bundled", "list"]);
    assert!(
        String::from_utf8_lossy(&list.stdout).contains("is corrupt")
            || String::from_utf8_lossy(&list.stderr).contains("is corrupt")
    );
}

#[test]
fn an_update_that_asks_for_more_permissions_is_held_until_granted() {
    let home = tempfile::tempdir().expect("tempdir");
    let h = home.path();
    let src = native_package(&h.join("src"), "grows", "1.0.0", "v1");
    ok(h, &["install", src.to_str().expect("utf-8"), "--yes"]);
    let manifest = src.join("package.json");
    let mut json: Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).expect("read")).expect("json");
    json["version"] = "2.0.0".into();
    json["capmux"]["permissions"] = json!(["shell:execute", "network:fetch"]);
    std::fs::write(&manifest, json.to_string()).expect("write");
    let out = ok(h, &["update", "grows"]);
    assert!(
        out.contains("asks for more permissions: network:fetch"),
        "{out}"
    );
    assert!(!ok(h, &["--no-bundled", "tools"]).contains("grows__hello"));
    assert!(fails(h, &["enable", "grows"]).contains("capmux grant grows network:fetch"));
    ok(h, &["grant", "grows", "network:fetch"]);
    assert!(ok(h, &["--no-bundled", "tools"]).contains("grows__hello"));
}

#[test]
fn on_a_terminal_install_asks_and_a_yes_grants_what_it_shows() {
    let home = tempfile::tempdir().expect("tempdir");
    let h = home.path();
    let src = native_package(&h.join("src"), "asked", "1.0.0", "x");
    // capmux on a pseudo-terminal: the question appears, "y" is typed, and the package is
    // installed enabled with what it asked for.
    let script = r#"
import os, pty, subprocess, sys, time
master, slave = pty.openpty()
proc = subprocess.Popen(sys.argv[1:], stdin=slave, stdout=subprocess.PIPE, stderr=slave)
os.close(slave)
seen, deadline = b"", time.time() + 20
while b"[y/N]" not in seen and time.time() < deadline:
    seen += os.read(master, 4096)
os.write(master, b"y\n")
out, _ = proc.communicate(timeout=20)
sys.stdout.write(seen.decode(errors="replace") + "\n---\n" + out.decode())
sys.exit(proc.returncode)
"#;
    let mut command = Command::new("python3");
    command
        .args(["-c", script])
        .arg(env!("CARGO_BIN_EXE_capmux"))
        .args(["install", src.to_str().expect("utf-8")])
        .current_dir(h);
    for (key, value) in capmux(h).get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    let out = command.output().expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (question, _) = text.split_once("\n---\n").expect("two parts");
    assert!(
        question.contains("tool hello: python3 hello.py"),
        "{question}"
    );
    assert!(
        question.contains("Grant these permissions and enable `asked`?"),
        "{question}"
    );
    let entry = &registry(h)["packages"]["asked"];
    assert_eq!(entry["enabled"], true);
    assert_eq!(entry["grants"], json!(["shell:execute"]));
}
