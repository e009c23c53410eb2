//! `medic`: run incident workflows whose steps are sandboxed Wasm components.
//!
//! ```text
//! medic run examples/checkout-flag/workflow.yaml --alert examples/checkout-flag/alert.json
//! medic runs
//! medic runs show <RUN> --journal
//! medic approve <RUN> <GATE-STEP> --comment "error rate is back to normal"
//! medic postmortem <RUN|INCIDENT> --format md -o postmortem.md
//! medic validate workflow.yaml
//! medic schema > medic-workflow.schema.json
//! medic drill record <RUN> -o drills/bad-flag.yaml && medic drill run drills/bad-flag.yaml --fault retoggle=503x5
//! medic step new my-step --lang rust && medic step test my-step/dist/my-step.wasm
//! ```

mod app;
mod drill;
mod environment;
mod gate;
mod load;
mod postmortem;
mod resolve;
mod runs;
mod serve;
mod step;
mod step_tls;
mod validate;

use clap::{Parser, Subcommand};
// jemalloc, tuned, as this binary's allocator (engine/alloc).
use medic_alloc as _;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "medic",
    version,
    about = "Incident workflows that run themselves: detect, communicate, restore, verify, follow up."
)]
struct Cli {
    /// Where medic keeps its store and compile cache.
    #[arg(long, global = true, env = "MEDIC_DATA", value_name = "DIR")]
    data: Option<PathBuf>,
    /// Where compiled components are cached (default: <data>/cache).
    #[arg(long, global = true, env = "MEDIC_CACHE", value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Directories searched for step components named in `uses:` (repeatable).
    /// Also: MEDIC_STEPS (colon-separated), <workflow dir>/steps, <data>/steps.
    #[arg(long = "steps", global = true, value_name = "DIR")]
    steps: Vec<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a workflow for an alert, to the end. Resumes unfinished runs first.
    Run {
        workflow: PathBuf,
        /// The alert: medic's alert JSON or an Alertmanager webhook payload.
        #[arg(long, value_name = "ALERT.json")]
        alert: PathBuf,
        /// The environment: `[vars]`, `[[tls]]`, `[kubernetes]` and `[secrets]` of a
        /// medic.toml (the file `medic serve` reads).
        #[arg(long, value_name = "medic.toml")]
        config: Option<PathBuf>,
    },
    /// Resume every unfinished run (after a crash or restart).
    Resume {
        /// The environment the runs were started in (see `medic run --config`).
        #[arg(long, value_name = "medic.toml")]
        config: Option<PathBuf>,
    },
    /// List runs, or show one.
    Runs {
        #[command(subcommand)]
        show: Option<RunsCommand>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Only runs that ended (or stand) so: running, succeeded, failed, cancelled
        /// (the incident resolved by itself and the steps left were cancelled).
        #[arg(long, value_name = "STATUS")]
        status: Option<String>,
    },
    /// Check workflow files: syntax, references, components and their params.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Check against an environment: its vars, TLS settings and kubeconfig context.
        #[arg(long, value_name = "medic.toml")]
        config: Option<PathBuf>,
        /// Refuse what is allowed but unsafe, such as TLS without certificate checks.
        #[arg(long)]
        strict: bool,
    },
    /// Print the JSON Schema of the workflow file format (for editors).
    Schema {
        /// The drill file format's schema instead.
        #[arg(long)]
        drill: bool,
    },
    /// Rewrite the store into a fresh database to give back the disk space removed runs
    /// took (sled reuses freed space but never shrinks its files). Stop `medic serve`
    /// first: the store must not be in use.
    Compact,
    /// Approve a human gate that is waiting.
    Approve(DecideCli),
    /// Reject a human gate that is waiting.
    Reject(DecideCli),
    /// Run as a service: alerts from Alertmanager, Grafana, PagerDuty or generic webhooks
    /// start the matching workflows.
    Serve {
        /// Executor config (TOML): tokens, secrets, limits, concurrency, sources.
        #[arg(long, value_name = "medic.toml")]
        config: PathBuf,
        /// Directory of workflow files.
        #[arg(long, value_name = "DIR")]
        workflows: PathBuf,
        /// Listen address, overriding the config (default 127.0.0.1:8730).
        #[arg(long, value_name = "HOST:PORT")]
        listen: Option<String>,
    },
    /// Drills: replay a past incident against today's workflows in virtual time, with
    /// faults: `medic drill record|run|test`.
    Drill {
        #[command(subcommand)]
        command: drill::DrillCommand,
    },
    /// Write a blameless postmortem draft of a run, or of every run of an incident.
    Postmortem {
        /// A run id, or an incident id (all its runs, merged into one timeline).
        id: String,
        /// md (the draft), json (the facts), html (a page) or svg (the timeline picture).
        #[arg(long, default_value = "md", value_name = "md|json|html|svg")]
        format: String,
        /// Write here instead of stdout (Markdown also writes the picture beside it, .svg).
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        /// The team's Markdown template (minijinja; variables in docs/postmortems.md).
        #[arg(long, value_name = "FILE")]
        template: Option<PathBuf>,
        /// Executor config: `external_url` for links, `[postmortem] template`.
        #[arg(long, env = "MEDIC_CONFIG", value_name = "medic.toml")]
        config: Option<PathBuf>,
    },
    /// Write, build and try out steps: `medic step new|build|test`.
    Step {
        #[command(subcommand)]
        command: step::StepCommand,
    },
}

#[derive(clap::Args)]
struct DecideCli {
    /// The run (see `medic runs`).
    run: String,
    /// The gate step's id.
    step: String,
    /// Why, for the timeline and the postmortem.
    #[arg(long, short)]
    comment: Option<String>,
    /// Who decides (default: the token's user with --server, else $USER).
    #[arg(long = "as", value_name = "NAME")]
    by: Option<String>,
    /// A running `medic serve` to decide through, e.g. http://127.0.0.1:8730. Without it
    /// the decision is written to the local store (which must not be in use).
    #[arg(long, env = "MEDIC_SERVER", value_name = "URL")]
    server: Option<String>,
    /// API token for --server.
    #[arg(long, env = "MEDIC_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

impl DecideCli {
    fn into_args(self) -> gate::DecideArgs {
        gate::DecideArgs {
            run: self.run,
            step: self.step,
            comment: self.comment,
            by: self.by,
            server: self.server,
            token: self.token,
        }
    }
}

#[derive(Subcommand)]
enum RunsCommand {
    /// Show a run: status, steps, timeline.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
        /// Print every journal entry (host calls included; secrets are never recorded).
        #[arg(long)]
        journal: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    let result = rt.block_on(dispatch(cli));
    match result {
        Ok(code) => code,
        Err(e) => {
            // `{:#}` prints the cause chain on one line, without a backtrace.
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let ctx = app::Ctx::new(cli.data, cli.cache, cli.steps)?;
    match cli.command {
        Command::Run {
            workflow,
            alert,
            config,
        } => app::run(&ctx.with_config(config.as_deref())?, &workflow, &alert).await,
        Command::Resume { config } => app::resume(&ctx.with_config(config.as_deref())?).await,
        Command::Runs {
            show: None,
            json,
            status,
        } => runs::list(&ctx, json, status.as_deref()),
        Command::Runs {
            show: Some(RunsCommand::Show { id, json, journal }),
            json: json_outer,
            ..
        } => runs::show(&ctx, &id, json || json_outer, journal),
        Command::Validate {
            files,
            config,
            strict,
        } => validate::validate(&ctx.with_config(config.as_deref())?, &files, strict).await,
        Command::Serve {
            config,
            workflows,
            listen,
        } => serve::serve(&ctx, &config, &workflows, listen).await,
        Command::Compact => {
            let path = ctx.data.join("store");
            let c = medic_store::SledStore::compact(&path)?;
            println!(
                "store {} compacted: {} -> {} bytes",
                path.display(),
                c.before,
                c.after
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Approve(a) => gate::decide(&ctx, medic_model::Decision::Approve, a.into_args()),
        Command::Reject(a) => gate::decide(&ctx, medic_model::Decision::Reject, a.into_args()),
        Command::Step { command } => step::dispatch(&ctx, command).await,
        Command::Drill { command } => drill::dispatch(&ctx, command).await,
        Command::Postmortem {
            id,
            format,
            output,
            template,
            config,
        } => postmortem::postmortem(
            &ctx,
            postmortem::Args {
                id,
                format,
                output,
                template,
                config,
            },
        ),
        Command::Schema { drill } => {
            let schema = if drill {
                medic_drill::drill_schema()
            } else {
                medic_model::workflow_schema()
            };
            println!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
