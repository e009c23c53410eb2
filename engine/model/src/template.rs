//! `{{ path }}` templates in step parameters (`with`).
//!
//! A string that is exactly one template (`"{{ steps.probe.output }}"`) renders to the value
//! itself, keeping its JSON type, so a step can hand a list or number to the next. Any other
//! string interpolates: strings as they are, other values as compact JSON. A path that is not
//! set is an error rather than an empty string: a URL with a silently missing host is worse
//! than a failed step that says which annotation is missing.

use crate::path::{Path, SyntaxError, join_key};
use serde_json::Value;

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `at` is the parameter (`with.url`); `offset` the 0-based character in its string value.
    #[error("{at}: template error at character {}: {message}", offset + 1)]
    Syntax {
        /// The parameter.
        at: String,
        /// 0-based character in its string value.
        offset: usize,
        /// What is wrong.
        message: String,
    },
    /// `path` is the template path; `message` says which part of it is missing.
    #[error("{at}: {message}")]
    Missing {
        /// The parameter.
        at: String,
        /// The template path.
        path: String,
        /// Which part of it is missing.
        message: String,
    },
}

/// A piece of a template string.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Part {
    Text(String),
    /// A `{{ path }}`; `offset` is the char offset of the path inside the string.
    Ref {
        path: Path,
        offset: usize,
    },
}

/// True when `s` holds a template, i.e. its value is only known at run time.
pub fn is_templated(s: &str) -> bool {
    s.contains("{{")
}

/// Whether any string or object key in `v` (`with:`, nested at any depth) contains
/// `needle`: what `v.to_string().contains(needle)` tells, without encoding `v`. The
/// executor asks it of every attempt's `with:` (does it use `run.*`?).
pub fn mentions(v: &Value, needle: &str) -> bool {
    match v {
        Value::String(s) => s.contains(needle),
        Value::Array(a) => a.iter().any(|v| mentions(v, needle)),
        Value::Object(m) => m
            .iter()
            .any(|(k, v)| k.contains(needle) || mentions(v, needle)),
        _ => false,
    }
}

/// Splits a string into text and `{{ path }}` parts.
pub(crate) fn parse(s: &str) -> Result<Vec<Part>, SyntaxError> {
    let chars: Vec<char> = s.chars().collect();
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '{' && chars.get(i + 1) == Some(&'{') {
            let open = i;
            let close = (open + 2..chars.len().saturating_sub(1))
                .find(|&j| chars[j] == '}' && chars[j + 1] == '}')
                .ok_or((open, "`{{` is not closed with `}}`".to_string()))?;
            let start = open
                + 2
                + chars[open + 2..]
                    .iter()
                    .take_while(|c| c.is_whitespace())
                    .count();
            if start >= close {
                return Err((
                    open,
                    "empty `{{ }}`: expected a path like `incident.title`".into(),
                ));
            }
            let (path, end) = Path::parse_at(&chars, start)?;
            let after = end
                + chars[end..]
                    .iter()
                    .take_while(|c| c.is_whitespace())
                    .count();
            if after != close && chars[after] == '}' {
                return Err((
                    after,
                    "expected `}}` to close the template, found a single `}`".into(),
                ));
            }
            if after != close {
                return Err((
                    after,
                    format!(
                        "unexpected `{}`: a template holds only a path like `steps.probe.output.status`",
                        chars[after]
                    ),
                ));
            }
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(Part::Ref {
                path,
                offset: start,
            });
            i = close + 2;
        } else {
            text.push(chars[i]);
            i += 1;
        }
    }
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    Ok(parts)
}

/// Renders every template in `with` against `ctx`
/// (`{"incident": {...}, "steps": {"<id>": {"status": ..., "output": ...}}}`).
pub fn render(with: &Value, ctx: &Value) -> Result<Value, TemplateError> {
    render_at(with, ctx, "with")
}

fn render_at(value: &Value, ctx: &Value, at: &str) -> Result<Value, TemplateError> {
    Ok(match value {
        Value::String(s) if is_templated(s) => render_str(s, ctx, at)?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| render_at(item, ctx, &format!("{at}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_at(v, ctx, &join_key(at, k))?)))
                .collect::<Result<_, _>>()?,
        ),
        other => other.clone(),
    })
}

fn render_str(s: &str, ctx: &Value, at: &str) -> Result<Value, TemplateError> {
    let parts = parse(s).map_err(|(offset, message)| TemplateError::Syntax {
        at: at.to_string(),
        offset,
        message,
    })?;
    let lookup = |path: &Path| {
        path.lookup(ctx).map_err(|message| TemplateError::Missing {
            at: at.to_string(),
            path: path.to_string(),
            message,
        })
    };
    if let [Part::Ref { path, .. }] = parts.as_slice() {
        return lookup(path).cloned();
    }
    let mut out = String::new();
    for part in &parts {
        match part {
            Part::Text(t) => out.push_str(t),
            Part::Ref { path, .. } => match lookup(path)? {
                Value::String(v) => out.push_str(v),
                other => out.push_str(&other.to_string()),
            },
        }
    }
    Ok(Value::String(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mentions_finds_a_name_in_nested_strings_and_keys_only() {
        let with = json!({"a": [1, {"b": "restored in {{ run.metrics.time_to_mitigate.text }}"}]});
        assert!(mentions(&with, "run."));
        assert!(mentions(&json!({"run.id": 1}), "run."));
        assert!(!mentions(
            &json!({"url": "http://x/rerun", "n": 3, "ok": true}),
            "run."
        ));
        assert!(!mentions(&Value::Null, "run."));
    }

    fn ctx() -> Value {
        json!({
            "incident": {
                "title": "High error rate",
                "labels": {"service": "checkout", "app.kubernetes.io/name": "shop"},
                "annotations": {},
            },
            "steps": {"probe": {"status": "failed", "output": {"code": 503, "items": ["a", "b"], "ok": false}}},
        })
    }

    #[test]
    fn whole_string_keeps_type() {
        let with = json!({
            "code": "{{ steps.probe.output.code }}",
            "items": "{{steps.probe.output.items}}",
            "ok": "{{ steps.probe.output.ok }}",
            "first": "{{ steps.probe.output.items[0] }}",
            "name": "{{ incident.labels[\"app.kubernetes.io/name\"] }}",
        });
        let out = render(&with, &ctx()).unwrap();
        assert_eq!(
            out,
            json!({"code": 503, "items": ["a", "b"], "ok": false, "first": "a", "name": "shop"})
        );
    }

    #[test]
    fn interpolation() {
        let with = json!({
            "text": "{{ incident.title }} on {{ incident.labels.service }}: {{ steps.probe.output.code }}",
            "list": ["x={{ steps.probe.output.items }}", 3, null, {"deep": " {{ steps.probe.status }} "}],
            "plain": "no templates } { here }}",
        });
        let out = render(&with, &ctx()).unwrap();
        assert_eq!(
            out,
            json!({
                "text": "High error rate on checkout: 503",
                "list": ["x=[\"a\",\"b\"]", 3, null, {"deep": " failed "}],
                "plain": "no templates } { here }}",
            })
        );
    }

    #[test]
    fn missing_path_is_an_error() {
        let with = json!({"headers": {"x-url": "{{ incident.annotations.runbook }}"}});
        let err = render(&with, &ctx()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "with.headers.x-url: `incident.annotations.runbook` is not set: `incident.annotations` has no `runbook`"
        );
        match err {
            TemplateError::Missing { path, .. } => assert_eq!(path, "incident.annotations.runbook"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn syntax_errors() {
        let cases = [
            ("{{ incident.title", 0, "not closed"),
            ("x {{ }}", 2, "empty"),
            ("{{ incident.title | upper }}", 18, "unexpected `|`"),
            ("{{ incident. }}", 12, "field name"),
            ("{{ 'a' }}", 3, "expected a path"),
        ];
        for (src, offset, needle) in cases {
            let (at, msg) = parse(src).unwrap_err();
            assert_eq!(at, offset, "{src}: {msg}");
            assert!(msg.contains(needle), "{src}: {msg}");
        }
        let err = render(&json!({"u": "{{ x"}), &ctx()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "with.u: template error at character 1: `{{` is not closed with `}}`"
        );
    }

    #[test]
    fn parts_have_offsets() {
        let parts = parse("a {{ incident.title }}").unwrap();
        assert_eq!(parts.len(), 2);
        assert!(matches!(&parts[1], Part::Ref { offset: 5, .. }));
    }
}
