//! The `paracle` command line. Thin: it parses, calls the library, prints.

mod asking;
mod audit;
mod author;
mod compiling;
mod git;
mod grant;
mod mcp;
mod output;
mod plugin;
mod project;
mod run;
mod secret;
mod share;
mod telemetry;
mod template;
mod trust;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "paracle",
    version,
    about = "A WebAssembly plugin host for AI agents"
)]
struct Cli {
    /// The project directory (default: the current directory).
    #[arg(long, global = true, value_name = "DIR")]
    project: Option<PathBuf>,

    /// Never ask at the terminal when a plugin is denied something: deny
    /// it, and say how to grant it.
    #[arg(long, global = true)]
    no_prompt: bool,

    /// Log more: -v for info, -vv for debug (to stderr).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load, inspect and call plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// The keys whose signatures you trust, and whether plugins must be signed.
    #[command(subcommand)]
    Trust(trust::TrustCommand),
    /// Runs of workflows: start, next phase, status, approvals, retries, metrics.
    #[command(subcommand)]
    Run(run::RunCommand),
    /// The project's workflows.
    #[command(subcommand)]
    Workflow(run::WorkflowCommand),
    /// Find, install and publish templates: agent teams and workflows with the plugins they need.
    #[command(subcommand)]
    Template(template::TemplateCommand),
    /// Write a ready-made project, start a run and run its planning phase.
    Quickstart(run::QuickstartArgs),
    /// The git workflow: a branch and a worktree per execution, merges, pull requests, cleanup.
    #[command(subcommand)]
    Git(git::GitCommand),
    /// Serve the project's tools and workflows to MCP clients.
    #[command(subcommand)]
    Mcp(mcp::McpCommand),
    /// Your secrets, granted to plugins as `secret:NAME`; kept outside every project.
    #[command(subcommand)]
    Secret(secret::SecretCommand),
    /// Who granted, allowed, refused or approved what, from the project's audit log.
    Audit(audit::AuditArgs),
    /// Take agent tasks from a NATS server and run them on this machine.
    Worker(worker::WorkerArgs),
}

pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    if cli.no_prompt {
        asking::forbid_prompts();
    }
    raise_open_file_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let project = match cli
        .project
        .clone()
        .map(Ok)
        .unwrap_or_else(std::env::current_dir)
    {
        Ok(project) => project,
        Err(error) => {
            eprintln!("error: cannot find the current directory: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Plugin(command) => plugin::run(&project, command).await,
            Command::Trust(command) => trust::run(&project, command),
            Command::Run(command) => run::run(&project, command).await,
            Command::Workflow(command) => run::workflow(&project, command).await,
            Command::Quickstart(args) => run::quickstart(&project, args).await,
            Command::Template(command) => template::run(&project, command).await,
            Command::Git(command) => git::run(&project, command).await,
            Command::Mcp(command) => mcp::run(&project, command).await,
            Command::Secret(command) => secret::run(&project, command),
            Command::Audit(args) => audit::run(&project, args),
            Command::Worker(args) => worker::run(&project, args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line: the cause chain joined, most general first, leaving
            // out causes that an outer message already quotes.
            let mut message = String::new();
            for cause in error.chain().map(|e| e.to_string()) {
                if !message.contains(&cause) {
                    if !message.is_empty() {
                        message.push_str(": ");
                    }
                    message.push_str(&cause);
                }
            }
            // Errors quote what plugins and registries said: escaped, and cut
            // short enough to read.
            eprintln!("error: {}", paracle_base::shown::clipped(&message, 4096));
            ExitCode::FAILURE
        }
    }
}

/// Plugins hold files and sockets of the process's own: raise the soft
/// limit on open files to the hard one, as far as the system allows, so that
/// what plugins hold leaves the host room for its own files.
fn raise_open_file_limit() {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit only read and write `limit`.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0
                && limit.rlim_cur < limit.rlim_max
            {
                limit.rlim_cur = limit.rlim_max;
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    tracing::debug!("could not raise the open-file limit");
                }
            }
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PARACLE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // MCP clients keep a server's stderr in a log file: no colour codes there.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
