//! The timeline picture (SVG, built with the `svg` crate, which writes attributes in a
//! fixed order and escapes text): the five phases as swimlanes with one row per step,
//! attempts as bars, gate waits shaded with their decision, markers for impact start,
//! alert, mitigated, verified and resolved, and a T+ axis from impact start.
//!
//! One row per step keeps 50 steps over 4 hours as readable as 3 steps over 2 minutes:
//! labels sit in a fixed column and never collide. When medic heard of the incident long
//! after impact start, that gap is drawn compressed behind an axis break, so the part
//! medic acted in keeps the width.

use crate::metrics::Metrics;
use crate::scan::{Outcome, RunRec, Scan};
use crate::time;
use medic_model::Phase;
use svg::Document;
use svg::node::element::{Group, Line, Rectangle, Text, Title};

const WIDTH: f64 = 1100.0;
const X0: f64 = 250.0;
const X1: f64 = 1040.0;
const ROW: f64 = 20.0;
const LANE_HEAD: f64 = 20.0;
const BREAK_W: f64 = 46.0;
const FONT: &str = "DejaVu Sans, Verdana, Arial, sans-serif";

/// Instant → x, with an optional compressed stretch at the start.
struct Scale {
    impact: u64,
    /// Start of the linear part (after the break), or `impact` without a break.
    linear_from: u64,
    end: u64,
}

impl Scale {
    fn new(impact: u64, first_action: u64, end: u64) -> Scale {
        let end = end.max(impact + 1000);
        let acted = end.saturating_sub(first_action);
        let gap = first_action.saturating_sub(impact);
        // Break when the wait before medic's first action would take most of the width.
        let linear_from = if gap > 60_000 && gap * 2 > acted {
            first_action.saturating_sub((acted / 40).max(1000))
        } else {
            impact
        };
        Scale {
            impact,
            linear_from,
            end,
        }
    }

    fn broken(&self) -> bool {
        self.linear_from > self.impact
    }

    fn x(&self, ms: u64) -> f64 {
        let ms = ms.clamp(self.impact, self.end);
        if self.broken() {
            if ms <= self.linear_from {
                let f = (ms - self.impact) as f64 / (self.linear_from - self.impact) as f64;
                return X0 + f * (BREAK_W - 12.0);
            }
            let f = (ms - self.linear_from) as f64 / (self.end - self.linear_from) as f64;
            X0 + BREAK_W + f * (X1 - X0 - BREAK_W)
        } else {
            X0 + (ms - self.impact) as f64 / (self.end - self.impact) as f64 * (X1 - X0)
        }
    }
}

fn n(v: f64) -> String {
    format!("{v:.1}")
}

fn text(x: f64, y: f64, size: u32, s: &str) -> Text {
    Text::new(s)
        .set("x", n(x))
        .set("y", n(y))
        .set("font-size", size)
        .set("font-family", FONT)
        .set("fill", "#1d2125")
}

fn rect(x: f64, y: f64, w: f64, h: f64, fill: &str) -> Rectangle {
    Rectangle::new()
        .set("x", n(x))
        .set("y", n(y))
        .set("width", n(w.max(2.0)))
        .set("height", n(h))
        .set("fill", fill)
}

fn vline(x: f64, y0: f64, y1: f64, colour: &str, dash: bool) -> Line {
    let l = Line::new()
        .set("x1", n(x))
        .set("x2", n(x))
        .set("y1", n(y0))
        .set("y2", n(y1))
        .set("stroke", colour)
        .set("stroke-width", 1.5);
    if dash {
        l.set("stroke-dasharray", "4 3")
    } else {
        l
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}

/// A tick step (ms) that gives at most ~10 ticks over `span` ms.
fn tick_step(span: u64) -> u64 {
    const STEPS: [u64; 16] = [
        1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000,
        1_800_000, 3_600_000, 7_200_000, 21_600_000, 86_400_000,
    ];
    STEPS
        .into_iter()
        .find(|s| span / s <= 10)
        .unwrap_or(86_400_000 * (span / 86_400_000 / 10 + 1))
}

pub(crate) fn render(scan: &Scan, metrics: &Metrics, impact: u64, title: &str) -> String {
    let runs = &scan.runs;
    let multi = runs.len() > 1;
    let first_action = runs.iter().map(|r| r.created_ms).min().unwrap_or(impact);
    let end = runs
        .iter()
        .map(|r| r.finished.as_ref().map_or(r.last_ms, |f| f.0))
        .chain(scan.updates.iter().map(|u| u.at_ms))
        .max()
        .unwrap_or(impact);
    let scale = Scale::new(impact, first_action, end);

    // Rows: per phase, each run's steps of that phase.
    let mut lanes: Vec<(Phase, Vec<(&RunRec, &crate::scan::StepRec)>)> = Vec::new();
    for phase in Phase::ALL {
        let steps = runs
            .iter()
            .flat_map(|r| r.steps.iter().map(move |s| (r, s)))
            .filter(|(_, s)| s.phase == phase)
            .collect();
        lanes.push((phase, steps));
    }
    let marker_rows = 3.0;
    let top = 58.0 + marker_rows * 14.0;
    let rows: f64 = lanes
        .iter()
        .map(|(_, s)| LANE_HEAD + ROW * s.len().max(1) as f64)
        .sum();
    let bottom = top + rows;
    let height = bottom + 44.0;

    let mut doc = Document::new()
        .set("xmlns", "http://www.w3.org/2000/svg")
        .set("viewBox", format!("0 0 {} {}", WIDTH, n(height)))
        .set("width", WIDTH)
        .set("height", n(height))
        .set("role", "img")
        .add(Title::new(format!("Timeline: {title}")))
        .add(rect(0.0, 0.0, WIDTH, height, "#ffffff"))
        .add(text(12.0, 22.0, 15, &shorten(title, 120)).set("font-weight", "bold"));
    doc = doc.add(legend());

    // Lanes and step rows.
    let mut y = top;
    let mut body = Group::new();
    for (i, (phase, steps)) in lanes.iter().enumerate() {
        let lane_h = LANE_HEAD + ROW * steps.len().max(1) as f64;
        let shade = if i % 2 == 0 { "#f3f5f7" } else { "#ffffff" };
        body = body
            .add(rect(0.0, y, WIDTH, lane_h, shade))
            .add(text(12.0, y + 14.0, 12, phase.as_str()).set("font-weight", "bold"));
        let mut ry = y + LANE_HEAD;
        if steps.is_empty() {
            body = body.add(
                text(X0 - 8.0, ry + 13.0, 10, "no steps")
                    .set("text-anchor", "end")
                    .set("fill", "#8a94a6"),
            );
        }
        for (run, step) in steps {
            let label = if multi {
                format!("{} · {}", step.id, run.workflow.name)
            } else {
                step.id.clone()
            };
            body = body
                .add(text(X0 - 8.0, ry + 13.0, 11, &shorten(&label, 34)).set("text-anchor", "end"));
            body = body.add(step_bars(&scale, run, step, ry));
            ry += ROW;
        }
        y += lane_h;
    }
    doc = doc.add(body);
    doc = doc.add(axis(&scale, top, bottom));
    doc = doc.add(markers(metrics, &scale, impact, first_action, bottom));
    doc.to_string() + "\n"
}

fn legend() -> Group {
    let items = [
        ("#2e9d5b", "succeeded"),
        ("#e6a23c", "failed, retried"),
        ("#d64545", "failed"),
        ("#8a94a6", "no result"),
        ("#f6d365", "waiting on people"),
    ];
    let mut g = Group::new();
    let mut x = X0;
    for (colour, label) in items {
        g = g
            .add(rect(x, 32.0, 12.0, 10.0, colour))
            .add(text(x + 16.0, 41.0, 11, label));
        x += 28.0 + 6.2 * label.len() as f64;
    }
    g
}

fn step_bars(scale: &Scale, run: &RunRec, step: &crate::scan::StepRec, y: f64) -> Group {
    let mut g = Group::new();
    let (by, bh) = (y + 4.0, 12.0);
    if let Some(gate) = &step.gate {
        let end = gate.decided.as_ref().map_or(run.last_ms, |d| d.at_ms);
        let (x0, x1) = (scale.x(gate.opened_ms), scale.x(end));
        let label = match &gate.decided {
            Some(d) if d.by_deadline => format!("{} by deadline", d.decision.past()),
            Some(d) => format!("{} by {}", d.decision.past(), d.by),
            None => "still waiting".to_string(),
        };
        let label = format!("{label} after {}", time::human(end - gate.opened_ms));
        let tip = format!(
            "{}: waited {} for a decision; {label}",
            step.id,
            time::human(end - gate.opened_ms)
        );
        g = g.add(
            rect(x0, by - 2.0, x1 - x0, bh + 4.0, "#f6d365")
                .set("stroke", "#c99a06")
                .set("stroke-width", 1)
                .add(Title::new(tip)),
        );
        let width = 6.2 * label.chars().count() as f64;
        let (tx, anchor) = if x1 + 6.0 + width <= WIDTH - 4.0 {
            (x1 + 6.0, "start")
        } else {
            (x0 - 6.0, "end")
        };
        g = g.add(text(tx, y + 14.0, 10, &label).set("text-anchor", anchor));
    }
    let mut prev_end: Option<u64> = None;
    for a in &step.attempts {
        if let Some(p) = prev_end {
            // The wait between a failed attempt and its retry.
            g = g.add(
                Line::new()
                    .set("x1", n(scale.x(p)))
                    .set("x2", n(scale.x(a.start_ms)))
                    .set("y1", n(by + bh / 2.0))
                    .set("y2", n(by + bh / 2.0))
                    .set("stroke", "#8a94a6")
                    .set("stroke-dasharray", "2 2"),
            );
        }
        let colour = match a.outcome {
            Outcome::Succeeded => "#2e9d5b",
            Outcome::Retry(_) => "#e6a23c",
            Outcome::Failed => "#d64545",
            Outcome::Open => "#8a94a6",
        };
        let end = if a.outcome == Outcome::Open {
            run.last_ms.max(a.start_ms)
        } else {
            a.end_ms
        };
        let what = match (&a.outcome, &a.failure) {
            (Outcome::Succeeded, _) => "succeeded".to_string(),
            (Outcome::Open, _) => "no result in the journal".to_string(),
            (_, Some(f)) => format!("failed: {f}"),
            (_, None) => "failed".to_string(),
        };
        let tip = format!(
            "{} attempt {} at {} ({}): {what}, {}",
            step.id,
            a.attempt,
            time::clock(a.start_ms),
            time::t_plus(a.start_ms, scale.impact),
            time::human(end - a.start_ms)
        );
        let x0 = scale.x(a.start_ms);
        g = g.add(rect(x0, by, scale.x(end) - x0, bh, colour).add(Title::new(tip)));
        prev_end = Some(a.end_ms);
    }
    if let Some((at, reason)) = &step.skipped {
        let x = scale.x(*at);
        g = g.add(
            text(x, y + 14.0, 10, "skipped")
                .set("fill", "#6b7480")
                .add(Title::new(format!("{} skipped: {reason}", step.id))),
        );
    }
    g
}

fn axis(scale: &Scale, top: f64, bottom: f64) -> Group {
    let mut g = Group::new().add(
        Line::new()
            .set("x1", n(X0))
            .set("x2", n(X1))
            .set("y1", n(bottom))
            .set("y2", n(bottom))
            .set("stroke", "#1d2125"),
    );
    let from = scale.linear_from;
    let span = scale.end - from;
    let step = tick_step(span);
    // Ticks at whole multiples of `step` from impact start, inside the linear part.
    let offset = from - scale.impact;
    let mut k = offset.div_ceil(step);
    loop {
        let at = scale.impact + k * step;
        if at > scale.end {
            break;
        }
        let x = scale.x(at);
        g = g
            .add(
                Line::new()
                    .set("x1", n(x))
                    .set("x2", n(x))
                    .set("y1", n(top))
                    .set("y2", n(bottom + 4.0))
                    .set("stroke", "#d0d4d9")
                    .set("stroke-width", 0.5),
            )
            .add(
                text(x, bottom + 17.0, 10, &time::t_plus(at, scale.impact))
                    .set("text-anchor", "middle"),
            );
        k += 1;
    }
    if scale.broken() {
        let x = X0 + BREAK_W - 6.0;
        g = g
            .add(text(X0, bottom + 17.0, 10, "T+00:00").set("text-anchor", "middle"))
            .add(
                text(x, bottom + 4.0, 14, "≈")
                    .set("text-anchor", "middle")
                    .add(Title::new(format!(
                        "axis break: {} before medic acted, compressed",
                        time::human(scale.linear_from - scale.impact)
                    ))),
            );
    }
    g.add(
        text(X1, bottom + 34.0, 10, "T+ from impact start (UTC)")
            .set("text-anchor", "end")
            .set("fill", "#6b7480"),
    )
}

fn markers(metrics: &Metrics, scale: &Scale, impact: u64, received: u64, bottom: f64) -> Group {
    let mut list: Vec<(u64, &str, &str)> = vec![
        (impact, "impact start", "#d64545"),
        (received, "alert", "#e67e22"),
    ];
    for (m, label, colour) in [
        (&metrics.time_to_mitigate, "mitigated", "#2f6fd6"),
        (&metrics.time_to_verified, "verified", "#2e9d5b"),
        (&metrics.time_to_resolve, "resolved", "#1b7f3b"),
    ] {
        if let Some(at) = m.to_ms {
            list.push((at, label, colour));
        }
    }
    list.sort_by_key(|(at, _, _)| *at);
    let mut g = Group::new();
    // Labels go on the first of three rows where they do not overlap the previous one.
    let mut row_end = [f64::MIN; 3];
    for (at, label, colour) in list {
        let x = scale.x(at);
        let w = 6.5 * label.len() as f64 + 70.0;
        // Near the right edge the label goes left of its line, so it is never cut off.
        let (start, tx, anchor) = if x + 3.0 + w <= WIDTH - 4.0 {
            (x, x + 3.0, "start")
        } else {
            (x - 3.0 - w, x - 3.0, "end")
        };
        let row = (0..3).find(|&r| row_end[r] < start).unwrap_or(2);
        row_end[row] = start + w + 3.0;
        let ly = 62.0 + row as f64 * 14.0;
        let words = format!("{label} {}", time::t_plus(at, impact));
        g = g
            .add(vline(x, ly + 2.0, bottom, colour, label != "impact start"))
            .add(
                text(tx, ly, 10, &words)
                    .set("fill", colour)
                    .set("text-anchor", anchor)
                    .add(Title::new(format!("{label} at {} UTC", time::utc(at)))),
            );
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_breaks_a_long_wait_before_medic_acted() {
        // Impact 8 days before the alert; medic acted for 2 minutes.
        let impact = 0;
        let first = 8 * 86_400_000;
        let s = Scale::new(impact, first, first + 120_000);
        assert!(s.broken());
        assert!(s.x(first) > X0 + BREAK_W - 1.0 && s.x(first) < X0 + BREAK_W + 60.0);
        assert!((s.x(first + 120_000) - X1).abs() < 0.01);
        let plain = Scale::new(0, 10_000, 120_000);
        assert!(!plain.broken());
        assert!((plain.x(60_000) - (X0 + (X1 - X0) / 2.0)).abs() < 0.01);
    }

    #[test]
    fn ticks_stay_few() {
        assert_eq!(tick_step(120_000), 15_000);
        assert_eq!(tick_step(4 * 3_600_000), 1_800_000);
        assert_eq!(tick_step(5_000), 1_000);
    }
}
