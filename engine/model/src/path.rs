//! Data paths shared by templates and conditions: `incident.labels.service`,
//! `steps.probe.output.items[0]`, `incident.labels["app.kubernetes.io/name"]`.

use serde_json::Value;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A parsed path. The first segment is always a key (`incident` or `steps` in valid files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub segments: Vec<Segment>,
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

/// Step ids may contain `-`; the expression language has no minus operator, so this is safe.
fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// A syntax error at a char offset.
pub type SyntaxError = (usize, String);

fn ident(chars: &[char], start: usize) -> Option<(String, usize)> {
    if !chars.get(start).copied().is_some_and(is_ident_start) {
        return None;
    }
    let mut end = start + 1;
    while chars.get(end).copied().is_some_and(is_ident_char) {
        end += 1;
    }
    Some((chars[start..end].iter().collect(), end))
}

/// Reads a `"..."` or `'...'` literal starting at `start` (the quote). Escapes: `\\`, `\"`,
/// `\'`, `\n`, `\t`. Returns the text and the offset after the closing quote.
pub fn quoted(chars: &[char], start: usize) -> Result<(String, usize), SyntaxError> {
    let quote = chars[start];
    let mut out = String::new();
    let mut i = start + 1;
    while let Some(&c) = chars.get(i) {
        match c {
            '\\' => {
                let esc = match chars.get(i + 1) {
                    Some('n') => '\n',
                    Some('t') => '\t',
                    Some(&e @ ('\\' | '"' | '\'')) => e,
                    Some(e) => return Err((i, format!("unknown escape `\\{e}` in string"))),
                    None => break,
                };
                out.push(esc);
                i += 2;
            }
            c if c == quote => return Ok((out, i + 1)),
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Err((
        start,
        format!("unterminated string: missing closing {quote}"),
    ))
}

impl Path {
    /// Parses a path starting at `start`; returns it and the offset just after it.
    pub fn parse_at(chars: &[char], start: usize) -> Result<(Path, usize), SyntaxError> {
        let Some((root, mut i)) = ident(chars, start) else {
            return Err((start, "expected a path like `incident.title`".into()));
        };
        let mut segments = vec![Segment::Key(root)];
        loop {
            match chars.get(i) {
                Some('.') => {
                    let Some((key, end)) = ident(chars, i + 1) else {
                        return Err((i + 1, "expected a field name after `.`".into()));
                    };
                    segments.push(Segment::Key(key));
                    i = end;
                }
                Some('[') => {
                    let j = i + 1;
                    match chars.get(j) {
                        Some('"' | '\'') => {
                            let (key, end) = quoted(chars, j)?;
                            segments.push(Segment::Key(key));
                            i = end;
                        }
                        Some(c) if c.is_ascii_digit() => {
                            let mut end = j;
                            while chars.get(end).is_some_and(char::is_ascii_digit) {
                                end += 1;
                            }
                            let digits: String = chars[j..end].iter().collect();
                            let n = digits
                                .parse()
                                .map_err(|_| (j, format!("index {digits} is too large")))?;
                            segments.push(Segment::Index(n));
                            i = end;
                        }
                        _ => {
                            return Err((
                                j,
                                "expected an index like [0] or a key like [\"app.kubernetes.io/name\"] after `[`".into(),
                            ));
                        }
                    }
                    if chars.get(i) != Some(&']') {
                        return Err((i, "expected `]`".into()));
                    }
                    i += 1;
                }
                _ => return Ok((Path { segments }, i)),
            }
        }
    }

    /// Parses a whole string as a path, surrounding whitespace allowed.
    pub fn parse(s: &str) -> Result<Path, SyntaxError> {
        let chars: Vec<char> = s.chars().collect();
        let start = chars.iter().take_while(|c| c.is_whitespace()).count();
        let (path, end) = Path::parse_at(&chars, start)?;
        let rest = chars[end..]
            .iter()
            .take_while(|c| c.is_whitespace())
            .count();
        if end + rest != chars.len() {
            return Err((end, format!("unexpected `{}` after the path", chars[end])));
        }
        Ok(path)
    }

    pub fn key(&self, i: usize) -> Option<&str> {
        match self.segments.get(i) {
            Some(Segment::Key(k)) => Some(k),
            _ => None,
        }
    }

    /// The first `n` segments, as written.
    pub fn prefix(&self, n: usize) -> Path {
        Path {
            segments: self.segments[..n.min(self.segments.len())].to_vec(),
        }
    }

    /// Looks the path up in a context; on failure, says which part is missing and why.
    pub fn lookup<'v>(&self, ctx: &'v Value) -> Result<&'v Value, String> {
        let mut cur = ctx;
        for (n, seg) in self.segments.iter().enumerate() {
            let next = match (seg, cur) {
                (Segment::Key(k), Value::Object(map)) => map.get(k),
                (Segment::Index(i), Value::Array(items)) => items.get(*i),
                _ => None,
            };
            match next {
                Some(v) => cur = v,
                None if n == 0 => return Err(format!("`{self}` is not set")),
                None => {
                    let parent = self.prefix(n);
                    let why = match (seg, cur) {
                        (Segment::Key(k), Value::Object(_)) => format!("`{parent}` has no `{k}`"),
                        (Segment::Index(i), Value::Array(items)) => {
                            format!("`{parent}` has {} items, so no [{i}]", items.len())
                        }
                        (_, other) => format!("`{parent}` is {}", kind_of(other)),
                    };
                    return Err(format!("`{self}` is not set: {why}"));
                }
            }
        }
        Ok(cur)
    }
}

/// `parent.key`, or `parent["key"]` when the key is not a plain name; used for the field
/// paths in diagnostics so they read the way a person would write them.
pub fn join_key(parent: &str, key: &str) -> String {
    let plain = key.chars().next().is_some_and(is_ident_start) && key.chars().all(is_ident_char);
    match (parent.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{}]", Value::from(key)),
    }
}

/// A JSON value's kind, for messages.
pub fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, seg) in self.segments.iter().enumerate() {
            match seg {
                Segment::Key(k)
                    if k.chars().next().is_some_and(is_ident_start)
                        && k.chars().all(is_ident_char) =>
                {
                    if n > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Segment::Key(k) => write!(f, "[{}]", serde_json::Value::from(k.as_str()))?,
                Segment::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_and_display() {
        for s in [
            "incident.title",
            "steps.probe.output.items[0]",
            "incident.labels[\"app.kubernetes.io/name\"]",
            "steps.roll-back.status",
        ] {
            assert_eq!(Path::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(
            Path::parse("incident.labels['a b']").unwrap().segments[2],
            Segment::Key("a b".into())
        );
        assert_eq!(Path::parse(" a.b ").unwrap().to_string(), "a.b");
        assert_eq!(Path::parse("a.").unwrap_err().0, 2);
        assert_eq!(Path::parse("a[x]").unwrap_err().0, 2);
        assert_eq!(Path::parse("a[0").unwrap_err().0, 3);
        assert_eq!(Path::parse("a b").unwrap_err().0, 1);
        assert!(Path::parse("1a").is_err());
    }

    #[test]
    fn lookup_explains_misses() {
        let ctx = json!({"steps": {"p": {"output": {"items": [1, 2]}, "status": "failed"}}});
        let p = Path::parse("steps.p.output.items[1]").unwrap();
        assert_eq!(p.lookup(&ctx).unwrap(), &json!(2));
        let err = Path::parse("steps.p.output.items[5]")
            .unwrap()
            .lookup(&ctx)
            .unwrap_err();
        assert_eq!(
            err,
            "`steps.p.output.items[5]` is not set: `steps.p.output.items` has 2 items, so no [5]"
        );
        let err = Path::parse("steps.q.status")
            .unwrap()
            .lookup(&ctx)
            .unwrap_err();
        assert_eq!(err, "`steps.q.status` is not set: `steps` has no `q`");
        let err = Path::parse("steps.p.status.x")
            .unwrap()
            .lookup(&ctx)
            .unwrap_err();
        assert_eq!(
            err,
            "`steps.p.status.x` is not set: `steps.p.status` is a string"
        );
    }
}
