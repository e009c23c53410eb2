//! Human gates (`gate:` steps) and the workflow's `on-resolved`: the parts of a workflow
//! that are about people and the incident's life rather than components.

use crate::diag::hint;
use crate::fields::{Field, Parser, field};
use crate::types::{Decision, Gate, OnResolved};

pub(crate) const GATE_FIELDS: &[&str] = &["prompt", "approvers", "deadline", "on-deadline"];

/// Step fields that configure a component, so they mean nothing on a gate step.
pub(crate) const COMPONENT_FIELDS: &[&str] = &[
    "uses", "with", "retry", "timeout", "secrets", "allow", "limits",
];

impl Parser<'_> {
    pub(crate) fn gate(&mut self, f: &Field) -> Option<Gate> {
        let what =
            "a mapping like `{ prompt: \"Roll back?\", deadline: 20m, on-deadline: approve }`";
        let map = self.mapping(f, what)?;
        let ctx = "in `gate`";
        self.check_keys(map, &f.path, GATE_FIELDS, ctx);
        let at = f.pos;
        let prompt = self
            .required(
                map,
                &f.path,
                "prompt",
                at,
                ctx,
                "the question for the people deciding",
            )
            .and_then(|f| self.non_empty_string(&f));
        let approvers = match field(map, &f.path, "approvers") {
            Some(f) => self.string_list(&f, "approver names", |s| {
                if s.trim().is_empty() {
                    Err("an approver name must not be empty".to_string())
                } else {
                    Ok(())
                }
            }),
            None => Some(Vec::new()),
        };
        let deadline = self
            .required(
                map,
                &f.path,
                "deadline",
                at,
                ctx,
                "how long to wait for a decision, e.g. `20m`",
            )
            .and_then(|f| self.duration(&f, 1));
        let on_deadline = self
            .required(
                map,
                &f.path,
                "on-deadline",
                at,
                ctx,
                "what happens when nobody decides in time: `approve` or `reject`",
            )
            .and_then(|f| {
                let v = self.string(&f)?;
                let d = Decision::parse(&v);
                if d.is_none() {
                    let msg = format!(
                        "`{v}` is not a decision{} (write `approve` or `reject`)",
                        hint(&v, ["approve", "reject"])
                    );
                    self.err(f.pos, &f.path, msg);
                }
                d
            });
        Some(Gate {
            prompt: prompt?,
            approvers: approvers?,
            deadline_ms: deadline?,
            on_deadline: on_deadline?,
        })
    }

    /// Component fields on a gate step are mistakes worth naming: the author probably
    /// meant two steps.
    pub(crate) fn no_component_fields(
        &mut self,
        map: &marked_yaml::types::MarkedMappingNode,
        path: &str,
    ) -> bool {
        let mut ok = true;
        for key in COMPONENT_FIELDS {
            if let Some(f) = field(map, path, key) {
                let msg = format!(
                    "`{key}` does not apply to a gate step: a gate waits for people and runs no component (split it into a gate step and a component step)"
                );
                self.err(f.pos, &f.path, msg);
                ok = false;
            }
        }
        ok
    }

    pub(crate) fn on_resolved(&mut self, f: &Field) -> Option<OnResolved> {
        let v = self.string(f)?;
        match v.as_str() {
            "continue" => Some(OnResolved::Continue),
            "cancel" => Some(OnResolved::Cancel),
            _ => {
                let msg = format!(
                    "`{v}` is not an on-resolved policy{} (write `continue` to keep going, or `cancel` to skip the steps not started yet, except follow-up)",
                    hint(&v, ["continue", "cancel"])
                );
                self.err(f.pos, &f.path, msg);
                None
            }
        }
    }
}
