//! Where an adapter's imports go. The adapter calls `provider`, `tool` and
//! `memory`; the host answers by calling the plugins that the agent's spec
//! names. Plugins never reach each other directly.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bindings::{
    AgentSpec, ChatRequest, ChatResponse, InvocationContext, MemoryImports, ModelInfo,
    ProviderImports, SearchHit, ToolImports, ToolSpec, WitError,
};
use crate::error::{CallError, Limit, PluginError};
use crate::net::Incident;
use crate::plugin::{Plugin, PluginKind, ToolOutput};
use crate::sandbox::StoreState;

struct ToolRoute {
    plugin: Arc<Plugin>,
    /// The tool's name inside its plugin.
    tool: String,
    /// The tool as the adapter sees it (renamed when two plugins clash).
    spec: ToolSpec,
}

/// A tool plugin an agent may use, and which of its tools (none listed: all).
pub struct ToolChoice {
    pub plugin: Arc<Plugin>,
    pub only: BTreeSet<String>,
}

impl From<Arc<Plugin>> for ToolChoice {
    fn from(plugin: Arc<Plugin>) -> Self {
        ToolChoice {
            plugin,
            only: BTreeSet::new(),
        }
    }
}

/// Hears the provider and tool calls that an agent's adapter makes, for
/// `llm-call` and `tool-call` events.
pub trait CallObserver: Send + Sync {
    fn llm_call(&self, provider: &str, elapsed: Duration, result: Result<&ChatResponse, &WitError>);
    fn tool_call(&self, plugin: &str, tool: &str, elapsed: Duration, ok: bool);
}

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
    ) -> Result<Self, String> {
        let check = |plugin: &Arc<Plugin>, kind: PluginKind| {
            if plugin.kind() == kind {
                Ok(())
            } else {
                Err(format!(
                    "`{}` is a {} plugin, not a {kind} plugin",
                    plugin.name(),
                    plugin.kind()
                ))
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
        for ToolChoice { plugin, only } in &tools {
            check(plugin, PluginKind::Tool)?;
            if let Some(missing) = only
                .iter()
                .find(|name| !plugin.tools().iter().any(|t| &&t.name == name))
            {
                return Err(format!("`{}` has no tool `{missing}`", plugin.name()));
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

    pub fn tool_specs(&self) -> Vec<ToolSpec> {
        self.tools.iter().map(|r| r.spec.clone()).collect()
    }
}

/// What the host holds one agent run to, whatever its adapter does: the
/// agent's own memory namespace and no other, and at most `max_steps`
/// provider calls. The adapter is told both in its spec; the host does not
/// trust it to keep to them, since a provider call may cost money and other
/// namespaces hold other agents' (and MCP clients') notes.
#[derive(Debug, Clone)]
pub(crate) struct AgentBounds {
    namespace: String,
    max_steps: u32,
    provider_calls: u32,
}

impl AgentBounds {
    pub(crate) fn of(spec: &AgentSpec) -> Self {
        AgentBounds {
            namespace: spec.memory_namespace.clone(),
            // An adapter asked for no steps still takes one, as the SDK's does.
            max_steps: spec.max_steps.max(1),
            provider_calls: 0,
        }
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
            tracing::warn!(
                "routed call failed: {}",
                crate::shown::line(&error.to_string())
            );
            Err(WitError::Unavailable(error.to_string()))
        }
    }
}

fn no_route(what: &str) -> WitError {
    WitError::Unavailable(format!("this agent has no {what} plugin"))
}

impl StoreState {
    fn routes(&self) -> Option<Arc<AgentRoutes>> {
        self.routes.clone()
    }

    /// The memory plugin, for a call on `namespace`: only the agent's own.
    fn memory_for(&self, namespace: &str) -> Result<Arc<Plugin>, WitError> {
        if let Some(bounds) = &self.bounds {
            if namespace != bounds.namespace {
                let reason = format!(
                    "an agent reaches only its own memory namespace `{}`",
                    bounds.namespace
                );
                self.record_incident(Incident::Denied {
                    capability: format!(
                        "memory namespace `{}`",
                        crate::shown::clipped(namespace, 64)
                    ),
                    reason: reason.clone(),
                    grant: None,
                });
                return Err(WitError::Denied(reason));
            }
        }
        self.route(|r| &r.memory, "memory")
    }

    /// Count one provider call against the agent's steps; refused past them.
    fn spend_step(&mut self) -> Result<(), WitError> {
        let Some(bounds) = &mut self.bounds else {
            return Ok(());
        };
        if bounds.provider_calls >= bounds.max_steps {
            let detail = format!(
                "made more provider calls than its agent's max_steps ({})",
                bounds.max_steps
            );
            self.record_incident(Incident::Limit {
                limit: Limit::Steps,
                detail: detail.clone(),
            });
            return Err(WitError::Denied(detail));
        }
        bounds.provider_calls += 1;
        Ok(())
    }

    /// The plugin an import goes to, or the error the adapter sees when its
    /// agent has none of that kind.
    fn route(
        &self,
        pick: impl FnOnce(&AgentRoutes) -> &Option<Arc<Plugin>>,
        what: &str,
    ) -> Result<Arc<Plugin>, WitError> {
        self.routes
            .as_deref()
            .and_then(|routes| pick(routes).clone())
            .ok_or_else(|| no_route(what))
    }
}

impl ProviderImports for StoreState {
    async fn list_models(&mut self) -> wasmtime::Result<Result<Vec<ModelInfo>, WitError>> {
        let provider = self.route(|r| &r.provider, "provider");
        Ok(async { routed(provider?.list_models().await) }.await)
    }

    async fn chat(
        &mut self,
        request: ChatRequest,
    ) -> wasmtime::Result<Result<ChatResponse, WitError>> {
        let provider = match self
            .route(|r| &r.provider, "provider")
            .and_then(|provider| self.spend_step().map(|()| provider))
        {
            Ok(provider) => provider,
            Err(error) => return Ok(Err(error)),
        };
        let started = Instant::now();
        let result = routed(provider.chat(&request).await);
        if let Some(observer) = self.routes.as_ref().and_then(|r| r.observer.as_ref()) {
            observer.llm_call(provider.name(), started.elapsed(), result.as_ref());
        }
        Ok(result)
    }
}

impl ToolImports for StoreState {
    async fn list_tools(&mut self) -> wasmtime::Result<Vec<ToolSpec>> {
        Ok(self.routes().map(|r| r.tool_specs()).unwrap_or_default())
    }

    async fn invoke(
        &mut self,
        name: String,
        arguments: String,
        _context: InvocationContext,
    ) -> wasmtime::Result<Result<String, WitError>> {
        let Some(routes) = self.routes() else {
            return Ok(Err(no_route("tool")));
        };
        let Some(route) = routes.by_name.get(&name).map(|&i| &routes.tools[i]) else {
            return Ok(Err(WitError::NotFound(format!(
                "this agent has no tool named `{name}`"
            ))));
        };
        // The context is the host's, not the adapter's: an adapter cannot
        // claim to be another caller or run.
        let started = Instant::now();
        let result = routed(
            route
                .plugin
                .invoke_tool_json(&route.tool, &arguments, &routes.context)
                .await,
        );
        if let Some(observer) = &routes.observer {
            observer.tool_call(
                route.plugin.name(),
                &route.tool,
                started.elapsed(),
                result.is_ok(),
            );
        }
        Ok(result.map(ToolOutput::into_string))
    }
}

impl MemoryImports for StoreState {
    async fn put(
        &mut self,
        namespace: String,
        key: String,
        value: String,
    ) -> wasmtime::Result<Result<(), WitError>> {
        let memory = self.memory_for(&namespace);
        Ok(async { routed(memory?.memory_put(&namespace, &key, &value).await) }.await)
    }

    async fn get(
        &mut self,
        namespace: String,
        key: String,
    ) -> wasmtime::Result<Result<Option<String>, WitError>> {
        let memory = self.memory_for(&namespace);
        Ok(async { routed(memory?.memory_get(&namespace, &key).await) }.await)
    }

    async fn delete(
        &mut self,
        namespace: String,
        key: String,
    ) -> wasmtime::Result<Result<bool, WitError>> {
        let memory = self.memory_for(&namespace);
        Ok(async { routed(memory?.memory_delete(&namespace, &key).await) }.await)
    }

    async fn keys(
        &mut self,
        namespace: String,
        prefix: String,
    ) -> wasmtime::Result<Result<Vec<String>, WitError>> {
        let memory = self.memory_for(&namespace);
        Ok(async { routed(memory?.memory_keys(&namespace, &prefix).await) }.await)
    }

    async fn search(
        &mut self,
        namespace: String,
        query: String,
        limit: u32,
    ) -> wasmtime::Result<Result<Vec<SearchHit>, WitError>> {
        let memory = self.memory_for(&namespace);
        Ok(async { routed(memory?.memory_search(&namespace, &query, limit).await) }.await)
    }
}
