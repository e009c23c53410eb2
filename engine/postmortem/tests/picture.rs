//! The timeline picture through a real SVG renderer (resvg): it parses, renders to a
//! non-blank PNG with the bar colours in it, and names the five phases in its text; for a
//! 2-minute incident and for a 4-hour one with 50 steps. The PNGs are written under
//! target/postmortem-pictures/ to look at.

use medic_core::journal::RunCreated;
use medic_core::{Entry, Event, RunStatus};
use medic_postmortem::Postmortem;
use resvg::{tiny_skia, usvg};
use serde_json::json;

const T0: u64 = 1_795_316_400_000;

/// `steps` steps spread over the phases, each attempt taking a third of `step_ms` (a
/// retried step: the failed attempt, the wait, the retry), starting `lead_ms` after
/// impact start; every fifth step fails once and is retried.
fn incident(steps: usize, step_ms: u64, lead_ms: u64) -> Vec<Entry> {
    let phases = ["detect", "communicate", "restore", "verify", "follow-up"];
    let mut yaml = String::from("apiVersion: medic/v1\nkind: Workflow\nname: big\nsteps:\n");
    for i in 0..steps {
        let phase = phases[i * phases.len() / steps];
        yaml += &format!(
            "  - {{id: step-{i:02}, phase: {phase}, uses: echo, retry: {{attempts: 2}}}}\n"
        );
    }
    let workflow = medic_model::parse_workflow("w.yaml", &yaml)
        .unwrap()
        .workflow;
    let incident = medic_intake::simple::parse(
        br#"{"title": "Checkout down", "startsAt": "2026-11-22T03:00:00Z"}"#,
    )
    .unwrap()[0]
        .to_incident("2026-11-22T03:00:00Z");
    let order: Vec<String> = workflow
        .execution_order()
        .into_iter()
        .map(|i| workflow.steps[i].id.clone())
        .collect();
    let mut at = T0 + lead_ms;
    let mut events = vec![(
        at,
        Event::RunCreated(Box::new(RunCreated {
            workflow,
            workflow_file: "w.yaml".into(),
            incident,
            components: Default::default(),
            drill: false,
        })),
    )];
    for (i, step) in order.iter().enumerate() {
        let mut attempt = 1;
        if i % 5 == 4 {
            events.push((at, started(step, 1)));
            at += step_ms / 3;
            events.push((
                at,
                Event::AttemptFailed {
                    step: step.clone(),
                    attempt: 1,
                    failure: medic_core::Failure::new(
                        medic_core::FailureKind::NotReady,
                        true,
                        "not yet",
                    ),
                    duration_ms: step_ms / 3,
                    retry: Some(medic_core::RetryPlan {
                        attempt: 2,
                        not_before_ms: at + step_ms / 3,
                    }),
                },
            ));
            at += step_ms / 3;
            attempt = 2;
        }
        events.push((at, started(step, attempt)));
        at += step_ms / 3;
        events.push((
            at,
            Event::AttemptSucceeded {
                step: step.clone(),
                attempt,
                output: json!({}),
                duration_ms: step_ms / 3,
            },
        ));
    }
    events.push((
        at,
        Event::RunFinished {
            status: RunStatus::Succeeded,
            reason: None,
        },
    ));
    events
        .into_iter()
        .enumerate()
        .map(|(seq, (at_ms, event))| Entry {
            seq: seq as u64,
            at_ms,
            event,
        })
        .collect()
}

fn started(step: &str, attempt: u32) -> Event {
    Event::AttemptStarted {
        step: step.into(),
        attempt,
        idempotency_key: "k".into(),
        params: json!({}),
    }
}

/// Renders with resvg; returns (width, height, share of non-white pixels, has green).
fn render(svg: &str, name: &str) -> (u32, u32, f64, bool) {
    let mut opt = usvg::Options::default();
    opt.fontdb_mut().load_system_fonts();
    let tree = usvg::Tree::from_str(svg, &opt).expect("resvg parses the SVG");
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height()).unwrap();
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("postmortem-pictures");
    std::fs::create_dir_all(&out).unwrap();
    pixmap.save_png(out.join(format!("{name}.png"))).unwrap();
    let pixels = pixmap.pixels();
    let inked = pixels
        .iter()
        .filter(|p| (p.red(), p.green(), p.blue()) != (255, 255, 255))
        .count();
    // The "succeeded" bar colour, #2e9d5b.
    let green = pixels
        .iter()
        .any(|p| (p.red(), p.green(), p.blue(), p.alpha()) == (0x2e, 0x9d, 0x5b, 255));
    (
        size.width(),
        size.height(),
        inked as f64 / pixels.len() as f64,
        green,
    )
}

/// The text content of every `<text>` element (up to a nested `<title>`), trimmed.
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text ")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            let end = body.find('<')?;
            Some(body[..end].trim().to_string())
        })
        .collect()
}

fn check(journal: &[Entry], name: &str) -> (String, Vec<String>) {
    let pm = Postmortem::from_journals([("run-1", journal)]).unwrap();
    let svg = pm.svg();
    let labels = texts(&svg);
    for phase in ["detect", "communicate", "restore", "verify", "follow-up"] {
        assert!(
            labels.iter().any(|l| l == phase),
            "phase label {phase} in the SVG text: {labels:?}"
        );
    }
    let (w, h, inked, green) = render(&svg, name);
    assert_eq!(w, 1100);
    assert!(h > 200, "height {h}");
    assert!(inked > 0.05, "only {inked:.3} of the picture is drawn");
    assert!(green, "no succeeded bar was drawn");
    (svg, labels)
}

#[test]
fn a_two_minute_incident_renders() {
    let (svg, labels) = check(&incident(6, 45_000, 20_000), "two-minutes");
    assert!(
        labels.iter().any(|l| l == "T+01:30"),
        "T+ axis ticks: {labels:?}"
    );
    assert!(!svg.contains("axis break"));
}

#[test]
fn a_four_hour_incident_with_fifty_steps_renders() {
    let (_, labels) = check(&incident(50, 840_000, 40_000), "four-hours");
    // One row per step: every step is labelled.
    for i in 0..50 {
        assert!(labels.contains(&format!("step-{i:02}")), "step-{i:02}");
    }
    // Ticks every 30 minutes: the axis stays legible.
    let ticks: Vec<&String> = labels.iter().filter(|l| l.starts_with("T+")).collect();
    assert!(ticks.iter().any(|t| *t == "T+3:30:00"), "{ticks:?}");
    assert!(ticks.len() <= 12, "{ticks:?}");
}

#[test]
fn a_long_wait_before_the_alert_is_compressed() {
    // Impact 8 days before medic heard of it; medic acted for 2 minutes.
    let (svg, _) = check(&incident(6, 45_000, 8 * 86_400_000), "eight-days-late");
    assert!(svg.contains("axis break"));
}
