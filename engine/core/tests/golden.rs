//! Golden files of the persisted record format (tests/golden/v<FORMAT_VERSION>/).
//!
//! Each file is the exact bytes `medic_core::codec::encode` writes for one
//! representative record: one file per journal event and host call variant (a few
//! variants have more than one, for their optional parts), and the run meta. The test
//! decodes every file, compares it with the value built here, and re-encodes the value
//! to the same bytes. So any change to the format — a renamed field, a new required
//! field, a different tag — fails here and has to be made deliberately:
//!
//! - a compatible change (e.g. a new optional field): `MEDIC_BLESS=1 cargo test -p
//!   medic-core --test golden` rewrites the files; review the diff;
//! - an incompatible change: bump `codec::FORMAT_VERSION`, keep the old directory and
//!   teach `codec::decode` (and this test) to read it.
//!
//! Adding a variant: `kind` below stops compiling until it names the new variant; add
//! a case in `cases` (golden/cases.rs) too, then bless.
//!
//! Records as earlier builds wrote them, where the encoding has since changed compatibly,
//! are kept in `compat/` under their case's file name: they must still decode to the
//! case's value (they are never rewritten). `compat/run_created*.bin` are run records
//! from before fields at their defaults were left out of the workflow they carry.

// A crate root finds modules beside it, not in a folder named after it.
#[path = "golden/cases.rs"]
mod cases;

use cases::cases;
use medic_core::codec::{self, FORMAT_VERSION};
use medic_core::{Entry, Event, HostCall, RunMeta};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// A representative record and the file it is kept in.
enum Record {
    Entry(Entry),
    Meta(RunMeta),
}

struct Case {
    file: String,
    record: Record,
}

impl Record {
    fn encode(&self) -> Vec<u8> {
        match self {
            Record::Entry(e) => codec::encode_entry(e),
            Record::Meta(m) => codec::encode_meta(m),
        }
    }

    /// Decodes `bytes` as this record's type and checks it equals this record.
    fn check_decodes(&self, bytes: &[u8]) -> Result<(), String> {
        fn compare<T: PartialEq + std::fmt::Debug>(
            got: Result<T, codec::CodecError>,
            want: &T,
        ) -> Result<(), String> {
            match got {
                Err(e) => Err(format!("does not decode: {e:#}")),
                Ok(got) if &got != want => {
                    Err(format!("decodes to\n{got:#?}\nexpected\n{want:#?}"))
                }
                Ok(_) => Ok(()),
            }
        }
        match self {
            Record::Entry(e) => compare(codec::decode_entry(bytes), e),
            Record::Meta(m) => compare(codec::decode_meta(bytes), m),
        }
    }
}

/// The file name stem of an event: its `type` tag, and for host calls the `call` tag.
/// Exhaustive on purpose: a new variant does not compile until it is named here.
fn kind(event: &Event) -> &'static str {
    match event {
        Event::RunCreated(_) => "run_created",
        Event::StepSkipped { .. } => "step_skipped",
        Event::StepCancelled { .. } => "step_cancelled",
        Event::AttemptStarted { .. } => "attempt_started",
        Event::HostCall { call, .. } => match call {
            HostCall::Log { .. } => "host_call_log",
            HostCall::Annotate { .. } => "host_call_annotate",
            HostCall::SecretRead { .. } => "host_call_secret_read",
            HostCall::StateSet { .. } => "host_call_state_set",
            HostCall::HttpRequest { .. } => "host_call_http_request",
            HostCall::HttpResponse { .. } => "host_call_http_response",
            HostCall::HttpDenied { .. } => "host_call_http_denied",
            HostCall::Clock { .. } => "host_call_clock",
            HostCall::Random { .. } => "host_call_random",
        },
        Event::AttemptSucceeded { .. } => "attempt_succeeded",
        Event::AttemptFailed { .. } => "attempt_failed",
        Event::GateOpened { .. } => "gate_opened",
        Event::GateDecided { .. } => "gate_decided",
        Event::IncidentUpdated { .. } => "incident_updated",
        Event::RunFinished { .. } => "run_finished",
    }
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/golden")
        .join(format!("v{FORMAT_VERSION}"))
}

fn files_on_disk() -> BTreeSet<String> {
    std::fs::read_dir(golden_dir())
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".bin"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn golden_records_decode_and_reencode_byte_for_byte() {
    let cases = cases();
    let names: BTreeSet<String> = cases.iter().map(|c| c.file.clone()).collect();
    assert_eq!(names.len(), cases.len(), "two cases share a file name");
    let dir = golden_dir();

    if std::env::var_os("MEDIC_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(&dir).unwrap();
        for stale in files_on_disk().difference(&names) {
            std::fs::remove_file(dir.join(stale)).unwrap();
        }
        for c in &cases {
            std::fs::write(dir.join(&c.file), c.record.encode()).unwrap();
        }
    }

    let mut problems = Vec::new();
    for stale in files_on_disk().difference(&names) {
        problems.push(format!("{stale}: no case in golden.rs (removed variant?)"));
    }
    for c in &cases {
        let path = dir.join(&c.file);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                problems.push(format!("{}: cannot read: {e}", c.file));
                continue;
            }
        };
        if let Err(e) = c.record.check_decodes(&bytes) {
            problems.push(format!("{}: {e}", c.file));
        }
        let encoded = c.record.encode();
        if encoded != bytes {
            problems.push(format!(
                "{}: encodes differently now\n  file: {}\n  now:  {}",
                c.file,
                String::from_utf8_lossy(&bytes),
                String::from_utf8_lossy(&encoded)
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "the record format changed ({} problems). If deliberate, rerun with MEDIC_BLESS=1 \
         and review the diff of {} (see the header of this file).\n\n{}",
        problems.len(),
        dir.display(),
        problems.join("\n\n")
    );
}

#[test]
fn records_in_an_earlier_compatible_encoding_still_decode() {
    let cases = cases();
    let dir = golden_dir().join("compat");
    let files = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect::<BTreeSet<_>>();
    assert!(!files.is_empty(), "{}: no records", dir.display());
    for file in files {
        let case = cases
            .iter()
            .find(|c| c.file == file)
            .unwrap_or_else(|| panic!("compat/{file}: no case of that name in golden/cases.rs"));
        let bytes = std::fs::read(dir.join(&file)).unwrap();
        assert_ne!(
            bytes,
            case.record.encode(),
            "compat/{file}: encoded as today: not an earlier encoding"
        );
        if let Err(e) = case.record.check_decodes(&bytes) {
            panic!("compat/{file}: {e}");
        }
    }
}

#[test]
fn golden_files_start_with_the_format_version() {
    for c in cases() {
        assert_eq!(c.record.encode()[0], FORMAT_VERSION, "{}", c.file);
    }
}
