//! `paracle run ...`, `paracle workflow ...` and `paracle quickstart`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::output::{print_json, print_table};
use paracle_cluster::NatsExecutor;
use paracle_contract::{Event, EventKind};
use paracle_distribution::template::{builtin, install};
use paracle_distribution::Access;
use paracle_orchestrator::human_ms;
use paracle_orchestrator::run::{AgentStatus, PhaseStatus, RunState, RunStatus};
use paracle_orchestrator::{quickstart, Orchestrator, RunOptions, RunView};
use paracle_project::{ExecutorKind, ExecutorSettings, Registry};
use paracle_telemetry::Telemetry;

use super::project::open;

#[derive(Subcommand)]
pub(super) enum RunCommand {
    /// Start a run of WORKFLOW (from .paracle/workflows/); `run next` runs its phases.
    Start {
        workflow: String,
        /// The task for the agents, instead of the workflow's own.
        #[arg(long)]
        input: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Run the next phase, or finish one that was interrupted.
    Next {
        #[command(flatten)]
        run: RunArg,
        #[command(flatten)]
        options: ExecArgs,
        #[arg(long)]
        json: bool,
    },
    /// Where a run stands: phases, agents, and what to do next.
    Status {
        #[command(flatten)]
        run: RunArg,
        #[arg(long)]
        json: bool,
    },
    /// Every run of the project.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Approve the phase awaiting approval; the run moves on.
    Approve {
        #[command(flatten)]
        run: RunArg,
        #[arg(long, default_value = "")]
        reason: String,
        #[arg(long)]
        json: bool,
    },
    /// Reject the phase awaiting approval, saying why.
    Reject {
        #[command(flatten)]
        run: RunArg,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        json: bool,
    },
    /// Run a phase again: all its agents, or only --agent.
    Retry {
        #[command(flatten)]
        run: RunArg,
        #[arg(long)]
        phase: String,
        #[arg(long)]
        agent: Option<String>,
        #[command(flatten)]
        options: ExecArgs,
        #[arg(long)]
        json: bool,
    },
    /// Point the run back at PHASE. Writes an advisory; changes no file.
    Rollback {
        #[command(flatten)]
        run: RunArg,
        #[arg(long)]
        phase: String,
        #[arg(long)]
        json: bool,
    },
    /// Phase and agent metrics; writes metrics.json and metrics.prom.
    Metrics {
        #[command(flatten)]
        run: RunArg,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub(super) struct RunArg {
    /// The run (default: the newest).
    #[arg(long = "run", value_name = "RUN_ID")]
    id: Option<String>,
}

#[derive(Args)]
pub(super) struct ExecArgs {
    /// Run the phase's agents concurrently even if it does not ask for it.
    #[arg(long)]
    parallel: bool,
    /// At most N agents at once (under `max_parallel_agents`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_workers: Option<u32>,
    /// Time each agent attempt may take: seconds, or like `90s`, `5m`.
    #[arg(long, value_name = "S", value_parser = parse_timeout)]
    timeout: Option<Duration>,
    /// Where the agents run: `local` (this process) or `nats` (workers
    /// started with `paracle worker`). Default: `[executor]` in
    /// .paracle/config.toml, else local.
    #[arg(long, value_name = "KIND", value_parser = ["local", "nats"])]
    executor: Option<String>,
    /// The NATS server the workers pull from (implies `--executor nats`).
    #[arg(long, value_name = "URL")]
    nats: Option<String>,
}

/// How long `run next` waits for the NATS server to answer.
const NATS_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) fn parse_timeout(text: &str) -> Result<Duration, String> {
    let duration = match text.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds.is_finite() => Duration::from_secs_f64(seconds),
        Ok(_) => return Err("the timeout must be more than zero".into()),
        Err(_) => humantime::parse_duration(text)
            .map_err(|e| format!("`{text}` is not a duration ({e}); try `30` or `5m`"))?,
    };
    if duration.is_zero() {
        return Err("the timeout must be more than zero".into());
    }
    Ok(duration)
}

impl ExecArgs {
    /// The NATS server to send agents to, when they go to workers: from the
    /// flags, else from `[executor]`.
    fn nats_url(&self, settings: &ExecutorSettings) -> Result<Option<String>> {
        let kind = match (self.executor.as_deref(), &self.nats) {
            (Some("local"), Some(_)) => {
                bail!("--nats sends agents to workers; it does not go with --executor local")
            }
            (Some("local"), None) => ExecutorKind::Local,
            (Some(_), _) | (None, Some(_)) => ExecutorKind::Nats,
            (None, None) => settings.kind,
        };
        if kind == ExecutorKind::Local {
            return Ok(None);
        }
        let url = self.nats.clone().or_else(|| settings.nats.clone()).ok_or_else(|| {
            anyhow!("--executor nats needs the server: `--nats nats://HOST:4222`, or `nats =` in the [executor] table of .paracle/config.toml")
        })?;
        if !paracle_project::settings::valid_nats_url(&url) {
            bail!("`{url}` is not a NATS server's address; write it like `nats://127.0.0.1:4222`");
        }
        Ok(Some(url))
    }

    fn options(&self) -> RunOptions {
        RunOptions {
            parallel: self.parallel,
            max_workers: self.max_workers.map(|n| n as usize),
            timeout: self.timeout,
        }
    }
}

#[derive(Subcommand)]
pub(super) enum WorkflowCommand {
    /// The project's workflows, each checked in full.
    List {
        #[arg(long)]
        json: bool,
    },
    /// A workflow's phases and agents, resolved.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub(super) struct QuickstartArgs {
    /// The kind of project: webapp, analytics or ml.
    #[arg(long = "type", value_name = "TYPE", value_parser = ["webapp", "analytics", "ml"])]
    kind: String,
    /// The project's name; also the workflow's.
    #[arg(long)]
    name: String,
    /// Overwrite spec files that exist with other content. In config.toml
    /// only the [orchestrator] table is replaced; other tables are kept.
    #[arg(long)]
    force: bool,
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(project: &Path, command: RunCommand) -> Result<()> {
    let registry = open(project)?;
    let json = match &command {
        RunCommand::Start { json, .. }
        | RunCommand::Next { json, .. }
        | RunCommand::Status { json, .. }
        | RunCommand::List { json }
        | RunCommand::Approve { json, .. }
        | RunCommand::Reject { json, .. }
        | RunCommand::Retry { json, .. }
        | RunCommand::Rollback { json, .. }
        | RunCommand::Metrics { json, .. } => *json,
    };
    let telemetry = super::telemetry::start(registry.settings().telemetry_endpoint.as_deref())?;
    let mut orchestrator = orchestrator(&registry, json, telemetry.clone())?;
    let exec = match &command {
        RunCommand::Next { options, .. } | RunCommand::Retry { options, .. } => Some(options),
        _ => None,
    };
    if let Some(url) = exec
        .map(|options| options.nats_url(&registry.settings().executor))
        .transpose()?
        .flatten()
    {
        // Before the run is touched: a server that cannot be reached
        // changes nothing.
        let executor = NatsExecutor::connect(&url, NATS_CONNECT_TIMEOUT).await?;
        orchestrator = orchestrator.with_executor(Arc::new(executor));
    }
    let result = super::asking::with_terminal(&registry, dispatch(&orchestrator, command)).await;
    super::telemetry::finish(telemetry).await;
    let result = result?;
    if let Err(error) = registry.persist_stats() {
        eprintln!("warning: statistics not saved: {error}");
    }
    result
}

/// An orchestrator that shows progress on stderr, unless the output is JSON,
/// and makes spans of its events when telemetry is on.
fn orchestrator(
    registry: &Registry,
    json: bool,
    telemetry: Option<Arc<Telemetry>>,
) -> Result<Orchestrator<'_>> {
    let orchestrator = Orchestrator::new(registry);
    if json {
        return Ok(match telemetry {
            Some(telemetry) => {
                orchestrator.with_listener(Arc::new(move |event| telemetry.on_event(event)))
            }
            None => orchestrator,
        });
    }
    let terminal = std::io::stderr().is_terminal();
    let progress = Arc::new(Progress::new(terminal));
    if terminal {
        // Keep the elapsed time moving while agents think.
        let ticking = progress.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(500));
            loop {
                every.tick().await;
                ticking.redraw();
            }
        });
    }
    Ok(orchestrator.with_listener(Arc::new(move |event| {
        progress.on_event(event);
        if let Some(telemetry) = &telemetry {
            telemetry.on_event(event);
        }
    })))
}

async fn dispatch(orchestrator: &Orchestrator<'_>, command: RunCommand) -> Result<()> {
    match command {
        RunCommand::Start {
            workflow,
            input,
            json,
        } => {
            let state = orchestrator.start(&workflow, input).await?;
            let view = orchestrator.status(Some(&state.id))?;
            if json {
                print_json(&view.to_json(orchestrator.runs()));
            } else {
                println!(
                    "Started run {} of `{}` ({} phases).",
                    state.id,
                    state.workflow.name,
                    state.phases.len()
                );
                println!(
                    "Workspace: {}",
                    orchestrator.runs().workspace(&state).display()
                );
                println!("Next: {}", view.next_step());
            }
        }
        RunCommand::Next { run, options, json } => {
            let state = orchestrator
                .next(run.id.as_deref(), &options.options())
                .await?;
            finish_phase(orchestrator, state, json)?;
        }
        RunCommand::Retry {
            run,
            phase,
            agent,
            options,
            json,
        } => {
            let state = orchestrator
                .retry(
                    run.id.as_deref(),
                    &phase,
                    agent.as_deref(),
                    &options.options(),
                )
                .await?;
            finish_phase(orchestrator, state, json)?;
        }
        RunCommand::Status { run, json } => {
            let view = orchestrator.status(run.id.as_deref())?;
            if json {
                print_json(&view.to_json(orchestrator.runs()));
            } else {
                print_view(orchestrator, &view);
            }
        }
        RunCommand::List { json } => list(orchestrator, json)?,
        RunCommand::Approve { run, reason, json } => {
            decide(orchestrator, run.id.as_deref(), true, &reason, json).await?
        }
        RunCommand::Reject { run, reason, json } => {
            if reason.trim().is_empty() {
                bail!("say why with --reason, so that whoever retries the phase knows");
            }
            decide(orchestrator, run.id.as_deref(), false, &reason, json).await?
        }
        RunCommand::Rollback { run, phase, json } => {
            let (state, advisory) = orchestrator.rollback(run.id.as_deref(), &phase)?;
            let view = orchestrator.status(Some(&state.id))?;
            if json {
                let mut value = view.to_json(orchestrator.runs());
                value["advisory"] = json!(advisory);
                print_json(&value);
            } else {
                println!(
                    "Run {} is back at phase `{phase}`. No file was changed.",
                    state.id
                );
                println!("Advisory: {}", advisory.display());
                println!("Next: {}", view.next_step());
            }
        }
        RunCommand::Metrics { run, json } => {
            let (state, metrics, [json_file, prom_file]) =
                orchestrator.metrics(run.id.as_deref())?;
            if json {
                let mut value = metrics;
                value["files"] = json!({ "json": json_file, "prometheus": prom_file });
                print_json(&value);
            } else {
                print_metrics(&state);
                println!(
                    "\nWrote {} and {}",
                    json_file.display(),
                    prom_file.display()
                );
            }
        }
    }
    Ok(())
}

/// Report a phase that `next` or `retry` ran. A required phase that failed
/// makes the command fail, so that scripts notice.
fn finish_phase(orchestrator: &Orchestrator<'_>, state: RunState, json: bool) -> Result<()> {
    let view = orchestrator.status(Some(&state.id))?;
    if json {
        print_json(&view.to_json(orchestrator.runs()));
    } else {
        print_view(orchestrator, &view);
    }
    if state.status == RunStatus::Failed {
        let phase = &state.phases[state.cursor];
        bail!(
            "phase `{}` failed: {} of {} agents failed{}; {}",
            phase.name,
            phase.failed(),
            phase.agents.len(),
            match &phase.validation {
                Some(v) if !v.missing.is_empty() =>
                    format!(", and nothing matches {}", v.missing.join(", ")),
                _ => String::new(),
            },
            view.next_step()
        );
    }
    Ok(())
}

async fn decide(
    orchestrator: &Orchestrator<'_>,
    run: Option<&str>,
    approved: bool,
    reason: &str,
    json: bool,
) -> Result<()> {
    let (state, file) = orchestrator.decide(run, approved, reason).await?;
    let view = orchestrator.status(Some(&state.id))?;
    if json {
        let mut value = view.to_json(orchestrator.runs());
        value["decision_file"] = json!(file);
        print_json(&value);
    } else {
        let verdict = if approved { "Approved" } else { "Rejected" };
        println!("{verdict}. Recorded in {}", file.display());
        println!("Next: {}", view.next_step());
    }
    Ok(())
}

fn list(orchestrator: &Orchestrator<'_>, json: bool) -> Result<()> {
    let runs = orchestrator.list()?;
    if json {
        let items: Vec<Value> = runs
            .iter()
            .map(|(id, view)| match view {
                Ok(view) => json!({
                    "id": id,
                    "workflow": view.state.workflow.name,
                    "status": view.status(),
                    "phase": view.state.phases.get(view.state.cursor).map(|p| &p.name),
                    "created_at": view.state.created_at,
                    "updated_at": view.state.updated_at,
                }),
                Err(error) => json!({ "id": id, "error": error.to_string() }),
            })
            .collect();
        print_json(&Value::Array(items));
        return Ok(());
    }
    if runs.is_empty() {
        println!("No runs yet. Start one with `paracle run start WORKFLOW`.");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|(id, view)| match view {
            Ok(view) => vec![
                id.clone(),
                view.state.workflow.name.clone(),
                view.status().to_string(),
                format!(
                    "{}/{}",
                    view.state.cursor.min(view.state.phases.len()),
                    view.state.phases.len()
                ),
                view.state.created_at.clone(),
            ],
            Err(error) => vec![
                id.clone(),
                "-".into(),
                format!("unreadable: {error}"),
                "-".into(),
                "-".into(),
            ],
        })
        .collect();
    print_table(
        &["run", "workflow", "status", "phases done", "created"],
        &rows,
    );
    Ok(())
}

fn print_view(orchestrator: &Orchestrator<'_>, view: &RunView) {
    let state = &view.state;
    println!(
        "Run {}  workflow `{}`  {}",
        state.id,
        state.workflow.name,
        view.status()
    );
    if let Some(phase) = &view.interrupted {
        println!("Phase `{phase}` was interrupted: its process stopped before the phase finished.");
    }
    println!(
        "Workspace: {}",
        orchestrator.runs().workspace(state).display()
    );
    println!();
    let rows: Vec<Vec<String>> = state
        .phases
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let ran = p.status != PhaseStatus::Pending;
            vec![
                format!(
                    "{}{}",
                    if i == state.cursor && state.status != RunStatus::Completed {
                        "> "
                    } else {
                        "  "
                    },
                    p.name
                ),
                p.status.as_str().to_string(),
                p.agents.len().to_string(),
                if ran {
                    p.succeeded().to_string()
                } else {
                    "-".into()
                },
                if ran {
                    p.failed().to_string()
                } else {
                    "-".into()
                },
                if ran {
                    human_ms(p.duration_ms)
                } else {
                    "-".into()
                },
                p.bundle.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print_table(
        &[
            "phase", "status", "agents", "ok", "failed", "duration", "bundle",
        ],
        &rows,
    );
    let agents: Vec<Vec<String>> = state
        .phases
        .iter()
        .filter(|p| p.status != PhaseStatus::Pending)
        .flat_map(|p| {
            p.agents.iter().map(move |a| {
                vec![
                    p.name.clone(),
                    a.name.clone(),
                    a.status.as_str().to_string(),
                    a.attempts.to_string(),
                    if a.status == AgentStatus::Pending {
                        "-".into()
                    } else {
                        human_ms(a.duration_ms)
                    },
                    match (&a.failure, &a.error) {
                        (Some(kind), Some(error)) => {
                            format!("{}: {}", kind.as_str(), one_line(error, 100))
                        }
                        _ => a.artifacts.join(", "),
                    },
                ]
            })
        })
        .collect();
    if !agents.is_empty() {
        println!();
        print_table(
            &[
                "phase",
                "agent",
                "status",
                "attempts",
                "duration",
                "artifacts / error",
            ],
            &agents,
        );
    }
    println!("\nNext: {}", view.next_step());
}

/// The first line of a plugin's text, escaped and clipped for a terminal.
fn one_line(text: &str, max: usize) -> String {
    paracle_base::shown::clipped(text.lines().next().unwrap_or(""), max)
}

fn print_metrics(state: &RunState) {
    println!(
        "Run {}  workflow `{}`  {}\n",
        state.id,
        state.workflow.name,
        state.status.as_str()
    );
    let phases: Vec<Vec<String>> = state
        .phases
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.status.as_str().to_string(),
                format!("{}/{}", p.succeeded(), p.agents.len()),
                p.agents.iter().map(|a| a.attempts).sum::<u32>().to_string(),
                human_ms(p.duration_ms),
                p.validation
                    .as_ref()
                    .map(|v| format!("{} found, {} missing", v.found.len(), v.missing.len()))
                    .unwrap_or_else(|| "-".into()),
                p.hygiene
                    .as_ref()
                    .map(|h| h.summary())
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    print_table(
        &[
            "phase",
            "status",
            "ok",
            "attempts",
            "duration",
            "artifacts",
            "hygiene",
        ],
        &phases,
    );
    println!();
    let agents: Vec<Vec<String>> = state
        .phases
        .iter()
        .flat_map(|p| {
            p.agents.iter().map(move |a| {
                vec![
                    p.name.clone(),
                    a.name.clone(),
                    a.status.as_str().to_string(),
                    a.attempts.to_string(),
                    human_ms(a.duration_ms),
                    human_ms(a.total_ms),
                    a.tokens.prompt.to_string(),
                    a.tokens.completion.to_string(),
                    a.steps.to_string(),
                    a.tool_calls.to_string(),
                ]
            })
        })
        .collect();
    print_table(
        &[
            "phase",
            "agent",
            "status",
            "attempts",
            "last",
            "total",
            "prompt tok",
            "compl tok",
            "steps",
            "tools",
        ],
        &agents,
    );
}

pub(super) async fn workflow(project: &Path, command: WorkflowCommand) -> Result<()> {
    let registry = open(project)?;
    let orchestrator = Orchestrator::new(&registry);
    match command {
        WorkflowCommand::List { json } => {
            let workflows = orchestrator.workflows().await?;
            if json {
                print_json(&Value::Array(
                    workflows
                        .iter()
                        .map(|w| json!({ "name": w.name, "description": w.description, "phases": w.phases }))
                        .collect(),
                ));
            } else if workflows.is_empty() {
                println!("No workflows yet. Write one in .paracle/workflows/, or run `paracle quickstart`.");
            } else {
                let rows: Vec<Vec<String>> = workflows
                    .iter()
                    .map(|w| vec![w.name.clone(), w.phases.join(" → "), w.description.clone()])
                    .collect();
                print_table(&["workflow", "phases", "description"], &rows);
            }
        }
        WorkflowCommand::Show { name, json } => {
            let workflow = orchestrator.workflow(&name).await?;
            if json {
                print_json(&serde_json::to_value(&workflow).expect("workflows serialise"));
            } else {
                println!("Workflow `{}`: {}", workflow.name, workflow.description);
                println!("Task: {}\n", workflow.task);
                let rows: Vec<Vec<String>> = workflow
                    .phases
                    .iter()
                    .map(|p| {
                        let mut flags = Vec::new();
                        if p.parallel {
                            flags.push("parallel".to_string());
                        }
                        if p.requires_approval {
                            flags.push("approval".into());
                        }
                        if p.optional {
                            flags.push("optional".into());
                        }
                        if p.retry.attempts > 1 {
                            flags.push(format!("{} attempts", p.retry.attempts));
                        }
                        vec![
                            p.name.clone(),
                            p.agents.join(", "),
                            flags.join(", "),
                            p.artifacts.join(", "),
                        ]
                    })
                    .collect();
                print_table(&["phase", "agents", "flags", "artifacts"], &rows);
                println!();
                let rows: Vec<Vec<String>> = workflow
                    .agents
                    .values()
                    .map(|a| {
                        let tools: Vec<String> = a
                            .tools
                            .iter()
                            .map(|(plugin, only)| {
                                if only.is_empty() {
                                    plugin.clone()
                                } else {
                                    format!(
                                        "{plugin}/{{{}}}",
                                        only.iter().cloned().collect::<Vec<_>>().join(",")
                                    )
                                }
                            })
                            .collect();
                        vec![
                            a.name.clone(),
                            a.adapter.clone(),
                            a.provider.clone(),
                            tools.join(", "),
                            a.memory.clone().unwrap_or_else(|| "none".into()),
                        ]
                    })
                    .collect();
                print_table(&["agent", "adapter", "provider", "tools", "memory"], &rows);
            }
        }
    }
    Ok(())
}

/// Write a project, start a run, run its planning phase, and stop at the
/// approval gate.
pub(super) async fn quickstart(project: &Path, args: QuickstartArgs) -> Result<()> {
    // Opened first, so that a project that cannot be opened is left as it
    // was; read again after writing, so that the run uses the settings
    // quickstart just wrote.
    let mut registry = open(project)?;
    let state_dir = registry.paths().state.clone();
    // Both checked before either is written: a refusal leaves the project as it was.
    let config = quickstart::config_change(&state_dir, args.force)?;
    let template = builtin::builtin(&args.kind, &args.name)?;
    let label = format!("{}:{}", builtin::BUILTIN, args.kind);
    let checked = install::check(
        &template,
        &label,
        None,
        &registry.paths().clone(),
        registry.shared_runtime(),
        &Access::default(),
    )
    .await?;
    let installed = install::install(
        &mut registry,
        &template,
        checked,
        install::Provenance {
            source: label,
            manifest: None,
            verdict: None,
        },
        args.force,
    )
    .await?;
    let project_dir = registry.paths().project.clone();
    let mut written: Vec<PathBuf> = installed
        .written
        .iter()
        .map(|f| project_dir.join(f))
        .collect();
    let unchanged: Vec<PathBuf> = installed
        .unchanged
        .iter()
        .map(|f| project_dir.join(f))
        .collect();
    if let Some((file, text)) = config {
        quickstart::write_config(&file, &text)?;
        written.insert(0, file);
    }
    registry.rediscover()?;
    let orchestrator = orchestrator(&registry, args.json, None)?;
    if !args.json {
        for file in &written {
            println!("Wrote {}", file.display());
        }
        for file in &unchanged {
            println!("Kept {} (unchanged)", file.display());
        }
    }
    let workflow = args.name.clone();
    let state = orchestrator.start(&workflow, None).await?;
    if !args.json {
        println!("Started run {} of `{}`.\n", state.id, state.workflow.name);
    }
    let state = orchestrator
        .next(Some(&state.id), &RunOptions::default())
        .await?;
    let view = orchestrator.status(Some(&state.id))?;
    if args.json {
        let mut value = view.to_json(orchestrator.runs());
        value["written"] = json!(written);
        value["unchanged"] = json!(unchanged);
        print_json(&value);
    } else {
        print_view(&orchestrator, &view);
        let id = &state.id;
        println!("\nThen:");
        println!("  paracle run approve --run {id}        # carry on to the next phase");
        println!("  paracle run next --run {id}           # run it");
        println!("  paracle run status --run {id}");
        println!("  paracle run metrics --run {id}");
        println!(
            "Edit the agents and the workflow in {}",
            registry.paths().state.display()
        );
    }
    if state.status == RunStatus::Failed {
        bail!("the planning phase failed; {}", view.next_step());
    }
    Ok(())
}

/// Progress of a phase on stderr: a live line on a terminal, plain lines
/// otherwise.
struct Progress {
    terminal: bool,
    state: Mutex<ProgressState>,
}

#[derive(Default)]
struct ProgressState {
    phase: String,
    total: usize,
    done: usize,
    failed_attempts: usize,
    running: usize,
    started: Option<Instant>,
}

impl Progress {
    fn new(terminal: bool) -> Self {
        Progress {
            terminal,
            state: Mutex::new(ProgressState::default()),
        }
    }

    fn on_event(&self, event: &Event) {
        let data: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
        let agent = event.agent.clone().unwrap_or_default();
        let mut state = self.state.lock().unwrap();
        let line = match event.kind {
            EventKind::PhaseStarted => {
                *state = ProgressState {
                    phase: event.phase.clone().unwrap_or_default(),
                    total: data["agents"].as_array().map(Vec::len).unwrap_or(0),
                    started: Some(Instant::now()),
                    ..ProgressState::default()
                };
                Some(format!(
                    "Phase `{}`: {} agents, {} at a time",
                    state.phase, state.total, data["workers"]
                ))
            }
            EventKind::AgentStarted => {
                state.running += 1;
                let attempt = data["attempt"].as_u64().unwrap_or(1);
                (attempt > 1).then(|| format!("  ↻ {agent}: attempt {attempt}"))
            }
            EventKind::AgentFinished => {
                state.running = state.running.saturating_sub(1);
                let took = human_ms(event.duration_ms.unwrap_or(0));
                if event.success == Some(true) {
                    state.done += 1;
                    Some(format!("  ✓ {agent} ({took})"))
                } else {
                    state.failed_attempts += 1;
                    Some(format!(
                        "  ✗ {agent} ({took}) {}: {}",
                        data["failure"].as_str().unwrap_or("error"),
                        one_line(data["error"].as_str().unwrap_or(""), 120)
                    ))
                }
            }
            EventKind::PhaseFinished => {
                let status = data["status"].as_str().unwrap_or("").to_string();
                let took = human_ms(event.duration_ms.unwrap_or(0));
                let line = format!("Phase `{}` {status} in {took}\n", state.phase);
                state.started = None;
                Some(line)
            }
            _ => None,
        };
        self.draw(&state, line);
    }

    fn redraw(&self) {
        // A question is on the terminal: the live line must not write over
        // it while the person reads and answers.
        if super::asking::question_open() {
            return;
        }
        let state = self.state.lock().unwrap();
        if state.started.is_some() {
            self.draw(&state, None);
        }
    }

    /// Print `line` if any; on a terminal, then the live status line.
    fn draw(&self, state: &ProgressState, line: Option<String>) {
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r\x1b[2K");
        }
        if let Some(line) = line {
            let _ = writeln!(err, "{line}");
        }
        if self.terminal && !super::asking::question_open() {
            if let Some(started) = state.started {
                let _ = write!(
                    err,
                    "  [{}] {}/{} done · {} running · {} failed attempts · {:.1} s",
                    state.phase,
                    state.done,
                    state.total,
                    state.running,
                    state.failed_attempts,
                    started.elapsed().as_secs_f64()
                );
            }
        }
        let _ = err.flush();
    }
}
