//! `medic validate`: everything that can be checked before an incident.

use crate::app::Ctx;
use anyhow::Result;
use medic_model::Diagnostic;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub async fn validate(ctx: &Ctx, files: &[PathBuf]) -> Result<ExitCode> {
    let sandbox = ctx.sandbox()?;
    let mut failed = false;
    for file in files {
        let diags = check_file(ctx, &sandbox, file).await;
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

async fn check_file(ctx: &Ctx, sandbox: &medic_sandbox::Sandbox, file: &Path) -> Vec<Diagnostic> {
    let shown = file.display().to_string();
    let src = match std::fs::read_to_string(file) {
        Ok(s) => s,
        Err(e) => {
            return vec![Diagnostic {
                file: shown,
                pos: None,
                field: "file".into(),
                message: format!("cannot read: {e}"),
            }];
        }
    };
    let doc = match medic_model::parse_workflow(&shown, &src) {
        Ok(d) => d,
        Err(d) => return d,
    };
    let dir = file.parent().unwrap_or(Path::new("."));
    let dirs = ctx.step_dirs(dir);
    let mut out = Vec::new();
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
    out
}
