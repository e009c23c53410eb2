//! Decoding the journal's internally tagged enums ([`Event`] by `type`, [`HostCall`] by
//! `call`, [`HttpOutcome`] by `result`) without buffering.
//!
//! serde's derive for `#[serde(tag = "...")]` cannot know where the tag is, so it first
//! copies the whole object into an in-memory tree and then reads the variant from that
//! tree, once per nesting level. medic's encoder always writes the tag first (serde
//! serialises it before the fields), so the fast path here reads the first key: when it
//! is the tag, the rest of the object goes straight to the variant's fields. An object
//! whose tag comes later (a hand-edited drill file, a `serde_json::Value`, whose keys are
//! sorted) takes the slow path: it is buffered as before. Both read exactly the JSON the
//! derive read; `tests/golden/` checks every variant.
//!
//! The variants are mirrored below as serde "remote" definitions, externally tagged. The
//! compiler checks each mirror against the real enum (the derive builds the real
//! variants), so a field added to one and not the other does not build.

use super::{
    Body, ClockKind, Event, Failure, HostCall, HttpOutcome, Level, RetryPlan, RunCreated, RunStatus,
};
use medic_model::{Decision, IncidentStatus};
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::fmt;

/// An enum read as externally tagged (`{variant: {fields}}`), the shape the fast path
/// hands over.
trait ExternallyTagged: Sized {
    /// The tag's key in the persisted, internally tagged JSON.
    const TAG: &'static str;
    fn external<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(TagFirst(std::marker::PhantomData::<Event>))
    }
}

impl<'de> Deserialize<'de> for HostCall {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(TagFirst(std::marker::PhantomData::<HostCall>))
    }
}

impl<'de> Deserialize<'de> for HttpOutcome {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(TagFirst(std::marker::PhantomData::<HttpOutcome>))
    }
}

struct TagFirst<T>(std::marker::PhantomData<T>);

impl<'de, T: ExternallyTagged> Visitor<'de> for TagFirst<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an object with a \"{}\" field", T::TAG)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        match map.next_key_seed(KeySeed(T::TAG))? {
            None => Err(de::Error::missing_field(T::TAG)),
            Some(Key::Tag) => {
                let variant: String = map.next_value()?;
                T::external(Rest { variant, map })
            }
            Some(Key::Other(first)) => {
                // Slow path: the tag is further on, so keep everything until it is found.
                let mut fields = serde_json::Map::new();
                fields.insert(first, map.next_value()?);
                while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                    fields.insert(k, v);
                }
                let variant = match fields.remove(T::TAG) {
                    Some(serde_json::Value::String(v)) => v,
                    Some(other) => {
                        return Err(de::Error::invalid_type(unexpected(&other), &"a string"));
                    }
                    None => return Err(de::Error::missing_field(T::TAG)),
                };
                let external = serde_json::Value::Object(
                    [(variant, serde_json::Value::Object(fields))]
                        .into_iter()
                        .collect(),
                );
                T::external(external).map_err(de::Error::custom)
            }
        }
    }
}

fn unexpected(v: &serde_json::Value) -> de::Unexpected<'_> {
    match v {
        serde_json::Value::Null => de::Unexpected::Unit,
        serde_json::Value::Bool(b) => de::Unexpected::Bool(*b),
        serde_json::Value::Number(_) => de::Unexpected::Other("a number"),
        serde_json::Value::String(s) => de::Unexpected::Str(s),
        serde_json::Value::Array(_) => de::Unexpected::Seq,
        serde_json::Value::Object(_) => de::Unexpected::Map,
    }
}

/// The first key: the tag, or another field's name (kept for the slow path).
enum Key {
    Tag,
    Other(String),
}

struct KeySeed(&'static str);

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, k: &str) -> Result<Key, E> {
        Ok(if k == self.0 {
            Key::Tag
        } else {
            Key::Other(k.to_string())
        })
    }
}

/// The rest of an object whose tag was read: an enum whose variant is the tag and
/// whose fields are the remaining entries.
struct Rest<A> {
    variant: String,
    map: A,
}

impl<'de, A: MapAccess<'de>> Deserializer<'de> for Rest<A> {
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, A::Error> {
        v.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

impl<'de, A: MapAccess<'de>> de::EnumAccess<'de> for Rest<A> {
    type Error = A::Error;
    type Variant = Fields<A>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Fields<A>), A::Error> {
        let variant = seed.deserialize(self.variant.into_deserializer())?;
        Ok((variant, Fields(self.map)))
    }
}

/// The remaining entries of the object, as the variant's fields.
struct Fields<A>(A);

impl<'de, A: MapAccess<'de>> de::VariantAccess<'de> for Fields<A> {
    type Error = A::Error;

    fn unit_variant(mut self) -> Result<(), A::Error> {
        while self
            .0
            .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
            .is_some()
        {}
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        // An internally tagged newtype variant holds a struct whose fields sit beside the tag.
        seed.deserialize(MapAccessDeserializer::new(self.0))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _v: V) -> Result<V::Value, A::Error> {
        Err(de::Error::invalid_type(
            de::Unexpected::Map,
            &"a tuple variant",
        ))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, A::Error> {
        v.visit_map(self.0)
    }
}

impl ExternallyTagged for Event {
    const TAG: &'static str = "type";
    fn external<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        EventDef::deserialize(d)
    }
}

impl ExternallyTagged for HostCall {
    const TAG: &'static str = "call";
    fn external<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        HostCallDef::deserialize(d)
    }
}

impl ExternallyTagged for HttpOutcome {
    const TAG: &'static str = "result";
    fn external<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        HttpOutcomeDef::deserialize(d)
    }
}

// The mirrors: the same variants, fields and field defaults as the enums in `mod.rs`
// (docs are there). Only `default` matters when reading; `skip_serializing_if` is the
// writer's.

#[derive(Deserialize)]
#[serde(remote = "Event", rename_all = "snake_case")]
enum EventDef {
    RunCreated(Box<RunCreated>),
    StepSkipped {
        step: String,
        reason: String,
    },
    StepCancelled {
        step: String,
        reason: String,
    },
    AttemptStarted {
        step: String,
        attempt: u32,
        idempotency_key: String,
        params: serde_json::Value,
    },
    HostCall {
        step: String,
        attempt: u32,
        call: HostCall,
    },
    AttemptSucceeded {
        step: String,
        attempt: u32,
        output: serde_json::Value,
        duration_ms: u64,
    },
    AttemptFailed {
        step: String,
        attempt: u32,
        failure: Failure,
        duration_ms: u64,
        retry: Option<RetryPlan>,
    },
    GateOpened {
        step: String,
        prompt: String,
        #[serde(default)]
        approvers: Vec<String>,
        deadline_ms: u64,
        on_deadline: Decision,
    },
    GateDecided {
        step: String,
        decision: Decision,
        by: String,
        by_deadline: bool,
        #[serde(default)]
        comment: Option<String>,
    },
    IncidentUpdated {
        status: IncidentStatus,
    },
    RunFinished {
        status: RunStatus,
        #[serde(default)]
        reason: Option<String>,
    },
}

#[derive(Deserialize)]
#[serde(remote = "HostCall", rename_all = "snake_case")]
enum HostCallDef {
    Log {
        level: Level,
        message: String,
    },
    Annotate {
        message: String,
    },
    SecretRead {
        name: String,
        granted: bool,
        present: bool,
    },
    StateSet {
        key: String,
        value: String,
    },
    HttpRequest {
        id: u32,
        method: String,
        url: String,
        headers: Vec<(String, String)>,
        #[serde(default)]
        body: Body,
    },
    HttpResponse {
        id: u32,
        outcome: HttpOutcome,
        duration_ms: u64,
    },
    HttpDenied {
        method: String,
        url: String,
        host: String,
    },
    Clock {
        clock: ClockKind,
        ns: u64,
    },
    Random {
        hex: String,
        #[serde(default)]
        seed: bool,
    },
}

#[derive(Deserialize)]
#[serde(remote = "HttpOutcome", rename_all = "snake_case")]
enum HttpOutcomeDef {
    Response {
        status: u16,
        headers: Vec<(String, String)>,
        #[serde(default)]
        body: Body,
    },
    Error {
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_may_come_anywhere_and_a_missing_or_unknown_tag_is_named() {
        let first = r#"{"type":"step_skipped","step":"a","reason":"r"}"#;
        let last = r#"{"step":"a","reason":"r","type":"step_skipped"}"#;
        let want = Event::StepSkipped {
            step: "a".into(),
            reason: "r".into(),
        };
        assert_eq!(serde_json::from_str::<Event>(first).unwrap(), want);
        assert_eq!(serde_json::from_str::<Event>(last).unwrap(), want);
        // serde_json::Value sorts its keys, so the tag is not first there.
        let value: serde_json::Value = serde_json::from_str(first).unwrap();
        assert_eq!(serde_json::from_value::<Event>(value).unwrap(), want);

        let nested = r#"{"call":"http_response","id":1,"duration_ms":3,"outcome":{"status":200,"headers":[],"result":"response"}}"#;
        match serde_json::from_str::<HostCall>(nested).unwrap() {
            HostCall::HttpResponse {
                outcome:
                    HttpOutcome::Response {
                        status: 200,
                        body: Body::Empty,
                        ..
                    },
                ..
            } => {}
            other => panic!("{other:?}"),
        }

        let missing = serde_json::from_str::<Event>(r#"{"step":"a"}"#).unwrap_err();
        assert!(
            missing.to_string().contains("missing field `type`"),
            "{missing}"
        );
        let unknown = serde_json::from_str::<Event>(r#"{"type":"teleported","step":"a"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            unknown.contains("unknown variant `teleported`"),
            "{unknown}"
        );
        let field = serde_json::from_str::<Event>(r#"{"type":"step_skipped","step":"a"}"#)
            .unwrap_err()
            .to_string();
        assert!(field.contains("missing field `reason`"), "{field}");
    }
}
