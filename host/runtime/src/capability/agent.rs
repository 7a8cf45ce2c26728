//! The imports an adapter runs its agent through: `provider`, `tool` and
//! `memory`. The host answers them through an [`AgentRouter`] (the plugins
//! the agent's spec names, in [`crate::AgentRoutes`]), and holds the run to
//! its [`AgentBounds`] whatever the adapter does: the agent's own memory
//! namespace and no other, and at most `max_steps` provider calls. The
//! adapter is told both in its spec; the host does not trust it to keep to
//! them, since a provider call may cost money and other namespaces hold other
//! agents' (and MCP clients') notes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use paracle_base::shown;
use paracle_contract::imports::{memory, provider, tool};
use paracle_contract::{
    AgentSpec, ChatRequest, ChatResponse, InvocationContext, ModelInfo, SearchHit, ToolSpec,
    WitError,
};
use paracle_policy::Limit;
use wasmtime::component::{HasData, Linker};

use crate::incident::{Incident, Incidents};

/// A routed call's answer, as the adapter sees it.
pub type Routed<T> = Pin<Box<dyn Future<Output = Result<T, WitError>> + Send>>;

/// Where one agent's provider, tool and memory imports go. Implemented by
/// [`crate::AgentRoutes`] over loaded plugins; another host (a worker that
/// routes over the network) implements it over its own.
pub trait AgentRouter: Send + Sync + 'static {
    fn list_models(&self) -> Routed<Vec<ModelInfo>>;
    /// Whether the agent has a provider at all: a chat without one spends
    /// none of its steps. A router that answers false must answer every
    /// `chat` with [`no_route`], never forward it, or the agent's steps
    /// would go uncounted.
    fn has_provider(&self) -> bool;
    fn chat(&self, request: ChatRequest) -> Routed<ChatResponse>;
    fn tool_specs(&self) -> Vec<ToolSpec>;
    /// Call the tool the adapter knows as `name`, as the host's caller (never
    /// the context the adapter claims).
    fn invoke_tool(&self, name: String, arguments: String) -> Routed<String>;
    fn memory_put(&self, namespace: String, key: String, value: String) -> Routed<()>;
    fn memory_get(&self, namespace: String, key: String) -> Routed<Option<String>>;
    fn memory_delete(&self, namespace: String, key: String) -> Routed<bool>;
    fn memory_keys(&self, namespace: String, prefix: String) -> Routed<Vec<String>>;
    fn memory_search(&self, namespace: String, query: String, limit: u32)
        -> Routed<Vec<SearchHit>>;
}

/// The error an adapter sees when its agent has no plugin of a kind.
pub fn no_route(what: &str) -> WitError {
    WitError::Unavailable(format!("this agent has no {what} plugin"))
}

/// What the host holds one agent run to.
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

/// The agent capability of one store: set for the length of one `run`.
pub(crate) struct AgentCtx {
    router: Option<Arc<dyn AgentRouter>>,
    bounds: Option<AgentBounds>,
    incidents: Incidents,
}

impl AgentCtx {
    pub(crate) fn new(incidents: Incidents) -> Self {
        AgentCtx {
            router: None,
            bounds: None,
            incidents,
        }
    }

    /// Route this run's imports through `router`, held to `spec`.
    pub(crate) fn enter(&mut self, router: Arc<dyn AgentRouter>, spec: &AgentSpec) {
        self.router = Some(router);
        self.bounds = Some(AgentBounds::of(spec));
    }

    /// Forget the run: an instance reused by another call reaches nothing.
    pub(crate) fn leave(&mut self) {
        self.router = None;
        self.bounds = None;
    }

    fn router(&self, what: &str) -> Result<Arc<dyn AgentRouter>, WitError> {
        self.router.clone().ok_or_else(|| no_route(what))
    }

    /// The router, for a memory call on `namespace`: only the agent's own.
    fn memory_for(&self, namespace: &str) -> Result<Arc<dyn AgentRouter>, WitError> {
        if let Some(bounds) = &self.bounds {
            if namespace != bounds.namespace {
                let reason = format!(
                    "an agent reaches only its own memory namespace `{}`",
                    bounds.namespace
                );
                self.incidents.record(Incident::Denied {
                    capability: format!("memory namespace `{}`", shown::clipped(namespace, 64)),
                    reason: reason.clone(),
                    grant: None,
                });
                return Err(WitError::Denied(reason));
            }
        }
        self.router("memory")
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
            self.incidents.record(Incident::Limit {
                limit: Limit::Steps,
                detail: detail.clone(),
            });
            return Err(WitError::Denied(detail));
        }
        bounds.provider_calls += 1;
        Ok(())
    }
}

/// The [`HasData`] marker under which the agent imports see only [`AgentCtx`].
pub(crate) struct Agent;

impl HasData for Agent {
    type Data<'a> = &'a mut AgentCtx;
}

/// Link the adapter's `provider`, `tool` and `memory` imports to the store's
/// [`AgentCtx`].
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut AgentCtx,
) -> wasmtime::Result<()> {
    provider::add_to_linker::<T, Agent>(linker, get)?;
    tool::add_to_linker::<T, Agent>(linker, get)?;
    memory::add_to_linker::<T, Agent>(linker, get)
}

type Answer<T> = wasmtime::Result<Result<T, WitError>>;

async fn answer<T>(
    router: Result<Arc<dyn AgentRouter>, WitError>,
    call: impl FnOnce(&dyn AgentRouter) -> Routed<T>,
) -> Answer<T> {
    Ok(match router {
        Ok(router) => call(router.as_ref()).await,
        Err(error) => Err(error),
    })
}

impl provider::Host for AgentCtx {
    async fn list_models(&mut self) -> Answer<Vec<ModelInfo>> {
        answer(self.router("provider"), |r| r.list_models()).await
    }

    async fn chat(&mut self, request: ChatRequest) -> Answer<ChatResponse> {
        let router = match self.router("provider") {
            Ok(router) if router.has_provider() => match self.spend_step() {
                Ok(()) => Ok(router),
                Err(error) => Err(error),
            },
            other => other,
        };
        answer(router, |r| r.chat(request)).await
    }
}

impl tool::Host for AgentCtx {
    async fn list_tools(&mut self) -> wasmtime::Result<Vec<ToolSpec>> {
        Ok(self
            .router
            .as_ref()
            .map(|r| r.tool_specs())
            .unwrap_or_default())
    }

    async fn invoke(
        &mut self,
        name: String,
        arguments: String,
        _context: InvocationContext,
    ) -> Answer<String> {
        answer(self.router("tool"), |r| r.invoke_tool(name, arguments)).await
    }
}

impl memory::Host for AgentCtx {
    async fn put(&mut self, namespace: String, key: String, value: String) -> Answer<()> {
        answer(self.memory_for(&namespace), |r| {
            r.memory_put(namespace, key, value)
        })
        .await
    }

    async fn get(&mut self, namespace: String, key: String) -> Answer<Option<String>> {
        answer(self.memory_for(&namespace), |r| {
            r.memory_get(namespace, key)
        })
        .await
    }

    async fn delete(&mut self, namespace: String, key: String) -> Answer<bool> {
        answer(self.memory_for(&namespace), |r| {
            r.memory_delete(namespace, key)
        })
        .await
    }

    async fn keys(&mut self, namespace: String, prefix: String) -> Answer<Vec<String>> {
        answer(self.memory_for(&namespace), |r| {
            r.memory_keys(namespace, prefix)
        })
        .await
    }

    async fn search(
        &mut self,
        namespace: String,
        query: String,
        limit: u32,
    ) -> Answer<Vec<SearchHit>> {
        answer(self.memory_for(&namespace), |r| {
            r.memory_search(namespace, query, limit)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    //! The capability alone: a context and a router that records what
    //! reached it, no store, no plugin.

    use std::sync::Mutex;

    use paracle_contract::{FinishReason, Message, Role, Usage};

    use super::*;

    /// Answers every call, and remembers which reached it.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl Recorder {
        fn reached(&self, what: String) {
            self.0.lock().unwrap().push(what);
        }
    }

    fn reply() -> ChatResponse {
        ChatResponse {
            model: "m".into(),
            message: Message {
                role: Role::Assistant,
                content: "ok".into(),
                tool_calls: Vec::new(),
                tool_call_id: None,
            },
            finish_reason: FinishReason::Stop,
            usage: Usage {
                prompt_tokens: 0,
                completion_tokens: 0,
            },
        }
    }

    impl AgentRouter for Recorder {
        fn list_models(&self) -> Routed<Vec<ModelInfo>> {
            Box::pin(async { Ok(Vec::new()) })
        }
        fn has_provider(&self) -> bool {
            true
        }
        fn chat(&self, _request: ChatRequest) -> Routed<ChatResponse> {
            self.reached("chat".into());
            Box::pin(async { Ok(reply()) })
        }
        fn tool_specs(&self) -> Vec<ToolSpec> {
            Vec::new()
        }
        fn invoke_tool(&self, name: String, _arguments: String) -> Routed<String> {
            self.reached(format!("tool {name}"));
            Box::pin(async { Ok("{}".into()) })
        }
        fn memory_put(&self, namespace: String, _key: String, _value: String) -> Routed<()> {
            self.reached(format!("put {namespace}"));
            Box::pin(async { Ok(()) })
        }
        fn memory_get(&self, namespace: String, _key: String) -> Routed<Option<String>> {
            self.reached(format!("get {namespace}"));
            Box::pin(async { Ok(None) })
        }
        fn memory_delete(&self, namespace: String, _key: String) -> Routed<bool> {
            self.reached(format!("delete {namespace}"));
            Box::pin(async { Ok(false) })
        }
        fn memory_keys(&self, namespace: String, _prefix: String) -> Routed<Vec<String>> {
            self.reached(format!("keys {namespace}"));
            Box::pin(async { Ok(Vec::new()) })
        }
        fn memory_search(
            &self,
            namespace: String,
            _query: String,
            _limit: u32,
        ) -> Routed<Vec<SearchHit>> {
            self.reached(format!("search {namespace}"));
            Box::pin(async { Ok(Vec::new()) })
        }
    }

    fn spec(max_steps: u32) -> AgentSpec {
        AgentSpec {
            name: "writer".into(),
            description: String::new(),
            system_prompt: String::new(),
            model: String::new(),
            temperature: None,
            max_tokens: None,
            max_steps,
            memory_namespace: "writer".into(),
            config: "{}".into(),
        }
    }

    fn request() -> ChatRequest {
        ChatRequest {
            model: String::new(),
            messages: Vec::new(),
            tools: Vec::new(),
            temperature: None,
            max_tokens: None,
        }
    }

    #[tokio::test]
    async fn a_run_is_held_to_its_steps_and_its_own_namespace() {
        use memory::Host as _;
        use provider::Host as _;
        let incidents = Incidents::default();
        let recorder = Arc::new(Recorder::default());
        let mut ctx = AgentCtx::new(incidents.clone());
        ctx.enter(recorder.clone(), &spec(2));

        assert!(ctx.chat(request()).await.unwrap().is_ok());
        assert!(ctx.chat(request()).await.unwrap().is_ok());
        let third = ctx.chat(request()).await.unwrap();
        assert!(matches!(third, Err(WitError::Denied(ref m)) if m.contains("max_steps (2)")));
        assert!(matches!(
            incidents.take(),
            Some(Incident::Limit {
                limit: Limit::Steps,
                ..
            })
        ));

        let other = ctx.put("mcp".into(), "k".into(), "v".into()).await.unwrap();
        assert!(matches!(other, Err(WitError::Denied(_))), "{other:?}");
        assert!(matches!(incidents.take(), Some(Incident::Denied { .. })));
        assert!(ctx.get("writer".into(), "k".into()).await.unwrap().is_ok());

        // What was refused never reached the router.
        assert_eq!(
            *recorder.0.lock().unwrap(),
            vec!["chat", "chat", "get writer"]
        );

        // Left, the instance reaches nothing, whatever it asks.
        ctx.leave();
        let after = ctx.chat(request()).await.unwrap();
        assert!(matches!(after, Err(WitError::Unavailable(_))), "{after:?}");
        assert_eq!(recorder.0.lock().unwrap().len(), 3);
    }
}
