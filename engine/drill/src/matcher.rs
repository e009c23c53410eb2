//! Matching a replayed request against the recording: method, scheme, host, port, path,
//! the query with its pairs sorted, and the body (JSON compared as JSON, minus ignored
//! fields). Headers are never compared. Repeated identical requests are served in recorded
//! order; a request the recording never saw gets a divergence naming the closest recorded
//! request and what differs.

use crate::format::{DrillBody, DrillFile, Exchange, Request};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a request is matched on.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestKey {
    /// Upper case.
    pub method: String,
    /// `http` or `https`.
    pub scheme: String,
    /// Lower case.
    pub host: String,
    /// The port, the scheme's default filled in.
    pub port: Option<u16>,
    /// The path, as sent.
    pub path: String,
    /// `k=v` pairs as written, sorted.
    pub query: Vec<String>,
    /// The body, JSON without the ignored fields.
    pub body: BodyKey,
}

/// A body as compared.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyKey {
    /// No body.
    None,
    /// A JSON body, ignored fields removed.
    Json(Value),
    /// Any other body, as text (base64 for binary).
    Text(String),
}

impl RequestKey {
    /// The key of `method url body`, with `ignore` fields left out of a JSON body.
    pub fn new(method: &str, url: &str, body: Option<&DrillBody>, ignore: &[String]) -> Self {
        let (scheme, host, port, path, query) = match url::Url::parse(url) {
            Ok(u) => {
                let mut q: Vec<String> = u
                    .query()
                    .map(|q| {
                        q.split('&')
                            .filter(|p| !p.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default();
                q.sort();
                (
                    u.scheme().to_string(),
                    u.host_str().unwrap_or("").to_ascii_lowercase(),
                    u.port_or_known_default(),
                    u.path().to_string(),
                    q,
                )
            }
            Err(_) => (
                String::new(),
                String::new(),
                None,
                url.to_string(),
                Vec::new(),
            ),
        };
        let body = match body {
            None => BodyKey::None,
            Some(DrillBody::Json(v)) => BodyKey::Json(strip(v, ignore, "")),
            Some(DrillBody::Text(t)) => BodyKey::Text(t.clone()),
            Some(DrillBody::Base64(b)) => BodyKey::Text(b.clone()),
        };
        RequestKey {
            method: method.to_ascii_uppercase(),
            scheme,
            host,
            port,
            path,
            query,
            body,
        }
    }

    /// The key of a recorded request.
    pub fn of(request: &Request, ignore: &[String]) -> Self {
        RequestKey::new(&request.method, &request.url, request.body.as_ref(), ignore)
    }

    /// What differs from `recorded`, in words; empty when they match.
    pub fn differences(&self, recorded: &RequestKey) -> Vec<String> {
        let mut d = Vec::new();
        let mut field = |name: &str, now: String, then: String| {
            if now != then {
                d.push(format!("{name} {now}, recorded {then}"));
            }
        };
        field("method", self.method.clone(), recorded.method.clone());
        field("scheme", self.scheme.clone(), recorded.scheme.clone());
        field("host", self.host.clone(), recorded.host.clone());
        field(
            "port",
            self.port.map(|p| p.to_string()).unwrap_or_default(),
            recorded.port.map(|p| p.to_string()).unwrap_or_default(),
        );
        field("path", self.path.clone(), recorded.path.clone());
        field("query", self.query.join("&"), recorded.query.join("&"));
        if self.body != recorded.body {
            d.push(body_difference(&self.body, &recorded.body));
        }
        d
    }
}

/// A request the recording could not answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Divergence {
    /// The step that asked.
    pub step: String,
    /// Its attempt.
    pub attempt: u32,
    /// `METHOD URL` as the replay asked.
    pub request: String,
    /// The closest recorded request: `METHOD URL (step S)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closest: Option<String>,
    /// What differs from the closest one, or why there is none.
    pub difference: String,
}

/// The answer the matcher found.
#[derive(Debug, Clone, PartialEq)]
pub enum Matched {
    /// The next unanswered recorded exchange with this request (index into exchanges).
    Recorded(usize),
    /// Every recorded exchange with this request was used: the last one again (polling
    /// that took more rounds than recorded).
    Repeat(usize),
    /// Nothing recorded matches.
    Unseen(Divergence),
}

/// Serves recorded exchanges to a replay, in order.
pub struct Matcher {
    exchanges: Vec<Exchange>,
    keys: Vec<RequestKey>,
    used: Vec<bool>,
    ignore: Vec<String>,
}

impl Matcher {
    /// A matcher over `drill`'s exchanges, none used yet.
    pub fn new(drill: &DrillFile) -> Self {
        let ignore = drill.matching.ignore_fields.clone();
        let keys = drill
            .exchanges
            .iter()
            .map(|e| RequestKey::of(&e.request, &ignore))
            .collect();
        Matcher {
            exchanges: drill.exchanges.clone(),
            keys,
            used: vec![false; drill.exchanges.len()],
            ignore,
        }
    }

    /// The recorded exchange at `i`.
    pub fn exchange(&self, i: usize) -> &Exchange {
        &self.exchanges[i]
    }

    /// The fields ignored in JSON bodies.
    pub fn ignore(&self) -> &[String] {
        &self.ignore
    }

    /// Finds the answer for `key`, asked by `step`, and marks it used.
    pub fn take(&mut self, step: &str, attempt: u32, shown: &str, key: &RequestKey) -> Matched {
        let same: Vec<usize> = (0..self.keys.len())
            .filter(|&i| self.keys[i] == *key)
            .collect();
        if same.is_empty() {
            return Matched::Unseen(self.divergence(step, attempt, shown, key));
        }
        let by_step = |i: &&usize| self.exchanges[**i].step == step;
        let unused: Vec<usize> = same.iter().copied().filter(|&i| !self.used[i]).collect();
        if let Some(&i) = unused.iter().find(by_step).or(unused.first()) {
            self.used[i] = true;
            return Matched::Recorded(i);
        }
        let last = same
            .iter()
            .rev()
            .find(by_step)
            .or(same.last())
            .copied()
            .expect("same is not empty");
        Matched::Repeat(last)
    }

    fn divergence(&self, step: &str, attempt: u32, shown: &str, key: &RequestKey) -> Divergence {
        let best = (0..self.keys.len())
            .map(|i| {
                let d = key.differences(&self.keys[i]);
                // Fewest differences first; then the same step; then recorded order.
                (d.len(), self.exchanges[i].step != step, i, d)
            })
            .min_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
        match best {
            Some((_, _, i, d)) => {
                let e = &self.exchanges[i];
                Divergence {
                    step: step.to_string(),
                    attempt,
                    request: shown.to_string(),
                    closest: Some(format!(
                        "{} {} (step {}, at {})",
                        e.request.method, e.request.url, e.step, e.at
                    )),
                    difference: d.join("; "),
                }
            }
            None => Divergence {
                step: step.to_string(),
                attempt,
                request: shown.to_string(),
                closest: None,
                difference: "the recording has no requests at all".into(),
            },
        }
    }
}

/// `v` without the ignored fields: a key name anywhere, or a dotted path from the root.
fn strip(v: &Value, ignore: &[String], path: &str) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter_map(|(k, x)| {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    let ignored = ignore.iter().any(|f| f == k || *f == p);
                    (!ignored).then(|| (k.clone(), strip(x, ignore, &p)))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|x| strip(x, ignore, path)).collect()),
        other => other.clone(),
    }
}

fn body_difference(now: &BodyKey, then: &BodyKey) -> String {
    match (now, then) {
        (BodyKey::Json(a), BodyKey::Json(b)) => match first_json_difference(a, b, "") {
            Some((path, x, y)) => format!("body field `{path}`: {x}, recorded {y}"),
            None => "body differs".into(),
        },
        (BodyKey::None, _) => "no body, recorded one".into(),
        (_, BodyKey::None) => "a body, recorded none".into(),
        _ => "body differs".into(),
    }
}

/// The first path where `a` and `b` differ, with both values (short).
fn first_json_difference(a: &Value, b: &Value, path: &str) -> Option<(String, String, String)> {
    let show = |v: Option<&Value>| match v {
        None => "(absent)".to_string(),
        Some(v) => {
            let s = v.to_string();
            if s.len() > 60 {
                format!("{}...", &s[..s.floor_char_boundary(57)])
            } else {
                s
            }
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(w)) => first_json_difference(u, w, &p),
                    (u, w) => Some((p, show(u), show(w))),
                }
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (u, w))| first_json_difference(u, w, &format!("{path}[{i}]"))),
        _ if a == b => None,
        _ => Some((
            if path.is_empty() {
                "(root)".into()
            } else {
                path.to_string()
            },
            show(Some(a)),
            show(Some(b)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(m: &str, url: &str, body: Option<Value>) -> RequestKey {
        RequestKey::new(
            m,
            url,
            body.map(DrillBody::Json).as_ref(),
            &["txn".to_string()],
        )
    }

    #[test]
    fn query_order_default_ports_and_ignored_fields_do_not_matter() {
        assert_eq!(
            key("get", "http://H:80/a?b=2&a=1", None),
            key("GET", "http://h/a?a=1&b=2", None)
        );
        assert_eq!(
            key("POST", "http://h/a", Some(json!({"x": 1, "txn": "abc"}))),
            key("POST", "http://h/a", Some(json!({"x": 1, "txn": "def"})))
        );
        let d = key("POST", "http://h/a", Some(json!({"x": 1}))).differences(&key(
            "POST",
            "http://h/b",
            Some(json!({"x": 2})),
        ));
        assert_eq!(
            d,
            vec!["path /a, recorded /b", "body field `x`: 1, recorded 2"]
        );
    }
}
