//! `paracle mcp ...`: the project's tools and workflows for MCP clients.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use clap::{ArgGroup, Args, Subcommand};
use serde_json::json;

use super::output::{print_json, print_table};
use paracle_mcp::{McpOptions, McpServer, DEFAULT_WORKFLOW_TIMEOUT};
use paracle_project::{Registry, UserConfig};

use super::project::{open, reopen};
use super::run::parse_timeout;

#[derive(Subcommand)]
pub(super) enum McpCommand {
    /// Serve the project to an MCP client: on stdin and stdout (--stdio), or
    /// as streamable HTTP on a loopback address (--http 127.0.0.1:PORT).
    #[command(group(ArgGroup::new("transport").required(true).args(["stdio", "http"])))]
    Serve {
        /// Speak MCP on stdin and stdout, as Claude Desktop and IDEs start servers.
        #[arg(long)]
        stdio: bool,
        /// Serve streamable HTTP at http://ADDRESS/mcp; loopback only. Port 0 picks a free port.
        #[arg(long, value_name = "ADDRESS")]
        http: Option<SocketAddr>,
        #[command(flatten)]
        options: ServeArgs,
        /// Follow the project: when its plugins change (`plugin build`,
        /// `plugin dev`, `plugin load`, grants), serve the new tools and tell
        /// the clients; a plugin that no longer loads keeps its old version.
        #[arg(long)]
        watch: bool,
        /// With --http, announce the address as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// The tools the server offers, with their MCP names and schemas.
    Tools {
        #[command(flatten)]
        options: ServeArgs,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub(super) struct ServeArgs {
    /// The memory plugin behind memory_put, memory_get and memory_search (`none` leaves them out).
    #[arg(long, value_name = "PLUGIN", default_value = paracle_project::defaults::DEFAULT_MEMORY)]
    memory: String,
    /// The longest the phases of a workflow_run may take: seconds, or like `90s`, `10m` (default 10m).
    #[arg(long, value_name = "S", value_parser = parse_timeout)]
    workflow_timeout: Option<Duration>,
}

impl ServeArgs {
    fn options(&self) -> McpOptions {
        McpOptions {
            memory: (self.memory != "none").then(|| self.memory.clone()),
            workflow_timeout: self.workflow_timeout.unwrap_or(DEFAULT_WORKFLOW_TIMEOUT),
            ..McpOptions::default()
        }
    }
}

pub(super) async fn run(project: &Path, command: McpCommand) -> Result<()> {
    let registry = Arc::new(open(project)?);
    // Every tool call the server makes is counted, when telemetry is on.
    let telemetry = super::telemetry::start(registry.settings().telemetry_endpoint.as_deref())?;
    let result = match command {
        McpCommand::Serve {
            stdio: _,
            http,
            options,
            watch,
            json,
        } => {
            let follow = watch.then_some(project);
            serve(&registry, http, &options, follow, json).await
        }
        McpCommand::Tools { options, json } => {
            tools(
                &McpServer::new(registry.clone(), options.options()).await,
                json,
            );
            Ok(())
        }
    };
    super::telemetry::finish(telemetry).await;
    if let Err(error) = registry.persist_stats() {
        eprintln!("warning: statistics not saved: {error}");
    }
    result
}

async fn serve(
    registry: &Arc<Registry>,
    http: Option<SocketAddr>,
    options: &ServeArgs,
    follow: Option<&Path>,
    json: bool,
) -> Result<()> {
    let mut options = options.options();
    options.prompts = UserConfig::load(&registry.paths().user_config)?.prompts;
    let server = McpServer::new(registry.clone(), options).await;
    if let Some(project) = follow {
        let (project, runtime) = (project.to_path_buf(), registry.shared_runtime());
        server.watch_project(registry.paths(), move || {
            reopen(&project, runtime.clone()).map_err(|e| format!("{e:#}"))
        })?;
    }
    let tools = server.tools().len();
    let serving = async {
        match http {
            None => {
                tracing::info!("serving {tools} tools on stdio");
                server.serve_stdio().await
            }
            Some(address) => {
                server
                    .serve_http(address, |bound| {
                        let url = format!("http://{bound}/mcp");
                        if json {
                            print_json(&json!({"url": url, "tools": tools}));
                        } else {
                            println!("Serving {tools} tools at {url} (Ctrl-C stops)");
                        }
                    })
                    .await
            }
        }
    };
    // Ctrl-C or a plain `kill` ends the server cleanly, so that the
    // statistics are saved.
    tokio::select! {
        served = serving => Ok(served?),
        () = stop_signal() => Ok(()),
    }
}

async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn tools(server: &McpServer, json: bool) {
    let tools = server.tools();
    if json {
        print_json(&serde_json::to_value(&tools).expect("tools serialise"));
        return;
    }
    let rows: Vec<Vec<String>> = tools
        .iter()
        .map(|tool| {
            let summary = tool.description.split(". ").next().unwrap_or_default();
            vec![tool.name.clone(), summary.trim_end_matches('.').to_string()]
        })
        .collect();
    print_table(&["tool", "description"], &rows);
}
