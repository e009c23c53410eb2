//! Strict input: a JSON body is sent as exactly `application/json` and names each key
//! once per object.
//!
//! JSON parsers disagree on duplicate keys (serde_json keeps the last, others the
//! first), so a body with two `alerts` arrays means different things to different
//! readers; medic refuses it and names the key instead of silently dropping one.

use crate::error::ApiError;
use axum::http::{HeaderMap, header};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt::{self, Write as _};

/// Checks that the `Content-Type` is `application/json`, with parameters such as
/// `charset=utf-8` allowed (RFC 9110 §8.3.1: type and subtype compare case-insensitively).
pub(crate) fn json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let essence = value.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(value))
    }
}

/// Refuses a JSON body that repeats a key within one object, naming the key by its path
/// (`alerts`, `alerts[0].labels.severity`). Bodies that are not JSON pass: the parser
/// that reads them says what is wrong, and where.
///
/// Every accepted alert goes through this before its payload is parsed, so the walk
/// allocates little: keys are borrowed from the body (unless escaped), the keys of the
/// objects being walked share one list, compared pairwise (a set only for an object of
/// more than [`SMALL`] keys), and the path is written out only for the key it names. It
/// used to build a `String` path for every key and element and a set for every object.
pub(crate) fn no_duplicate_keys(body: &[u8]) -> Result<(), ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let walk = Walk::default();
    match (Check { walk: &walk }).deserialize(&mut de) {
        Err(e) if e.is_data() => Err(ApiError::BadRequest(format!(
            "{e}: send each key once (JSON readers disagree on which copy wins)"
        ))),
        _ => Ok(()),
    }
}

/// Keys of one object compared pairwise up to this many; a set past it.
const SMALL: usize = 16;

/// One step of the path to where the walk is: a key, or an index in an array.
enum Step<'de> {
    Key(Cow<'de, str>),
    Index(usize),
}

/// `alerts[0].labels.x`, from the steps down to a key.
fn display(path: &[Step<'_>]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) if out.is_empty() => out.push_str(k),
            Step::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Step::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
        }
    }
    out
}

/// What a walk shares across its levels.
#[derive(Default)]
struct Walk<'de> {
    /// The steps down to the value being walked, for the message.
    path: RefCell<Vec<Step<'de>>>,
    /// The keys seen so far of every object being walked, outermost first: an object's
    /// own keys are the end of the list from where it started, as the objects inside
    /// its values take theirs off again when they end.
    keys: RefCell<Vec<Cow<'de, str>>>,
}

/// Walks a JSON value.
struct Check<'w, 'de> {
    walk: &'w Walk<'de>,
}

impl<'de> DeserializeSeed<'de> for Check<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Check<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        loop {
            self.walk.path.borrow_mut().push(Step::Index(i));
            let more = seq.next_element_seed(Check { walk: self.walk })?;
            self.walk.path.borrow_mut().pop();
            if more.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let start = self.walk.keys.borrow().len();
        let mut many: HashSet<Cow<'de, str>> = HashSet::new();
        while let Some(Key(key)) = map.next_key()? {
            let seen = {
                let mut keys = self.walk.keys.borrow_mut();
                if keys.len() - start < SMALL {
                    let seen = keys[start..].contains(&key);
                    keys.push(key.clone());
                    seen
                } else {
                    if many.is_empty() {
                        many.extend(keys[start..].iter().cloned());
                    }
                    !many.insert(key.clone())
                }
            };
            let mut path = self.walk.path.borrow_mut();
            path.push(Step::Key(key));
            if seen {
                return Err(de::Error::custom(format!(
                    "duplicate key `{}` in the JSON body",
                    display(&path)
                )));
            }
            drop(path);
            map.next_value_seed(Check { walk: self.walk })?;
            self.walk.path.borrow_mut().pop();
        }
        self.walk.keys.borrow_mut().truncate(start);
        Ok(())
    }
}

/// An object's key, borrowed from the body unless it has escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_named_by_path() {
        let twice = br#"{"version":"4","alerts":[{"a":1}],"alerts":[]}"#;
        let e = no_duplicate_keys(twice).unwrap_err().to_string();
        assert!(
            e.starts_with("duplicate key `alerts` in the JSON body"),
            "{e}"
        );
        let nested = br#"{"alerts":[{"labels":{"x":"1","x":"2"}}]}"#;
        let e = no_duplicate_keys(nested).unwrap_err().to_string();
        assert!(e.contains("`alerts[0].labels.x`"), "{e}");
        no_duplicate_keys(br#"{"a":{"x":1},"b":{"x":1},"c":[{"x":1},{"x":2}]}"#).unwrap();
        // Not JSON: left to the parser, which says where.
        no_duplicate_keys(b"{\"a\": ").unwrap();
    }

    #[test]
    fn duplicates_are_found_past_many_keys_and_through_escapes() {
        // More keys than are compared pairwise: the set takes over.
        let keys: Vec<String> = (0..40).map(|i| format!("\"k{i}\":{i}")).collect();
        let body = format!(r#"{{"outer":[1,{{{},"k7":0}}]}}"#, keys.join(","));
        let e = no_duplicate_keys(body.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("`outer[1].k7`"), "{e}");
        let body = format!(r#"{{"outer":[1,{{{}}}]}}"#, keys.join(","));
        no_duplicate_keys(body.as_bytes()).unwrap();
        // `\u0061` is `a`: the same key, written two ways.
        let e = no_duplicate_keys(br#"{"x":{"a":1,"\u0061":2}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`x.a`"), "{e}");
        // The path of a later sibling does not keep an earlier one's steps.
        let e = no_duplicate_keys(br#"{"a":[{"b":1}],"c":{"d":1,"d":2}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`c.d`"), "{e}");
    }

    #[test]
    fn content_type_is_json_with_parameters_only() {
        let ok = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, v.parse().unwrap());
            json_content_type(&h).is_ok()
        };
        assert!(ok("application/json"));
        assert!(ok("Application/JSON; charset=utf-8"));
        assert!(!ok("application/jsonfoo"));
        assert!(!ok("application/json-seq"));
        assert!(!ok("text/plain"));
        assert!(json_content_type(&HeaderMap::new()).is_err());
    }
}
