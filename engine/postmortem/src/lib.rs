//! Blameless postmortem drafts and timeline pictures from medic run journals.
//!
//! The journal already knows, to the millisecond, what fired, what medic did, what people
//! decided and when the service was verified healthy. [`Postmortem`] reads the journals of
//! one run, or of every run of one incident (merged into one timeline), and writes:
//!
//! - [`Postmortem::markdown`]: the canonical draft (summary, impact window, metrics with
//!   their definitions, restore, decisions by people, the timeline picture, steps, a
//!   minute-by-minute timeline in UTC and T+mm:ss, and TODO prompts for people);
//! - [`Postmortem::json`]: the same facts for tools, `metrics` in seconds;
//! - [`Postmortem::html`]: a standalone page with the picture inlined;
//! - [`Postmortem::svg`]: the timeline picture alone;
//! - [`Postmortem::render_template`]: a team's own minijinja template over the same facts.
//!
//! Facts only: a metric whose inputs are not in the journal is absent with the reason,
//! and causes are questions for people, never guesses. The same journals give
//! byte-identical output (no clock reads, ordered maps). Every time is UTC. Secret values
//! never reach the journal (the engine redacts them), and the postmortem leaves out what
//! could still carry credentials: request headers and bodies, step parameters, query
//! strings and URL user-info.
//!
//! ```
//! use medic_core::{Entry, Event, RunStatus, journal::RunCreated};
//! use medic_postmortem::{Format, Postmortem};
//!
//! let workflow = medic_model::parse_workflow("w.yaml", "apiVersion: medic/v1\nkind: Workflow\n\
//!     name: demo\nsteps:\n  - {id: ask, phase: restore, gate: {prompt: Roll back?, deadline: 5m, on-deadline: approve}}\n")
//!     .unwrap().workflow;
//! let incident = medic_intake::simple::parse(
//!     br#"{"title": "Checkout down", "startsAt": "2026-11-22T03:00:00Z"}"#).unwrap()[0]
//!     .to_incident("2026-11-22T03:00:00Z");
//! let t0 = 1_795_316_400_000; // 2026-11-22T03:00:00Z
//! let journal = vec![
//!     Entry { seq: 0, at_ms: t0 + 30_000, event: Event::RunCreated(Box::new(RunCreated {
//!         workflow, workflow_file: "w.yaml".into(), incident, components: Default::default(), drill: false })) },
//!     Entry { seq: 1, at_ms: t0 + 31_000, event: Event::RunFinished { status: RunStatus::Succeeded, reason: None } },
//! ];
//! let pm = Postmortem::from_journals([("run-1", &journal[..])])?
//!     .with_external_url("https://medic.example.com");
//! assert_eq!(pm.facts().metrics.time_to_detect.seconds, Some(30.0));
//! assert!(pm.markdown().contains("Time to detect"));
//! assert!(pm.svg().starts_with("<svg"));
//! assert_eq!(pm.render(Format::Json), pm.json());
//! # Ok::<(), medic_postmortem::PostmortemError>(())
//! ```

#![warn(missing_docs)]

mod facts;
mod metrics;
mod picture;
mod render;
mod scan;
pub mod time;

pub use facts::{
    FORMAT, Facts, GateFacts, Impact, IncidentFacts, Prompt, RestoreFacts, RunFacts, StepFacts,
    TimelineRow,
};
pub use metrics::{Actions, Metric, Metrics};

use base64::Engine as _;
use medic_core::Entry;

/// Why a postmortem could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PostmortemError {
    /// No journal was given (an incident with no runs, say).
    #[error("no run journals: a postmortem needs at least one run")]
    NoJournals,
    /// A journal is not a well-formed run journal.
    #[error("{message}")]
    Journal {
        /// The run id.
        run: String,
        /// What is wrong, naming the run and the entry's sequence number.
        message: String,
    },
    /// A template failed to compile or render; `line` is 1-based when known.
    #[error("template {name}{}: {message}", line.map_or(String::new(), |l| format!(", line {l}")))]
    Template {
        /// The template's name (its file, for a team template).
        name: String,
        /// The line in the template.
        line: Option<usize>,
        /// What went wrong, e.g. an undefined variable.
        message: String,
    },
}

/// An output format of `medic postmortem` and the API (`?format=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Markdown, the canonical draft.
    Markdown,
    /// The facts as JSON.
    Json,
    /// A standalone HTML page.
    Html,
    /// The timeline picture.
    Svg,
}

impl Format {
    /// `md`, `json`, `html` or `svg` (`markdown` too).
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "md" | "markdown" => Some(Format::Markdown),
            "json" => Some(Format::Json),
            "html" => Some(Format::Html),
            "svg" => Some(Format::Svg),
            _ => None,
        }
    }

    /// The HTTP `Content-Type` of the format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Markdown => "text/markdown; charset=utf-8",
            Format::Json => "application/json",
            Format::Html => "text/html; charset=utf-8",
            Format::Svg => "image/svg+xml",
        }
    }

    /// The usual file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Markdown => "md",
            Format::Json => "json",
            Format::Html => "html",
            Format::Svg => "svg",
        }
    }
}

/// Scans `(run id, entries)` pairs, whatever owns the entries.
fn scan_journals<I, S, E>(journals: I, detail: scan::Detail) -> Result<scan::Scan, PostmortemError>
where
    I: IntoIterator<Item = (S, E)>,
    S: AsRef<str>,
    E: AsRef<[Entry]>,
{
    let owned: Vec<(String, E)> = journals
        .into_iter()
        .map(|(id, e)| (id.as_ref().to_string(), e))
        .collect();
    let borrowed = owned
        .iter()
        .map(|(id, e)| (id.clone(), e.as_ref()))
        .collect();
    scan::scan_with(borrowed, detail)
}

/// A postmortem draft of one incident, from the journals of its runs.
pub struct Postmortem {
    scan: scan::Scan,
    facts: Facts,
    impact_ms: u64,
    image_link: Option<String>,
}

impl Postmortem {
    /// Reads the journals of one run, or of every run of one incident, as `(run id,
    /// entries)` pairs in any order (runs are ordered by creation). The incident is the
    /// one the earliest run was created for.
    ///
    /// # Errors
    /// [`PostmortemError::NoJournals`] for no journals; [`PostmortemError::Journal`] when
    /// one does not start with `run_created`, skips a sequence number or names a step its
    /// workflow does not have.
    pub fn from_journals<I, S, E>(journals: I) -> Result<Postmortem, PostmortemError>
    where
        I: IntoIterator<Item = (S, E)>,
        S: AsRef<str>,
        E: AsRef<[Entry]>,
    {
        let scan = scan_journals(journals, scan::Detail::Rows)?;
        let (facts, impact_ms) = facts::build(&scan, None);
        Ok(Postmortem {
            scan,
            facts,
            impact_ms,
            image_link: None,
        })
    }

    /// The timeline picture alone, as [`Postmortem::svg`] draws it, of the same journals
    /// as [`Postmortem::from_journals`]: for pages that show the picture of a long
    /// journal, it skips what only the text needs (a timeline row for every exchange
    /// and log line), which is most of a long journal.
    ///
    /// # Errors
    /// As [`Postmortem::from_journals`].
    pub fn picture<I, S, E>(journals: I) -> Result<String, PostmortemError>
    where
        I: IntoIterator<Item = (S, E)>,
        S: AsRef<str>,
        E: AsRef<[Entry]>,
    {
        let scan = scan_journals(journals, scan::Detail::Picture)?;
        let (impact_ms, no_start) = facts::impact(&scan);
        let metrics = metrics::compute(&scan, impact_ms, no_start.as_deref());
        Ok(picture::render(
            &scan,
            &metrics,
            impact_ms,
            &scan.runs[0].incident.title,
        ))
    }

    /// Links each run to `<url>/runs/<id>` and its postmortem to
    /// `<url>/api/runs/<id>/postmortem` (`run.url`, `run.postmortem_url`): the address
    /// people reach medic at (`external_url` in medic.toml).
    pub fn with_external_url(mut self, url: &str) -> Postmortem {
        self.facts = facts::build(&self.scan, Some(url)).0;
        self
    }

    /// Makes the Markdown's timeline image point at `link` (a file written beside it, or
    /// a URL) instead of embedding the SVG as a `data:` URI.
    pub fn with_image_link(mut self, link: &str) -> Postmortem {
        self.image_link = Some(link.to_string());
        self
    }

    /// The facts: what the JSON holds and what templates see.
    pub fn facts(&self) -> &Facts {
        &self.facts
    }

    /// The metrics (shortcut for `facts().metrics`).
    pub fn metrics(&self) -> &Metrics {
        &self.facts.metrics
    }

    /// The Markdown draft, from the built-in template.
    pub fn markdown(&self) -> String {
        self.render_template_named("postmortem.md", render::MARKDOWN)
            .expect("the built-in Markdown template renders every postmortem (tested)")
    }

    /// The facts as pretty-printed JSON (see docs/postmortems.md for the fields).
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(&self.facts).expect("facts serialise: plain data") + "\n"
    }

    /// A standalone HTML page with the timeline picture inlined.
    pub fn html(&self) -> String {
        self.render_template_named("postmortem.html", render::HTML)
            .expect("the built-in HTML template renders every postmortem (tested)")
    }

    /// The timeline picture, SVG.
    pub fn svg(&self) -> String {
        picture::render(
            &self.scan,
            &self.facts.metrics,
            self.impact_ms,
            &self.facts.incident.title,
        )
    }

    /// The output in `format`, built-in templates.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Markdown => self.markdown(),
            Format::Json => self.json(),
            Format::Html => self.html(),
            Format::Svg => self.svg(),
        }
    }

    /// Renders a team's minijinja template over the facts (each [`Facts`] field is a
    /// top-level variable, plus `metric_rows`, `timeline_image` and `svg`; docs/postmortems.md
    /// lists them). A variable that does not exist is an error, not an empty string.
    /// `name` names the template in errors; a name ending in `.html` auto-escapes.
    ///
    /// # Errors
    /// [`PostmortemError::Template`] with the line and what went wrong.
    pub fn render_template(&self, name: &str, source: &str) -> Result<String, PostmortemError> {
        self.render_template_named(name, source)
    }

    fn render_template_named(&self, name: &str, source: &str) -> Result<String, PostmortemError> {
        let svg = self.svg();
        let image = match &self.image_link {
            Some(link) => link.clone(),
            None => format!(
                "data:image/svg+xml;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(&svg)
            ),
        };
        render::render(name, source, render::context(&self.facts, &image, &svg))
    }
}

/// What a run's own templates see as `run.*` while it is going (`with:` and `if:` in
/// follow-up steps): `run.id`, `run.url` and `run.postmortem_url` (with an external URL,
/// else `null`), and `run.metrics.<name>` as in the JSON output (`seconds`, `text`,
/// `absent`, ...), measured from the run's journal so far. For example a chat post:
/// `"restored in {{ run.metrics.time_to_mitigate.text }}, postmortem draft: {{ run.postmortem_url }}"`.
///
/// A journal that cannot be read as a run gives `run.id` alone.
pub fn run_context(
    run_id: &str,
    entries: &[Entry],
    external_url: Option<&str>,
) -> serde_json::Value {
    let base = external_url.map(|u| u.trim_end_matches('/'));
    let url = base.map(|b| format!("{b}/runs/{run_id}"));
    let postmortem_url = base.map(|b| format!("{b}/api/runs/{run_id}/postmortem"));
    let metrics = Postmortem::from_journals([(run_id, entries)])
        .ok()
        .map(|pm| serde_json::to_value(pm.metrics()).expect("metrics serialise: plain data"));
    serde_json::json!({
        "id": run_id,
        "url": url,
        "postmortem_url": postmortem_url,
        "metrics": metrics,
    })
}
