//! Incidents and their occurrences: what one alert changes in one incident record.
//!
//! An incident (one fingerprint, or one `group-by` group of a workflow) lives through
//! *occurrences*: it fires, runs its workflows, resolves, and may fire again later, which
//! is a new occurrence with its own runs (`generation`). The rules, in the order they are
//! tried for a firing alert:
//!
//! 1. **The incident is open**: the alert joins it (a re-send, or another alert of the
//!    group). Its severity, title, labels and annotations become the alert's, so an
//!    escalation (PagerDuty's `incident.priority_updated` from P4 to P1, an Alertmanager
//!    group whose `severity` label changed) shows at once, and every workflow that now
//!    matches and has not run for this occurrence starts. Run ids are a function of
//!    (incident, occurrence, workflow), so handling the same item twice starts nothing
//!    twice.
//! 2. **The incident resolved, and the alert started no later than that occurrence
//!    ended** (its `startsAt` is not later than the resolved notification's `endsAt`):
//!    a late copy from another Alertmanager replica of a cluster, which flushed the group
//!    before it heard of the resolution (Alertmanager's HA mode is at-least-once: every
//!    replica notifies, deduplicated only through gossip). It is counted
//!    (`late_alerts`), and starts nothing. PagerDuty is exempt: `incident.reopened` keeps
//!    the incident's creation time, and a reopened incident is a new occurrence.
//! 3. Otherwise a **new occurrence** opens, with the runs of the workflows that match.
//!
//! A resolved alert removes its fingerprint from the occurrence's firing set; when the
//! set is empty the incident resolves and its running runs are told, and the end of the
//! occurrence is the alert's `endsAt` (else the time it was received).

use crate::processor::ProcessError;
use crate::{LoadedWorkflow, Service};
use medic_core::NewRun;
use medic_intake::{Alert, Source};
use medic_model::{Incident, IncidentStatus};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::sync::Arc;

/// An incident: alerts with one fingerprint (or one `group-by` group), and the runs they
/// started. Stored under `incident/<id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentRecord {
    /// The incident id (the alert fingerprint, or the `group-by` group's id).
    pub fingerprint: String,
    /// The occurrence: 1 for the first firing, +1 for each firing after a resolution.
    pub generation: u32,
    /// The incident as its most severe firing alert describes it (the latest among
    /// equals; [`medic_intake::joined`]).
    pub incident: Incident,
    /// When this occurrence opened (Unix ms, medic's clock).
    pub first_seen_ms: u64,
    /// When an alert for it was last received (Unix ms).
    pub last_seen_ms: u64,
    /// When this occurrence resolved (Unix ms, medic's clock).
    #[serde(default)]
    pub resolved_ms: Option<u64>,
    /// Where this occurrence ended as the sender says (the resolved alert's `endsAt`, else
    /// its receive time), Unix ms: firings that started no later are late copies.
    #[serde(default)]
    pub ended_at_ms: Option<i64>,
    /// Alerts received for this occurrence (re-sends and late copies included).
    pub alerts: u64,
    /// Late copies of this occurrence's firing received after it resolved (rule 2).
    #[serde(default)]
    pub late_alerts: u64,
    /// Runs started for this occurrence.
    pub runs: Vec<String>,
    /// Fingerprints of the alerts firing in this occurrence: with `group-by`, several
    /// alerts make one incident, which resolves when the last of them does.
    #[serde(default)]
    pub firing: BTreeSet<String>,
    /// Runs of this occurrence that storm control did not start ([`crate::storm`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suppressed: Vec<crate::storm::Suppressed>,
}

impl IncidentRecord {
    pub(crate) const PREFIX: &'static [u8] = b"incident/";

    pub(crate) fn key(id: &str) -> Vec<u8> {
        let mut k = Self::PREFIX.to_vec();
        k.extend_from_slice(id.as_bytes());
        k
    }
}

/// The run of `workflow` for an occurrence of an incident: the same inputs give the same
/// id, which is what makes handling an inbox item twice harmless.
pub(crate) fn run_id(incident: &str, generation: u32, workflow: &str) -> String {
    let h = Sha256::digest(format!("{incident}/{generation}/{workflow}"));
    format!("{workflow}-{}", &hex::encode(h)[..12])
}

/// Whether a firing `alert` is a late copy of the occurrence `r` that ended (rule 2).
fn late_copy(alert: &Alert, r: &IncidentRecord) -> bool {
    if alert.source == Source::PagerDuty {
        return false;
    }
    match (alert.starts_at_ms(), r.ended_at_ms) {
        (Some(start), Some(end)) => start <= end,
        _ => false,
    }
}

/// What changes in one incident. `created` collects the records of the runs this starts,
/// written with the batch and driven once it is durable.
pub(crate) struct Update<'a> {
    pub(crate) svc: &'a Arc<Service>,
    pub(crate) received_ms: u64,
    pub(crate) created: &'a mut Vec<(medic_core::RunMeta, medic_core::Entry)>,
    /// Messages for runs in `created`, written with the batch (they are not in the
    /// store before it, so `Service::post` cannot reach them).
    pub(crate) posts: &'a mut Vec<(String, medic_core::Message)>,
}

impl Update<'_> {
    /// One incident's record after `alert` (see the module docs); `None` when there is
    /// nothing to keep (a resolution of an incident medic never saw fire).
    pub(crate) fn apply(
        &mut self,
        existing: Option<IncidentRecord>,
        alert: &Alert,
        incident: Incident,
        workflows: &[&LoadedWorkflow],
    ) -> Result<Option<IncidentRecord>, ProcessError> {
        let now = self.svc.clock.now_ms();
        Ok(match (alert.status, existing) {
            (IncidentStatus::Firing, Some(mut r))
                if r.incident.status == IncidentStatus::Firing =>
            {
                r.alerts += 1;
                r.last_seen_ms = now;
                r.firing.insert(alert.fingerprint.clone());
                // The most severe notification describes the incident, the latest among
                // equals (an escalation changes severity and labels; lanes handle critical
                // alerts first, so arrival order cannot decide); the start stays the
                // occurrence's.
                r.incident = medic_intake::joined(&r.incident, incident);
                self.start_missing(&mut r, workflows)?;
                Some(r)
            }
            (IncidentStatus::Firing, Some(mut r)) if late_copy(alert, &r) => {
                r.alerts += 1;
                r.late_alerts += 1;
                r.last_seen_ms = now;
                Some(r)
            }
            (IncidentStatus::Firing, previous) => {
                let mut r = IncidentRecord {
                    fingerprint: incident.id.clone(),
                    generation: previous.map_or(1, |r| r.generation + 1),
                    incident,
                    first_seen_ms: now,
                    last_seen_ms: now,
                    resolved_ms: None,
                    ended_at_ms: None,
                    alerts: 1,
                    late_alerts: 0,
                    runs: Vec::new(),
                    firing: BTreeSet::from([alert.fingerprint.clone()]),
                    suppressed: Vec::new(),
                };
                self.start_missing(&mut r, workflows)?;
                Some(r)
            }
            (IncidentStatus::Resolved, Some(mut r))
                if r.incident.status == IncidentStatus::Firing =>
            {
                r.last_seen_ms = now;
                r.firing.remove(&alert.fingerprint);
                if r.firing.is_empty() {
                    // Tell the runs first: if medic stops before the record is written, the
                    // item is handled again and the runs ignore the repeated update.
                    // A run this batch creates (fired and resolved within one batch)
                    // is told in the batch's own write.
                    let (new, stored): (Vec<String>, Vec<String>) = r
                        .runs
                        .iter()
                        .cloned()
                        .partition(|id| self.created.iter().any(|(meta, _)| &meta.id == id));
                    self.svc.tell_runs(&stored, IncidentStatus::Resolved)?;
                    self.posts.extend(new.into_iter().map(|id| {
                        let status = IncidentStatus::Resolved;
                        (id, medic_core::Message::IncidentUpdate { status })
                    }));
                    r.incident.status = IncidentStatus::Resolved;
                    r.resolved_ms.get_or_insert(now);
                    let received = i64::try_from(self.received_ms).unwrap_or(i64::MAX);
                    r.ended_at_ms = Some(alert.ends_at_ms().unwrap_or(received));
                }
                Some(r)
            }
            // A repeated resolution: nothing changes but when it was last heard of.
            (IncidentStatus::Resolved, Some(mut r)) => {
                r.last_seen_ms = now;
                Some(r)
            }
            // Resolved before medic saw it fire: nothing to do.
            (IncidentStatus::Resolved, None) => None,
        })
    }

    /// Creates the run of each of `workflows` this occurrence does not have yet.
    fn start_missing(
        &mut self,
        r: &mut IncidentRecord,
        workflows: &[&LoadedWorkflow],
    ) -> Result<(), ProcessError> {
        for wf in workflows {
            let id = run_id(&r.fingerprint, r.generation, &wf.workflow.name);
            let name = &wf.workflow.name;
            // A run storm control suppressed stays suppressed for this occurrence: later
            // alerts of the incident are counted on it, not started one by one.
            if r.runs.contains(&id) || r.suppressed.iter().any(|s| &s.workflow == name) {
                continue;
            }
            if !self.svc.store.has_run(&id)? {
                let now = self.svc.clock.now_ms();
                if let Err(reason) = self.svc.storm.admit(name, now) {
                    self.svc.metrics.storm_suppressed(name);
                    r.suppressed.push(crate::storm::Suppressed {
                        workflow: name.clone(),
                        at_ms: now,
                        reason,
                    });
                    continue;
                }
                // Else: handled before a crash; the run exists, only the record was lost.
                // Written with the batch's incident records (processor.rs).
                let records = self.svc.engine.run_records(
                    &id,
                    NewRun {
                        workflow: wf.workflow.clone(),
                        workflow_file: wf.file.clone(),
                        incident: r.incident.clone(),
                        components: wf.components.clone(),
                        drill: false,
                    },
                );
                self.created.push(records);
            }
            r.runs.push(id);
        }
        Ok(())
    }
}
