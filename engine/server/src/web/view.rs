//! What the templates show: plain, already formatted values (the templates escape them),
//! so the templates hold layout only.

use askama::Template;
use medic_core::clock::rfc3339;
use medic_core::timeline::truncate;

/// The page frame: who is signed in, the CSRF token for the sign-out form, which
/// section is current.
#[derive(Debug, Clone)]
pub(crate) struct Chrome {
    pub user: String,
    pub csrf: String,
    pub section: &'static str,
}

#[derive(Template)]
#[template(path = "web/signin.html")]
pub(crate) struct SigninPage {
    pub next: String,
    pub csrf: String,
    pub reload: Option<String>,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "web/message.html")]
pub(crate) struct Message {
    pub title: String,
    pub message: String,
}

/// A value cut to a bounded excerpt, with its whole size for the "show all" link.
#[derive(Debug, Clone)]
pub(crate) struct Clip {
    pub text: String,
    pub bytes: usize,
    pub cut: bool,
}

impl Clip {
    pub(crate) fn new(s: &str, max: usize) -> Clip {
        let text = truncate(s, max);
        Clip {
            text: text.to_string(),
            bytes: s.len(),
            cut: text.len() < s.len(),
        }
    }
}

/// `2026-11-30 03:12:45 UTC`.
pub(crate) fn when(ms: u64) -> String {
    let s = rfc3339(ms);
    format!("{} UTC", s.get(..19).unwrap_or(&s).replace('T', " "))
}

/// `HH:MM:SS`.
pub(crate) fn clock(ms: u64) -> String {
    rfc3339(ms).get(11..19).unwrap_or("").to_string()
}

/// `1 h 02 min`, `3 min 05 s`, `850 ms`.
pub(crate) fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 => format!("{ms} ms"),
        1..60 => format!("{}.{} s", s, (ms % 1000) / 100),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

#[derive(Debug, Clone)]
pub(crate) struct RunRow {
    pub id: String,
    pub workflow: String,
    pub status: String,
    pub incident: String,
    pub incident_title: String,
    pub created: String,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct RunsFilter {
    pub status: String,
    pub workflow: String,
    pub incident: String,
    pub from: String,
    pub to: String,
    pub drills: bool,
}

#[derive(Template)]
#[template(path = "web/runs.html")]
pub(crate) struct RunsPage {
    pub chrome: Chrome,
    pub list: RunsList,
    pub workflows: Vec<String>,
}

/// The part of the runs page that live updates replace.
#[derive(Template)]
#[template(path = "web/runs_list.html")]
pub(crate) struct RunsFragment {
    pub list: RunsList,
}

pub(crate) struct RunsList {
    pub rows: Vec<RunRow>,
    pub filter: RunsFilter,
    /// Query string (without `before`) that keeps the filter across pages.
    pub query: String,
    pub older: Option<String>,
    pub is_first: bool,
    pub scan_limited: bool,
    pub fragment_url: String,
}

#[derive(Debug, Clone)]
pub(crate) struct GateView {
    pub step: String,
    pub prompt: String,
    pub approvers: String,
    pub deadline: String,
    pub deadline_ms: u64,
    pub on_deadline: String,
    /// `None`: the signed-in person may decide; otherwise why not.
    pub refusal: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct CallView {
    pub at: String,
    pub what: String,
    pub text: Clip,
}

#[derive(Debug, Clone)]
pub(crate) struct StepView {
    pub id: String,
    pub phase: String,
    pub uses: String,
    pub status: String,
    /// A CSS class name for the status (one word).
    pub status_class: &'static str,
    pub attempts: u32,
    pub duration: String,
    pub output: Option<Clip>,
    pub error: Option<String>,
    pub calls: Vec<CallView>,
    pub calls_total: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct RunView {
    pub id: String,
    pub workflow: String,
    pub status: String,
    pub reason: Option<String>,
    pub drill: bool,
    pub incident_id: String,
    pub incident_title: String,
    pub severity: String,
    pub incident_status: String,
    pub started: String,
    pub duration: String,
    pub last_seq: u64,
    pub gates: Vec<GateView>,
    pub steps: Vec<StepView>,
    /// The phase timeline picture, the postmortem's (SVG, its text escaped by the `svg`
    /// crate); `None` when the journal cannot be read as a run's.
    pub svg: Option<String>,
    /// Whether the run has finished (a drill replay needs a finished run).
    pub finished: bool,
    pub csrf: String,
    /// After a decision from this page: what was recorded.
    pub notice: Option<String>,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "web/run.html")]
pub(crate) struct RunPage {
    pub chrome: Chrome,
    pub run: RunView,
}

#[derive(Template)]
#[template(path = "web/run_body.html")]
pub(crate) struct RunBody {
    pub run: RunView,
}

#[derive(Template)]
#[template(path = "web/whole.html")]
pub(crate) struct WholePage {
    pub chrome: Chrome,
    pub run: String,
    pub step: String,
    pub what: String,
    pub text: String,
    pub lines: Vec<CallView>,
    pub older: Option<usize>,
}

#[derive(Debug, Clone)]
pub(crate) struct WaitingView {
    pub run: String,
    pub step: String,
    pub workflow: String,
    pub incident_title: String,
    pub prompt: String,
    pub approvers: String,
    pub deadline: String,
    pub deadline_ms: u64,
    pub on_deadline: String,
    pub may_decide: bool,
}

#[derive(Template)]
#[template(path = "web/approvals.html")]
pub(crate) struct ApprovalsPage {
    pub chrome: Chrome,
    pub body: ApprovalsBody,
}

/// The part of the approvals page that live updates replace.
#[derive(Template)]
#[template(path = "web/approvals_body.html")]
pub(crate) struct ApprovalsFragment {
    pub body: ApprovalsBody,
}

pub(crate) struct ApprovalsBody {
    pub gates: Vec<WaitingView>,
    pub csrf: String,
}

#[derive(Template)]
#[template(path = "web/incident.html")]
pub(crate) struct IncidentPage {
    pub chrome: Chrome,
    pub id: String,
    pub title: String,
    pub severity: String,
    pub status: String,
    pub source: String,
    pub occurrence: u32,
    pub first_seen: String,
    pub last_seen: String,
    pub resolved: Option<String>,
    pub alerts: u64,
    pub labels: Vec<(String, String)>,
    pub runs: Vec<RunRow>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_person_says_them() {
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(2_340), "2.3 s");
        assert_eq!(duration(185_000), "3 min 05 s");
        assert_eq!(duration(3_720_000), "1 h 02 min");
        let c = Clip::new("héllo", 2);
        assert_eq!((c.text.as_str(), c.bytes, c.cut), ("h", 6, true));
        assert_eq!(when(0), "1970-01-01 00:00:00 UTC");
    }
}
