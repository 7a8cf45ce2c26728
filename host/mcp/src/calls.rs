//! What each tool does. Nothing here knows MCP's wire types: a call ends in
//! an [`Answer`], which the handler turns into a tool result.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use crate::catalog::Builtin;
use paracle_contract::json::hit_json;
use paracle_contract::{Event, EventKind, InvocationContext};
use paracle_orchestrator::human_ms;
use paracle_orchestrator::run::RunStatus;
use paracle_orchestrator::{Orchestrator, OrchestratorError, RunOptions};
use paracle_project::{PromptPolicy, Refusals, Registry};
use paracle_runtime::{CallResult, Plugin, ToolOutput};

/// The memory namespace a call uses when it names none.
pub const DEFAULT_NAMESPACE: &str = "mcp";

/// How a call ended.
pub(crate) enum Answer {
    /// A built-in tool's result.
    Value(Value),
    /// A plugin tool's result, as the JSON text it wrote: it goes to the
    /// client as written, not parsed and serialised again.
    Output(ToolOutput),
    /// The tool ran and failed: a plugin's error, a trap, a limit, a run
    /// that failed or ran out of time. `details` is what there is to show
    /// beside the message, such as the run's state.
    Failed {
        message: String,
        details: Option<Value>,
    },
}

impl Answer {
    fn failed(message: impl ToString) -> Self {
        Answer::Failed {
            message: message.to_string(),
            details: None,
        }
    }

    /// A plugin call's outcome: its value, or its error, whichever side of
    /// the sandbox it came from. Every message names the plugin.
    fn settle<T>(result: CallResult<T>, answer: impl FnOnce(T) -> Self) -> Self {
        match result {
            Ok(Ok(value)) => answer(value),
            Ok(Err(error)) => Answer::failed(error),
            Err(error) => Answer::failed(error),
        }
    }
}

/// Runs tools for one server; shared by all its sessions.
pub(crate) struct Calls {
    pub registry: Arc<Registry>,
    /// The memory plugin that the memory tools reach, if any.
    pub memory: Option<String>,
    /// The longest the phases of a `workflow_run` may take.
    pub workflow_timeout: Duration,
    /// What a client's user may be asked for.
    pub prompts: PromptPolicy,
    /// What clients' users refused, not asked again.
    pub refused: Arc<Refusals>,
}

impl Calls {
    /// A plugin's tool, on `arguments`, or on `text` when the client's
    /// arguments came as JSON text: checked and passed on as they are.
    pub(crate) async fn plugin_tool(
        &self,
        plugin: &Plugin,
        tool: &str,
        arguments: &Value,
        text: Option<&str>,
    ) -> Answer {
        let context = InvocationContext {
            caller: "mcp".into(),
            run_id: None,
            agent: None,
        };
        let result = match text {
            Some(text) => plugin.invoke_tool_json(tool, text, &context).await,
            None => plugin.invoke_tool(tool, arguments, &context).await,
        };
        if let Err(error) = &result {
            self.registry.audit_denial(error);
        }
        Answer::settle(result, Answer::Output)
    }

    /// A built-in tool. `arguments` fit its schema (the handler checked).
    pub(crate) async fn builtin(
        &self,
        builtin: Builtin,
        arguments: &Value,
        progress: Option<UnboundedSender<String>>,
        cancelled: CancellationToken,
    ) -> Answer {
        match builtin {
            Builtin::WorkflowList => self.workflow_list().await,
            Builtin::WorkflowRun => self.workflow_run(arguments, progress, cancelled).await,
            Builtin::RunStatus => self.run_status(arguments),
            Builtin::MemoryPut | Builtin::MemoryGet | Builtin::MemorySearch => {
                self.memory(builtin, arguments).await
            }
        }
    }

    async fn workflow_list(&self) -> Answer {
        let orchestrator = Orchestrator::new(&self.registry);
        match orchestrator.workflows().await {
            Ok(workflows) => Answer::Value(json!({
                "workflows": workflows
                    .iter()
                    .map(|w| json!({"name": w.name, "description": w.description, "phases": w.phases}))
                    .collect::<Vec<_>>()
            })),
            Err(error) => Answer::failed(error),
        }
    }

    fn run_status(&self, arguments: &Value) -> Answer {
        let orchestrator = Orchestrator::new(&self.registry);
        match orchestrator.status(arguments["run"].as_str()) {
            Ok(view) => Answer::Value(view.to_json(orchestrator.runs())),
            Err(error) => Answer::failed(error),
        }
    }

    /// Start a run and take it through its phases until it stops on its
    /// own, or the time is up, or the client cancels. A run cut short is
    /// left interrupted, as if its process had died: `paracle run next`
    /// finishes it, keeping the agents that had finished.
    async fn workflow_run(
        &self,
        arguments: &Value,
        progress: Option<UnboundedSender<String>>,
        cancelled: CancellationToken,
    ) -> Answer {
        let workflow = arguments["workflow"].as_str().unwrap_or_default();
        let input = arguments["input"].as_str().map(str::to_string);
        let timeout = match arguments["timeout_seconds"].as_f64() {
            // Too large for a Duration (1e300, say) means no less than the limit.
            Some(seconds) => Duration::try_from_secs_f64(seconds)
                .unwrap_or(Duration::MAX)
                .min(self.workflow_timeout),
            None => self.workflow_timeout,
        };
        let mut orchestrator = Orchestrator::new(&self.registry);
        if let Some(progress) = progress {
            orchestrator = orchestrator.with_listener(Arc::new(move |event: &Event| {
                if let Some(line) = progress_line(event) {
                    // The receiver is gone only once the call has ended.
                    let _ = progress.send(line);
                }
            }));
        }
        // Starting loads the observers, which may compile them on a cold
        // cache; the time limit is for the phases, where agents run.
        let state = match orchestrator.start(workflow, input).await {
            Ok(state) => state,
            Err(error) => return Answer::failed(error),
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let run = state.id.clone();
        let workspace = orchestrator.runs().workspace(&state);
        let advance = async {
            loop {
                let view = orchestrator.status(Some(&run))?;
                if view.state.status != RunStatus::Ready {
                    return Ok::<_, OrchestratorError>(view);
                }
                orchestrator
                    .next(Some(&run), &RunOptions::default())
                    .await?;
            }
        };
        let stopped = tokio::select! {
            outcome = tokio::time::timeout_at(deadline, advance) => match outcome {
                Ok(Ok(view)) => Ok(view),
                Ok(Err(error)) => Err(format!("run `{run}` of `{workflow}`: {error}")),
                Err(_) => Err(format!(
                    "workflow `{workflow}` did not finish within {}",
                    human_ms(timeout.as_millis() as u64)
                )),
            },
            () = cancelled.cancelled() => Err(format!("the client cancelled run `{run}` of `{workflow}`")),
        };
        // The run's plugin copies are for this run alone.
        self.registry.forget_workspace(&workspace);
        let view = match stopped {
            Ok(view) => view,
            Err(why) => {
                // The phase's future was dropped and its lock with it, so
                // the status now says where the run stopped.
                let (status, details) = match orchestrator.status(Some(&run)) {
                    Ok(view) => (
                        format!("; run `{run}` is {}: {}", view.status(), view.next_step()),
                        Some(view.to_json(orchestrator.runs())),
                    ),
                    Err(error) => (format!("; run `{run}`: {error}"), None),
                };
                return Answer::Failed {
                    message: format!("{why}{status}"),
                    details,
                };
            }
        };
        let value = view.to_json(orchestrator.runs());
        match view.state.status {
            RunStatus::Failed | RunStatus::Rejected => Answer::Failed {
                message: format!(
                    "run `{run}` of `{workflow}` {}: {}",
                    view.status(),
                    view.next_step()
                ),
                details: Some(value),
            },
            _ => Answer::Value(value),
        }
    }

    async fn memory(&self, builtin: Builtin, arguments: &Value) -> Answer {
        let Some(name) = &self.memory else {
            return Answer::failed(
                "this server has no memory plugin (it was started with --memory none)",
            );
        };
        let plugin = match self.registry.get(name).await {
            Ok(plugin) => plugin,
            Err(error) => return Answer::failed(error),
        };
        let namespace = arguments["namespace"].as_str().unwrap_or(DEFAULT_NAMESPACE);
        let key = arguments["key"].as_str().unwrap_or_default();
        match builtin {
            Builtin::MemoryPut => {
                let value = arguments["value"].as_str().unwrap_or_default();
                Answer::settle(plugin.memory_put(namespace, key, value).await, |()| {
                    Answer::Value(json!({"namespace": namespace, "key": key, "stored": true}))
                })
            }
            Builtin::MemoryGet => {
                Answer::settle(plugin.memory_get(namespace, key).await, |value| {
                    Answer::Value(
                        json!({"namespace": namespace, "key": key, "found": value.is_some(), "value": value}),
                    )
                })
            }
            Builtin::MemorySearch => {
                let query = arguments["query"].as_str().unwrap_or_default();
                let limit = arguments["limit"].as_u64().unwrap_or(10) as u32;
                Answer::settle(
                    plugin.memory_search(namespace, query, limit).await,
                    |hits| {
                        Answer::Value(
                            json!({"namespace": namespace, "hits": hits.iter().map(hit_json).collect::<Vec<_>>()}),
                        )
                    },
                )
            }
            _ => unreachable!("only memory tools come here"),
        }
    }
}

/// One line of progress for an event of a run, if it is worth one.
fn progress_line(event: &Event) -> Option<String> {
    let data: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
    let phase = event.phase.as_deref().unwrap_or_default();
    let agent = event.agent.as_deref().unwrap_or_default();
    let took = human_ms(event.duration_ms.unwrap_or(0));
    Some(match event.kind {
        EventKind::ExecutionStarted => format!("run {} started", event.execution_id.as_deref()?),
        EventKind::PhaseStarted => format!(
            "phase `{phase}` started: {} agents",
            data["agents"].as_array().map_or(0, Vec::len)
        ),
        EventKind::AgentFinished if event.success == Some(true) => {
            format!("agent `{agent}` succeeded in {took}")
        }
        EventKind::AgentFinished => format!(
            "agent `{agent}` failed in {took} ({}): {}",
            data["failure"].as_str().unwrap_or("error"),
            data["error"].as_str().unwrap_or_default()
        ),
        EventKind::PhaseFinished => format!(
            "phase `{phase}` {} in {took}",
            data["status"].as_str().unwrap_or("finished")
        ),
        _ => return None,
    })
}
