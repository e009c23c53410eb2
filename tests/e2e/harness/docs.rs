//! The provider doc pages' YAML examples checked with `medic validate` and the shipped test
//! components, so what a reader copies keeps working.

use crate::support::{medic_validate, repo};

/// `medic validate` on a workflow made of every step snippet in a provider doc (the YAML
/// blocks that start with `  - id:`), after stand-ins for the steps they refer to: the
/// examples are copy-pasteable and their params match the component's schema.
pub fn validate_doc_snippets(doc: &str) -> (bool, String) {
    let text = std::fs::read_to_string(repo().join(doc)).unwrap();
    let snippets: Vec<&str> = text
        .split("```yaml\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .filter(|block| block.starts_with("  - id:"))
        .collect();
    assert!(!snippets.is_empty(), "{doc} has no step snippets");
    let stand_ins = "  - id: disable-flag\n    phase: restore\n    uses: echo\n  - id: recheck\n    phase: verify\n    uses: echo\n";
    let yaml = format!(
        "apiVersion: medic/v1\nkind: Workflow\nname: doc-snippets\nsteps:\n{stand_ins}{}",
        snippets.concat()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("workflow.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let out = medic_validate(&dir.path().join("data"), &file);
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    (
        out.status.success(),
        format!("{report}\n--- workflow ---\n{yaml}"),
    )
}

/// Every ```yaml block of a doc page must pass `medic validate` with the shipped components,
/// so the copy-pasteable examples in docs/providers stay valid.
pub fn assert_doc_examples_validate(doc: &str) {
    let text = std::fs::read_to_string(repo().join(doc)).unwrap();
    let blocks: Vec<&str> = text
        .split("```yaml\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("```").map(|(block, _)| block))
        .collect();
    assert!(!blocks.is_empty(), "no yaml example in {doc}");
    let dir = tempfile::tempdir().unwrap();
    for (i, block) in blocks.iter().enumerate() {
        let file = dir.path().join(format!("example-{i}.yaml"));
        std::fs::write(&file, block).unwrap();
        let out = medic_validate(&dir.path().join("data"), &file);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{doc} example {i} does not validate:\n{stdout}{stderr}\n{block}"
        );
    }
}
