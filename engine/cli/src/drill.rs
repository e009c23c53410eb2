//! `medic drill`: record a run as a drill file, replay it against today's workflows in
//! virtual time (with faults, other decisions, a fork, a crash), and run a folder of
//! drills as a suite.

use crate::app::Ctx;
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use medic_core::{EnvSecrets, JournalStore, Redactor, SecretSource};
use medic_drill::{DecideOverride, DrillFile, Env, Fault, Offset, Options, Report, Setup, Syntax};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

#[derive(Subcommand)]
pub enum DrillCommand {
    /// Write a drill file from a run: the incident, its updates, gate decisions, every
    /// provider exchange, the workflow and how it went. Secrets stay placeholders.
    Record {
        /// The run (see `medic runs`).
        run: String,
        /// Where to write it; `.json` writes JSON, anything else YAML (default: stdout, YAML).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// The drill's name (default: workflow and incident title).
        #[arg(long)]
        name: Option<String>,
        /// The address people reached medic at when the run happened (`external_url` of
        /// the medic.toml it ran with), so `run.url` and `run.postmortem_url` in templates
        /// are the same in the replay.
        #[arg(long, env = "MEDIC_EXTERNAL_URL", value_name = "URL")]
        external_url: Option<String>,
    },
    /// Replay a drill against a workflow (default: the one it names or recorded) in
    /// virtual time, every request answered from the recording, and compare.
    Run(RunArgs),
    /// Run every drill file in DIR against the current workflows; one row per drill.
    /// Exit status 1 when any did worse than its recording.
    Test {
        dir: PathBuf,
        /// Workflows to run instead of the ones the drills name (a file or a folder).
        #[arg(long, value_name = "FILE|DIR")]
        workflow: Option<PathBuf>,
        /// Also fail on divergence.
        #[arg(long)]
        strict: bool,
    },
}

#[derive(Args)]
pub struct RunArgs {
    /// The drill file (YAML or JSON).
    file: PathBuf,
    /// Today's workflow: a file, or a folder holding one with the recorded name.
    #[arg(long, value_name = "FILE|DIR")]
    workflow: Option<PathBuf>,
    /// A gate's decision instead of the recorded one: STEP=approve|reject|deadline[@AFTER].
    #[arg(long, value_name = "STEP=DECISION[@AFTER]")]
    decide: Vec<String>,
    /// A fault: TARGET=KIND[xN], e.g. undo=503x3, flag=timeout, 'GET /health=latency:20s'.
    #[arg(long, value_name = "TARGET=KIND")]
    fault: Vec<String>,
    /// An incident status change: resolved@OFFSET or firing@OFFSET (repeat to flap).
    #[arg(long, value_name = "STATUS@OFFSET")]
    incident: Vec<String>,
    /// Fork: keep the recorded history until OFFSET (or until recorded exchange #N), then
    /// apply --decide and --fault.
    #[arg(long, value_name = "OFFSET|#N")]
    from: Option<String>,
    /// Stop medic at journal write N of the drill run, then resume it.
    #[arg(long, value_name = "N")]
    crash_at: Option<u64>,
    /// Pace virtual time at N x real time and print the timeline as it happens.
    #[arg(long, value_name = "N")]
    speed: Option<f64>,
    /// Send requests to the real services (a game day against staging). Secrets come
    /// from MEDIC_SECRET_<NAME>.
    #[arg(long)]
    live: bool,
    /// The report as JSON.
    #[arg(long)]
    json: bool,
    /// Exit status 1 also when the replay diverged from the recording.
    #[arg(long)]
    strict: bool,
}

pub async fn dispatch(ctx: &Ctx, command: DrillCommand) -> Result<ExitCode> {
    match command {
        DrillCommand::Record {
            run,
            output,
            name,
            external_url,
        } => record(ctx, &run, output, name, external_url),
        DrillCommand::Run(args) => run(ctx, args).await,
        DrillCommand::Test {
            dir,
            workflow,
            strict,
        } => test(ctx, &dir, workflow.as_deref(), strict).await,
    }
}

fn record(
    ctx: &Ctx,
    run: &str,
    output: Option<PathBuf>,
    name: Option<String>,
    external_url: Option<String>,
) -> Result<ExitCode> {
    let store = ctx.store()?;
    let entries = store.entries(run)?;
    if entries.is_empty() {
        bail!("no run {run} (see `medic runs`)");
    }
    // Secret values this process knows are redacted again, in case one reached the
    // journal some way the engine could not see.
    let redactor = Redactor::new(
        std::env::vars()
            .filter_map(|(k, v)| k.strip_prefix("MEDIC_SECRET_").map(|n| (n.to_string(), v))),
    );
    let mut drill = medic_drill::record(run, &entries, &redactor)?;
    if let Some(n) = name {
        drill.name = n;
    }
    drill.external_url = external_url;
    match output {
        Some(path) => {
            let text = medic_drill::write(&drill, Syntax::for_path(&path));
            std::fs::write(&path, &text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "drill written to {} ({} exchanges, {} bytes); replay it with `medic drill run {}`",
                path.display(),
                drill.exchanges.len(),
                text.len(),
                path.display()
            );
        }
        None => print!("{}", medic_drill::write(&drill, Syntax::Yaml)),
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads and parses a drill file.
fn load(path: &Path) -> Result<DrillFile> {
    let src = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read drill file {}", path.display()))?;
    Ok(medic_drill::parse(&path.display().to_string(), &src)?)
}

/// The workflow to run: `--workflow` (a file, or the file in a folder with the drill's
/// workflow name), else the drill's `workflow_file`, else the recorded workflow.
fn setup(
    ctx: &Ctx,
    drill: &DrillFile,
    drill_path: &Path,
    workflow: Option<&Path>,
) -> Result<Setup> {
    let file = match workflow {
        Some(p) if p.is_dir() => Some(find_in_dir(ctx, p, drill, drill_path)?),
        Some(p) => Some(p.to_path_buf()),
        None => drill
            .workflow_file
            .as_ref()
            .map(|f| drill_path.parent().unwrap_or(Path::new(".")).join(f)),
    };
    if let Some(file) = file {
        let loaded =
            crate::load::load_workflow(ctx, &file).map_err(|p| anyhow::anyhow!(p.join("\n")))?;
        return Ok(Setup {
            workflow: loaded.workflow,
            workflow_file: file.display().to_string(),
            components: loaded.components,
        });
    }
    let Some(workflow) = drill.workflow.clone() else {
        bail!(
            "{}: the drill has neither `workflow_file` nor `workflow`; pass --workflow FILE",
            drill_path.display()
        );
    };
    let dir = drill_path.parent().unwrap_or(Path::new("."));
    let dirs = ctx.step_dirs(dir);
    let mut components = std::collections::BTreeMap::new();
    for s in workflow.steps.iter().filter(|s| !s.is_gate()) {
        let p = crate::resolve::component(&s.uses, dir, &dirs)
            .with_context(|| format!("step {}", s.id))?;
        components.insert(s.id.clone(), p.display().to_string());
    }
    Ok(Setup {
        workflow,
        workflow_file: "as recorded".into(),
        components,
    })
}

/// The workflow file in `dir` with the drill's workflow name (the recorded workflow's, or
/// the one its `workflow_file` has).
fn find_in_dir(ctx: &Ctx, dir: &Path, drill: &DrillFile, drill_path: &Path) -> Result<PathBuf> {
    let name = match (&drill.workflow, &drill.workflow_file) {
        (Some(w), _) => w.name.clone(),
        (None, Some(f)) => {
            let file = drill_path.parent().unwrap_or(Path::new(".")).join(f);
            crate::load::load_workflow(ctx, &file)
                .map_err(|p| anyhow::anyhow!(p.join("\n")))?
                .workflow
                .name
        }
        (None, None) => bail!("the drill names no workflow; pass --workflow FILE"),
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    for f in &files {
        if let Ok(l) = crate::load::load_workflow(ctx, f)
            && l.workflow.name == name
        {
            return Ok(f.clone());
        }
    }
    bail!("no workflow named {name} in {}", dir.display())
}

fn options(args: &RunArgs, drill: &DrillFile) -> Result<Options> {
    let decide = args
        .decide
        .iter()
        .map(|d| DecideOverride::parse(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let faults = args
        .fault
        .iter()
        .map(|f| Fault::parse(f))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let mut incident_updates = Vec::new();
    for spec in &args.incident {
        let (status, at) = spec
            .split_once('@')
            .with_context(|| format!("--incident {spec}: write STATUS@OFFSET, e.g. resolved@5m"))?;
        let status = match status {
            "resolved" => medic_model::IncidentStatus::Resolved,
            "firing" => medic_model::IncidentStatus::Firing,
            other => bail!("--incident {spec}: `{other}` is not resolved or firing"),
        };
        let at = Offset::parse(at)
            .with_context(|| format!("--incident {spec}: `{at}` is not a duration"))?;
        incident_updates.push(medic_drill::format::IncidentUpdate { at, status });
    }
    let from = match &args.from {
        None => Offset(0),
        Some(s) => match s.strip_prefix('#') {
            Some(n) => {
                let n: usize = n
                    .parse()
                    .with_context(|| format!("--from {s}: not a number"))?;
                drill
                    .exchanges
                    .get(n.saturating_sub(1))
                    .map(|e| e.at)
                    .with_context(|| {
                        format!(
                            "--from {s}: the drill has {} exchanges",
                            drill.exchanges.len()
                        )
                    })?
            }
            None => Offset::parse(s)
                .with_context(|| format!("--from {s}: write an offset (12m) or #N (exchange N)"))?,
        },
    };
    Ok(Options {
        decide,
        faults,
        incident_updates,
        live: args.live,
        crash_at: args.crash_at,
        from,
        speed: args.speed,
        people: None,
    })
}

async fn run(ctx: &Ctx, args: RunArgs) -> Result<ExitCode> {
    let drill = load(&args.file)?;
    let setup = setup(ctx, &drill, &args.file, args.workflow.as_deref())?;
    let mut opts = options(&args, &drill)?;
    let store: Arc<dyn JournalStore> = ctx.store()?;
    // A game day: gates wait for people, who reach the drill with `medic approve`.
    if args.speed.is_some() {
        opts.people = Some(ctx.data.join(medic_drill::live::LIVE_DIR));
    }
    let observer = args
        .speed
        .map(|speed| timeline_observer(speed, ctx.data.clone()));
    let secrets: Option<Arc<dyn SecretSource>> = args.live.then(|| Arc::new(EnvSecrets) as _);
    let env = Env {
        store: Some(store),
        runner: ctx.sandbox()?,
        secrets,
        observer,
    };
    let replay = medic_drill::replay::run(&drill, &setup, &opts, &env).await?;
    let report = Report::new(&drill, &setup, &opts, &replay)?;
    if args.json {
        print!("{}", report.json());
    } else {
        print!("{}", report.text());
    }
    if let Some(id) = &replay.kept_as {
        eprintln!("drill run kept as {id} (medic runs show {id})");
    }
    let failed = report.replay.time_to_restore.is_none() || (args.strict && report.diverged());
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Prints each journal entry of the drill run as a timeline line, on stderr (the report
/// goes to stdout), and at each gate how people decide it.
fn timeline_observer(speed: f64, data: PathBuf) -> medic_core::Observer {
    let timeline = std::sync::Mutex::new(medic_core::timeline::Timeline::new());
    Arc::new(move |meta, entry| {
        let run = &meta.id;
        if let medic_core::Event::RunCreated(_) = &entry.event {
            eprintln!(
                "drill run {run}: a game day at {speed}x real time; gates wait for people \
                 (medic --data {} approve|reject {run} STEP --as NAME)",
                data.display()
            );
        }
        if let Some(line) = timeline.lock().expect("timeline lock").line(entry) {
            eprintln!("{line}");
        }
        if let medic_core::Event::GateOpened {
            step,
            deadline_ms,
            on_deadline,
            ..
        } = &entry.event
        {
            let left = deadline_ms.saturating_sub(entry.at_ms);
            eprintln!(
                "  waiting for people: medic approve {run} {step} (or reject); nobody within {} \
                 of drill time ({:.0} s real): {}",
                Offset(left),
                left as f64 / 1000.0 / speed,
                on_deadline.past()
            );
        }
    })
}

async fn test(ctx: &Ctx, dir: &Path, workflow: Option<&Path>, strict: bool) -> Result<ExitCode> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            )
        })
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no drill files (*.yaml, *.json) in {}", dir.display());
    }
    let store: Arc<dyn JournalStore> = ctx.store()?;
    let runner = ctx.sandbox()?;
    println!(
        "{:<28} {:<6} {:<22} {:<10} {:<10} {:>8}",
        "DRILL", "RESULT", "VERDICT", "RESTORE", "VERIFIED", "WALL"
    );
    let mut bad = 0;
    for file in &files {
        let shown = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let started = Instant::now();
        let result = async {
            let drill = load(file)?;
            let setup = setup(ctx, &drill, file, workflow)?;
            let opts = Options::default();
            let env = Env {
                store: Some(store.clone()),
                runner: runner.clone(),
                secrets: None,
                observer: None,
            };
            let replay = medic_drill::replay::run(&drill, &setup, &opts, &env).await?;
            anyhow::Ok(Report::new(&drill, &setup, &opts, &replay)?)
        }
        .await;
        let wall = format!("{:.2}s", started.elapsed().as_secs_f64());
        match result {
            Ok(r) => {
                let failed = r.regressed() || (strict && r.diverged());
                bad += usize::from(failed);
                let t = |o: Option<Offset>| o.map(|d| d.to_string()).unwrap_or_else(|| "-".into());
                println!(
                    "{:<28} {:<6} {:<22} {:<10} {:<10} {:>8}",
                    shown,
                    if failed { "FAIL" } else { "ok" },
                    r.verdict.as_str(),
                    t(r.replay.time_to_restore),
                    t(r.replay.time_to_verified),
                    wall
                );
                if failed {
                    let why = r.blocked_by.clone().unwrap_or_else(|| {
                        if r.regressed() {
                            "verified before, not verified now".into()
                        } else {
                            format!("{} divergence(s)", r.divergences.len())
                        }
                    });
                    println!("  {why}");
                    if let Some(d) = r.divergences.first() {
                        println!(
                            "  first divergence: step {}: {} (closest recorded: {}; {})",
                            d.step,
                            d.request,
                            d.closest.as_deref().unwrap_or("none"),
                            d.difference
                        );
                    }
                }
            }
            Err(e) => {
                bad += 1;
                println!("{shown:<28} {:<6} {e:#}", "ERROR");
            }
        }
    }
    println!("\n{} drills, {} failed", files.len(), bad);
    Ok(if bad > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
