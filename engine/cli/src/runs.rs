//! `medic runs` and `medic runs show`.

use crate::app::Ctx;
use anyhow::{Context, Result};
use medic_core::timeline::Timeline;
use medic_core::{JournalStore, RunState, clock::rfc3339};
use std::process::ExitCode;

pub fn list(ctx: &Ctx, as_json: bool, status: Option<&str>) -> Result<ExitCode> {
    let store = ctx.store()?;
    let mut runs = store.runs()?;
    medic_core::timeline::newest_first(&mut runs);
    if let Some(want) = status {
        let status = medic_core::RunStatus::parse(want).with_context(|| {
            format!(
                "--status {want}: expected one of {}",
                medic_core::RunStatus::ALL
                    .map(medic_core::RunStatus::as_str)
                    .join(", ")
            )
        })?;
        runs.retain(|r| r.status == status);
    }
    if as_json {
        let v: Vec<_> = runs
            .iter()
            .map(|r| {
                let mut v = medic_core::timeline::run_summary(r);
                v["drill"] = medic_drill::is_drill_run(r).into();
                v
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    if runs.is_empty() {
        println!("no runs yet (data: {})", ctx.data.display());
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<22} {:<10} {:<20} {:<24} INCIDENT",
        "RUN", "STATUS", "CREATED", "WORKFLOW"
    );
    for m in runs {
        println!(
            "{:<22} {:<10} {:<20} {:<24} {}",
            m.id,
            m.status.as_str(),
            rfc3339(m.created_ms)
                .replace('T', " ")
                .trim_end_matches('Z'),
            m.workflow,
            m.incident_title
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn show(ctx: &Ctx, id: &str, as_json: bool, journal: bool) -> Result<ExitCode> {
    let store = ctx.store()?;
    let (state, entries) = RunState::load_with_journal(store.as_ref(), id)?;
    if as_json {
        let mut v = medic_core::timeline::run_report(&state, &entries);
        if journal {
            v["journal"] = serde_json::to_value(&entries)?;
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    print_summary(store.as_ref(), id)?;
    println!("\ntimeline:");
    for line in Timeline::render(&entries) {
        println!("  {line}");
    }
    if journal {
        println!("\njournal ({} entries):", entries.len());
        for e in &entries {
            println!(
                "  #{:<4} {}  {}",
                e.seq,
                rfc3339(e.at_ms),
                serde_json::to_string(&e.event)?
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The run's outcome, step by step: what the person on call reads last.
pub fn print_summary(store: &dyn JournalStore, id: &str) -> Result<()> {
    let state = RunState::load(store, id)?;
    println!(
        "run {} — workflow {} — {}",
        state.id,
        state.workflow.name,
        state.status.as_str().to_uppercase()
    );
    if let Some(r) = &state.reason {
        println!("  reason: {r}");
    }
    for i in state.workflow.execution_order() {
        let step = &state.workflow.steps[i];
        let s = &state.steps[&step.id];
        let detail = match (&s.output, &s.last_failure, &s.reason) {
            (Some(o), _, _) => format!("output {o}"),
            (None, Some(f), _) => f.to_string(),
            // Why it was skipped or cancelled: the run's outcome depends on it.
            (None, None, Some(r)) => r.clone(),
            _ => String::new(),
        };
        let detail = if detail.len() > 200 {
            format!("{}…", medic_core::timeline::truncate(&detail, 200))
        } else {
            detail
        };
        println!(
            "  {:<11} {:<18} {:<9} {}",
            step.phase.as_str(),
            step.id,
            s.status.as_str(),
            detail
        );
    }
    Ok(())
}
