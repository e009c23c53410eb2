//! `medic validate`: everything that can be checked before an incident.

use crate::app::Ctx;
use anyhow::Result;
use medic_model::Diagnostic;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub async fn validate(ctx: &Ctx, files: &[PathBuf], strict: bool) -> Result<ExitCode> {
    let sandbox = ctx.sandbox()?;
    let mut failed = false;
    let env = &ctx.env;
    if let Some(k) = &env.kube {
        println!(
            "kubeconfig: context `{}` (cluster `{}`, user `{}`), server {}; uses {}",
            k.context,
            k.cluster,
            if k.user.is_empty() {
                "none"
            } else {
                k.user.as_str()
            },
            k.server,
            k.fields.join(", ")
        );
    }
    for note in &env.tls_notes {
        println!("{note}");
    }
    for (host, origin) in &env.insecure {
        if strict {
            failed = true;
            println!(
                "error: TLS certificate verification is off for {host} ({origin}: insecure_skip_verify); --strict refuses it: give medic the server's CA instead"
            );
        } else {
            println!(
                "warning: TLS certificate verification is off for {host} ({origin}: insecure_skip_verify); anyone on the path can impersonate this server (--strict refuses this)"
            );
        }
    }
    for file in files {
        let (diags, notes) = check_file(ctx, &sandbox, file, strict).await;
        for n in notes {
            println!("{}: {n}", file.display());
        }
        if diags.is_empty() {
            println!("ok: {}", file.display());
        } else {
            failed = true;
            for d in diags {
                println!("{d}");
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The file's problems, and what the environment gave its steps.
async fn check_file(
    ctx: &Ctx,
    sandbox: &medic_sandbox::Sandbox,
    file: &Path,
    strict: bool,
) -> (Vec<Diagnostic>, Vec<String>) {
    let shown = file.display().to_string();
    let src = match std::fs::read_to_string(file) {
        Ok(s) => s,
        Err(e) => {
            let d = Diagnostic {
                file: shown,
                pos: None,
                field: "file".into(),
                message: format!("cannot read: {e}"),
            };
            return (vec![d], Vec::new());
        }
    };
    let mut doc = match medic_model::parse_workflow_with_vars(&shown, &src, &ctx.env.vars) {
        Ok(d) => d,
        Err(d) => return (d, Vec::new()),
    };
    let mut notes = ctx.env.apply_kube(&mut doc.workflow);
    let dir = file.parent().unwrap_or(Path::new("."));
    let dirs = ctx.step_dirs(dir);
    let (mut out, warnings) = crate::step_tls::check(&mut doc, dir, strict);
    notes.extend(warnings);
    for (i, step) in doc
        .workflow
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.is_gate())
    {
        let field = format!("steps[{i}].uses");
        let at = |message: String| Diagnostic {
            file: shown.clone(),
            pos: doc.locate(&field),
            field: field.clone(),
            message,
        };
        let path = match crate::resolve::component(&step.uses, dir, &dirs) {
            Ok(p) => p,
            Err(e) => {
                out.push(at(format!("{e:#}")));
                continue;
            }
        };
        match sandbox.describe(&path).await {
            Ok(m) => out.extend(medic_model::check_params(
                &doc,
                i,
                &step.uses,
                &m.params_schema,
            )),
            Err(e) => out.push(at(e.to_string())),
        }
    }
    (out, notes)
}
