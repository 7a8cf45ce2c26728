//! `paracle worker`: take agent tasks from a NATS lattice and run them here.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;
use paracle_base::shown;
use paracle_cluster::{Lattice, Worker, WorkerEvent, WorkerOptions};
use paracle_project::Paths;
use paracle_runtime::Runtime;
use serde_json::json;

use super::compiling::CompileProgress;

#[derive(Args)]
pub(super) struct WorkerArgs {
    /// The NATS server (with JetStream) the coordinator sends tasks to.
    #[arg(long, value_name = "URL")]
    nats: String,
    /// Tasks run at once.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    concurrency: u32,
    /// The worker's name in results and runs (default: HOST-PID).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// A directory that is the same here as on the coordinator (a shared
    /// file system): a task's directory grant must lie inside one. None by
    /// default: tasks whose plugins are granted a directory are refused.
    #[arg(long, value_name = "DIR")]
    share: Vec<PathBuf>,
    /// An environment variable of this machine a task may grant a plugin
    /// (`env:NAME`). None by default.
    #[arg(long = "allow-env", value_name = "NAME")]
    allow_env: Vec<String>,
    /// A secret of this machine's user a task may grant (`secret:NAME`).
    /// None by default.
    #[arg(long = "allow-secret", value_name = "NAME")]
    allow_secret: Vec<String>,
    /// A loopback, private, link-local or metadata address on this
    /// machine's network a task may grant (`net:IP`). None by default;
    /// public hosts need no flag.
    #[arg(long = "allow-net", value_name = "IP")]
    allow_net: Vec<std::net::IpAddr>,
    /// How long a task may go without word from the worker holding it
    /// before it goes to another (sets it for every worker). Like `30s`.
    #[arg(long, value_name = "DURATION", value_parser = super::run::parse_timeout)]
    ack_wait: Option<Duration>,
    /// One JSON object per line: when ready, per task taken and finished,
    /// and when stopped.
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(project: &Path, args: WorkerArgs) -> Result<()> {
    if !paracle_project::settings::valid_nats_url(&args.nats) {
        bail!(
            "`{}` is not a NATS server's address; write it like `nats://127.0.0.1:4222`",
            args.nats
        );
    }
    let name = args.name.clone().unwrap_or_else(default_name);
    if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
        bail!("--name must be 1 to 128 characters, none of them control characters");
    }
    // Only the per-user files are read: the trust list, secrets, caches.
    let paths = Paths::for_project(project);
    let mut runtime = Runtime::new(Some(paths.cache.clone()))?;
    if !args.json {
        runtime.observe_compiles(CompileProgress::on_stderr());
    }
    let lattice = Lattice::connect(
        &args.nats,
        &format!("paracle-worker {name}"),
        Duration::from_secs(5),
    )
    .await?;
    let json_lines = args.json;
    // A worker has no project: the environment alone turns telemetry on.
    let telemetry = super::telemetry::start(None)?;
    let mut worker = Worker::new(
        lattice,
        Arc::new(runtime),
        &paths,
        WorkerOptions {
            name: name.clone(),
            concurrency: args.concurrency as usize,
            share: args.share.clone(),
            ack_wait: args.ack_wait,
            allow_env: args.allow_env.clone(),
            allow_secrets: args.allow_secret.clone(),
            allow_net: args.allow_net.clone(),
        },
    )?
    .with_listener(Arc::new(move |event| show(&event, json_lines)));
    if let Some(telemetry) = &telemetry {
        worker = worker.with_telemetry(telemetry.clone());
    }
    let worker = Arc::new(worker);
    let ready = json!({
        "event": "ready",
        "worker": name,
        "nats": args.nats,
        "concurrency": args.concurrency,
        "share": args.share,
    });
    if args.json {
        println!("{ready}");
    } else {
        eprintln!(
            "Worker `{name}` takes tasks from {} ({} at once{}). Ctrl-C stops it once its tasks are done.",
            args.nats,
            args.concurrency,
            if args.share.is_empty() {
                String::new()
            } else {
                format!(
                    "; sharing {}",
                    args.share
                        .iter()
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
    }
    let tally = worker.run(stop_signal()).await;
    super::telemetry::finish(telemetry).await;
    let tally = tally?;
    let stopped = json!({
        "event": "stopped",
        "worker": name,
        "succeeded": tally.succeeded,
        "failed": tally.failed,
    });
    if args.json {
        println!("{stopped}");
    } else {
        eprintln!(
            "Worker `{name}` stopped: {} tasks succeeded, {} failed.",
            tally.succeeded, tally.failed
        );
    }
    Ok(())
}

/// A task taken or finished: a JSON line, or a line on stderr.
fn show(event: &WorkerEvent, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string(event).expect("events serialise")
        );
        return;
    }
    match event {
        WorkerEvent::Taken {
            run,
            phase,
            agent,
            attempt,
            delivered,
        } => eprintln!(
            "  → {} {}/{} attempt {attempt}{}",
            shown::line(run),
            shown::line(phase),
            shown::line(agent),
            if *delivered > 1 {
                format!(" (delivery {delivered}: the worker before stopped)")
            } else {
                String::new()
            }
        ),
        WorkerEvent::Finished {
            run,
            phase,
            agent,
            status,
            elapsed_ms,
            ..
        } => eprintln!(
            "  {} {} {}/{} {status} in {}",
            if *status == "succeeded" { "✓" } else { "✗" },
            shown::line(run),
            shown::line(phase),
            shown::line(agent),
            paracle_orchestrator::human_ms(*elapsed_ms)
        ),
    }
}

fn default_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    format!("{host}-{}", std::process::id())
}

/// Ctrl-C or SIGTERM.
async fn stop_signal() {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match terminate.as_mut() {
                Some(signal) => { signal.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}
