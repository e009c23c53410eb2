//! Reading and writing drill files, YAML or JSON. Written keys are sorted, so the same
//! drill always gives the same bytes; read errors name `file:line:column`.

use crate::format::{DrillFile, FORMAT_VERSION};
use marked_yaml::types::Node;
use serde_json::{Map, Number, Value};
use std::collections::BTreeMap;

/// A drill file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Not YAML/JSON, or not a drill: `file:line:column: message`.
    #[error("{file}:{line}:{column}: {message}")]
    At {
        /// The file as named by the caller.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A problem without a position (an unknown version, say).
    #[error("{file}: {message}")]
    File {
        /// The file as named by the caller.
        file: String,
        /// What is wrong.
        message: String,
    },
}

/// How to write a drill file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// Block YAML (the default).
    Yaml,
    /// Pretty JSON.
    Json,
}

impl Syntax {
    /// JSON for `*.json`, else YAML.
    pub fn for_path(path: &std::path::Path) -> Syntax {
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => Syntax::Json,
            _ => Syntax::Yaml,
        }
    }
}

/// Parses a drill file (JSON when it starts with `{`, else YAML). `file` names it in errors.
///
/// # Errors
/// [`FormatError::At`] with the position of the first problem: bad syntax, a missing or
/// unknown field, a value of the wrong type; [`FormatError::File`] for a format version
/// this medic does not read.
pub fn parse(file: &str, src: &str) -> Result<DrillFile, FormatError> {
    let at = |line, column, message: String| FormatError::At {
        file: file.to_string(),
        line,
        column,
        message,
    };
    let (value, marks) = if src.trim_start().starts_with('{') {
        let v: Value =
            serde_json::from_str(src).map_err(|e| at(e.line(), e.column(), e.to_string()))?;
        (v, None)
    } else {
        // Quoted scalars stay strings: `"0"` in a recorded body must not come back as 0.
        let options = marked_yaml::LoaderOptions::default().prevent_coercion(true);
        let node = marked_yaml::parse_yaml_with_options(0, src, options).map_err(|e| {
            let (line, column) = load_error_pos(&e);
            at(line, column, e.to_string())
        })?;
        let mut marks = BTreeMap::new();
        let v = yaml_to_json(&node, String::new(), &mut marks);
        (v, Some(marks))
    };
    if let Some(v) = value.get("medic_drill")
        && v.as_u64() != Some(u64::from(FORMAT_VERSION))
    {
        return Err(FormatError::File {
            file: file.to_string(),
            message: format!("drill format version {v}; this medic reads version {FORMAT_VERSION}"),
        });
    }
    let json_src = marks.is_none().then_some(src);
    serde_path_to_error::deserialize::<_, DrillFile>(&value).map_err(|e| {
        let path = e.path().to_string();
        let message = format!("{path}: {}", e.inner());
        match (&marks, json_src) {
            (Some(marks), _) => {
                let (line, column) = nearest_mark(marks, &path);
                at(line, column, message)
            }
            // serde_json positions are lost going through a Value; re-parse to find them.
            (None, Some(src)) => match serde_json::from_str::<DrillFile>(src) {
                Err(e2) => at(e2.line(), e2.column(), message),
                Ok(_) => at(1, 1, message),
            },
            (None, None) => at(1, 1, message),
        }
    })
}

fn load_error_pos(e: &marked_yaml::LoadError) -> (usize, usize) {
    use marked_yaml::LoadError as L;
    let m = match e {
        L::TopLevelMustBeMapping(m)
        | L::TopLevelMustBeSequence(m)
        | L::UnexpectedAnchor(m)
        | L::MappingKeyMustBeScalar(m)
        | L::UnexpectedTag(m)
        | L::ScanError(m, _) => Some(*m),
        _ => None,
    };
    m.map(|m| (m.line(), m.column())).unwrap_or((1, 1))
}

/// The position recorded for `path` or its nearest ancestor.
fn nearest_mark(marks: &BTreeMap<String, (usize, usize)>, path: &str) -> (usize, usize) {
    let mut p = path.to_string();
    loop {
        if let Some(m) = marks.get(&p) {
            return *m;
        }
        match p.rfind(['.', '[']) {
            Some(i) => p.truncate(i),
            None => return marks.get("").copied().unwrap_or((1, 1)),
        }
    }
}

/// YAML as JSON: plain scalars that look like null, booleans or numbers become those
/// (YAML 1.2 core schema); quoted scalars stay strings. Records each value's position
/// under its serde_path_to_error path (`a.b[2].c`).
fn yaml_to_json(node: &Node, path: String, marks: &mut BTreeMap<String, (usize, usize)>) -> Value {
    if let Some(m) = node.span().start() {
        marks.insert(path.clone(), (m.line(), m.column()));
    }
    match node {
        Node::Scalar(s) => {
            let text = s.as_str();
            if !s.may_coerce() {
                return Value::String(text.to_string());
            }
            match text {
                "null" | "~" | "" => Value::Null,
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => {
                    if let Ok(i) = text.parse::<i64>() {
                        Value::Number(i.into())
                    } else if let Some(n) = text
                        .parse::<f64>()
                        .ok()
                        .filter(|_| text.contains('.'))
                        .and_then(Number::from_f64)
                    {
                        Value::Number(n)
                    } else {
                        Value::String(text.to_string())
                    }
                }
            }
        }
        Node::Sequence(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, n)| yaml_to_json(n, format!("{path}[{i}]"), marks))
                .collect(),
        ),
        Node::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map.iter() {
                let key = k.as_str().to_string();
                let p = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                out.insert(key, yaml_to_json(v, p, marks));
            }
            Value::Object(out)
        }
    }
}

/// Writes a drill file in `syntax`. The same drill gives the same bytes.
pub fn write(drill: &DrillFile, syntax: Syntax) -> String {
    let v = serde_json::to_value(drill).expect("a drill file serializes to JSON");
    match syntax {
        Syntax::Json => {
            let mut s = serde_json::to_string_pretty(&v).expect("JSON values print");
            s.push('\n');
            s
        }
        Syntax::Yaml => {
            let mut out = String::from("# medic drill file: replay with `medic drill run FILE`\n");
            yaml_block(&v, 0, &mut out);
            out
        }
    }
}

/// Block-style YAML. Strings are written as JSON strings (valid YAML double-quoted
/// scalars), so no value can be misread as another type.
fn yaml_block(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                out.push_str(&pad);
                out.push_str(&yaml_key(k));
                out.push(':');
                yaml_after_key(x, indent, out);
            }
        }
        Value::Array(items) => {
            for x in items {
                out.push_str(&pad);
                out.push('-');
                match x {
                    Value::Object(m) if !m.is_empty() => {
                        // The first key goes on the dash's line.
                        let mut first = true;
                        for (k, y) in m {
                            if first {
                                out.push(' ');
                                first = false;
                            } else {
                                out.push_str(&pad);
                                out.push_str("  ");
                            }
                            out.push_str(&yaml_key(k));
                            out.push(':');
                            yaml_after_key(y, indent + 2, out);
                        }
                    }
                    other => yaml_after_key(other, indent, out),
                }
            }
        }
        scalar => {
            out.push_str(&pad);
            out.push_str(&yaml_scalar(scalar));
            out.push('\n');
        }
    }
}

fn yaml_after_key(x: &Value, indent: usize, out: &mut String) {
    match x {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            yaml_block(x, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            yaml_block(x, indent + 2, out);
        }
        other => {
            out.push(' ');
            out.push_str(&yaml_scalar(other));
            out.push('\n');
        }
    }
}

fn yaml_scalar(v: &Value) -> String {
    match v {
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        other => other.to_string(),
    }
}

/// Keys are written plain when that cannot be misread, else quoted.
fn yaml_key(k: &str) -> String {
    let plain = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        && !k.starts_with(['-', '.'])
        && !matches!(
            k,
            "true" | "false" | "null" | "~" | "yes" | "no" | "on" | "off"
        )
        && k.parse::<f64>().is_err();
    if plain {
        k.to_string()
    } else {
        Value::String(k.to_string()).to_string()
    }
}

/// The JSON Schema (draft 2020-12) of the drill file format (`medic schema --drill`).
pub fn drill_schema() -> Value {
    serde_json::from_str(include_str!("drill.schema.json")).expect("drill.schema.json is JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "medic_drill: 1\nname: t\nstarted_at_ms: 1000\nincident:\n  id: i\n  title: \"T: x\"\n  severity: critical\n  status: firing\n  started_at: \"1970-01-01T00:00:01Z\"\n  source: test\ndecisions:\n  - step: g\n    after: 4m\n    decision: approve\n    by: oncall\nexchanges:\n  - step: s\n    at: 1m30s\n    request: { method: POST, url: \"http://h:1/a?b=1\", body: { json: { n: 2, ok: true, s: \"2\" } } }\n    response: { status: 200, body: { text: \"yes\" } }\n";

    #[test]
    fn yaml_and_json_round_trip_byte_for_byte() {
        let d = parse("t.yaml", SRC).unwrap();
        assert_eq!(d.decisions[0].after.ms(), 240_000);
        let body = d.exchanges[0].request.body.clone().unwrap();
        assert_eq!(
            body,
            crate::format::DrillBody::Json(serde_json::json!({"n": 2, "ok": true, "s": "2"}))
        );
        for syntax in [Syntax::Yaml, Syntax::Json] {
            let out = write(&d, syntax);
            let back = parse("t", &out).unwrap();
            assert_eq!(back, d, "{out}");
            assert_eq!(write(&back, syntax), out);
        }
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let e = parse("t.yaml", &SRC.replace("after: 4m", "after: soon")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.yaml:13:12: decisions[0].after: `soon` is not a duration (write e.g. 90s, 1m30s, 250ms)"
        );
        let e = parse("t.yaml", &SRC.replace("    by: oncall", "    bye: oncall")).unwrap_err();
        assert!(e.to_string().starts_with("t.yaml:"), "{e}");
        assert!(e.to_string().contains("bye"), "{e}");
        let e = parse("t.json", "{\"medic_drill\": 1, \"name\": 3}").unwrap_err();
        assert!(e.to_string().starts_with("t.json:1:"), "{e}");
        let e = parse("t.yaml", &SRC.replace("medic_drill: 1", "medic_drill: 9")).unwrap_err();
        assert!(e.to_string().contains("version 9"), "{e}");
    }
}
