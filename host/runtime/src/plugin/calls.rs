//! The typed calls of each kind. Every call is leased an instance, run under
//! the plugin's deadline, settled (a failed instance is dropped) and counted.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use serde_json::Value;

use super::returned::{self, ITEM_BYTES};
use super::tool_output::OutputError;
use super::{schema_errors, Exports, Instance, Plugin, PluginKind, ToolOutput};
use crate::capability::agent::AgentRouter;
use crate::error::{CallError, CallResult, PluginError};
use crate::stats::CallOutcome;
use paracle_contract::json::{nests_deeper_than, MAX_JSON_DEPTH};
use paracle_contract::{
    AgentSpec, ChatRequest, ChatResponse, Cleaned, Event, ExecutionBranch, GitSettingsRecord,
    InvocationContext, MergeOutcome, ModelInfo, Outcome, PullRequest, SearchHit, SettingsRequest,
    Task, ToolSpec, WitError,
};
use paracle_policy::{Approve, Limit};
use sha2::{Digest, Sha256};

use crate::person::{Approval, ApprovalRequest, AtHand};

/// Lease an instance of the plugin's kind, make one call on it under the
/// deadline, and settle the outcome.
macro_rules! guest_call {
    ($plugin:ident, $function:literal, $variant:ident, |$bindings:ident, $store:ident| $call:expr) => {{
        let mut lease = $plugin.lease().await?;
        let outcome = {
            let Instance {
                store: $store,
                exports,
                ..
            } = &mut *lease.instance;
            let Exports::$variant($bindings) = &*exports else {
                unreachable!("every instance of a plugin has the plugin's kind")
            };
            // Pinned where it is made: moved into the deadline, the call's
            // future (1.5 KiB in wasmtime 48) would be copied once more.
            let call = std::pin::pin!($call);
            $plugin.with_deadline_from(lease.began, call).await
        };
        $plugin.settle(lease, $function, outcome, true)
    }};
}

/// `guest_call!` for the observer interface, which plain observers and git
/// workflows both export, each through its own generated type.
macro_rules! observer_call {
    ($plugin:ident, $function:literal, |$observer:ident, $store:ident| $call:expr) => {{
        let mut lease = $plugin.lease().await?;
        let outcome = {
            let Instance {
                store: $store,
                exports,
                ..
            } = &mut *lease.instance;
            $plugin
                .with_deadline_from(lease.began, async {
                    match &*exports {
                        Exports::Observer(b) => {
                            let $observer = b.paracle_plugin_observer();
                            $call.await
                        }
                        Exports::GitWorkflow(b) => {
                            let $observer = b.paracle_plugin_observer();
                            $call.await
                        }
                        _ => unreachable!("every instance of a plugin has the plugin's kind"),
                    }
                })
                .await
        };
        $plugin.settle(lease, $function, outcome, true)
    }};
}

pin_project_lite::pin_project! {
    /// See [`Plugin::counted`].
    struct Counted<'p, F> {
        #[pin]
        call: F,
        plugin: &'p Plugin,
        started: Option<Instant>,
    }
}

impl<T, F: Future<Output = CallResult<T>>> Future for Counted<'_, F> {
    type Output = CallResult<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let started = *this.started.get_or_insert_with(Instant::now);
        let Poll::Ready(mut result) = this.call.poll(cx) else {
            return Poll::Pending;
        };
        this.plugin.record(started, CallOutcome::of(&result));
        if !this.plugin.redactor.is_empty() {
            this.plugin.scrub_errors(&mut result);
        }
        Poll::Ready(result)
    }
}

impl Plugin {
    /// A returned value over one of the caps in [`returned`].
    pub(super) fn over(&self, function: &str, detail: returned::Over) -> CallError {
        CallError::Limit {
            plugin: self.name.to_string(),
            function: function.to_string(),
            limit: Limit::Value,
            detail,
        }
    }

    fn too_deep(&self, function: &str) -> CallError {
        CallError::Limit {
            plugin: self.name.to_string(),
            function: function.to_string(),
            limit: Limit::Depth,
            detail: format!("its answer nests JSON deeper than {MAX_JSON_DEPTH} levels"),
        }
    }

    fn answer<T>(&self, answer: Result<T, WitError>) -> Result<T, PluginError> {
        answer.map_err(|e| PluginError::from_wit(&self.name, e))
    }

    /// `call`, counted in the plugin's statistics when it ends. A
    /// combinator rather than an `async fn`: an `async fn` would hold the
    /// call's future twice (as its argument and as what it awaits), and
    /// every call's future would be that much larger to move.
    fn counted<F>(&self, call: F) -> Counted<'_, F> {
        Counted {
            call,
            plugin: self,
            started: None,
        }
    }

    /// Hide the values of the plugin's secrets in whatever message of its
    /// an error carries.
    fn scrub_errors<T>(&self, result: &mut CallResult<T>) {
        let scrub = |text: &mut String| self.redactor.scrub_in_place(text);
        match result {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => scrub(&mut error.message),
            Err(CallError::Trap { reason, .. })
            | Err(CallError::InvalidRequest {
                message: reason, ..
            })
            | Err(CallError::Instantiate { reason, .. }) => scrub(reason),
            Err(CallError::Limit { detail, .. }) => scrub(detail),
            Err(CallError::Denied {
                capability, reason, ..
            }) => {
                scrub(capability);
                scrub(reason);
            }
            Err(CallError::InitRejected { error, .. }) => scrub(&mut error.message),
        }
    }

    // ---- provider ----

    pub async fn list_models(&self) -> CallResult<Vec<ModelInfo>> {
        self.counted(async {
            self.expect_kind(PluginKind::Provider)?;
            let answer = guest_call!(self, "list-models", Provider, |b, store| b
                .paracle_plugin_provider()
                .call_list_models(&mut *store))?;
            if let Ok(models) = &answer {
                self.check_output(
                    "list-models",
                    models
                        .iter()
                        .map(|m| m.id.len() + m.description.len() + ITEM_BYTES)
                        .sum(),
                )?;
            }
            Ok(self.answer(answer))
        })
        .await
    }

    pub async fn chat(&self, request: &ChatRequest) -> CallResult<ChatResponse> {
        self.counted(async {
            self.expect_kind(PluginKind::Provider)?;
            let mut answer = guest_call!(self, "chat", Provider, |b, store| b
                .paracle_plugin_provider()
                .call_chat(&mut *store, request))?;
            if let Ok(response) = &mut answer {
                self.redactor.scrub_in_place(&mut response.message.content);
                for call in &mut response.message.tool_calls {
                    self.redactor.scrub_in_place(&mut call.arguments);
                }
                let size = response.message.content.len()
                    + response
                        .message
                        .tool_calls
                        .iter()
                        .map(|c| c.id.len() + c.arguments.len() + c.name.len() + ITEM_BYTES)
                        .sum::<usize>()
                    + response.model.len()
                    + response
                        .message
                        .tool_call_id
                        .as_ref()
                        .map_or(0, String::len);
                self.check_output("chat", size)?;
            }
            Ok(self.answer(answer))
        })
        .await
    }

    // ---- tool ----

    pub(crate) async fn list_tools(&self) -> Result<Vec<ToolSpec>, CallError> {
        let started = Instant::now();
        let result = async {
            self.expect_kind(PluginKind::Tool)?;
            let tools = guest_call!(self, "list-tools", Tool, |b, store| b
                .paracle_plugin_tool()
                .call_list_tools(&mut *store))?;
            returned::check_tools(&tools).map_err(|over| self.over("list-tools", over))?;
            Ok(tools)
        }
        .await;
        self.record(started, CallOutcome::of_plain(&result));
        result
    }

    /// Invoke one tool, after checking `arguments` against its schema and
    /// getting a person's approval if its setting asks for one.
    pub async fn invoke_tool(
        &self,
        tool: &str,
        arguments: &Value,
        context: &InvocationContext,
    ) -> CallResult<ToolOutput> {
        self.counted(async {
            self.check_arguments(tool, arguments)?;
            // Straight into a buffer: `to_string` would go through the
            // formatting machinery, which costs more than the guest call.
            let arguments =
                serde_json::to_string(arguments).expect("a JSON value always serializes");
            if self.needs_approval(tool, Approve::Always) {
                Box::pin(self.approved(tool, &arguments, context, Approve::Always)).await?;
            }
            self.invoke_checked(tool, &arguments, context).await
        })
        .await
    }

    /// Invoke one tool with arguments given as JSON text, which is passed on
    /// as it is once it has been checked against the tool's schema.
    pub async fn invoke_tool_json(
        &self,
        tool: &str,
        arguments: &str,
        context: &InvocationContext,
    ) -> CallResult<ToolOutput> {
        self.invoke_tool_json_approved(tool, arguments, context, Approve::Always)
            .await
    }

    /// [`Self::invoke_tool_json`] for a caller with an approval setting of
    /// its own (an agent's): the stricter of it and the plugin's applies.
    pub async fn invoke_tool_json_approved(
        &self,
        tool: &str,
        arguments: &str,
        context: &InvocationContext,
        at_least: Approve,
    ) -> CallResult<ToolOutput> {
        self.counted(async {
            let value: Value =
                serde_json::from_str(arguments).map_err(|e| CallError::InvalidRequest {
                    plugin: self.name.to_string(),
                    message: format!("the arguments of tool `{tool}` are not valid JSON: {e}"),
                })?;
            self.check_arguments(tool, &value)?;
            if self.needs_approval(tool, at_least) {
                // The person approves what the guest will get, written the
                // way the host writes it: the caller's own text could hide
                // a value behind padding, escapes or a repeated key.
                let arguments = serde_json::to_string(&value).expect("a JSON value serializes");
                Box::pin(self.approved(tool, &arguments, context, at_least)).await?;
                return self.invoke_checked(tool, &arguments, context).await;
            }
            drop(value);
            self.invoke_checked(tool, &arguments.to_owned(), context)
                .await
        })
        .await
    }

    /// Whether a call of `tool` needs more than its setting's `always`: the
    /// rare path, kept out of every call's future.
    fn needs_approval(&self, tool: &str, at_least: Approve) -> bool {
        self.approvals.for_tool(tool).max(at_least) != Approve::Always
    }

    /// Whether the call may run: its approval setting (the plugin's for the
    /// tool, or the caller's if stricter), and for `ask`, the person at
    /// hand's decision.
    async fn approved(
        &self,
        tool: &str,
        arguments: &str,
        context: &InvocationContext,
        at_least: Approve,
    ) -> Result<(), CallError> {
        let needed = self.approvals.for_tool(tool).max(at_least);
        if needed == Approve::Always {
            return Ok(());
        }
        let refused = |reason: String| CallError::Denied {
            plugin: self.name.to_string(),
            function: "invoke".into(),
            capability: format!("running tool `{tool}`"),
            reason,
        };
        if needed == Approve::Never {
            return Err(refused(format!(
                "its approval setting is `never`; change it with `paracle plugin approve {} {tool} ask` (or `always`)",
                self.name
            )));
        }
        let Some(person) = AtHand::current() else {
            return Err(refused(format!(
                "its approval setting is `ask`, and no person is at hand to approve it; call it from a terminal or an MCP client that supports elicitation, or change the setting with `paracle plugin approve {} {tool} always`",
                self.name
            )));
        };
        let request = ApprovalRequest {
            plugin: self.name.to_string(),
            digest: self.digest.to_string(),
            tool: tool.to_string(),
            arguments: paracle_base::shown::clipped(arguments, 4096),
            arguments_bytes: arguments.len(),
            caller: context.caller.clone(),
            agent: context.agent.clone(),
            run: context.run_id.clone(),
            key: call_key(context.agent.as_deref(), &self.name, tool, arguments),
        };
        match person.approve(request).await {
            Approval::Approved => Ok(()),
            Approval::Refused => Err(refused("a person refused this call".into())),
            Approval::Pending => Err(refused(
                "it awaits a person's approval: the run stops at a gate, and `paracle run approve` or `paracle run reject` decides it".into(),
            )),
        }
    }

    fn check_arguments(&self, tool: &str, arguments: &Value) -> Result<(), CallError> {
        self.expect_kind(PluginKind::Tool)?;
        let validator = self
            .validators
            .get(tool)
            .ok_or_else(|| CallError::InvalidRequest {
                plugin: self.name.to_string(),
                message: format!(
                    "it has no tool named `{tool}`; its tools are: {}",
                    self.tools
                        .iter()
                        .map(|t| t.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        match schema_errors(validator, arguments) {
            None => Ok(()),
            Some(errors) => Err(CallError::InvalidRequest {
                plugin: self.name.to_string(),
                message: format!(
                    "the arguments do not match the schema of tool `{tool}`: {errors}"
                ),
            }),
        }
    }

    async fn invoke_checked(
        &self,
        tool: &str,
        arguments: &String,
        context: &InvocationContext,
    ) -> CallResult<ToolOutput> {
        let answer = guest_call!(self, "invoke", Tool, |b, store| b
            .paracle_plugin_tool()
            .call_invoke(&mut *store, tool, arguments, context))?;
        match answer {
            Ok(mut json) => {
                self.check_output("invoke", json.len())?;
                self.redactor.scrub_in_place(&mut json);
                match ToolOutput::new(json) {
                    Ok(output) => Ok(Ok(output)),
                    Err(OutputError::TooDeep) => Err(self.too_deep("invoke")),
                    Err(OutputError::Invalid(e)) => Ok(Err(PluginError {
                        plugin: self.name.to_string(),
                        kind: crate::error::PluginErrorKind::Internal,
                        message: format!("tool `{tool}` returned invalid JSON: {e}"),
                    })),
                }
            }
            Err(error) => Ok(Err(PluginError::from_wit(&self.name, error))),
        }
    }

    // ---- memory ----

    pub async fn memory_put(&self, namespace: &str, key: &str, value: &str) -> CallResult<()> {
        self.counted(async {
            self.expect_kind(PluginKind::Memory)?;
            let answer = guest_call!(self, "put", Memory, |b, store| b
                .paracle_plugin_memory()
                .call_put(&mut *store, namespace, key, value))?;
            Ok(self.answer(answer))
        })
        .await
    }

    pub async fn memory_get(&self, namespace: &str, key: &str) -> CallResult<Option<String>> {
        self.counted(async {
            self.expect_kind(PluginKind::Memory)?;
            let mut answer = guest_call!(self, "get", Memory, |b, store| b
                .paracle_plugin_memory()
                .call_get(&mut *store, namespace, key))?;
            if let Ok(Some(value)) = &mut answer {
                self.check_output("get", value.len())?;
                self.redactor.scrub_in_place(value);
            }
            Ok(self.answer(answer))
        })
        .await
    }

    pub async fn memory_delete(&self, namespace: &str, key: &str) -> CallResult<bool> {
        self.counted(async {
            self.expect_kind(PluginKind::Memory)?;
            let answer = guest_call!(self, "delete", Memory, |b, store| b
                .paracle_plugin_memory()
                .call_delete(&mut *store, namespace, key))?;
            Ok(self.answer(answer))
        })
        .await
    }

    pub async fn memory_keys(&self, namespace: &str, prefix: &str) -> CallResult<Vec<String>> {
        self.counted(async {
            self.expect_kind(PluginKind::Memory)?;
            let answer = guest_call!(self, "keys", Memory, |b, store| b
                .paracle_plugin_memory()
                .call_keys(&mut *store, namespace, prefix))?;
            if let Ok(keys) = &answer {
                self.check_output(
                    "keys",
                    returned::list_bytes(keys.iter().map(String::as_str)),
                )?;
            }
            Ok(self.answer(answer))
        })
        .await
    }

    pub async fn memory_search(
        &self,
        namespace: &str,
        query: &str,
        limit: u32,
    ) -> CallResult<Vec<SearchHit>> {
        self.counted(async {
            self.expect_kind(PluginKind::Memory)?;
            let mut answer = guest_call!(self, "search", Memory, |b, store| b
                .paracle_plugin_memory()
                .call_search(&mut *store, namespace, query, limit))?;
            if let Ok(hits) = &answer {
                // The caller's limit is the host's to keep, not the plugin's.
                if hits.len() > limit as usize {
                    return Err(self.over(
                        "search",
                        format!(
                            "it returned {} hits where at most {limit} were asked for",
                            hits.len()
                        ),
                    ));
                }
                self.check_output(
                    "search",
                    hits.iter()
                        .map(|h| h.key.len() + h.value.len() + ITEM_BYTES)
                        .sum(),
                )?;
            }
            if let Ok(hits) = &mut answer {
                for hit in hits {
                    self.redactor.scrub_in_place(&mut hit.key);
                    self.redactor.scrub_in_place(&mut hit.value);
                }
            }
            Ok(self.answer(answer))
        })
        .await
    }

    // ---- observer ----

    pub async fn on_event(&self, event: &Event) -> CallResult<()> {
        self.counted(async {
            self.expect_kind(PluginKind::Observer)?;
            let answer = observer_call!(self, "on-event", |observer, store| observer
                .call_on_event(&mut *store, event))?;
            Ok(self.answer(answer))
        })
        .await
    }

    /// The observer's report. A report that is not JSON is the plugin's own
    /// error, not a fault of the caller's request.
    pub async fn report(&self) -> CallResult<Value> {
        self.counted(async {
            self.expect_kind(PluginKind::Observer)?;
            let json = observer_call!(self, "report", |observer, store| observer
                .call_report(&mut *store))?;
            self.check_output("report", json.len())?;
            if nests_deeper_than(&json, MAX_JSON_DEPTH) {
                return Err(self.too_deep("report"));
            }
            Ok(serde_json::from_str(&json).map_err(|e| PluginError {
                plugin: self.name.to_string(),
                kind: crate::error::PluginErrorKind::Internal,
                message: format!("its report is not valid JSON: {e}"),
            }))
        })
        .await
    }

    // ---- adapter ----

    /// Run an agent. The adapter's provider, tool and memory imports go where
    /// `routes` says, for this call only.
    pub async fn run_agent(
        &self,
        agent: &AgentSpec,
        task: &Task,
        routes: Arc<dyn AgentRouter>,
    ) -> CallResult<Outcome> {
        self.counted(async {
            self.expect_kind(PluginKind::Adapter)?;
            let mut lease = self.lease().await?;
            lease.instance.store.data_mut().agent.enter(routes, agent);
            let outcome = {
                let Instance { store, exports, .. } = &mut *lease.instance;
                let Exports::Adapter(b) = &*exports else {
                    unreachable!("every instance of a plugin has the plugin's kind")
                };
                self.with_deadline_from(
                    lease.began,
                    b.paracle_plugin_adapter()
                        .call_run_agent(&mut *store, agent, task),
                )
                .await
            };
            let mut answer = self.settle(lease, "run-agent", outcome, true)?;
            if let Ok(outcome) = &mut answer {
                self.redactor.scrub_in_place(&mut outcome.output);
                let size = outcome.output.len()
                    + outcome
                        .artifacts
                        .iter()
                        .map(|a| a.path.len() + a.content.len() + ITEM_BYTES)
                        .sum::<usize>();
                self.check_output("run-agent", size)?;
            }
            Ok(self.answer(answer))
        })
        .await
    }

    // ---- git workflow ----

    /// Whether the plugin exports `git-workflow`, the policy behind
    /// `paracle git`.
    pub fn is_git_workflow(&self) -> bool {
        matches!(self.pre, super::Pre::GitWorkflow(_))
    }

    fn expect_git_workflow(&self) -> Result<(), CallError> {
        if self.is_git_workflow() {
            return Ok(());
        }
        Err(CallError::InvalidRequest {
            plugin: self.name.to_string(),
            message: "it does not export the `git-workflow` interface".into(),
        })
    }

    pub async fn git_init_workflow(
        &self,
        requested: &SettingsRequest,
    ) -> CallResult<GitSettingsRecord> {
        self.counted(async {
            self.expect_git_workflow()?;
            let answer = guest_call!(self, "init-workflow", GitWorkflow, |b, store| b
                .paracle_plugin_git_workflow()
                .call_init_workflow(&mut *store, requested))?;
            if let Ok(settings) = &answer {
                // Written into .paracle/config.toml.
                if settings.base_branch.len() > returned::MAX_LINE_TEXT {
                    return Err(self.over(
                        "init-workflow",
                        format!(
                            "its base branch is {} bytes, over the {} allowed",
                            settings.base_branch.len(),
                            returned::MAX_LINE_TEXT
                        ),
                    ));
                }
            }
            Ok(self.answer(answer))
        })
        .await
    }

    pub async fn git_branches(&self) -> CallResult<Vec<ExecutionBranch>> {
        self.counted(async {
            self.expect_git_workflow()?;
            let answer = guest_call!(self, "branches", GitWorkflow, |b, store| b
                .paracle_plugin_git_workflow()
                .call_branches(&mut *store))?;
            if let Ok(branches) = &answer {
                self.check_output(
                    "branches",
                    branches
                        .iter()
                        .map(|b| {
                            b.name.len()
                                + b.execution_id.len()
                                + b.head.id.len()
                                + b.head.summary.len()
                                + b.worktree.as_ref().map_or(0, String::len)
                                + ITEM_BYTES
                        })
                        .sum(),
                )?;
            }
            Ok(self.answer(answer))
        })
        .await
    }

    pub async fn git_merge(&self, branch: &str, target: Option<&str>) -> CallResult<MergeOutcome> {
        self.counted(async {
            self.expect_git_workflow()?;
            let answer = guest_call!(self, "merge", GitWorkflow, |b, store| b
                .paracle_plugin_git_workflow()
                .call_merge(&mut *store, branch, target))?;
            if let Ok(outcome) = &answer {
                let size = match outcome {
                    MergeOutcome::UpToDate => 0,
                    MergeOutcome::FastForward(c) | MergeOutcome::Merged(c) => {
                        c.id.len() + c.summary.len()
                    }
                    MergeOutcome::Conflict(paths) | MergeOutcome::Blocked(paths) => {
                        returned::list_bytes(paths.iter().map(String::as_str))
                    }
                };
                self.check_output("merge", size)?;
            }
            Ok(self.answer(answer))
        })
        .await
    }

    pub async fn git_describe_pull_request(
        &self,
        execution: &str,
        run: &Value,
        title: Option<&str>,
        body: Option<&str>,
    ) -> CallResult<PullRequest> {
        self.counted(async {
            self.expect_git_workflow()?;
            let run = run.to_string();
            let answer = guest_call!(self, "describe-pull-request", GitWorkflow, |b, store| b
                .paracle_plugin_git_workflow()
                .call_describe_pull_request(&mut *store, execution, &run, title, body))?;
            if let Ok(pr) = &answer {
                self.check_output(
                    "describe-pull-request",
                    pr.title.len() + pr.body.len() + pr.head.len() + pr.base.len(),
                )?;
            }
            Ok(self.answer(answer))
        })
        .await
    }

    pub async fn git_cleanup(
        &self,
        target: Option<&str>,
        older_than_ms: Option<u64>,
        active: &[String],
    ) -> CallResult<Vec<Cleaned>> {
        self.counted(async {
            self.expect_git_workflow()?;
            let answer = guest_call!(self, "cleanup", GitWorkflow, |b, store| b
                .paracle_plugin_git_workflow()
                .call_cleanup(&mut *store, target, older_than_ms, active))?;
            if let Ok(cleaned) = &answer {
                self.check_output(
                    "cleanup",
                    cleaned
                        .iter()
                        .map(|c| c.branch.len() + c.detail.len() + ITEM_BYTES)
                        .sum(),
                )?;
            }
            Ok(self.answer(answer))
        })
        .await
    }
}

/// The key of a tool call for approvals: the same agent making the same
/// call again gets the same key.
fn call_key(agent: Option<&str>, plugin: &str, tool: &str, arguments: &str) -> String {
    let mut hash = Sha256::new();
    for part in [agent.unwrap_or(""), plugin, tool, arguments] {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    }
    format!("sha256:{}", hex::encode(hash.finalize()))
}
