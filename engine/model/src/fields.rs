//! Field readers: one value each, checked and converted, with a diagnostic when wrong.
//!
//! Every reader returns `None` after reporting, so callers can go on to the next field and a
//! single run lists every problem in the file.

use crate::diag::{self, Diagnostic, Pos};
use crate::parse::{LIMITS_FIELDS, RETRY_FIELDS};
use crate::path::join_key;
use crate::types::{Limits, Retry};
use crate::units;
use crate::yaml::{Scalar, classify, describe, marker_pos, scalar_pos};
use marked_yaml::types::{MarkedMappingNode, Node};

/// Longest timeout or backoff accepted: a step that needs more is not incident response.
const MAX_DURATION_MS: u64 = 24 * 3_600_000;
/// A 32-bit WebAssembly memory cannot grow past 4 GiB.
const MAX_MEMORY_BYTES: u64 = 4 << 30;

/// A field found in a mapping: its path, value and where to point at it.
pub(crate) struct Field<'n> {
    pub path: String,
    pub node: &'n Node,
    /// The value, or the key when the value is empty (an empty value has no useful position).
    pub pos: Option<Pos>,
}

pub(crate) fn field<'n>(map: &'n MarkedMappingNode, parent: &str, key: &str) -> Option<Field<'n>> {
    map.iter()
        .find(|(k, _)| k.as_str() == key)
        .map(|(k, node)| Field {
            path: join_key(parent, key),
            node,
            pos: match node {
                Node::Scalar(s) if s.may_coerce() && s.as_str().is_empty() => scalar_pos(k),
                _ => marker_pos(node),
            },
        })
}

pub(crate) struct Parser<'a> {
    pub file: &'a str,
    pub lines: Vec<&'a str>,
    pub diags: Vec<Diagnostic>,
    /// Paths of fields suggested by did-you-mean hints.
    pub suggested: Vec<String>,
    /// The workflow's `vars`, with the environment's values (read before the steps).
    pub vars: crate::vars::Vars,
}

pub(crate) fn expected(what: &str, node: &Node) -> String {
    format!("expected {what}, found {}", describe(node))
}

impl Parser<'_> {
    pub(crate) fn err(&mut self, pos: Option<Pos>, field: &str, message: impl Into<String>) {
        self.diags
            .push(Diagnostic::new(self.file, pos, field, message));
    }

    /// Reports every key of `map` not in `allowed`, with a did-you-mean hint.
    /// A field that a did-you-mean hint points at is not also reported as missing: the
    /// typo is the one problem.
    pub(crate) fn check_keys(
        &mut self,
        map: &MarkedMappingNode,
        parent: &str,
        allowed: &[&str],
        context: &str,
    ) {
        for (k, _) in map.iter() {
            if !allowed.contains(&k.as_str()) {
                let suggestion = diag::did_you_mean(k.as_str(), allowed.iter().copied());
                if let Some(s) = suggestion {
                    self.suggested.push(join_key(parent, s));
                }
                let msg = format!(
                    "unknown field `{}` {context}{} (expected one of: {})",
                    k.as_str(),
                    suggestion.map_or(String::new(), |s| format!("; did you mean `{s}`?")),
                    allowed.join(", ")
                );
                self.err(scalar_pos(k), &join_key(parent, k.as_str()), msg);
            }
        }
    }

    pub(crate) fn required<'n>(
        &mut self,
        map: &'n MarkedMappingNode,
        parent: &str,
        key: &str,
        at: Option<Pos>,
        context: &str,
        what: &str,
    ) -> Option<Field<'n>> {
        let f = field(map, parent, key);
        if f.is_none() && !self.suggested.contains(&join_key(parent, key)) {
            self.err(
                at,
                &join_key(parent, key),
                format!("missing required field `{key}` {context}: {what}"),
            );
        }
        f
    }

    pub(crate) fn string(&mut self, f: &Field) -> Option<String> {
        match f.node {
            Node::Scalar(s) => match classify(s) {
                Scalar::Null => None,
                _ => Some(s.as_str().to_string()),
            },
            _ => None,
        }
        .or_else(|| {
            self.err(f.pos, &f.path, expected("a string", f.node));
            None
        })
    }

    pub(crate) fn non_empty_string(&mut self, f: &Field) -> Option<String> {
        let s = self.string(f)?;
        if s.trim().is_empty() {
            self.err(f.pos, &f.path, "must not be empty");
            return None;
        }
        Some(s)
    }

    pub(crate) fn boolean(&mut self, f: &Field) -> Option<bool> {
        if let Node::Scalar(s) = f.node
            && let Scalar::Bool(b) = classify(s)
        {
            return Some(b);
        }
        self.err(f.pos, &f.path, expected("`true` or `false`", f.node));
        None
    }

    pub(crate) fn integer(&mut self, f: &Field) -> Option<i64> {
        if let Node::Scalar(s) = f.node
            && let Scalar::Int(i) = classify(s)
        {
            return Some(i);
        }
        self.err(f.pos, &f.path, expected("a whole number", f.node));
        None
    }

    pub(crate) fn number(&mut self, f: &Field) -> Option<f64> {
        if let Node::Scalar(s) = f.node {
            match classify(s) {
                Scalar::Int(i) => return Some(i as f64),
                Scalar::Float(x) => return Some(x),
                _ => {}
            }
        }
        self.err(f.pos, &f.path, expected("a number", f.node));
        None
    }

    /// A duration in `[min, MAX_DURATION_MS]`.
    pub(crate) fn duration(&mut self, f: &Field, min: u64) -> Option<u64> {
        const FORMS: &str = "write it with a unit, e.g. `500ms`, `30s`, `5m`, `1h` or `1m30s`";
        let text = match f.node {
            Node::Scalar(s) => match classify(s) {
                Scalar::Str(t) => t,
                Scalar::Int(_) | Scalar::Float(_) => {
                    self.err(
                        f.pos,
                        &f.path,
                        format!(
                            "expected a duration, found the number {}: {FORMS}",
                            s.as_str()
                        ),
                    );
                    return None;
                }
                _ => "",
            },
            _ => "",
        };
        let Some(ms) = units::parse_duration_ms(text) else {
            let msg = if text.is_empty() {
                format!("{}; {FORMS}", expected("a duration", f.node))
            } else {
                match units::suggest_duration(text) {
                    Some(s) => format!("`{text}` is not a duration; did you mean `{s}`?"),
                    None => format!("`{text}` is not a duration; {FORMS}"),
                }
            };
            self.err(f.pos, &f.path, msg);
            return None;
        };
        if ms < min {
            self.err(
                f.pos,
                &f.path,
                format!("must be longer than {}", units::format_duration_ms(min - 1)),
            );
            return None;
        }
        if ms > MAX_DURATION_MS {
            self.err(
                f.pos,
                &f.path,
                format!(
                    "`{text}` is too long: at most {}",
                    units::format_duration_ms(MAX_DURATION_MS)
                ),
            );
            return None;
        }
        Some(ms)
    }

    /// A size: a byte count or a number with a unit.
    pub(crate) fn size(&mut self, f: &Field) -> Option<u64> {
        const FORMS: &str =
            "write a number of bytes or use a unit: B, KiB, MiB, GiB, KB, MB, GB (e.g. `64MiB`)";
        let parsed = match f.node {
            Node::Scalar(s) => match classify(s) {
                Scalar::Int(i) => u64::try_from(i).ok(),
                Scalar::Str(t) => units::parse_size_bytes(t),
                _ => None,
            },
            _ => None,
        };
        let Some(bytes) = parsed else {
            let msg = match f.node {
                Node::Scalar(s) if !matches!(classify(s), Scalar::Null) => {
                    match units::suggest_size(s.as_str()) {
                        Some(hint) => {
                            format!("`{}` is not a size; did you mean {hint}?", s.as_str())
                        }
                        None => format!("`{}` is not a size; {FORMS}", s.as_str()),
                    }
                }
                other => format!("{}; {FORMS}", expected("a size", other)),
            };
            self.err(f.pos, &f.path, msg);
            return None;
        };
        if bytes == 0 {
            self.err(f.pos, &f.path, "must be more than 0 bytes");
            return None;
        }
        Some(bytes)
    }

    /// A list of strings; each item is checked by `check`, which returns an error message.
    pub(crate) fn string_list(
        &mut self,
        f: &Field,
        what: &str,
        check: impl Fn(&str) -> Result<(), String>,
    ) -> Option<Vec<String>> {
        let Node::Sequence(items) = f.node else {
            let msg = match f.node {
                Node::Scalar(s) if matches!(classify(s), Scalar::Str(_)) => format!(
                    "expected a list of {what}, found {}; write `[{}]` for a list of one",
                    describe(f.node),
                    s.as_str()
                ),
                other => expected(&format!("a list of {what}"), other),
            };
            self.err(f.pos, &f.path, msg);
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let path = format!("{}[{i}]", f.path);
            let pos = marker_pos(item);
            match item {
                Node::Scalar(s) if !matches!(classify(s), Scalar::Null) => {
                    match check(s.as_str()) {
                        Ok(()) => out.push(s.as_str().to_string()),
                        Err(msg) => {
                            self.err(pos, &path, msg);
                            ok = false;
                        }
                    }
                }
                other => {
                    self.err(pos, &path, expected("a string", other));
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    pub(crate) fn mapping<'n>(
        &mut self,
        f: &Field<'n>,
        what: &str,
    ) -> Option<&'n MarkedMappingNode> {
        match f.node {
            Node::Mapping(m) => Some(m),
            other => {
                self.err(f.pos, &f.path, expected(what, other));
                None
            }
        }
    }

    pub(crate) fn retry(&mut self, f: &Field) -> Option<Retry> {
        let map = self.mapping(f, "a mapping like `{ attempts: 3, backoff: 2s }`")?;
        self.check_keys(map, &f.path, RETRY_FIELDS, "in `retry`");
        let mut r = Retry::default();
        let mut ok = true;
        if let Some(a) = field(map, &f.path, "attempts") {
            ok &= match self.integer(&a) {
                Some(n @ 1..=100) => {
                    r.attempts = n as u32;
                    true
                }
                Some(n) if n < 1 => {
                    self.err(a.pos, &a.path, format!("must be at least 1, found {n}: attempts counts the first try, so 1 means no retries"));
                    false
                }
                Some(n) => {
                    self.err(a.pos, &a.path, format!("must be at most 100, found {n}"));
                    false
                }
                None => false,
            };
        }
        let backoff = field(map, &f.path, "backoff");
        if let Some(b) = &backoff {
            ok &= self.duration(b, 0).map(|ms| r.backoff_ms = ms).is_some();
        }
        if let Some(x) = field(map, &f.path, "factor") {
            ok &= match self.number(&x) {
                Some(v) if (1.0..=100.0).contains(&v) => {
                    r.factor = v;
                    true
                }
                Some(v) => {
                    self.err(x.pos, &x.path, format!("must be between 1 and 100, found {v}: each delay is the previous one times `factor`"));
                    false
                }
                None => false,
            };
        }
        match field(map, &f.path, "max-backoff") {
            Some(m) => {
                if let Some(ms) = self.duration(&m, 0) {
                    if backoff.is_some() && ms < r.backoff_ms {
                        let msg = format!(
                            "`max-backoff` ({}) is shorter than `backoff` ({})",
                            units::format_duration_ms(ms),
                            units::format_duration_ms(r.backoff_ms)
                        );
                        self.err(m.pos, &m.path, msg);
                        ok = false;
                    }
                    r.max_backoff_ms = ms;
                } else {
                    ok = false;
                }
            }
            // A long `backoff` alone should not be silently capped by the default maximum.
            None => r.max_backoff_ms = r.max_backoff_ms.max(r.backoff_ms),
        }
        ok.then_some(r)
    }

    pub(crate) fn limits(&mut self, f: &Field) -> Option<Limits> {
        let map = self.mapping(f, "a mapping like `{ memory: 64MiB, output: 1MiB }`")?;
        self.check_keys(map, &f.path, LIMITS_FIELDS, "in `limits`");
        let mut l = Limits::default();
        let mut ok = true;
        if let Some(m) = field(map, &f.path, "memory") {
            match self.size(&m) {
                Some(b) if b > MAX_MEMORY_BYTES => {
                    let msg = format!(
                        "{} is more than the 4GiB a 32-bit WebAssembly component can address",
                        units::format_size_bytes(b)
                    );
                    self.err(m.pos, &m.path, msg);
                    ok = false;
                }
                Some(b) => l.memory_bytes = Some(b),
                None => ok = false,
            }
        }
        if let Some(o) = field(map, &f.path, "output") {
            ok &= self.size(&o).map(|b| l.output_bytes = Some(b)).is_some();
        }
        ok.then_some(l)
    }
}
