//! Markdown and HTML through minijinja templates over the facts. The built-in templates
//! live in `templates/`; a team's own Markdown template gets the same variables.

use crate::PostmortemError;
use crate::facts::Facts;
use minijinja::{Environment, UndefinedBehavior, Value};
use serde_json::json;

pub(crate) const MARKDOWN: &str = include_str!("../templates/postmortem.md.j2");
pub(crate) const HTML: &str = include_str!("../templates/postmortem.html.j2");

/// The template context: every fact at the top level, plus `metric_rows` (label, metric
/// pairs in reading order), `timeline_image` (what the Markdown's image points at) and
/// `svg` (the picture itself).
pub(crate) fn context(facts: &Facts, timeline_image: &str, svg: &str) -> Value {
    // The facts go to the template as they are (no intermediate JSON document: for a
    // 10,000-entry journal that copy was a third of the draft's time); the few added
    // variables come first in the merged context.
    let m = serde_json::to_value(&facts.metrics).expect("metrics serialise: plain data");
    let rows = json!([
        ["Time to detect", m["time_to_detect"]],
        ["Time to communicate", m["time_to_communicate"]],
        ["Time to mitigate", m["time_to_mitigate"]],
        ["Time to verified", m["time_to_verified"]],
        ["Time to resolve", m["time_to_resolve"]],
        ["Waiting on people", m["waiting_on_people"]],
    ]);
    minijinja::context! {
        metric_rows => Value::from_serialize(&rows),
        timeline_image => timeline_image,
        svg => svg,
        ..Value::from_serialize(facts)
    }
}

/// A Markdown table cell: pipes escaped, line breaks folded, so no fact breaks the table.
fn cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\r', '\n'], " ")
}

fn environment<'a>() -> Environment<'a> {
    let mut env = Environment::new();
    // A team template that names a fact that does not exist fails, naming the line,
    // instead of printing nothing.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_filter("cell", |s: Value| cell(&s.to_string()));
    env
}

/// Renders `source` (named `name` in errors) against `ctx`. `.html` names auto-escape.
pub(crate) fn render(name: &str, source: &str, ctx: Value) -> Result<String, PostmortemError> {
    let env = environment();
    let err = |e: minijinja::Error| PostmortemError::Template {
        name: name.to_string(),
        line: e.line(),
        message: match e.detail() {
            Some(d) => format!("{}: {d}", e.kind()),
            None => e.kind().to_string(),
        },
    };
    let t = env.template_from_named_str(name, source).map_err(err)?;
    let mut out = t.render(ctx).map_err(err)?;
    if !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn cells_keep_tables_whole() {
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }
}
