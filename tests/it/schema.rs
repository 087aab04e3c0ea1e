//! The published JSON Schema of the native manifest: committed, current, and accepting the
//! manifests capmux itself ships.

use serde_json::{Value, json};

use crate::support;

fn schema() -> jsonschema::Validator {
    let text = capmux::package::schema::manifest_schema();
    let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
    jsonschema::validator_for(&schema).expect("a valid JSON Schema")
}

#[test]
fn the_committed_schema_is_the_generated_one() {
    let committed =
        std::fs::read_to_string(support::repo().join("schema/capmux-manifest.schema.json"))
            .expect("schema/capmux-manifest.schema.json");
    assert!(
        committed == capmux::package::schema::manifest_schema(),
        "schema/capmux-manifest.schema.json is stale: run `cargo run -- schema > schema/capmux-manifest.schema.json`"
    );
}

#[test]
fn the_bundled_plugins_validate_against_the_schema() {
    let validator = schema();
    let plugins = support::repo().join("plugins");
    let mut checked = 0;
    for entry in std::fs::read_dir(&plugins).expect("plugins/") {
        let manifest = entry.expect("entry").path().join("package.json");
        if !manifest.is_file() {
            continue;
        }
        let package: Value =
            serde_json::from_str(&std::fs::read_to_string(&manifest).expect("read")).expect("json");
        let errors: Vec<String> = validator
            .iter_errors(&package["capmux"])
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", manifest.display());
        checked += 1;
    }
    assert_eq!(checked, 3);
}

#[test]
fn the_schema_rejects_what_the_loader_rejects() {
    let validator = schema();
    assert!(!validator.is_valid(&json!({ "permissions": ["fs:everything"] })));
    assert!(!validator.is_valid(&json!({ "tools": [{ "name": "x", "command": "python3 x.py" }] })));
    assert!(
        !validator.is_valid(&json!({ "hooks": [{ "event": "onSomething", "command": ["x"] }] }))
    );
    assert!(!validator.is_valid(&json!({ "manifestVersion": 2 })));
    assert!(
        validator.is_valid(
            &json!({ "manifestVersion": 1, "tools": [{ "name": "x", "command": ["x"] }] })
        )
    );
}
