//! `vars:`: values that differ per environment (a server address, a namespace), declared
//! at the top of a workflow with their defaults and overridden by medic.toml's `[vars]`.
//!
//! Templates read them as `{{ vars.NAME }}`. In `allow`, they are resolved when the file
//! loads, so every grant is a plain host before anything runs; an `allow` entry built from
//! a var that has no value is an error at load, pointing at the entry.

use crate::diag::hint;
use crate::fields::{Field, Parser, expected};
use crate::path::{Path, Segment};
use crate::template::{self, Part};
use crate::yaml::{self, Scalar, classify, marker_pos, scalar_pos};
use marked_yaml::types::Node;
use std::collections::BTreeMap;

/// Declared vars: name → value (`None`: declared without a value, and not set by the
/// environment either).
pub(crate) type Vars = BTreeMap<String, Option<String>>;

/// Var names: letters, digits and `_`, not starting with a digit (`k8s_server`).
pub(crate) fn check_var_name(s: &str) -> Result<(), String> {
    let mut chars = s.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a valid var name: use letters, digits and `_`, not starting with a digit (e.g. `k8s_server`)"
        ))
    }
}

/// Why `path` (rooted at `vars`) cannot be rendered; `None` when it can.
pub(crate) fn check_var_ref(vars: &Vars, path: &Path) -> Option<String> {
    let Some(Segment::Key(name)) = path.segments.get(1) else {
        return Some(format!("`{path}`: name a var, e.g. `vars.k8s_server`"));
    };
    if path.segments.len() > 2 {
        return Some(format!(
            "`{path}`: a var is a single value; write `vars.{name}`"
        ));
    }
    match vars.get(name.as_str()) {
        Some(Some(_)) => None,
        Some(None) => Some(format!(
            "`vars.{name}` is not set: the workflow declares it without a value; set it for this environment in medic.toml (`[vars]` `{name} = \"...\"`)"
        )),
        None => Some(if vars.is_empty() {
            format!(
                "`vars.{name}` is not declared: add it under `vars:` at the top of the workflow (e.g. `vars: {{ {name}: \"...\" }}`)"
            )
        } else {
            format!(
                "`vars.{name}` is not declared{} (vars: {}); declare it under `vars:` at the top of the workflow",
                hint(name, vars.keys().map(String::as_str)),
                vars.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        }),
    }
}

impl Parser<'_> {
    /// The top-level `vars:` mapping, with `overrides` (medic.toml's `[vars]`) applied to
    /// the names it declares. Overrides for names the workflow does not declare are
    /// ignored: one config serves every workflow.
    pub(crate) fn vars(&mut self, f: &Field, overrides: &BTreeMap<String, String>) -> Option<Vars> {
        let Node::Mapping(map) = f.node else {
            if let Node::Scalar(s) = f.node
                && matches!(classify(s), Scalar::Null)
            {
                return Some(Vars::new());
            }
            self.err(
                f.pos,
                &f.path,
                expected("a mapping of names to values, e.g. `vars: { k8s_server: \"https://k8s.staging:6443\" }`", f.node),
            );
            return None;
        };
        let mut vars = Vars::new();
        let mut ok = true;
        for (k, v) in map.iter() {
            let path = format!("{}.{}", f.path, k.as_str());
            if let Err(msg) = check_var_name(k.as_str()) {
                self.err(scalar_pos(k), &path, msg);
                ok = false;
                continue;
            }
            let value = match v {
                Node::Scalar(s) if matches!(classify(s), Scalar::Null) => None,
                Node::Scalar(s) if template::is_templated(s.as_str()) => {
                    self.err(
                        marker_pos(v),
                        &path,
                        "a var's value is plain text: templates are not expanded in `vars`",
                    );
                    ok = false;
                    continue;
                }
                Node::Scalar(s) => Some(s.as_str().to_string()),
                other => {
                    self.err(
                        marker_pos(other),
                        &path,
                        expected(
                            "a value (text) or nothing (set per environment in medic.toml)",
                            other,
                        ),
                    );
                    ok = false;
                    continue;
                }
            };
            let value = overrides.get(k.as_str()).cloned().or(value);
            vars.insert(k.as_str().to_string(), value);
        }
        ok.then_some(vars)
    }

    /// A step's `allow` list: each entry a host, possibly built from vars
    /// (`"{{ vars.k8s_host }}:6443"`), resolved now and then checked as a host.
    pub(crate) fn allow_list(&mut self, f: &Field) -> Option<Vec<String>> {
        let Node::Sequence(items) = f.node else {
            return self.string_list(f, "hosts", crate::refs::check_host);
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let path = format!("{}[{i}]", f.path);
            let Node::Scalar(s) = item else {
                self.err(marker_pos(item), &path, expected("a string", item));
                ok = false;
                continue;
            };
            if matches!(classify(s), Scalar::Null) {
                self.err(marker_pos(item), &path, expected("a string", item));
                ok = false;
                continue;
            }
            let text = s.as_str();
            let host = if template::is_templated(text) {
                match self.resolve_vars(text, s, &path) {
                    Some(h) => h,
                    None => {
                        ok = false;
                        continue;
                    }
                }
            } else {
                text.to_string()
            };
            match crate::refs::check_host(&host) {
                Ok(()) => out.push(host),
                Err(msg) => {
                    let from = if host == text {
                        String::new()
                    } else {
                        format!(" (from `{text}`)")
                    };
                    self.err(marker_pos(item), &path, format!("{msg}{from}"));
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// Renders a string whose templates may only name vars.
    pub(crate) fn resolve_vars(
        &mut self,
        text: &str,
        s: &marked_yaml::types::MarkedScalarNode,
        path: &str,
    ) -> Option<String> {
        let parts = match template::parse(text) {
            Ok(p) => p,
            Err((offset, msg)) => {
                let pos = yaml::pos_in_scalar(&self.lines, s, offset);
                self.err(pos, path, format!("invalid template: {msg}"));
                return None;
            }
        };
        let mut out = String::new();
        let mut ok = true;
        for part in parts {
            match part {
                Part::Text(t) => out.push_str(&t),
                Part::Ref { path: p, offset } => {
                    let pos = yaml::pos_in_scalar(&self.lines, s, offset);
                    if p.key(0) != Some("vars") {
                        self.err(pos, path, format!("`{p}`: `allow` is resolved when the workflow loads, so it can only use `vars.*` (a grant must be known before anything runs)"));
                        ok = false;
                        continue;
                    }
                    if let Some(msg) = check_var_ref(&self.vars, &p) {
                        self.err(pos, path, msg);
                        ok = false;
                        continue;
                    }
                    if let Some(Segment::Key(name)) = p.segments.get(1)
                        && let Some(Some(v)) = self.vars.get(name.as_str())
                    {
                        out.push_str(v);
                    }
                }
            }
        }
        ok.then_some(out)
    }
}

/// The values of the vars that are set, for the workflow (`vars.*` in templates).
pub(crate) fn values(vars: &Vars) -> BTreeMap<String, String> {
    vars.iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::{parse_workflow, parse_workflow_with_vars, template};
    use serde_json::json;
    use std::collections::BTreeMap;

    const SRC: &str = "apiVersion: medic/v1
kind: Workflow
name: rollback
vars:
  k8s_server: https://k8s.staging.example:6443
  k8s_host: k8s.staging.example:6443
  namespace: ~
steps:
  - id: undo
    phase: restore
    uses: k8s-rollout
    with: { server: \"{{ vars.k8s_server }}\", namespace: \"{{ vars.namespace }}\" }
    allow: [\"{{ vars.k8s_host }}\", \"metrics.{{ vars.namespace }}.example\"]
";

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_environment_overrides_and_allow_is_resolved_at_load() {
        let doc = parse_workflow_with_vars(
            "w.yaml",
            SRC,
            &env(&[
                ("k8s_server", "https://k8s.prod.example:6443"),
                ("k8s_host", "k8s.prod.example:6443"),
                ("namespace", "shop"),
                ("unrelated", "ignored"),
            ]),
        )
        .unwrap();
        let w = &doc.workflow;
        assert_eq!(
            w.steps[0].allow,
            ["k8s.prod.example:6443", "metrics.shop.example"]
        );
        assert_eq!(
            w.vars,
            env(&[
                ("k8s_server", "https://k8s.prod.example:6443"),
                ("k8s_host", "k8s.prod.example:6443"),
                ("namespace", "shop"),
            ])
        );
        // Templates read them at run time from the context.
        let ctx = json!({"incident": {}, "steps": {}, "vars": w.vars});
        let with = template::render(&w.steps[0].with, &ctx).unwrap();
        assert_eq!(
            with,
            json!({"server": "https://k8s.prod.example:6443", "namespace": "shop"})
        );
    }

    #[test]
    fn a_var_without_a_value_is_an_error_where_it_is_used() {
        let errs = parse_workflow_with_vars("w.yaml", SRC, &env(&[])).unwrap_err();
        let shown: Vec<String> = errs.iter().map(|d| d.to_string()).collect();
        assert!(
            shown.iter().any(|e| e
                .starts_with("w.yaml:12:61: steps[0].with.namespace: `vars.namespace` is not set")),
            "{shown:#?}"
        );
        assert!(
            shown
                .iter()
                .any(|e| e
                    .starts_with("w.yaml:13:48: steps[0].allow[1]: `vars.namespace` is not set")),
            "{shown:#?}"
        );
        assert_eq!(shown.len(), 2, "{shown:#?}");
    }

    #[test]
    fn undeclared_vars_other_paths_and_bad_hosts_are_refused() {
        let src = SRC.replace(
            "\"{{ vars.k8s_host }}\"",
            "\"{{ vars.k8s_hots }}\", \"{{ incident.labels.host }}\", \"{{ vars.k8s_server }}\"",
        );
        let errs = parse_workflow("w.yaml", &src).unwrap_err();
        let all: String = errs.iter().map(|d| format!("{d}\n")).collect();
        assert!(
            all.contains("`vars.k8s_hots` is not declared; did you mean `k8s_host`?"),
            "{all}"
        );
        assert!(
            all.contains(
                "`allow` is resolved when the workflow loads, so it can only use `vars.*`"
            ),
            "{all}"
        );
        assert!(
            all.contains("without scheme or path (from `{{ vars.k8s_server }}`)"),
            "{all}"
        );
        let bad = SRC.replace("  namespace: ~\n", "  namespace: ~\n  2fast: x\n");
        let all: String = parse_workflow("w.yaml", &bad)
            .unwrap_err()
            .iter()
            .map(|d| format!("{d}\n"))
            .collect();
        assert!(all.contains("`2fast` is not a valid var name"), "{all}");
    }
}
