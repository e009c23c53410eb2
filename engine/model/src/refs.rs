//! Checks that need more than one value: duplicate step ids, references from templates and
//! conditions to other steps, and the small grammars of matchers, hosts and secret names.

use crate::diag::{Pos, hint};
use crate::fields::Parser;
use crate::parse::StepInfo;
use crate::path::{Path, Segment, join_key};
use crate::template::{self, Part};
use crate::types::Phase;
use crate::yaml;
use marked_yaml::types::{MarkedScalarNode, Node};
use std::collections::HashMap;

/// The fields of `run` in template and condition context (see medic-postmortem's `run_context`).
const RUN_FIELDS: [&str; 4] = ["id", "url", "postmortem_url", "metrics"];

/// The fields of `incident` in template and condition context (see `Incident::to_context`).
const INCIDENT_FIELDS: [&str; 8] = [
    "id",
    "title",
    "severity",
    "status",
    "labels",
    "annotations",
    "started_at",
    "source",
];

pub(crate) fn check_secret_name(s: &str) -> Result<(), String> {
    let ok = s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a valid secret name: use letters, digits and `_`, not starting with a digit (e.g. `UNLEASH_TOKEN`)"
        ))
    }
}

/// Hosts in `allow`: `host`, `host:port`, `*.domain`, an IPv4 address or `[IPv6]`.
pub(crate) fn check_host(s: &str) -> Result<(), String> {
    const FORMS: &str = "write a host (`flags.internal`), a host and port (`flags.internal:4242`) or a wildcard domain (`*.example.com`)";
    if s.contains("://") || s.contains('/') {
        return Err(format!(
            "`{s}` is not a host: {FORMS}, without scheme or path"
        ));
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return Err(format!("`{s}`: missing `]` after the IPv6 address"));
        };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`{addr}` is not an IPv6 address"));
        }
        match after {
            "" => return Ok(()),
            p => match p.strip_prefix(':') {
                Some(p) => ("", Some(p)),
                None => return Err(format!("`{s}`: expected `:port` after `]`")),
            },
        }
    } else if s.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok(());
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if let Some(p) = port
        && !p.parse::<u16>().is_ok_and(|n| n > 0)
    {
        return Err(format!("`{s}`: the port must be a number from 1 to 65535"));
    }
    if host.is_empty() && port.is_some() && s.starts_with('[') {
        return Ok(());
    }
    if host == "*" {
        return Err("`*` would allow every host; list the hosts this step needs".into());
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    let label_ok = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if !name.split('.').all(label_ok) {
        return Err(format!("`{s}` is not a valid host: {FORMS}"));
    }
    Ok(())
}

/// Duplicate ids and references between steps.
pub(crate) fn check_steps(p: &mut Parser, infos: &[StepInfo]) {
    let mut first: HashMap<&str, (usize, Option<Pos>)> = HashMap::new();
    for (n, info) in infos.iter().enumerate() {
        let Some((id, pos)) = &info.id else { continue };
        match first.get(id.as_str()) {
            Some((_, prev)) => {
                let line = prev.map_or(String::new(), |p| format!(" at line {}", p.line));
                let msg = format!(
                    "duplicate step id `{id}`: already used by the step{line}; step ids must be unique"
                );
                p.err(*pos, &format!("{}.id", info.path), msg);
            }
            None => {
                first.insert(id, (n, *pos));
            }
        }
    }
    // In file order, so the did-you-mean hint is the same on every run.
    let ids: Vec<&str> = infos
        .iter()
        .filter_map(|i| i.id.as_ref().map(|(id, _)| id.as_str()))
        .collect();
    let vars = p.vars.clone();
    let check = |from: &StepInfo, path: &Path| {
        if path.key(0) == Some("vars") {
            return crate::vars::check_var_ref(&vars, path);
        }
        check_ref(infos, &first, &ids, from, path)
    };
    for info in infos {
        if let Some((at, node)) = &info.templated {
            let mut strings = Vec::new();
            scalars(node, at, &mut strings);
            for (field, s) in strings {
                match template::parse(s.as_str()) {
                    Err((offset, msg)) => {
                        p.err(
                            yaml::pos_in_scalar(&p.lines, s, offset),
                            &field,
                            format!("invalid template: {msg}"),
                        );
                    }
                    Ok(parts) => {
                        for part in parts {
                            if let Part::Ref { path, offset } = part
                                && let Some(msg) = check(info, &path)
                            {
                                p.err(yaml::pos_in_scalar(&p.lines, s, offset), &field, msg);
                            }
                        }
                    }
                }
            }
        }
        if let Some((s, expr)) = &info.cond {
            for (path, offset) in expr.paths() {
                if let Some(msg) = check(info, path) {
                    p.err(
                        yaml::pos_in_scalar(&p.lines, s, offset),
                        &format!("{}.if", info.path),
                        msg,
                    );
                }
            }
        }
    }
}

/// Every string scalar holding a template under `node`, with its field path.
fn scalars<'n>(node: &'n Node, at: &str, out: &mut Vec<(String, &'n MarkedScalarNode)>) {
    match node {
        Node::Scalar(s) if template::is_templated(s.as_str()) => out.push((at.to_string(), s)),
        Node::Scalar(_) => {}
        Node::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                scalars(item, &format!("{at}[{i}]"), out);
            }
        }
        Node::Mapping(map) => {
            for (k, v) in map.iter() {
                scalars(v, &join_key(at, k.as_str()), out);
            }
        }
    }
}

fn phase_name(p: Option<Phase>) -> &'static str {
    p.map_or("unknown", Phase::as_str)
}

/// Why `path`, used in step `from`, cannot work; `None` when it can.
fn check_ref(
    infos: &[StepInfo],
    first: &HashMap<&str, (usize, Option<Pos>)>,
    ids: &[&str],
    from: &StepInfo,
    path: &Path,
) -> Option<String> {
    let root = path.key(0).unwrap_or("");
    let who = match &from.id {
        Some((id, _)) => format!("step `{id}`"),
        None => "this step".to_string(),
    };
    match root {
        "incident" => {
            let name = match path.segments.get(1) {
                None => return None,
                Some(Segment::Key(k)) => k.as_str(),
                Some(Segment::Index(_)) => "",
            };
            (!INCIDENT_FIELDS.contains(&name)).then(|| {
                format!(
                    "`{path}`: an incident has no field `{name}`{} (fields: {}; labels and annotations are under `incident.labels.*` and `incident.annotations.*`)",
                    hint(name, INCIDENT_FIELDS),
                    INCIDENT_FIELDS.join(", ")
                )
            })
        }
        "steps" => {
            let Some(Segment::Key(target)) = path.segments.get(1) else {
                return Some(format!("`{path}`: name a step, e.g. `steps.probe.output`"));
            };
            let Some(&(index, pos)) = first.get(target.as_str()) else {
                return Some(format!(
                    "{who} refers to `{path}`, but there is no step `{target}`{}",
                    hint(target, ids.iter().copied())
                ));
            };
            if from.id.as_ref().is_some_and(|(id, _)| id == target) {
                return Some(format!(
                    "{who} refers to its own result (`{path}`); a step can only use the results of steps that ran before it"
                ));
            }
            let to = &infos[index];
            let me = infos
                .iter()
                .position(|i| std::ptr::eq(i, from))
                .unwrap_or(0);
            if let (Some(tp), Some(fp)) = (to.phase, from.phase)
                && (tp, index) > (fp, me)
            {
                let line = pos.map_or(String::new(), |p| format!(", line {}", p.line));
                let when = if tp == fp {
                    format!("also {} phase but later in the file{line}", tp.as_str())
                } else {
                    format!(
                        "{} phase{line}, while {who} is in the {} phase",
                        tp.as_str(),
                        phase_name(from.phase)
                    )
                };
                return Some(format!(
                    "{who} refers to `{path}`, which runs later ({when}); a step can only use the results of steps that run before it (phases run detect → communicate → restore → verify → follow-up, then in file order)"
                ));
            }
            match path.segments.get(2) {
                None => None,
                Some(Segment::Key(k)) if k == "status" || k == "output" => None,
                Some(seg) => {
                    let name = match seg {
                        Segment::Key(k) => k.as_str(),
                        Segment::Index(_) => "",
                    };
                    Some(format!(
                        "`{path}`: a step result has `status` and `output`{}",
                        hint(name, ["status", "output"])
                    ))
                }
            }
        }
        // The run itself (medic-postmortem's `run_context`): its id, links, and metrics so far.
        "run" => {
            let name = match path.segments.get(1) {
                None => return None,
                Some(Segment::Key(k)) => k.as_str(),
                Some(Segment::Index(_)) => "",
            };
            (!RUN_FIELDS.contains(&name)).then(|| {
                format!(
                    "`{path}`: a run has no field `{name}`{} (fields: {})",
                    hint(name, RUN_FIELDS),
                    RUN_FIELDS.join(", ")
                )
            })
        }
        other => Some(format!(
            "`{path}`: references start with `incident.`, `steps.`, `vars.` or `run.`{}",
            hint(other, ["incident", "steps", "vars", "run"])
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::types::{Incident, Matcher, Trigger};
    use std::collections::BTreeMap;

    fn first(s: &str) -> Matcher {
        crate::matcher::parse_matchers(s).unwrap().remove(0)
    }

    #[test]
    fn triggers_match_incidents() {
        let labels: BTreeMap<String, String> =
            [("alertname", "HighErrorRate"), ("service", "cart")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let m = |s: &str| first(s).matches(&labels);
        assert!(m(r#"alertname="HighErrorRate""#));
        assert!(m(r#"service=~"checkout|cart""#));
        assert!(!m(r#"service=~"car""#), "anchored");
        assert!(m(r#"service!~"checkout""#));
        assert!(m("env!=prod"));
        assert!(m(r#"env="""#), "a missing label is empty");
        assert!(!m("env=~.+"));
        let mut incident = Incident {
            id: "1".into(),
            title: "t".into(),
            severity: "critical".into(),
            status: crate::IncidentStatus::Firing,
            labels,
            annotations: BTreeMap::new(),
            started_at: "2024-05-01T00:00:00Z".into(),
            source: "alertmanager".into(),
            notes: Vec::new(),
        };
        let trigger = Trigger {
            matchers: vec![first("service=~\"checkout|cart\"")],
            severity: vec!["critical".into(), "page".into()],
            source: vec![],
            group_by: vec![],
        };
        assert!(trigger.matches(&incident));
        incident.severity = "warning".into();
        assert!(!trigger.matches(&incident));
        assert!(Trigger::default().matches(&incident));
    }

    #[test]
    fn hosts() {
        for ok in [
            "127.0.0.1",
            "flags.internal:4242",
            "*.example.com",
            "localhost",
            "[::1]",
            "[::1]:8080",
            "::1",
            "a-b.c",
        ] {
            assert_eq!(check_host(ok), Ok(()), "{ok}");
        }
        for bad in [
            "https://x.com",
            "x.com/path",
            "*",
            "a..b",
            "-a.com",
            "x:0",
            "x:99999",
            "x:port",
            "[::1",
            "[zz]",
            "a_b.com",
            "",
            "*.*.com",
        ] {
            assert!(check_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secret_names() {
        assert!(check_secret_name("UNLEASH_TOKEN").is_ok());
        assert!(check_secret_name("_x1").is_ok());
        assert!(check_secret_name("1X").is_err());
        assert!(check_secret_name("A-B").is_err());
        assert!(check_secret_name("").is_err());
    }
}
