//! `medic postmortem RUN|INCIDENT [--format md|json|html|svg] [-o FILE] [--template FILE]`:
//! a blameless postmortem draft from the journals in the local store.

use crate::app::Ctx;
use anyhow::{Context, Result, bail};
use medic_core::{JournalStore, StoreError};
use medic_postmortem::{Format, Postmortem};
use medic_server::ServeConfig;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// What `medic postmortem` was asked for.
pub struct Args {
    pub id: String,
    pub format: String,
    pub output: Option<PathBuf>,
    pub template: Option<PathBuf>,
    pub config: Option<PathBuf>,
}

pub fn postmortem(ctx: &Ctx, args: Args) -> Result<ExitCode> {
    let Some(format) = Format::parse(&args.format) else {
        bail!(
            "--format {}: medic writes postmortems as md, json, html or svg",
            args.format
        );
    };
    let config = match &args.config {
        Some(path) => Some(ServeConfig::load(path)?),
        None => None,
    };
    let template = args.template.clone().or_else(|| {
        let c = config.as_ref()?;
        c.postmortem.template.as_ref().map(|t| c.base.join(t))
    });
    if template.is_some() && format != Format::Markdown {
        bail!(
            "a template writes Markdown: drop --format {} or the template",
            args.format
        );
    }
    let store = ctx.store()?;
    let journals = match store.entries(&args.id) {
        Ok(entries) => vec![(args.id.clone(), entries)],
        Err(StoreError::NoSuchRun(_)) => {
            let j = medic_server::incident_journals(&store, &args.id)?;
            if j.is_empty() {
                bail!(
                    "no run or incident with id {} in {} (see `medic runs`)",
                    args.id,
                    ctx.data.display()
                );
            }
            j
        }
        Err(e) => return Err(e.into()),
    };
    let mut pm = Postmortem::from_journals(journals)?;
    if let Some(url) = config.as_ref().and_then(|c| c.external_url.as_deref()) {
        pm = pm.with_external_url(url);
    }
    // Markdown written to a file gets the picture as a file beside it, which every
    // Markdown viewer shows; on stdout it is embedded as a data: URI.
    let picture = match (&args.output, format) {
        (Some(out), Format::Markdown) => Some(out.with_extension("svg")),
        _ => None,
    };
    if let Some(svg) = &picture {
        let name = svg.file_name().map(|n| n.to_string_lossy().into_owned());
        pm = pm.with_image_link(&name.unwrap_or_default());
    }
    let text = match &template {
        Some(path) => {
            let source = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read template {}", path.display()))?;
            pm.render_template(&path.display().to_string(), &source)?
        }
        None => pm.render(format),
    };
    match &args.output {
        Some(out) => {
            write(out, &text)?;
            if let Some(svg) = &picture {
                write(svg, &pm.svg())?;
                eprintln!("wrote {} and {}", out.display(), svg.display());
            } else {
                eprintln!("wrote {}", out.display());
            }
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
