//! The MCP side of the server: rmcp's handler, turning requests into calls
//! and answers into tool results.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, CustomRequest,
    CustomResult, ErrorCode, Implementation, InitializeResult, ListToolsResult,
    PaginatedRequestParams, ProgressNotificationParam, ServerCapabilities, Tool,
};
use rmcp::service::{NotificationContext, Peer, RequestContext, RoleServer};
use rmcp::{ErrorData, ServerHandler};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::calls::{Answer, Calls};
use crate::catalog::{Catalog, Target};
use crate::elicit::client_person;
use crate::lines::{AnswerSlot, RawArguments};

const INSTRUCTIONS: &str = "Paracle runs WebAssembly plugins and workflows of agents for one \
project. Plugin tools are named PLUGIN__TOOL. workflow_list shows the workflows; workflow_run \
runs one until it completes, fails or waits for approval; run_status shows a run. The memory \
tools reach the project's memory plugin.";

/// The longest a call waits for its progress to reach the client.
const PROGRESS_FLUSH: Duration = Duration::from_secs(5);

/// What a server serves at one moment: its tools and what runs them. A
/// reload replaces it whole, so a call sees one version from start to end.
pub(crate) struct Served {
    pub(crate) catalog: Catalog,
    pub(crate) tools: Vec<Tool>,
    pub(crate) calls: Calls,
}

impl Served {
    pub(crate) fn new(catalog: Catalog, calls: Calls) -> Self {
        let tools = catalog
            .entries()
            .iter()
            .map(|entry| {
                Tool::new(
                    entry.name.clone(),
                    entry.description.clone(),
                    Arc::new(entry.input_schema.clone()),
                )
                .with_title(entry.title.clone())
            })
            .collect();
        Served {
            catalog,
            tools,
            calls,
        }
    }
}

/// One server. Clones share what it serves and its clients, so every HTTP
/// session sees the same server, and a reload reaches them all.
#[derive(Clone)]
pub(crate) struct Handler {
    served: Arc<RwLock<Arc<Served>>>,
    /// The clients that finished their handshake, to tell when the tools
    /// change; kept only when the server follows the project.
    clients: Arc<Mutex<Option<Vec<Peer<RoleServer>>>>>,
}

impl Handler {
    pub(crate) fn new(served: Served) -> Self {
        Handler {
            served: Arc::new(RwLock::new(Arc::new(served))),
            clients: Arc::default(),
        }
    }

    pub(crate) fn served(&self) -> Arc<Served> {
        self.served.read().unwrap().clone()
    }

    /// Keep track of clients from now on, to tell them when tools change.
    pub(crate) fn follow_clients(&self) {
        self.clients.lock().unwrap().get_or_insert_with(Vec::new);
    }

    /// Serve `served` from now on, and tell every client its tools changed.
    pub(crate) async fn replace(&self, served: Served) {
        *self.served.write().unwrap() = Arc::new(served);
        let clients: Vec<Peer<RoleServer>> = {
            let mut clients = self.clients.lock().unwrap();
            let clients = clients.get_or_insert_with(Vec::new);
            clients.retain(|peer| !peer.is_transport_closed());
            clients.clone()
        };
        for peer in clients {
            if let Err(error) = peer.notify_tool_list_changed().await {
                tracing::debug!("tools/list_changed not sent: {error}");
            }
        }
    }

    /// Where a call's progress lines go: to the client as progress
    /// notifications on the request's token, if it gave one. The forwarding
    /// task ends when the call drops the sender.
    fn forward_progress(
        context: &RequestContext<RoleServer>,
    ) -> Option<(mpsc::UnboundedSender<String>, JoinHandle<()>)> {
        let token = context.meta.get_progress_token()?;
        let peer = context.peer.clone();
        let (sender, mut lines) = mpsc::unbounded_channel::<String>();
        let forwarding = tokio::spawn(async move {
            let mut step = 0.0;
            while let Some(line) = lines.recv().await {
                step += 1.0;
                let note = ProgressNotificationParam::new(token.clone(), step).with_message(line);
                if let Err(error) = peer.notify_progress(note).await {
                    tracing::debug!("progress not sent: {error}");
                    return;
                }
            }
        });
        Some((sender, forwarding))
    }
}

/// The tool result for `answer`. Over stdio, a plugin's object answer
/// goes into `slot`, for the transport to write as `structuredContent` as
/// it is, rather than parsed here and serialised again.
fn result_of(answer: Answer, slot: Option<&AnswerSlot>) -> CallToolResult {
    match answer {
        Answer::Value(value) => success(value, None),
        Answer::Output(output) => match slot {
            Some(slot) if slot.leave(Arc::from(output.as_str())) => {
                CallToolResult::success(vec![ContentBlock::text(output.into_string())])
            }
            _ => {
                let value = output.to_value();
                success(value, Some(output.into_string()))
            }
        },
        Answer::Failed { message, details } => {
            let mut result = CallToolResult::error(vec![ContentBlock::text(message)]);
            result.structured_content = details;
            result
        }
    }
}

/// A result whose text is a string answer itself, or else the JSON as the
/// tool wrote it (`written`) or as serialised here; an object answer is
/// also its structured content.
fn success(value: Value, written: Option<String>) -> CallToolResult {
    let text = match (&value, written) {
        (Value::String(text), _) => text.clone(),
        (_, Some(written)) => written,
        (other, None) => other.to_string(),
    };
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    if value.is_object() {
        result.structured_content = Some(value);
    }
    result
}

impl ServerHandler for Handler {
    fn get_info(&self) -> InitializeResult {
        InitializeResult::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
        .with_server_info(Implementation::new("paracle", env!("CARGO_PKG_VERSION")))
        .with_instructions(INSTRUCTIONS)
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        if let Some(clients) = self.clients.lock().unwrap().as_mut() {
            // Sessions come and go over HTTP: the closed ones leave here.
            clients.retain(|peer| !peer.is_transport_closed());
            clients.push(context.peer);
        }
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.served().tools.clone()))
    }

    /// rmcp hands over, as custom, every request it could not parse: an
    /// unknown method, but also a known one with params of the wrong shape,
    /// which is a bad request rather than a missing method.
    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        let params = request.params.unwrap_or(Value::Null);
        let invalid = |why: String| {
            Err(ErrorData::invalid_params(
                format!("the params of `{}` are not valid: {why}", request.method),
                None,
            ))
        };
        match request.method.as_str() {
            "tools/call" => match serde_json::from_value::<CallToolRequestParams>(params) {
                Err(error) => invalid(format!(
                    "{error}; it takes `name` (a string) and `arguments` (an object)"
                )),
                Ok(_) => invalid("they could not be read".into()),
            },
            "tools/list" | "initialize" | "ping" => invalid("see the MCP schema".into()),
            other => Err(ErrorData::new(
                ErrorCode::METHOD_NOT_FOUND,
                format!(
                    "no method `{other}`; this server serves initialize, ping, tools/list and tools/call"
                ),
                None,
            )),
        }
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.served()
            .tools
            .iter()
            .find(|tool| tool.name == name)
            .cloned()
    }

    /// Boxed, so that the task rmcp spawns for each request stays small:
    /// tokio moves a new task's future several times before it first runs,
    /// and inline this one (5 KB) was copied ten times per call, counted by
    /// a uprobe on `memcpy`. Over stdio, rmcp's own part is boxed as well
    /// (`into_dyn`); over HTTP, rmcp needs the handler's own type.
    fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl std::future::Future<Output = Result<CallToolResponse, ErrorData>> + Send + '_ {
        Box::pin(self.call(request, context))
    }
}

impl Handler {
    /// A `tools/call`: the tool's outcome, or a bad request.
    async fn call(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // An unknown tool is a bad request; everything after is the tool's
        // own outcome, which the model reads and can act on.
        let served = self.served();
        let Some(entry) = served.catalog.get(&request.name) else {
            return Err(ErrorData::invalid_params(
                format!(
                    "no tool `{}`; tools/list gives the tools this server has",
                    request.name
                ),
                None,
            ));
        };
        // Over stdio, a call's arguments come as the text the client sent,
        // which goes to a plugin as it is; elsewhere they come as a tree.
        let raw = context
            .extensions
            .get::<RawArguments>()
            .map(|raw| raw.0.clone());
        let arguments = match (&raw, &entry.target) {
            (Some(_), Target::Plugin { .. }) => Value::Null,
            (Some(raw), Target::Builtin(_)) => serde_json::from_str(raw)
                .map_err(|e| ErrorData::invalid_params(format!("arguments: {e}"), None))?,
            (None, _) => Value::Object(request.arguments.unwrap_or_default()),
        };
        if let Some(errors) = entry.argument_errors(&arguments) {
            return Ok(result_of(
                Answer::Failed {
                    message: format!(
                        "the arguments do not match the schema of tool `{}`: {errors}",
                        entry.name
                    ),
                    details: None,
                },
                None,
            )
            .into());
        }
        // The client's user is asked, through elicitation, when a plugin
        // this call reaches is denied something they could allow.
        let person = client_person(
            &context.peer,
            &served.calls.registry,
            &served.calls.prompts,
            &served.calls.refused,
        );
        let answer = match &entry.target {
            Target::Plugin { plugin, tool } => {
                let call = served
                    .calls
                    .plugin_tool(plugin, tool, &arguments, raw.as_deref());
                match person {
                    Some(person) => paracle_runtime::with_person(person, call).await,
                    None => call.await,
                }
            }
            // Boxed: a built-in's future (a workflow run's) is most of the
            // 40 KB the call's future would otherwise be, allocated and
            // copied with every call, a plugin tool's too.
            Target::Builtin(builtin) => {
                Box::pin(async {
                    let (progress, forwarding) = Self::forward_progress(&context).unzip();
                    let call =
                        served
                            .calls
                            .builtin(*builtin, &arguments, progress, context.ct.clone());
                    let answer = match person {
                        Some(person) => paracle_runtime::with_person(person, call).await,
                        None => call.await,
                    };
                    // Progress goes out before the result, which ends the
                    // request: clients drop notifications for finished requests.
                    // The bound only guards against a sender kept alive by mistake.
                    if let Some(forwarding) = forwarding {
                        let _ = tokio::time::timeout(PROGRESS_FLUSH, forwarding).await;
                    }
                    answer
                })
                .await
            }
        };
        Ok(result_of(answer, context.extensions.get::<AnswerSlot>()).into())
    }
}
