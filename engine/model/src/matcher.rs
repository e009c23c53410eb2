//! Alertmanager matchers, as Alertmanager writes them, and what a trigger matches.
//!
//! One `trigger.matchers` item holds one or more matchers, read with the grammar of
//! Alertmanager's UTF-8 matcher parser (`matcher/parse` in prometheus/alertmanager,
//! `parse.go` and `lexer.go`, the default since Alertmanager 0.27; the classic one is
//! `pkg/labels/parse.go`):
//!
//! ```text
//! item     = [ "{" ] [ matcher { "," matcher } [ "," ] ] [ "}" ]   braces in pairs
//! matcher  = name op value
//! name     = quoted | unquoted          "service.name", alertname
//! op       = "=" | "!=" | "=~" | "!~"
//! value    = quoted | unquoted | ""     an empty value matches a missing label
//! quoted   = '"' ... '"' | "'" ... "'"  escapes \\ \" \' \n \t; any UTF-8 inside
//! unquoted = UTF-8 up to whitespace or one of { } ! = ~ , " ' \
//! ```
//!
//! So `alertname=HighErrorRate, env=prod`, `{alertname="HighErrorRate", env="prod"}` and
//! `'"service.name"="rails"'` are all read as Alertmanager reads them. What Alertmanager
//! refuses is refused here with the offset of the problem; and matchers that can never
//! match together (`env=prod, env=dev`) are refused too, because a trigger that can never
//! fire must not pass `medic validate`. medic also takes `'...'` quotes (YAML authors
//! reach for them) and, as the classic parser did, an empty unquoted value (`env=`).

use crate::path::quoted;
use crate::types::{Incident, MatchOp, Matcher, Trigger};
use std::collections::BTreeMap;

/// Characters that end an unquoted name or value (Alertmanager's lexer reserves the same,
/// and whitespace).
fn reserved(c: char) -> bool {
    c.is_whitespace() || matches!(c, '{' | '}' | '!' | '=' | '~' | ',' | '"' | '\'' | '\\')
}

/// The matchers in one `trigger.matchers` item. On error, the char offset of the problem
/// and a message.
pub(crate) fn parse_matchers(s: &str) -> Result<Vec<Matcher>, (usize, String)> {
    let chars: Vec<char> = s.chars().collect();
    let skip_ws = |mut i: usize| {
        while chars.get(i).is_some_and(|c| c.is_whitespace()) {
            i += 1;
        }
        i
    };
    let mut i = skip_ws(0);
    let braced = chars.get(i) == Some(&'{');
    if braced {
        i = skip_ws(i + 1);
    }
    let mut out: Vec<Matcher> = Vec::new();
    loop {
        match chars.get(i) {
            None if braced => {
                return Err((
                    i,
                    "missing `}` to close the `{` this item opens with".into(),
                ));
            }
            None => break,
            Some('}') if braced => {
                i = skip_ws(i + 1);
                if i != chars.len() {
                    return Err((i, "unexpected text after the closing `}`".into()));
                }
                break;
            }
            Some('}') => return Err((i, "`}` without an opening `{`".into())),
            Some(_) => {}
        }
        let (m, end) = one(&chars, i)?;
        out.push(m);
        i = skip_ws(end);
        match chars.get(i) {
            Some(',') => i = skip_ws(i + 1),
            None | Some('}') => {}
            Some(_) => {
                return Err((
                    i,
                    "expected `,` between matchers (or the end); quote a value that holds \
                     spaces, e.g. `summary=\"disk full\"`"
                        .into(),
                ));
            }
        }
    }
    if out.is_empty() {
        return Err((
            0,
            "no matcher here; write one like `alertname=\"HighErrorRate\"`, or leave the \
             item out"
                .into(),
        ));
    }
    contradictions(&out)?;
    Ok(out)
}

/// One `name op value` starting at `start`; returns it and the offset after it.
fn one(chars: &[char], start: usize) -> Result<(Matcher, usize), (usize, String)> {
    let skip_ws = |mut i: usize| {
        while chars.get(i).is_some_and(|c| c.is_whitespace()) {
            i += 1;
        }
        i
    };
    let (label, mut i) = match token(chars, start)? {
        Some((t, end)) if !t.is_empty() => (t, end),
        _ => {
            return Err((
                start,
                "a matcher starts with a label name, e.g. `alertname=\"HighErrorRate\"` \
                 (quote a name with dots: `\"service.name\"=\"rails\"`)"
                    .into(),
            ));
        }
    };
    i = skip_ws(i);
    let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
    let (op, len) = match two.as_str() {
        "=~" => (MatchOp::Re, 2),
        "!~" => (MatchOp::NotRe, 2),
        "!=" => (MatchOp::Ne, 2),
        _ if two.starts_with('=') => (MatchOp::Eq, 1),
        _ => {
            return Err((
                i,
                format!("expected `=`, `!=`, `=~` or `!~` after the label `{label}`"),
            ));
        }
    };
    let value_start = skip_ws(i + len);
    let (value, end) = match token(chars, value_start)? {
        Some(v) => v,
        // `env=` (then a comma, a brace or the end): the empty value.
        None if matches!(chars.get(value_start), None | Some(',' | '}')) => {
            (String::new(), value_start)
        }
        None => {
            return Err((
                value_start,
                format!(
                    "unexpected `{}` in the value of `{label}`; quote a value that holds \
                     it, e.g. `{label}=\"a=b\"`",
                    chars[value_start]
                ),
            ));
        }
    };
    if matches!(op, MatchOp::Re | MatchOp::NotRe)
        && let Err(e) = regex::Regex::new(&format!("^(?:{value})$"))
    {
        // The regex crate's message spans several lines with a caret; its last line says what.
        let text = e.to_string();
        let why = text
            .lines()
            .last()
            .unwrap_or("")
            .trim_start_matches("error: ")
            .to_string();
        let at = value_start + usize::from(matches!(chars.get(value_start), Some('"' | '\'')));
        return Err((at, format!("invalid regular expression `{value}`: {why}")));
    }
    Ok((Matcher { label, op, value }, end))
}

/// A quoted string or an unquoted run of non-reserved characters at `start`; `None` when
/// neither starts there.
fn token(chars: &[char], start: usize) -> Result<Option<(String, usize)>, (usize, String)> {
    match chars.get(start) {
        Some('"' | '\'') => quoted(chars, start).map(Some),
        Some(&c) if !reserved(c) => {
            let mut end = start;
            while chars.get(end).is_some_and(|&c| !reserved(c)) {
                end += 1;
            }
            Ok(Some((chars[start..end].iter().collect(), end)))
        }
        _ => Ok(None),
    }
}

/// Two `=` matchers on one label with different values can never both match.
fn contradictions(ms: &[Matcher]) -> Result<(), (usize, String)> {
    let mut eq: BTreeMap<&str, &str> = BTreeMap::new();
    for m in ms.iter().filter(|m| m.op == MatchOp::Eq) {
        match eq.insert(&m.label, &m.value) {
            Some(before) if before != m.value => {
                return Err((
                    0,
                    format!(
                        "these matchers can never match: `{}` cannot be both {before:?} and \
                         {:?} (to match either, write `{}=~\"{}|{}\"`)",
                        m.label, m.value, m.label, before, m.value
                    ),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

impl Matcher {
    /// Alertmanager semantics: a missing label has the value `""`, and regexes are anchored
    /// at both ends. A regex that does not compile matches nothing (parsed workflows never
    /// hold one).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.label).map_or("", String::as_str);
        let re = || regex::Regex::new(&format!("^(?:{})$", self.value)).ok();
        match self.op {
            MatchOp::Eq => value == self.value,
            MatchOp::Ne => value != self.value,
            MatchOp::Re => re().is_some_and(|r| r.is_match(value)),
            MatchOp::NotRe => re().is_some_and(|r| !r.is_match(value)),
        }
    }
}

impl Trigger {
    /// Whether an incident starts the workflow: every matcher matches its labels, and its
    /// severity and source are listed (when lists are given).
    pub fn matches(&self, incident: &Incident) -> bool {
        self.matchers.iter().all(|m| m.matches(&incident.labels))
            && (self.severity.is_empty() || self.severity.contains(&incident.severity))
            && (self.source.is_empty() || self.source.contains(&incident.source))
    }
}

/// Label names in `group-by`: any UTF-8 name (OpenTelemetry's `service.name`, accepted by
/// Alertmanager since 0.27), but not empty, not padded with spaces and without control
/// characters, which are always a typo.
pub(crate) fn check_label_name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("a label name cannot be empty".into());
    }
    if s.trim() != s || s.chars().any(char::is_control) {
        return Err(format!(
            "{s:?} is not a label name: no surrounding spaces or control characters"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_matcher(s: &str) -> Matcher {
        let mut ms = parse_matchers(s).unwrap();
        assert_eq!(ms.len(), 1, "{s}");
        ms.remove(0)
    }

    #[test]
    fn single_matchers() {
        let m = one_matcher(r#"alertname="HighErrorRate""#);
        assert_eq!(
            (m.label.as_str(), m.op, m.value.as_str()),
            ("alertname", MatchOp::Eq, "HighErrorRate")
        );
        let m = one_matcher(r#" service =~ "checkout|cart" "#);
        assert_eq!((m.op, m.value.as_str()), (MatchOp::Re, "checkout|cart"));
        let m = one_matcher("env!=prod");
        assert_eq!((m.op, m.value.as_str()), (MatchOp::Ne, "prod"));
        let m = one_matcher(r#"x!~'a\"b'"#);
        assert_eq!((m.op, m.value.as_str()), (MatchOp::NotRe, "a\"b"));
        assert_eq!(one_matcher("empty=").value, "");
        assert_eq!(one_matcher("release=v2-canary:1").value, "v2-canary:1");
    }

    #[test]
    fn several_matchers_braces_and_utf8_names() {
        let pairs = |s: &str| -> Vec<(String, MatchOp, String)> {
            parse_matchers(s)
                .unwrap()
                .into_iter()
                .map(|m| (m.label, m.op, m.value))
                .collect()
        };
        let both = vec![
            (
                "alertname".to_string(),
                MatchOp::Eq,
                "HighErrorRate".to_string(),
            ),
            ("env".to_string(), MatchOp::Eq, "prod".to_string()),
        ];
        assert_eq!(pairs("alertname=HighErrorRate, env=prod"), both);
        assert_eq!(pairs(r#"{alertname="HighErrorRate", env="prod"}"#), both);
        assert_eq!(pairs(r#"{ alertname="HighErrorRate",env="prod", }"#), both);
        assert_eq!(
            pairs(r#""service.name"="rails""#),
            vec![("service.name".to_string(), MatchOp::Eq, "rails".to_string())]
        );
        assert_eq!(
            pairs("{\"café\"=~\"ü.*\"}"),
            vec![("café".to_string(), MatchOp::Re, "ü.*".to_string())]
        );
    }

    #[test]
    fn refusals_say_where_and_what() {
        let err = |s: &str| parse_matchers(s).unwrap_err();
        assert_eq!(err("=x").0, 0);
        assert_eq!(err("svc ~ x").0, 4);
        let (at, msg) = err(r#"svc=~"checkout|(cart""#);
        assert_eq!(at, 6);
        assert!(msg.contains("unclosed group"), "{msg}");
        let (at, msg) = err(r#"a="b" c"#);
        assert_eq!(at, 6);
        assert!(msg.starts_with("expected `,` between matchers"), "{msg}");
        let (at, msg) = err("alertname=HighErrorRate env=prod");
        assert_eq!(at, 24);
        assert!(msg.starts_with("expected `,`"), "{msg}");
        assert_eq!(
            err(r#"{env="prod""#).1,
            "missing `}` to close the `{` this item opens with"
        );
        assert_eq!(err(r#"env="prod"}"#).1, "`}` without an opening `{`");
        assert!(err("{}").1.starts_with("no matcher here"));
        assert_eq!(
            err("env=prod, env=dev").1,
            "these matchers can never match: `env` cannot be both \"prod\" and \"dev\" \
             (to match either, write `env=~\"prod|dev\"`)"
        );
        let (at, msg) = err("a=b=c");
        assert_eq!(at, 3);
        assert!(msg.starts_with("expected `,`"), "{msg}");
    }

    #[test]
    fn alertmanager_semantics() {
        let labels: BTreeMap<String, String> = [
            ("service".to_string(), "checkout".to_string()),
            ("service.name".to_string(), "rails".to_string()),
        ]
        .into();
        let m = |s: &str| parse_matchers(s).unwrap()[0].matches(&labels);
        assert!(m("service=checkout"));
        assert!(m(r#""service.name"="rails""#));
        assert!(m("service=~check.*"));
        assert!(!m("service=~check"), "regexes are anchored");
        assert!(m("missing=\"\""), "a missing label is the empty value");
        assert!(m("service!~cart"));
    }

    #[test]
    fn group_by_names() {
        assert!(check_label_name("service.namespace").is_ok());
        assert!(check_label_name("alertname").is_ok());
        assert!(check_label_name("").is_err());
        assert!(check_label_name(" env").is_err());
    }
}
