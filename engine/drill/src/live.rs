//! People in a paced drill (a game day, `medic drill run --speed N`): the drill's gates
//! wait for a person until their virtual deadline, and `medic approve|reject RUN STEP`
//! reaches the running drill through a folder in medic's data dir.
//!
//! The drill runs in memory while it goes (under the recorded run's id, so idempotency
//! keys match the recording), and the process holds medic's store, so a decision cannot
//! go through the store's mailbox as it does for a real run. Instead the drill watches
//! `<data>/live-drills/<RUN>/`, where `RUN` is the id the drill run is kept as (what
//! `medic runs` shows afterwards): a decision is a file `<n>.decision` (a
//! [`Message::GateDecision`] as JSON, written under a temporary name and renamed, so the
//! drill never reads half a file); the drill checks it as the API would (the gate is open,
//! the person is an approver), posts it to the run's mailbox and answers in `<n>.answer`.
//! The folder is removed when the drill ends.

use medic_core::{JournalStore, Message, RunState, gates};
use medic_model::Decision;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The folder under medic's data dir where running paced drills take decisions.
pub const LIVE_DIR: &str = "live-drills";

/// The folder of the live drill run `run`, under medic's data dir `data`, if one runs.
pub fn find(data: &Path, run: &str) -> Option<PathBuf> {
    // A run id never has a path separator; refuse one rather than escape the folder.
    if run.is_empty() || run.contains(['/', '\\']) || run.starts_with('.') {
        return None;
    }
    let dir = data.join(LIVE_DIR).join(run);
    dir.join("drill.json").is_file().then_some(dir)
}

/// Why a decision did not reach a live drill.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The decision file could not be written or the answer read.
    #[error("live drill {dir}: {message}")]
    Io {
        /// The drill's folder.
        dir: String,
        /// What failed.
        message: String,
    },
    /// The drill refused the decision (the gate is not open, not an approver, ...).
    #[error("{0}")]
    Refused(String),
    /// No answer in time: the drill has probably stopped.
    #[error(
        "the drill at {0} did not answer within 10 s: is `medic drill run --speed` still running?"
    )]
    NoAnswer(String),
}

/// Hands a gate decision to the live drill in `dir` ([`find`]) and waits for its answer
/// (at most 10 s). Returns the drill's confirmation, e.g. `approved gate roll-forward-ok of
/// drill run ... as alice`.
///
/// # Errors
/// [`LiveError::Refused`] with the reason (as the API gives it), [`LiveError::NoAnswer`]
/// when the drill does not answer, [`LiveError::Io`] when the folder cannot be written.
pub fn decide(
    dir: &Path,
    step: &str,
    decision: Decision,
    by: &str,
    comment: Option<String>,
) -> Result<String, LiveError> {
    let io = |e: std::io::Error| LiveError::Io {
        dir: dir.display().to_string(),
        message: e.to_string(),
    };
    let message = Message::GateDecision {
        step: step.to_string(),
        decision,
        by: by.to_string(),
        comment,
    };
    let name = format!(
        "{}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
        std::process::id()
    );
    let tmp = dir.join(format!("{name}.tmp"));
    let text = serde_json::to_string(&message).expect("a message serialises: plain data");
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, dir.join(format!("{name}.decision"))).map_err(io)?;
    let answer = dir.join(format!("{name}.answer"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(&answer)
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
        {
            let _ = std::fs::remove_file(&answer);
            let said = v["message"].as_str().unwrap_or_default().to_string();
            return if v["ok"] == true {
                Ok(said)
            } else {
                Err(LiveError::Refused(said))
            };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_file(dir.join(format!("{name}.decision")));
    Err(LiveError::NoAnswer(dir.display().to_string()))
}

/// The drill's side: the folder it watches while it runs; removed on drop.
pub(crate) struct Inbox {
    dir: PathBuf,
    /// The id people address the drill run by (its kept id).
    shown_as: String,
}

impl Inbox {
    /// Creates `<root>/<shown_as>/` with a `drill.json` saying what runs there.
    pub(crate) fn open(root: &Path, shown_as: &str, name: &str) -> std::io::Result<Inbox> {
        let dir = root.join(shown_as);
        std::fs::create_dir_all(&dir)?;
        let about = serde_json::json!({"run": shown_as, "drill": name, "pid": std::process::id()});
        std::fs::write(dir.join("drill.json"), about.to_string())?;
        Ok(Inbox {
            dir,
            shown_as: shown_as.to_string(),
        })
    }

    /// Takes the decisions that arrived, checks each against the run's state in `store`,
    /// posts the accepted ones to the run's mailbox and answers every one. Returns how
    /// many were posted.
    pub(crate) fn poll(&self, store: &Arc<dyn JournalStore>, run: &str) -> usize {
        let Ok(read) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut files: Vec<PathBuf> = read
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "decision"))
            .collect();
        files.sort();
        let mut posted = 0;
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let _ = std::fs::remove_file(&file);
            let (ok, said) = match serde_json::from_str::<Message>(&text) {
                Ok(m) => match self.accept(store, run, m) {
                    Ok(said) => {
                        posted += 1;
                        (true, said)
                    }
                    Err(why) => (false, why),
                },
                Err(e) => (false, format!("not a gate decision: {e}")),
            };
            let answer = file.with_extension("answer");
            let tmp = file.with_extension("answer-tmp");
            let body = serde_json::json!({"ok": ok, "message": said}).to_string();
            if std::fs::write(&tmp, body).is_ok() {
                let _ = std::fs::rename(&tmp, answer);
            }
        }
        posted
    }

    fn accept(
        &self,
        store: &Arc<dyn JournalStore>,
        run: &str,
        message: Message,
    ) -> Result<String, String> {
        let Message::GateDecision {
            step,
            decision,
            by,
            comment,
        } = message
        else {
            return Err("only gate decisions reach a drill".into());
        };
        let state = RunState::load(store.as_ref(), run).map_err(|e| e.to_string())?;
        // The refusal names the run as the drill runs it in memory; people know it by the
        // id it is kept as.
        gates::check_decision(&state, &step, &by)
            .map_err(|r| r.to_string().replace(run, &self.shown_as))?;
        store
            .post(
                run,
                &Message::GateDecision {
                    step: step.clone(),
                    decision,
                    by: by.clone(),
                    comment,
                },
            )
            .map_err(|e| e.to_string())?;
        Ok(format!(
            "{} gate {step} of drill run {} as {by}; the drill goes on",
            decision.past(),
            self.shown_as
        ))
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
