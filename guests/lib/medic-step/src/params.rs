//! A step's `with:` parameters, typed: derive `serde::Deserialize` on a struct with
//! `#[serde(deny_unknown_fields)]`, and [`parse`] turns the params JSON into it, with
//! errors that name the param the way the person who wrote the workflow spells it.
//!
//! ```
//! use serde::Deserialize;
//!
//! #[derive(Debug, Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Params {
//!     url: String,
//!     #[serde(default = "three")]
//!     attempts: u32,
//!     token_secret: Option<String>,
//! }
//! fn three() -> u32 { 3 }
//!
//! let p: Params = medic_step::params::parse(r#"{"url": "http://x"}"#).unwrap();
//! assert_eq!((p.url.as_str(), p.attempts, p.token_secret), ("http://x", 3, None));
//!
//! let e = medic_step::params::parse::<Params>(r#"{"url": "http://x", "atempts": 2}"#).unwrap_err();
//! assert!(e.message.starts_with("unknown param `atempts` (expected one of: url, attempts, token_secret)"));
//! let e = medic_step::params::parse::<Params>(r#"{"attempts": 2}"#).unwrap_err();
//! assert_eq!(e.message, "missing required param `url`");
//! let e = medic_step::params::parse::<Params>(r#"{"url": 7}"#).unwrap_err();
//! assert_eq!(e.message, "param `url` must be a string, got integer `7`");
//! ```
//!
//! The rules the JSON Schema in the step's manifest states are checked again here, because
//! a template can still produce a bad value at run time.

use serde::de::DeserializeOwned;

use crate::Failure;

/// Parses the params JSON into `P`.
///
/// # Errors
///
/// A fatal [`Failure`] (bad params never get better by retrying) naming the param:
/// `unknown param `x` (expected one of: ...)`, `missing required param `x``,
/// `param `x` must be <what serde expected>, got <what it found>`, or, for a message a
/// `deserialize_with` function gave, `param `x`: <message>`. Nested params are named by
/// path (`headers.accept`, `invite[2]`).
pub fn parse<P: DeserializeOwned>(json: &str) -> Result<P, Failure> {
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| Failure::fatal(format!("params are not valid JSON: {e}")))?;
    if !value.is_object() {
        // serde would also take a list for a struct, field by field.
        return Err(Failure::fatal("params must be a JSON object"));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        Failure::fatal(describe(&path, e.inner()))
    })
}

/// serde's message for one error, in the words of a step's params.
fn describe(path: &str, error: &serde_json::Error) -> String {
    // From a `Value`, serde_json adds no position to the message.
    let full = error.to_string();
    let message = full.as_str();
    let at_top = path.is_empty() || path == ".";
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let (name, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        let known = expected
            .trim_start_matches("one of ")
            .replace('`', "")
            .replace(" or ", ", ");
        let name = name.trim_matches('`');
        // The path of an unknown field ends with the field itself.
        let full_name = if at_top { name } else { path };
        return if known.is_empty() || known == "there are no fields" {
            format!("unknown param `{full_name}`")
        } else {
            format!("unknown param `{full_name}` (expected one of: {known})")
        };
    }
    if let Some(rest) = message.strip_prefix("missing field ") {
        let name = rest.trim_matches('`');
        return if at_top {
            format!("missing required param `{name}`")
        } else {
            format!("missing required param `{path}.{name}`")
        };
    }
    if at_top {
        if message.starts_with("invalid type: ") {
            return "params must be a JSON object".to_owned();
        }
        return message.to_owned();
    }
    for prefix in ["invalid type: ", "invalid value: ", "invalid length "] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some((found, expected)) = rest.rsplit_once(", expected ")
        {
            return format!("param `{path}` must be {}, got {found}", plain(expected));
        }
    }
    if let Some(rest) = message.strip_prefix("unknown variant ")
        && let Some((found, expected)) = rest.split_once(", expected ")
    {
        let expected = expected
            .trim_start_matches("one of ")
            .replace('`', "")
            .replace(" or ", ", ");
        let found = format!("\"{}\"", found.trim_matches('`'));
        return format!("param `{path}` must be one of {expected}; got {found}");
    }
    format!("param `{path}`: {message}")
}

/// serde's name of a Rust number type, in the words of a workflow author.
fn plain(expected: &str) -> &str {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, 0 or more",
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "a sequence" => "a list",
        "a map" => "an object",
        other => other,
    }
}

/// Checks that `value` of param `param` is a secret name (letters, digits and `_`, not
/// starting with a digit), as medic's `secrets:` lists them.
///
/// # Errors
///
/// A fatal [`Failure`] naming the param. The value itself is not echoed: someone may have
/// pasted the secret instead of its name.
pub fn secret_name(param: &str, value: &str) -> Result<(), Failure> {
    let ok = value.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Failure::fatal(format!(
            "param `{param}` must be a secret name (letters, digits and _, not starting with a digit): it names the secret, it is not the secret itself"
        )))
    }
}

/// Checks that `value` of param `param` is not empty or only spaces.
///
/// # Errors
///
/// A fatal [`Failure`] `param `x` must not be empty`.
pub fn non_empty(param: &str, value: &str) -> Result<(), Failure> {
    if value.trim().is_empty() {
        Err(Failure::fatal(format!("param `{param}` must not be empty")))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "fields exist to be parsed")]
    struct P {
        url: String,
        #[serde(default)]
        n: u32,
        action: Action,
        headers: Option<std::collections::BTreeMap<String, String>>,
        list: Option<Vec<String>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Action {
        Enable,
        Disable,
    }

    fn err(json: &str) -> String {
        parse::<P>(json).unwrap_err().message
    }

    #[test]
    fn errors_name_the_param() {
        let base = r#""url": "u", "action": "enable""#;
        assert_eq!(
            err(&format!("{{{base}, \"nn\": 1}}")),
            "unknown param `nn` (expected one of: url, n, action, headers, list)"
        );
        assert_eq!(
            err(r#"{"action": "enable"}"#),
            "missing required param `url`"
        );
        assert_eq!(
            err(&format!("{{{base}, \"n\": -1}}")),
            "param `n` must be a whole number, 0 or more, got integer `-1`"
        );
        assert_eq!(
            err(r#"{"url": "u", "action": "flip"}"#),
            "param `action` must be one of enable, disable; got \"flip\""
        );
        assert_eq!(
            err(&format!("{{{base}, \"headers\": {{\"a\": 1}}}}")),
            "param `headers.a` must be a string, got integer `1`"
        );
        assert_eq!(
            err(&format!("{{{base}, \"list\": [\"a\", 2]}}")),
            "param `list[1]` must be a string, got integer `2`"
        );
        assert_eq!(err("[]"), "params must be a JSON object");
        assert!(err("{nope").starts_with("params are not valid JSON"));
        assert!(parse::<P>(&format!("{{{base}}}")).is_ok());
    }

    #[test]
    fn secret_names() {
        assert!(secret_name("token_secret", "UNLEASH_TOKEN").is_ok());
        assert!(secret_name("token_secret", "_x1").is_ok());
        for bad in ["", "1X", "a-b", "Bearer abc"] {
            let e = secret_name("token_secret", bad).unwrap_err();
            assert!(!e.retryable);
            assert!(
                e.message
                    .starts_with("param `token_secret` must be a secret name")
            );
        }
    }
}
