//! `set_rollout`: the percentage of a feature's flexible-rollout strategy in one
//! environment, through Unleash's Admin API (pure; `lib.rs` does the requests).
//!
//! Unleash (7.x, `feature-toggle-controller`): `GET .../environments/{env}/strategies` lists
//! the strategies, `PUT .../strategies/{id}` replaces one (name, title, disabled,
//! constraints, variants, segments, parameters: everything not sent is reset, so all of it
//! is sent back as it was, `parameters.rollout` apart), `POST .../strategies` adds one. The
//! percentage is the string parameter `rollout` of the strategy `flexibleRollout`.
//!
//! Strategies are OR-ed: a user is in when any enabled strategy lets them in. So a
//! percentage only means something when the flexible rollout is the only enabled strategy;
//! anything else is refused rather than reported as a rollout that is not one.

use medic_step::Failure;
use medic_step::http::encode;
use serde_json::{Map, Value, json};

use crate::flag::{Params, excerpt};

/// Unleash's name of the gradual rollout strategy.
pub const FLEXIBLE_ROLLOUT: &str = "flexibleRollout";

/// The environment's strategies URL; with `id`, one strategy's.
pub fn strategies_url(params: &Params, id: Option<&str>) -> String {
    let base = format!(
        "{}/environments/{}/strategies",
        params.feature_url(),
        encode(&params.environment)
    );
    match id {
        Some(id) => format!("{base}/{}", encode(id)),
        None => base,
    }
}

/// The strategies in Unleash's answer to the list request.
pub fn strategies(params: &Params, body: &str) -> Result<Vec<Value>, Failure> {
    let document: Value = serde_json::from_str(body).map_err(|e| {
        Failure::transient(format!(
            "Unleash answered the strategies of {} with a body that is not JSON ({e}): {}",
            params.describe(),
            excerpt(body)
        ))
    })?;
    document.as_array().cloned().ok_or_else(|| {
        Failure::fatal(format!(
            "Unleash's strategies of {} are not a list: {}",
            params.describe(),
            excerpt(body)
        ))
    })
}

fn id(strategy: &Value) -> &str {
    strategy["id"].as_str().unwrap_or_default()
}

fn enabled(strategy: &Value) -> bool {
    strategy["disabled"].as_bool() != Some(true)
}

/// The strategy to change: the one named by `strategy_id`, else the only flexible rollout.
/// `None`: the environment has no strategy at all, so one is added.
pub fn pick<'a>(params: &Params, list: &'a [Value]) -> Result<Option<&'a Value>, Failure> {
    let what = params.describe();
    let summary = || {
        list.iter()
            .map(|s| format!("{} ({})", s["name"].as_str().unwrap_or("?"), id(s)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let chosen = if let Some(wanted) = &params.strategy_id {
        let found = list.iter().find(|s| id(s) == wanted).ok_or_else(|| {
            Failure::fatal(format!(
                "{what} has no strategy with id `{wanted}` (it has: {})",
                summary()
            ))
        })?;
        if found["name"] != FLEXIBLE_ROLLOUT {
            return Err(Failure::fatal(format!(
                "strategy `{wanted}` of {what} is `{}`, not a gradual rollout (`{FLEXIBLE_ROLLOUT}`): it has no percentage",
                found["name"].as_str().unwrap_or("?")
            )));
        }
        found
    } else {
        let rollouts: Vec<&Value> = list
            .iter()
            .filter(|s| s["name"] == FLEXIBLE_ROLLOUT)
            .collect();
        match rollouts.as_slice() {
            [] if list.is_empty() => return Ok(None),
            [] => {
                return Err(Failure::fatal(format!(
                    "{what} has no gradual rollout (`{FLEXIBLE_ROLLOUT}`) strategy to set, only: {}; add one in Unleash or remove the others",
                    summary()
                )));
            }
            [one] => *one,
            _ => {
                return Err(Failure::fatal(format!(
                    "{what} has {} gradual rollout strategies: name one with param `strategy_id` (they are: {})",
                    rollouts.len(),
                    summary()
                )));
            }
        }
    };
    // Strategies are OR-ed: another enabled one would let users in whatever the percentage.
    let others: Vec<&Value> = list
        .iter()
        .filter(|s| id(s) != id(chosen) && enabled(s))
        .collect();
    if !others.is_empty() {
        let names: Vec<String> = others
            .iter()
            .map(|s| format!("{} ({})", s["name"].as_str().unwrap_or("?"), id(s)))
            .collect();
        return Err(Failure::fatal(format!(
            "{what} has other enabled strategies ({}) that let users in whatever the rollout percentage: remove or disable them first",
            names.join(", ")
        )));
    }
    Ok(Some(chosen))
}

/// The `rollout` percentage of a flexible-rollout strategy (Unleash keeps it as a string).
pub fn percentage(strategy: &Value) -> Option<u8> {
    match &strategy["parameters"]["rollout"] {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_u64().and_then(|n| u8::try_from(n).ok()),
        _ => None,
    }
}

/// The body of the `PUT`: the strategy as it is, with `rollout` set to `percentage`.
pub fn update_body(strategy: &Value, percentage: u8) -> Value {
    let mut body = Map::new();
    for field in [
        "name",
        "title",
        "disabled",
        "constraints",
        "variants",
        "segments",
        "sortOrder",
    ] {
        if let Some(value) = strategy.get(field).filter(|v| !v.is_null()) {
            body.insert(field.into(), value.clone());
        }
    }
    let mut parameters = strategy["parameters"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    parameters.insert("rollout".into(), percentage.to_string().into());
    body.insert("parameters".into(), Value::Object(parameters));
    Value::Object(body)
}

/// The body of the `POST` that adds a flexible rollout: the defaults Unleash's UI uses
/// (`stickiness: default`, `groupId`: the feature's name).
pub fn create_body(params: &Params, percentage: u8) -> Value {
    json!({
        "name": FLEXIBLE_ROLLOUT,
        "constraints": [],
        "parameters": {
            "rollout": percentage.to_string(),
            "stickiness": "default",
            "groupId": params.feature,
        },
    })
}

/// The step output of `set_rollout`.
pub fn output(
    params: &Params,
    strategy_id: &str,
    previous: Option<u8>,
    current: u8,
    enabled: bool,
) -> Value {
    json!({
        "feature": params.feature,
        "project": params.project,
        "environment": params.environment,
        "action": params.action.name(),
        "strategy_id": strategy_id,
        "previous_percentage": previous,
        "percentage": current,
        "changed": previous != Some(current),
        "enabled": enabled,
    })
}

/// The timeline line of `set_rollout`.
pub fn timeline_line(params: &Params, previous: Option<u8>, current: u8, enabled: bool) -> String {
    let what = params.describe();
    let state = if enabled {
        ""
    } else {
        " (the flag is disabled there: nobody gets it until it is enabled)"
    };
    match previous {
        Some(p) if p == current => {
            format!("flags-unleash: {what} rollout already {current}%; no change{state}")
        }
        Some(p) => format!("flags-unleash: {what} rollout {current}% (was {p}%){state}"),
        None => format!(
            "flags-unleash: {what} rollout {current}% (new gradual rollout strategy){state}"
        ),
    }
}

#[cfg(test)]
mod tests;
