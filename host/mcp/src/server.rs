//! The server: a catalog and the calls behind it, served over stdio or
//! streamable HTTP.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::Watcher;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::ServiceExt;
use tokio::net::TcpListener;

use paracle_project::{Paths, PromptPolicy, Registry};

use crate::calls::Calls;
use crate::catalog::Catalog;
use crate::handler::{Handler, Served};
use crate::lines::LineTransport;

/// How long the phases of a `workflow_run` may take unless the server is
/// told otherwise.
pub const DEFAULT_WORKFLOW_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("{0} is not a loopback address; the HTTP transport listens on 127.0.0.1 or [::1] only, since it has no authentication")]
    NotLoopback(SocketAddr),

    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },

    #[error("the MCP session could not start: {0}")]
    Handshake(String),

    #[error("the MCP server stopped: {0}")]
    Stopped(String),

    #[error("cannot watch the project for changes: {0}")]
    Watch(String),
}

/// What a server offers beyond the project's tool plugins.
#[derive(Debug, Clone)]
pub struct McpOptions {
    /// The memory plugin behind the memory tools; None leaves them out.
    pub memory: Option<String>,
    /// The longest the phases of a `workflow_run` may take; a client may ask
    /// for less.
    pub workflow_timeout: Duration,
    /// What a client's user may be asked for, through elicitation, when a
    /// plugin is denied: the per-user `[prompts]`.
    pub prompts: PromptPolicy,
}

impl Default for McpOptions {
    fn default() -> Self {
        McpOptions {
            memory: Some(paracle_project::defaults::DEFAULT_MEMORY.to_string()),
            workflow_timeout: DEFAULT_WORKFLOW_TIMEOUT,
            prompts: PromptPolicy::default(),
        }
    }
}

/// A tool as the server lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ListedTool {
    pub name: String,
    pub title: Option<String>,
    pub description: String,
    pub input_schema: serde_json::Value,
}

pub struct McpServer {
    handler: Handler,
    options: McpOptions,
}

/// How long the project's files must be quiet before a reload, and the
/// longest a reload waits for them.
const RELOAD_SETTLE: Duration = Duration::from_millis(200);
const RELOAD_SETTLE_MAX: Duration = Duration::from_secs(2);

/// What the server serves for `registry`.
async fn served(registry: Arc<Registry>, options: &McpOptions) -> Served {
    let catalog = Catalog::build(&registry, options.memory.as_deref()).await;
    let calls = Calls {
        registry,
        memory: options.memory.clone(),
        workflow_timeout: options.workflow_timeout,
        prompts: options.prompts.clone(),
        refused: Arc::default(),
    };
    Served::new(catalog, calls)
}

/// The files whose change means the project's plugins may have changed.
struct WatchedFiles {
    files: Vec<PathBuf>,
}

impl WatchedFiles {
    fn new(paths: &Paths) -> Self {
        WatchedFiles {
            files: vec![
                paths.registry_file(),
                paths.project.join("paracle.toml"),
                paths.state.join("config.toml"),
            ],
        }
    }

    fn covers(&self, path: &Path) -> bool {
        self.files.iter().any(|file| {
            file.file_name() == path.file_name()
                && file.parent().and_then(|d| std::fs::canonicalize(d).ok())
                    == path.parent().and_then(|d| std::fs::canonicalize(d).ok())
        })
    }
}

impl McpServer {
    /// A server for the project of `registry`. Tool plugins are loaded now,
    /// so that the first `tools/list` is quick; one that fails to load is
    /// left out with a warning on stderr.
    pub async fn new(registry: Arc<Registry>, options: McpOptions) -> Self {
        let served = served(registry, &options).await;
        McpServer {
            handler: Handler::new(served),
            options,
        }
    }

    /// Keep the tools in step with the project: when a file that says which
    /// plugins it has changes (after `plugin build`, `plugin dev`, `plugin
    /// load`, `plugin grant`), open the project again with `reopen`, serve
    /// its tools and tell every client (`notifications/tools/list_changed`).
    /// A plugin the project still pins exactly as it was (same digest,
    /// grants, limits, isolation, config, and trusted) keeps its instances,
    /// even while a build rewrites its file.
    pub fn watch_project(
        &self,
        paths: &Paths,
        reopen: impl Fn() -> Result<Registry, String> + Send + Sync + 'static,
    ) -> Result<(), McpError> {
        let watched = WatchedFiles::new(paths);
        let (changes, mut changed) = tokio::sync::mpsc::unbounded_channel();
        let watch_error = |e: notify::Error| McpError::Watch(e.to_string());
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if let Ok(event) = event {
                    if !event.kind.is_access() {
                        let _ = changes.send(event.paths);
                    }
                }
            })
            .map_err(watch_error)?;
        std::fs::create_dir_all(&paths.state).map_err(|e| McpError::Watch(e.to_string()))?;
        for dir in [&paths.project, &paths.state] {
            watcher
                .watch(dir, notify::RecursiveMode::NonRecursive)
                .map_err(watch_error)?;
        }
        let handler = self.handler.clone();
        handler.follow_clients();
        let options = self.options.clone();
        tokio::spawn(async move {
            // The watcher lives as long as this task.
            let _watcher = watcher;
            while let Some(paths) = changed.recv().await {
                if !paths.iter().any(|p| watched.covers(p)) {
                    continue;
                }
                // A burst of writes to the project's files is one change;
                // other files' events (a build writing its output) put the
                // reload off by a moment at most, and nothing past 2 s.
                let settle_until = tokio::time::Instant::now() + RELOAD_SETTLE_MAX;
                loop {
                    let wait = RELOAD_SETTLE.min(settle_until - tokio::time::Instant::now());
                    match tokio::time::timeout(wait, changed.recv()).await {
                        Ok(Some(paths)) if paths.iter().any(|p| watched.covers(p)) => continue,
                        Ok(Some(_)) if tokio::time::Instant::now() < settle_until => continue,
                        Ok(None) => return,
                        _ => break,
                    }
                }
                let registry = match reopen() {
                    Ok(registry) => Arc::new(registry),
                    Err(error) => {
                        eprintln!("the project changed but did not open; its tools are unchanged: {error}");
                        continue;
                    }
                };
                // Plugins the project still approves exactly as they are
                // stay as they are: the same instances, and what they hold,
                // even while a build rewrites their files. Any other is
                // loaded again, or left out if it no longer loads.
                for plugin in handler.served().catalog.plugins() {
                    registry.adopt(plugin);
                }
                let next = served(registry, &options).await;
                eprintln!(
                    "the project changed: serving {} tools, and telling the clients",
                    next.tools.len()
                );
                handler.replace(next).await;
            }
        });
        Ok(())
    }

    /// The tools, as `tools/list` gives them.
    pub fn tools(&self) -> Vec<ListedTool> {
        self.handler
            .served()
            .tools
            .iter()
            .map(|tool| ListedTool {
                name: tool.name.to_string(),
                title: tool.title.clone(),
                description: tool.description.as_deref().unwrap_or_default().to_string(),
                input_schema: serde_json::Value::Object((*tool.input_schema).clone()),
            })
            .collect()
    }

    /// Serve one client on stdin and stdout until it closes stdin.
    pub async fn serve_stdio(self) -> Result<(), McpError> {
        // Behind `dyn`, each request's future is boxed: rmcp spawns a task
        // for each, and tokio moves a new task's future several times before
        // it first runs; inline, rmcp's part alone was 4.4 KB a copy.
        let running = self
            .handler
            .into_dyn()
            .serve(stdio_transport())
            .await
            .map_err(|e| McpError::Handshake(e.to_string()))?;
        running
            .waiting()
            .await
            .map_err(|e| McpError::Stopped(e.to_string()))?;
        Ok(())
    }

    /// Serve streamable HTTP at `http://ADDRESS/mcp` until the process is
    /// stopped. `ready` hears the address bound (port 0 picks one).
    pub async fn serve_http(
        self,
        address: SocketAddr,
        ready: impl FnOnce(SocketAddr),
    ) -> Result<(), McpError> {
        if !address.ip().is_loopback() {
            return Err(McpError::NotLoopback(address));
        }
        let bind_error = |source| McpError::Bind { address, source };
        let listener = TcpListener::bind(address).await.map_err(bind_error)?;
        ready(listener.local_addr().map_err(bind_error)?);
        let handler = self.handler;
        // rmcp checks Host against loopback names, which stops DNS
        // rebinding; refusing every Origin keeps web pages out as well.
        let config = StreamableHttpServerConfig::default().enforce_origin_validation();
        let service = StreamableHttpService::new(
            move || Ok(handler.clone()),
            Arc::new(LocalSessionManager::default()),
            config,
        );
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait, go on.
                    tracing::warn!("accept failed: {error}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let service = service.clone();
            tokio::spawn(async move {
                let route = hyper::service::service_fn(move |request| {
                    let service = service.clone();
                    async move {
                        if request.uri().path() != "/mcp" {
                            return Ok::<_, Infallible>(not_found());
                        }
                        Ok(service.handle(request).await)
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                if let Err(error) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, route)
                    .await
                {
                    tracing::debug!("connection from {peer}: {error}");
                }
            });
        }
    }
}

/// Standard input and output as a line transport: through the reactor
/// when both are pipes (as MCP clients start servers), else through
/// tokio's blocking handles.
fn stdio_transport() -> LineTransport<rmcp::transport::StdioReader> {
    let (read, write) = rmcp::transport::stdio_pipes();
    LineTransport::new(read, write)
}

type Body = http_body_util::combinators::BoxBody<bytes::Bytes, Infallible>;

fn not_found() -> http::Response<Body> {
    use http_body_util::BodyExt;
    let body = http_body_util::Full::new(bytes::Bytes::from_static(
        b"Not found: the MCP endpoint is /mcp\n",
    ))
    .boxed();
    http::Response::builder()
        .status(http::StatusCode::NOT_FOUND)
        .header(http::header::CONTENT_TYPE, "text/plain")
        .body(body)
        .expect("a fixed response is valid")
}
