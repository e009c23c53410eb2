//! Every guest built for the tests is used by at least one test or bench of the engine.

use std::path::{Path, PathBuf};

/// The `.rs` files below `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_built_guest_has_a_test_that_uses_it() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    rust_files(&repo.join("tests/e2e"), &mut files);
    for krate in std::fs::read_dir(repo.join("engine")).unwrap().flatten() {
        rust_files(&krate.path().join("tests"), &mut files);
        rust_files(&krate.path().join("benches"), &mut files);
    }
    let texts: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert!(
        texts.len() > 10,
        "found only {} test files under {}",
        texts.len(),
        repo.display()
    );
    let untested = medic_test_programs::untested(texts.iter().map(String::as_str));
    assert!(
        untested.is_empty(),
        "built guests no test uses (add a test under tests/e2e or remove the guest): {untested:?}"
    );
}

#[test]
fn the_lookup_finds_every_guest_and_only_those() {
    for (name, path) in medic_test_programs::ALL {
        assert_eq!(medic_test_programs::path(name), Some(*path));
        assert!(Path::new(path).is_file(), "{name}: {path} is not built");
    }
    assert_eq!(medic_test_programs::path("no-such-guest"), None);
}

#[test]
fn a_guest_named_only_in_a_longer_name_is_untested() {
    // `uses: echo-v2` does not exercise `echo`: the check must not be fooled by prefixes.
    let untested = medic_test_programs::untested(["uses: echo-v2"]);
    assert!(untested.contains(&"echo"), "{untested:?}");
    assert!(!untested.contains(&"echo-v2"), "{untested:?}");
}
