//! YAML node helpers: scalar typing, YAML → JSON, positions.
//!
//! The loader runs with coercion prevented so that quoted scalars stay strings; plain
//! scalars are typed here with the YAML 1.2 core schema (`true`, `null`, `~`, `12`, `1.5`).
//! YAML 1.1 words such as `yes`/`on` stay strings, as in YAML 1.2.

use crate::diag::Pos;
use crate::path::join_key;
use marked_yaml::types::{MarkedScalarNode, Node};
use serde_json::Value;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Scalar<'n> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'n str),
}

/// `[-+]?(digits)(.digits)?([eE][-+]?digits)?`, the YAML 1.2 core float/int forms that JSON
/// can hold (no `.inf`, `.nan`, hex or octal: those stay strings).
fn is_decimal(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((a, b)) => (digits(a) || a.is_empty()) && (digits(b) || (b.is_empty() && digits(a))),
        None => digits(mantissa),
    };
    let exp_ok = exp.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)));
    mantissa_ok && exp_ok
}

pub(crate) fn classify(s: &MarkedScalarNode) -> Scalar<'_> {
    let text = s.as_str();
    if !s.may_coerce() {
        return Scalar::Str(text);
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => Scalar::Null,
        "true" | "True" | "TRUE" => Scalar::Bool(true),
        "false" | "False" | "FALSE" => Scalar::Bool(false),
        _ if is_decimal(text) => {
            if let Ok(i) = text.parse::<i64>() {
                Scalar::Int(i)
            } else {
                text.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map_or(Scalar::Str(text), Scalar::Float)
            }
        }
        _ => Scalar::Str(text),
    }
}

pub(crate) fn scalar_to_json(s: &MarkedScalarNode) -> Value {
    match classify(s) {
        Scalar::Null => Value::Null,
        Scalar::Bool(b) => Value::Bool(b),
        Scalar::Int(i) => Value::from(i),
        Scalar::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        Scalar::Str(t) => Value::String(t.to_string()),
    }
}

pub(crate) fn to_json(node: &Node) -> Value {
    match node {
        Node::Scalar(s) => scalar_to_json(s),
        Node::Sequence(items) => Value::Array(items.iter().map(to_json).collect()),
        Node::Mapping(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.as_str().to_string(), to_json(v)))
                .collect(),
        ),
    }
}

/// What a node is, for "expected X, found Y" messages.
pub(crate) fn describe(node: &Node) -> String {
    match node {
        Node::Mapping(_) => "a mapping".into(),
        Node::Sequence(_) => "a list".into(),
        Node::Scalar(s) => match classify(s) {
            Scalar::Null => "nothing (null)".into(),
            Scalar::Bool(b) => format!("`{b}`"),
            Scalar::Int(_) | Scalar::Float(_) => format!("the number {}", s.as_str()),
            Scalar::Str(t) if s.may_coerce() => format!("`{t}`"),
            Scalar::Str(t) => format!("the string {}", Value::from(t)),
        },
    }
}

pub(crate) fn marker_pos(node: &Node) -> Option<Pos> {
    node.span().start().map(|m| Pos::new(m.line(), m.column()))
}

pub(crate) fn scalar_pos(s: &MarkedScalarNode) -> Option<Pos> {
    s.span().start().map(|m| Pos::new(m.line(), m.column()))
}

fn is_empty_plain(node: &Node) -> bool {
    matches!(node, Node::Scalar(s) if s.may_coerce() && s.as_str().is_empty())
}

/// Where each field of the file is, by dotted path (`steps[1].with.url`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Spans(HashMap<String, Pos>);

impl Spans {
    /// Records `node` and everything under it. Scalars are located at their value; mappings,
    /// lists and empty values at their key, which is where a reader looks for them.
    pub(crate) fn record(&mut self, path: &str, key: Option<Pos>, node: &Node) {
        let here = match node {
            Node::Scalar(_) if !is_empty_plain(node) => marker_pos(node),
            _ => key.or_else(|| marker_pos(node)),
        };
        if let Some(p) = here {
            self.0.insert(path.to_string(), p);
        }
        match node {
            Node::Scalar(_) => {}
            Node::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.record(&format!("{path}[{i}]"), None, item);
                }
            }
            Node::Mapping(map) => {
                for (k, v) in map.iter() {
                    self.record(&join_key(path, k.as_str()), scalar_pos(k), v);
                }
            }
        }
    }

    /// The position of `path`, or of its nearest recorded parent.
    pub(crate) fn locate(&self, path: &str) -> Option<Pos> {
        if let Some(p) = self.0.get(path) {
            return Some(*p);
        }
        // Cut points: every `.` or `[` outside a quoted `["key"]`.
        let mut cuts = Vec::new();
        let mut quote: Option<char> = None;
        let mut escaped = false;
        for (i, c) in path.char_indices() {
            match quote {
                Some(_) if escaped => escaped = false,
                Some(_) if c == '\\' => escaped = true,
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == '"' || c == '\'' => quote = Some(c),
                None if (c == '.' || c == '[') && i > 0 => cuts.push(i),
                None => {}
            }
        }
        cuts.iter()
            .rev()
            .find_map(|&i| self.0.get(&path[..i]).copied())
            .or_else(|| self.0.get("").copied())
    }
}

/// The position of char `offset` inside a scalar's value.
///
/// The value is matched against the source text, so the result is exact where the two agree
/// up to the offset: plain and quoted scalars on one line without escapes, and the lines of a
/// `|` block at the block's indentation. Elsewhere (escapes, folded lines) it is the scalar's
/// start, which is still close to the problem.
pub(crate) fn pos_in_scalar(lines: &[&str], s: &MarkedScalarNode, offset: usize) -> Option<Pos> {
    let start = scalar_pos(s)?;
    let first_line: Vec<char> = lines.get(start.line - 1)?.chars().collect();
    // A block scalar's marker is already at its content; a quoted one's at the quote.
    let content = match first_line.get(start.column - 1) {
        Some('"' | '\'') => start.column + 1,
        _ => start.column,
    };
    let prefix: String = s.as_str().chars().take(offset).collect();
    let newlines = prefix.matches('\n').count();
    let tail: Vec<char> = prefix.rsplit('\n').next().unwrap_or("").chars().collect();
    let line_no = start.line + newlines;
    let line: Vec<char> = match lines.get(line_no - 1) {
        Some(l) => l.chars().collect(),
        None => return Some(start),
    };
    let from = content - 1;
    let matches = line.len() >= from + tail.len() && line[from..from + tail.len()] == tail[..];
    Some(if matches {
        Pos::new(line_no, content + tail.len())
    } else {
        start
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use marked_yaml::{LoaderOptions, parse_yaml_with_options};

    fn load(src: &str) -> Node {
        let opts = LoaderOptions::default().prevent_coercion(true);
        parse_yaml_with_options(0, src, opts).unwrap()
    }

    #[test]
    fn scalars_become_typed_json() {
        let node = load(
            "a: true\nb: 'true'\nc: 12\nd: -1.5e3\ne: ~\nf:\ng: \"12\"\nh: yes\ni: .inf\nj: 0x1F\nk: [1, x, null]\nl: {m: n}\no: |\n  block\n",
        );
        assert_eq!(
            to_json(&node),
            serde_json::json!({
                "a": true, "b": "true", "c": 12, "d": -1500.0, "e": null, "f": null, "g": "12",
                "h": "yes", "i": ".inf", "j": "0x1F", "k": [1, "x", null], "l": {"m": "n"},
                "o": "block\n",
            })
        );
    }

    #[test]
    fn decimal_forms() {
        for s in ["1", "-1", "+1", "1.5", ".5", "1.", "1e3", "1.5E-3"] {
            assert!(is_decimal(s), "{s}");
        }
        for s in ["", ".", "-", "1.2.3", "e3", "1e", "0x10", "1_000", "inf"] {
            assert!(!is_decimal(s), "{s}");
        }
    }

    #[test]
    fn spans_and_locate() {
        let src = "steps:\n  - id: a\n    with:\n      url: \"http://x\"\n      \"app.io/n\": 1\n    empty:\n";
        let mut spans = Spans::default();
        spans.record("", Some(Pos::new(1, 1)), &load(src));
        assert_eq!(spans.locate("steps"), Some(Pos::new(1, 1)));
        assert_eq!(spans.locate("steps[0].id"), Some(Pos::new(2, 9)));
        assert_eq!(spans.locate("steps[0].with"), Some(Pos::new(3, 5)));
        assert_eq!(spans.locate("steps[0].with.url"), Some(Pos::new(4, 12)));
        assert_eq!(
            spans.locate("steps[0].with[\"app.io/n\"]"),
            Some(Pos::new(5, 19))
        );
        assert_eq!(
            spans.locate("steps[0].with.nope.deeper"),
            Some(Pos::new(3, 5))
        );
        assert_eq!(
            spans.locate("steps[0].with[\"a.b\"].c"),
            Some(Pos::new(3, 5))
        );
        assert_eq!(spans.locate("steps[0].empty"), Some(Pos::new(6, 5)));
        assert_eq!(spans.locate("steps[3].id"), Some(Pos::new(1, 1)));
        assert_eq!(spans.locate("other"), Some(Pos::new(1, 1)));
    }

    #[test]
    fn positions_inside_scalars() {
        let src = "a: x {{ y }}\nb: \"x {{ y }}\"\nc: \"\\t {{ y }}\"\nd: |\n  {{ y }}\ne: |\n  one\n  x {{ y }}\nf: >\n  one\n  x {{ y }}\n";
        let lines: Vec<&str> = src.lines().collect();
        let node = load(src);
        let map = node.as_mapping().unwrap();
        let at = |k: &str, off| pos_in_scalar(&lines, map.get_scalar(k).unwrap(), off);
        assert_eq!(at("a", 2), Some(Pos::new(1, 6)));
        assert_eq!(at("b", 2), Some(Pos::new(2, 7)));
        assert_eq!(at("c", 2), Some(Pos::new(3, 4))); // escape: falls back to the start
        assert_eq!(at("d", 0), Some(Pos::new(5, 3))); // a block scalar starts at its content
        assert_eq!(at("e", 6), Some(Pos::new(8, 5)));
        assert_eq!(at("f", 6), Some(Pos::new(10, 3))); // folded: the start
    }
}
