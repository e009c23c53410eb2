//! Strict input: a JSON body is sent as exactly `application/json` and names each key
//! once per object.
//!
//! JSON parsers disagree on duplicate keys (serde_json keeps the last, others the
//! first), so a body with two `alerts` arrays means different things to different
//! readers; medic refuses it and names the key instead of silently dropping one.

use crate::error::ApiError;
use axum::http::{HeaderMap, header};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;
use std::fmt;

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
pub(crate) fn no_duplicate_keys(body: &[u8]) -> Result<(), ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    match (Check {
        path: String::new(),
    })
    .deserialize(&mut de)
    {
        Err(e) if e.is_data() => Err(ApiError::BadRequest(format!(
            "{e}: send each key once (JSON readers disagree on which copy wins)"
        ))),
        _ => Ok(()),
    }
}

/// Walks a JSON value, keeping the path to report.
struct Check {
    path: String,
}

impl Check {
    fn child(&self, key: &str) -> Check {
        Check {
            path: if self.path.is_empty() {
                key.to_string()
            } else {
                format!("{}.{key}", self.path)
            },
        }
    }
}

impl<'de> DeserializeSeed<'de> for Check {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Check {
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
        while seq
            .next_element_seed(Check {
                path: format!("{}[{i}]", self.path),
            })?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let child = self.child(&key);
            if !keys.insert(key) {
                return Err(de::Error::custom(format!(
                    "duplicate key `{}` in the JSON body",
                    child.path
                )));
            }
            map.next_value_seed(child)?;
        }
        Ok(())
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
