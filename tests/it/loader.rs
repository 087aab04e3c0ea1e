//! Tests: loader (scratch).
use capmux::discover::{Root, discover};
use capmux::package::Source;
use std::path::PathBuf;

#[test]
fn scratch_dump() {
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/loader");
    let mut dirs: Vec<_> = std::fs::read_dir(base.join("broken")).unwrap().map(|e| e.unwrap().path()).collect();
    dirs.sort();
    dirs.push(base.join("good/full"));
    dirs.push(base.join("good/aionui"));
    for d in dirs {
        let (p, diags) = discover(&[Root { path: d.clone(), source: Source::Explicit, required: true }]);
        eprintln!("== {} loaded={:?}", d.display(), p.iter().map(|p| &p.id).collect::<Vec<_>>());
        for x in diags { eprintln!("   {x}"); }
    }
}
