//! Where an adapter's imports go. The adapter calls `provider`, `tool` and
//! `memory`; the host answers by calling the plugins that the agent's spec
//! names. Plugins never reach each other directly.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use paracle_base::shown;
use paracle_contract::{
    ChatRequest, ChatResponse, InvocationContext, ModelInfo, SearchHit, ToolSpec, WitError,
};

use paracle_policy::{Approvals, Approve};

use crate::capability::agent::{no_route, AgentRouter, Routed};
use crate::error::{CallError, PluginError};
use crate::plugin::{Plugin, PluginKind, ToolOutput};

struct ToolRoute {
    plugin: Arc<Plugin>,
    /// The tool's name inside its plugin.
    tool: String,
    /// The agent's own approval setting for it.
    at_least: Approve,
    /// The tool as the adapter sees it (renamed when two plugins clash).
    spec: ToolSpec,
}

/// A tool plugin an agent may use, which of its tools (none listed: all),
/// and which calls of them the agent's spec wants approved.
#[derive(Clone)]
pub struct ToolChoice {
    pub plugin: Arc<Plugin>,
    pub only: BTreeSet<String>,
    pub approvals: Approvals,
}

impl From<Arc<Plugin>> for ToolChoice {
    fn from(plugin: Arc<Plugin>) -> Self {
        ToolChoice {
            plugin,
            only: BTreeSet::new(),
            approvals: Approvals::default(),
        }
    }
}

/// Hears the provider and tool calls that an agent's adapter makes, for
/// `llm-call` and `tool-call` events.
pub trait CallObserver: Send + Sync {
    fn llm_call(
        &self,
        provider: &Plugin,
        elapsed: Duration,
        result: Result<&ChatResponse, &WitError>,
    );
    fn tool_call(&self, plugin: &Plugin, tool: &str, elapsed: Duration, ok: bool);
}

/// Why routes for an agent could not be made: a plugin of the wrong kind, or
/// a tool its plugin does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RouteError(String);

/// The plugins one agent may reach, and who is calling.
pub struct AgentRoutes {
    provider: Option<Arc<Plugin>>,
    memory: Option<Arc<Plugin>>,
    tools: Vec<ToolRoute>,
    by_name: HashMap<String, usize>,
    context: InvocationContext,
    observer: Option<Arc<dyn CallObserver>>,
}

impl AgentRoutes {
    /// Routes for an agent run by `adapter`. Plugins of the wrong kind are
    /// refused here, so that a spec's mistake shows before the agent runs.
    pub fn new(
        adapter: &str,
        provider: Option<Arc<Plugin>>,
        tools: Vec<ToolChoice>,
        memory: Option<Arc<Plugin>>,
        run_id: Option<String>,
        agent: Option<String>,
    ) -> Result<Self, RouteError> {
        let check = |plugin: &Arc<Plugin>, kind: PluginKind| {
            if plugin.kind() == kind {
                Ok(())
            } else {
                Err(RouteError(format!(
                    "`{}` is a {} plugin, not a {kind} plugin",
                    plugin.name(),
                    plugin.kind()
                )))
            }
        };
        if let Some(p) = &provider {
            check(p, PluginKind::Provider)?;
        }
        if let Some(m) = &memory {
            check(m, PluginKind::Memory)?;
        }
        let mut routes = Vec::new();
        let mut by_name = HashMap::new();
        for ToolChoice {
            plugin,
            only,
            approvals,
        } in &tools
        {
            check(plugin, PluginKind::Tool)?;
            if let Some(missing) = only
                .iter()
                .find(|name| !plugin.tools().iter().any(|t| &&t.name == name))
            {
                return Err(RouteError(format!(
                    "`{}` has no tool `{missing}`",
                    plugin.name()
                )));
            }
            let chosen = plugin
                .tools()
                .iter()
                .filter(|t| only.is_empty() || only.contains(&t.name));
            for spec in chosen {
                let mut exposed = spec.clone();
                if by_name.contains_key(&spec.name) {
                    // Two plugins offer the same tool name: the later one is
                    // reached under a name that says which plugin it is from.
                    exposed.name = format!("{}__{}", plugin.name().replace('-', "_"), spec.name);
                }
                by_name.insert(exposed.name.clone(), routes.len());
                routes.push(ToolRoute {
                    plugin: plugin.clone(),
                    tool: spec.name.clone(),
                    at_least: approvals.for_tool(&spec.name),
                    spec: exposed,
                });
            }
        }
        Ok(AgentRoutes {
            provider,
            memory,
            tools: routes,
            by_name,
            context: InvocationContext {
                caller: adapter.to_string(),
                run_id,
                agent,
            },
            observer: None,
        })
    }

    /// Report this agent's provider and tool calls to `observer`.
    pub fn observed(mut self, observer: Arc<dyn CallObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The tools as the adapter sees them.
    pub fn tool_specs(&self) -> Vec<ToolSpec> {
        self.tools.iter().map(|r| r.spec.clone()).collect()
    }

    fn memory(&self) -> Result<Arc<Plugin>, WitError> {
        self.memory.clone().ok_or_else(|| no_route("memory"))
    }
}

/// A routed call's failure, as the adapter sees it: the plugin's own error
/// passes through, a denial stays `denied`, and a trap or limit in the routed
/// plugin becomes `unavailable` so that the adapter can go on, and the host's
/// log keeps the detail.
fn routed<T>(result: Result<Result<T, PluginError>, CallError>) -> Result<T, WitError> {
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(error.to_wit()),
        Err(CallError::InvalidRequest { plugin, message }) => {
            Err(WitError::InvalidInput(format!("{plugin}: {message}")))
        }
        Err(error @ CallError::Denied { .. }) => Err(WitError::Denied(error.to_string())),
        Err(error) => {
            tracing::warn!("routed call failed: {}", shown::line(&error.to_string()));
            Err(WitError::Unavailable(error.to_string()))
        }
    }
}

/// A memory call on the agent's memory plugin, or the adapter's error when
/// it has none.
fn on_memory<T: Send + 'static, F>(
    routes: &AgentRoutes,
    call: impl FnOnce(Arc<Plugin>) -> F + Send + 'static,
) -> Routed<T>
where
    F: std::future::Future<Output = Result<Result<T, PluginError>, CallError>> + Send + 'static,
{
    let memory = routes.memory();
    Box::pin(async move { routed(call(memory?).await) })
}

impl AgentRouter for AgentRoutes {
    fn list_models(&self) -> Routed<Vec<ModelInfo>> {
        let provider = self.provider.clone().ok_or_else(|| no_route("provider"));
        Box::pin(async move { routed(provider?.list_models().await) })
    }

    fn has_provider(&self) -> bool {
        self.provider.is_some()
    }

    fn chat(&self, request: ChatRequest) -> Routed<ChatResponse> {
        let provider = self.provider.clone().ok_or_else(|| no_route("provider"));
        let observer = self.observer.clone();
        Box::pin(async move {
            let provider = provider?;
            let started = Instant::now();
            let result = routed(provider.chat(&request).await);
            if let Some(observer) = observer {
                observer.llm_call(&provider, started.elapsed(), result.as_ref());
            }
            result
        })
    }

    fn tool_specs(&self) -> Vec<ToolSpec> {
        AgentRoutes::tool_specs(self)
    }

    fn invoke_tool(&self, name: String, arguments: String) -> Routed<String> {
        let Some(route) = self.by_name.get(&name).map(|&i| &self.tools[i]) else {
            return Box::pin(async move {
                Err(WitError::NotFound(format!(
                    "this agent has no tool named `{name}`"
                )))
            });
        };
        let plugin = route.plugin.clone();
        let tool = route.tool.clone();
        let at_least = route.at_least;
        // The context is the host's, not the adapter's: an adapter cannot
        // claim to be another caller or run.
        let context = self.context.clone();
        let observer = self.observer.clone();
        Box::pin(async move {
            let started = Instant::now();
            let result = routed(
                plugin
                    .invoke_tool_json_approved(&tool, &arguments, &context, at_least)
                    .await,
            );
            if let Some(observer) = observer {
                observer.tool_call(&plugin, &tool, started.elapsed(), result.is_ok());
            }
            result.map(ToolOutput::into_string)
        })
    }

    fn memory_put(&self, namespace: String, key: String, value: String) -> Routed<()> {
        on_memory(self, move |m| async move {
            m.memory_put(&namespace, &key, &value).await
        })
    }

    fn memory_get(&self, namespace: String, key: String) -> Routed<Option<String>> {
        on_memory(self, move |m| async move {
            m.memory_get(&namespace, &key).await
        })
    }

    fn memory_delete(&self, namespace: String, key: String) -> Routed<bool> {
        on_memory(self, move |m| async move {
            m.memory_delete(&namespace, &key).await
        })
    }

    fn memory_keys(&self, namespace: String, prefix: String) -> Routed<Vec<String>> {
        on_memory(self, move |m| async move {
            m.memory_keys(&namespace, &prefix).await
        })
    }

    fn memory_search(
        &self,
        namespace: String,
        query: String,
        limit: u32,
    ) -> Routed<Vec<SearchHit>> {
        on_memory(self, move |m| async move {
            m.memory_search(&namespace, &query, limit).await
        })
    }
}
