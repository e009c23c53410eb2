//! `medic step`: the step author's tools. `new` scaffolds a step project in Rust, Python
//! or JavaScript against the newest `medic:step` WIT; `build` turns it into a component
//! and warms the compile cache; `test` runs a component once, outside any workflow, and
//! shows everything it did.

mod build;
mod new;
mod report;
mod scaffold;
mod test;
mod toolchain;

use crate::app::Ctx;
use anyhow::Result;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum StepCommand {
    /// Run a component once, outside any workflow: describe(), logs, HTTP exchanges,
    /// annotations, state writes, and the output or error. Exit status 1 when it failed.
    Test {
        /// The component (`.wasm`).
        component: PathBuf,
        /// The step's `with:` params: JSON text, or a file holding it.
        #[arg(long, value_name = "JSON|FILE", default_value = "{}")]
        params: String,
        /// The incident, as for `medic run --alert` (default: a sample incident).
        #[arg(long, value_name = "FILE")]
        incident: Option<PathBuf>,
        /// Grant HTTP to this host (`host`, `host:port`, `*.domain`); repeatable.
        #[arg(long = "allow", value_name = "HOST")]
        allow: Vec<String>,
        /// Grant a secret with this value (redacted from everything printed); repeatable.
        #[arg(long = "secret", value_name = "NAME=VALUE")]
        secrets: Vec<String>,
        /// The phase the step runs in.
        #[arg(long, default_value = "detect")]
        phase: String,
        /// Wall-time limit of the attempt (`30s`, `2m`).
        #[arg(long, default_value = "30s")]
        timeout: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Also show the journal the attempt wrote: the journal of a one-step run, entry
        /// for entry what a workflow run of the step writes.
        #[arg(long)]
        journal: bool,
    },
    /// Create a step project that builds and passes its own test straight away.
    New {
        /// The step's name (lowercase letters, digits and `-`).
        name: String,
        /// rust, python or js.
        #[arg(long)]
        lang: String,
        /// Where to create it (default: ./NAME).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Build the step project in DIR into a component, then compile it into the cache.
    Build {
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
}

pub async fn dispatch(ctx: &Ctx, command: StepCommand) -> Result<ExitCode> {
    match command {
        StepCommand::Test {
            component,
            params,
            incident,
            allow,
            secrets,
            phase,
            timeout,
            json,
            journal,
        } => {
            let args = test::TestArgs {
                component,
                params,
                incident,
                allow,
                secrets,
                phase,
                timeout,
                json,
                journal,
            };
            test::run(ctx, args).await
        }
        StepCommand::New { name, lang, dir } => new::run(&name, &lang, dir),
        StepCommand::Build { dir } => build::run(ctx, &dir),
    }
}
