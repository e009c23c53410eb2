//! Workflow files: YAML → [`Workflow`], with every problem reported at once.
//!
//! Parsing goes on after an error so one run of `medic validate` lists everything wrong with a
//! file; the model is only built when nothing was. Single values are read and checked in
//! `fields`; cross-step checks (duplicate ids, references between steps) live in `refs`.

use crate::diag::{self, Diagnostic, Pos, hint};
use crate::expr::{self, Expr};
use crate::fields::{Field, Parser, expected, field};
use crate::refs;
use crate::types::*;
use crate::yaml::{self, Scalar, Spans, classify, marker_pos, scalar_pos};
use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode, Node};
use marked_yaml::{LoadError, LoaderOptions, parse_yaml_with_options};

pub(crate) const TOP_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "name",
    "description",
    "trigger",
    "on-resolved",
    "vars",
    "steps",
];
pub(crate) const TRIGGER_FIELDS: &[&str] = &["matchers", "severity", "source", "group-by"];
pub(crate) const STEP_FIELDS: &[&str] = &[
    "id",
    "phase",
    "uses",
    "gate",
    "with",
    "if",
    "retry",
    "timeout",
    "secrets",
    "allow",
    "tls",
    "limits",
    "continue-on-error",
];
pub(crate) const RETRY_FIELDS: &[&str] = &["attempts", "backoff", "factor", "max-backoff"];
pub(crate) const LIMITS_FIELDS: &[&str] = &["memory", "output"];

/// A parsed, validated workflow file, with the source positions of its fields.
#[derive(Debug, Clone)]
pub struct Document {
    /// The workflow.
    pub workflow: Workflow,
    file: String,
    spans: Spans,
}

impl Document {
    /// Position of a field by dotted path with indices, e.g. `steps[1].with.url`; falls back to
    /// the nearest existing parent. Scalars are located at their value, mappings and lists at
    /// their key.
    pub fn locate(&self, path: &str) -> Option<Pos> {
        self.spans.locate(path)
    }

    /// The file name given to [`parse_workflow`].
    pub fn file(&self) -> &str {
        &self.file
    }
}

/// What the cross-checks need to know about each step, even one with errors elsewhere.
pub(crate) struct StepInfo<'n> {
    pub path: String,
    pub id: Option<(String, Option<Pos>)>,
    pub phase: Option<Phase>,
    /// The node whose strings may hold templates (`with`, or a gate's fields), and its path.
    pub templated: Option<(String, &'n Node)>,
    pub cond: Option<(&'n MarkedScalarNode, Expr)>,
}

/// Parse + validate a workflow file. Returns all diagnostics found, sorted by position.
/// Vars keep the values the file gives them; see [`parse_workflow_with_vars`].
pub fn parse_workflow(file: &str, src: &str) -> Result<Document, Vec<Diagnostic>> {
    parse_workflow_with_vars(file, src, &std::collections::BTreeMap::new())
}

/// Parse + validate a workflow file for an environment: `vars` (medic.toml's `[vars]`)
/// override the values of the vars the workflow declares. `allow` entries built from
/// vars are resolved here.
///
/// # Errors
/// Every problem found, sorted by position, each with `file:line:column`: among them an
/// `allow` entry or template naming a var that is not declared or has no value.
pub fn parse_workflow_with_vars(
    file: &str,
    src: &str,
    vars: &std::collections::BTreeMap<String, String>,
) -> Result<Document, Vec<Diagnostic>> {
    let opts = LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .prevent_coercion(true);
    let root =
        parse_yaml_with_options(0, src, opts).map_err(|e| vec![load_error(file, src, &e)])?;
    let mut p = Parser {
        file,
        lines: src.lines().collect(),
        diags: Vec::new(),
        suggested: Vec::new(),
        vars: crate::vars::Vars::new(),
    };
    if let Some(line) = second_document(src) {
        p.err(Some(Pos::new(line, 1)), "", "a workflow file holds one YAML document, but `---` starts another here; put each workflow in its own file");
    }
    let map = root
        .as_mapping()
        .expect("the loader only returns a top-level mapping");
    let workflow = if map.is_empty() {
        p.err(Some(Pos::new(1, 1)), "", "the file is empty: a workflow needs `apiVersion: medic/v1`, `kind: Workflow`, a `name` and `steps`");
        None
    } else {
        p.workflow(map, vars)
    };
    match workflow {
        Some(workflow) if p.diags.is_empty() => {
            let mut spans = Spans::default();
            spans.record("", Some(Pos::new(1, 1)), &root);
            Ok(Document {
                workflow,
                file: file.to_string(),
                spans,
            })
        }
        _ => {
            diag::sort(&mut p.diags);
            Err(p.diags)
        }
    }
}

/// The line of a `---` that starts a second YAML document (the loader silently reads only the
/// first, and a workflow that lost half its steps would be worse than an error).
fn second_document(src: &str) -> Option<usize> {
    let mut seen_content = false;
    for (n, line) in src.lines().enumerate() {
        let is_marker = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        if is_marker && seen_content {
            return Some(n + 1);
        }
        let t = line.trim();
        seen_content |= !is_marker && !t.is_empty() && !t.starts_with('#');
    }
    None
}

fn load_error(file: &str, src: &str, e: &LoadError) -> Diagnostic {
    let at = |m: &marked_yaml::Marker| Some(Pos::new(m.line(), m.column()));
    let (pos, message) = match e {
        LoadError::TopLevelMustBeMapping(m) | LoadError::TopLevelMustBeSequence(m) => (
            at(m),
            "a workflow file must be a YAML mapping (`apiVersion: medic/v1`, `kind: Workflow`, `name`, `steps`)".to_string(),
        ),
        LoadError::UnexpectedAnchor(m) => (
            at(m),
            "YAML anchors and aliases (`&name`, `*name`) are not supported in workflow files; write the value out".into(),
        ),
        LoadError::UnexpectedTag(m) => (at(m), "YAML tags (`!tag`) are not supported in workflow files".into()),
        LoadError::MappingKeyMustBeScalar(m) => (at(m), "mapping keys must be plain names, not lists or mappings".into()),
        LoadError::ScanError(m, scan) if scan.info().contains("tab") => {
            // The scanner reports the token before the tab; point at the tab itself.
            let tab = src.chars().skip(m.character()).position(|c| c == '\t').map(|n| n + m.character());
            let pos = tab.map(|i| {
                let before: Vec<char> = src.chars().take(i).collect();
                let line = before.iter().filter(|&&c| c == '\n').count() + 1;
                let column = before.iter().rev().take_while(|&&c| c != '\n').count() + 1;
                Pos::new(line, column)
            });
            (pos.or(at(m)), "YAML syntax error: found a tab; YAML does not allow tabs for indentation, use spaces".into())
        }
        LoadError::ScanError(m, scan) => {
            let extra = if scan.info().contains("mapping values are not allowed") {
                " (a value containing `: ` must be quoted)"
            } else {
                ""
            };
            (at(m), format!("YAML syntax error: {}{extra}", scan.info()))
        }
        LoadError::DuplicateKey(dup) => (
            scalar_pos(&dup.key),
            format!(
                "`{}` is set twice in the same mapping (first at line {}); keep one",
                dup.key.as_str(),
                scalar_pos(&dup.prev_key).map_or(0, |p| p.line)
            ),
        ),
    };
    Diagnostic::new(file, pos, "", message)
}

impl<'a> Parser<'a> {
    fn workflow(
        &mut self,
        root: &MarkedMappingNode,
        overrides: &std::collections::BTreeMap<String, String>,
    ) -> Option<Workflow> {
        let top = Some(Pos::new(1, 1));
        self.check_keys(root, "", TOP_FIELDS, "at the top level");
        let ctx = "at the top level";
        if let Some(f) = self.required(
            root,
            "",
            "apiVersion",
            top,
            ctx,
            "write `apiVersion: medic/v1`",
        ) && let Some(v) = self.string(&f)
            && v != API_VERSION
        {
            self.err(
                f.pos,
                &f.path,
                format!(
                    "unsupported apiVersion `{v}`: this version of medic reads `{API_VERSION}`"
                ),
            );
        }
        if let Some(f) = self.required(root, "", "kind", top, ctx, "write `kind: Workflow`")
            && let Some(v) = self.string(&f)
            && v != "Workflow"
        {
            self.err(
                f.pos,
                &f.path,
                format!("unsupported kind `{v}`: a workflow file has `kind: Workflow`"),
            );
        }
        let name = self
            .required(root, "", "name", top, ctx, "the workflow's name, e.g. `checkout-bad-flag`")
            .and_then(|f| {
                let v = self.string(&f)?;
                let msg = format!("`{v}` is not a valid workflow name: use lowercase letters, digits and `-`, starting with a letter or digit (e.g. `checkout-bad-flag`)");
                self.check_name(&f, v, false, msg)
            });
        let description = match field(root, "", "description") {
            Some(f) => self.string(&f),
            None => Some(String::new()),
        };
        let trigger = match field(root, "", "trigger") {
            Some(f) => self.trigger(&f),
            None => Some(Trigger::default()),
        };
        let on_resolved = match field(root, "", "on-resolved") {
            Some(f) => self.on_resolved(&f),
            None => Some(OnResolved::Continue),
        };
        // Before the steps: their `allow` lists and templates use the vars.
        let vars = match field(root, "", "vars") {
            Some(f) => self.vars(&f, overrides),
            None => Some(crate::vars::Vars::new()),
        };
        if let Some(v) = &vars {
            self.vars = v.clone();
        }
        let steps = self
            .required(root, "", "steps", top, ctx, "the list of steps to run")
            .and_then(|f| self.steps(&f));
        Some(Workflow {
            name: name?,
            description: description?,
            trigger: trigger?,
            steps: steps?,
            on_resolved: on_resolved?,
            vars: crate::vars::values(&vars?),
        })
    }

    /// Names: `[a-z0-9][a-z0-9-]*`, plus `_` for step ids.
    fn check_name(
        &mut self,
        f: &Field,
        v: String,
        underscore: bool,
        msg: String,
    ) -> Option<String> {
        let ok_char = |c: char| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (underscore && c == '_')
        };
        let first_ok = v
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if first_ok && v.chars().all(ok_char) {
            Some(v)
        } else {
            self.err(f.pos, &f.path, msg);
            None
        }
    }

    fn trigger(&mut self, f: &Field) -> Option<Trigger> {
        let map = self.mapping(
            f,
            "a mapping with `matchers`, `severity`, `source` or `group-by`",
        )?;
        self.check_keys(map, "trigger", TRIGGER_FIELDS, "in `trigger`");
        let mut trigger = Trigger::default();
        let mut ok = true;
        if let Some(f) = field(map, "trigger", "matchers") {
            ok &= self.matchers(&f).map(|m| trigger.matchers = m).is_some();
        }
        if let Some(f) = field(map, "trigger", "group-by") {
            ok &= self
                .string_list(&f, "label names", crate::matcher::check_label_name)
                .map(|v| trigger.group_by = v)
                .is_some();
        }
        for (key, out) in [
            ("severity", &mut trigger.severity),
            ("source", &mut trigger.source),
        ] {
            if let Some(f) = field(map, "trigger", key) {
                ok &= self
                    .string_list(&f, &format!("{key} names"), |_| Ok(()))
                    .map(|v| *out = v)
                    .is_some();
            }
        }
        ok.then_some(trigger)
    }

    fn matchers(&mut self, f: &Field) -> Option<Vec<Matcher>> {
        let texts =
            self.string_list(f, "matchers like 'alertname=\"HighErrorRate\"'", |_| Ok(()))?;
        let Node::Sequence(items) = f.node else {
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, (text, item)) in texts.iter().zip(items.iter()).enumerate() {
            match crate::matcher::parse_matchers(text) {
                Ok(ms) => out.extend(ms),
                Err((offset, msg)) => {
                    let pos = item
                        .as_scalar()
                        .and_then(|s| yaml::pos_in_scalar(&self.lines, s, offset));
                    self.err(pos, &format!("{}[{i}]", f.path), msg);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn steps<'n>(&mut self, f: &Field<'n>) -> Option<Vec<Step>> {
        let Node::Sequence(items) = f.node else {
            self.err(
                f.pos,
                &f.path,
                expected(
                    "a list of steps (each item starting with `- id: ...`)",
                    f.node,
                ),
            );
            return None;
        };
        if items.is_empty() {
            self.err(f.pos, &f.path, "a workflow needs at least one step");
            return None;
        }
        let mut steps = Vec::new();
        let mut infos = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let (step, info) = self.step(i, item);
            steps.extend(step);
            infos.extend(info);
        }
        refs::check_steps(self, &infos);
        (steps.len() == items.len()).then_some(steps)
    }

    fn step<'n>(&mut self, index: usize, node: &'n Node) -> (Option<Step>, Option<StepInfo<'n>>) {
        let path = format!("steps[{index}]");
        let at = marker_pos(node);
        let Node::Mapping(map) = node else {
            self.err(
                at,
                &path,
                expected("a step: a mapping with `id`, `phase` and `uses`", node),
            );
            return (None, None);
        };
        let ctx = match field(map, &path, "id").and_then(|f| f.node.as_scalar()) {
            Some(id) => format!("in step `{}`", id.as_str()),
            None => format!("in {path}"),
        };
        self.check_keys(map, &path, STEP_FIELDS, &ctx);
        let id = self.required(map, &path, "id", at, &format!("in {path}"), "a unique name for the step, e.g. `probe`").and_then(|f| {
            let v = self.string(&f)?;
            let msg = format!("`{v}` is not a valid step id: use lowercase letters, digits, `-` and `_`, starting with a letter or digit (e.g. `probe-health`)");
            self.check_name(&f, v, true, msg).map(|v| (v, f.pos))
        });
        let phase = self
            .required(
                map,
                &path,
                "phase",
                at,
                &ctx,
                "one of detect, communicate, restore, verify, follow-up",
            )
            .and_then(|f| {
                let v = self.string(&f)?;
                let phase = Phase::parse(&v);
                if phase.is_none() {
                    let names = Phase::ALL.map(Phase::as_str);
                    self.err(
                        f.pos,
                        &f.path,
                        format!(
                            "unknown phase `{v}`{} (phases run in this order: {})",
                            hint(&v, names),
                            names.join(", ")
                        ),
                    );
                }
                phase
            });
        let mut ok = true;
        let gate_field = field(map, &path, "gate");
        let gate = gate_field.as_ref().and_then(|f| self.gate(f));
        let uses = if gate_field.is_some() {
            ok &= gate.is_some();
            ok &= self.no_component_fields(map, &path);
            Some(String::new())
        } else {
            self.required(map, &path, "uses", at, &ctx, "the component to run, e.g. `http-probe` or `./steps/probe.wasm` (or a `gate` for a human decision)").and_then(|f| {
                let v = self.non_empty_string(&f)?;
                if crate::template::is_templated(&v) {
                    self.err(f.pos, &f.path, "templates are not expanded in `uses` (only in `with`); name the component directly");
                    return None;
                }
                Some(v)
            })
        };
        let with_field = field(map, &path, "with");
        let with = match &with_field {
            Some(f) if matches!(f.node, Node::Scalar(s) if matches!(classify(s), Scalar::Null)) => {
                Some(serde_json::json!({}))
            }
            Some(f) => self
                .mapping(
                    f,
                    "a mapping of parameters, e.g. `with: { url: \"https://...\" }`",
                )
                .map(|_| yaml::to_json(f.node)),
            None => Some(serde_json::json!({})),
        };
        let cond = field(map, &path, "if").and_then(|f| self.condition(&f));
        ok &= field(map, &path, "if").is_none() || cond.is_some();
        let mut step = Step {
            id: String::new(),
            phase: Phase::Detect,
            uses: String::new(),
            gate: None,
            with: serde_json::Value::Null,
            condition: cond.as_ref().map(|(s, _)| s.as_str().to_string()),
            retry: Retry::default(),
            timeout_ms: None,
            secrets: Vec::new(),
            allow: Vec::new(),
            tls: Vec::new(),
            limits: Limits::default(),
            continue_on_error: false,
        };
        if let Some(f) = field(map, &path, "retry") {
            ok &= self.retry(&f).map(|r| step.retry = r).is_some();
        }
        if let Some(f) = field(map, &path, "timeout") {
            ok &= self
                .duration(&f, 1)
                .map(|ms| step.timeout_ms = Some(ms))
                .is_some();
        }
        if let Some(f) = field(map, &path, "secrets") {
            ok &= self
                .string_list(&f, "secret names", refs::check_secret_name)
                .map(|v| step.secrets = v)
                .is_some();
        }
        if let Some(f) = field(map, &path, "allow") {
            ok &= self.allow_list(&f).map(|v| step.allow = v).is_some();
        }
        if let Some(f) = field(map, &path, "tls") {
            ok &= self
                .step_tls(&f, &step.secrets)
                .map(|t| step.tls = t)
                .is_some();
        }
        if let Some(f) = field(map, &path, "limits") {
            ok &= self.limits(&f).map(|l| step.limits = l).is_some();
        }
        if let Some(f) = field(map, &path, "continue-on-error") {
            ok &= self
                .boolean(&f)
                .map(|b| step.continue_on_error = b)
                .is_some();
        }
        let info = StepInfo {
            path,
            id: id.clone(),
            phase,
            templated: match &gate_field {
                Some(g) => Some((g.path.clone(), g.node)),
                None => with_field
                    .as_ref()
                    .filter(|_| with.is_some())
                    .map(|f| (f.path.clone(), f.node)),
            },
            cond,
        };
        let step = match (id, phase, uses, with) {
            (Some((id, _)), Some(phase), Some(uses), Some(with)) if ok => Some(Step {
                id,
                phase,
                uses,
                with,
                gate,
                ..step
            }),
            _ => None,
        };
        (step, Some(info))
    }

    fn condition<'n>(&mut self, f: &Field<'n>) -> Option<(&'n MarkedScalarNode, Expr)> {
        if let Node::Scalar(s) = f.node
            && matches!(classify(s), Scalar::Null)
        {
            let msg =
                "expected a condition such as `steps.probe.status == \"failed\"`, found nothing";
            self.err(f.pos, &f.path, msg);
            return None;
        }
        let text = self.string(f)?;
        let Node::Scalar(s) = f.node else { return None };
        if text.contains("{{") {
            self.err(f.pos, &f.path, "conditions are expressions, not templates: write e.g. `steps.probe.status == \"failed\"` without `{{ }}`");
            return None;
        }
        match expr::parse(&text) {
            Ok(e) => Some((s, e)),
            Err(e) => {
                let pos = yaml::pos_in_scalar(&self.lines, s, e.column() - 1);
                self.err(pos, &f.path, format!("invalid condition: {}", e.message()));
                None
            }
        }
    }
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
