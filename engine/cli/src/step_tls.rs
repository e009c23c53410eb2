//! A step's own `tls:` entries, checked when the workflow loads (for `medic run`, `serve`
//! and `validate` alike): each host is one the step may call, each file exists and holds
//! PEM, and relative paths are made absolute against the workflow file's folder, so a run
//! finds them whatever its working directory.

use medic_model::{Diagnostic, Document};
use std::path::Path;

/// Makes the paths of every step's `tls` entries absolute (relative to `dir`) and checks
/// them. Returns the problems, and warnings for entries that skip verification (errors
/// instead when `strict`).
pub fn check(doc: &mut Document, dir: &Path, strict: bool) -> (Vec<Diagnostic>, Vec<String>) {
    let mut diags = Vec::new();
    let mut warnings = Vec::new();
    let file = doc.file().to_string();
    let mut steps = std::mem::take(&mut doc.workflow.steps);
    for (i, step) in steps.iter_mut().enumerate() {
        for (j, t) in step.tls.iter_mut().enumerate() {
            let at = |key: &str, message: String| {
                let field = format!("steps[{i}].tls[{j}].{key}");
                Diagnostic {
                    file: file.clone(),
                    pos: doc.locate(&field),
                    field,
                    message,
                }
            };
            let (host, port) = split(&medic_sandbox::normalise_host(&t.host));
            if !medic_core::host_allowed(&step.allow, &host, port) {
                let msg = format!(
                    "`{}` is not in the step's `allow` list; add it there too (TLS settings grant nothing)",
                    t.host
                );
                diags.push(at("host", msg));
            }
            for (key, path) in [("ca", &mut t.ca), ("client-cert", &mut t.client_cert)] {
                let Some(p) = path else { continue };
                let full = dir.join(&*p);
                match std::fs::read_to_string(&full) {
                    Ok(text) if text.contains("-----BEGIN CERTIFICATE-----") => {
                        *p = full.display().to_string();
                    }
                    Ok(_) => diags.push(at(
                        key,
                        format!(
                            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                            full.display()
                        ),
                    )),
                    Err(e) => diags.push(at(key, format!("cannot read {}: {e}", full.display()))),
                }
            }
            if t.insecure_skip_verify {
                let origin = format!("step {} tls[{j}]", step.id);
                if strict {
                    let msg = format!(
                        "TLS certificate verification is off for {} ({origin}: insecure-skip-verify); --strict refuses it: give the step the server's CA instead",
                        t.host
                    );
                    diags.push(at("insecure-skip-verify", msg));
                } else {
                    warnings.push(format!("warning: TLS certificate verification is off for {} ({origin}: insecure-skip-verify); anyone on the path can impersonate this server (--strict refuses this)", t.host));
                }
            }
        }
    }
    doc.workflow.steps = steps;
    (diags, warnings)
}

/// `host:port` (normalised) into the host and its port.
fn split(host_port: &str) -> (String, Option<u16>) {
    match host_port.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().ok()),
        None => (host_port.to_string(), None),
    }
}
