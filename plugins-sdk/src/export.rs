//! Glue from the SDK's traits to the generated `Guest` traits, one zero-sized
//! type per kind, and the [`export!`](crate::export) macro that wires a
//! plugin's type to its world.

use std::marker::PhantomData;

use crate::bindings;
use crate::git::{
    Cleaned, ExecutionBranch, GitSettings, MergeOutcome, PullRequest, SettingsRequest,
};
use crate::instance;
use crate::kinds::{Adapter, GitWorkflow, Memory, Observer, Provider, Tool};
use crate::types::*;

pub struct ProviderExport<P>(PhantomData<P>);
pub struct ToolExport<P>(PhantomData<P>);
pub struct MemoryExport<P>(PhantomData<P>);
pub struct ObserverExport<P>(PhantomData<P>);
pub struct AdapterExport<P>(PhantomData<P>);
pub struct GitWorkflowExport<P>(PhantomData<P>);

/// Every world exports `plugin`, and each world has its own generated trait
/// for it; the implementation is the same for all.
macro_rules! impl_plugin_export {
    ($glue:ident, $bound:ident, $world:ident) => {
        impl<P: $bound> bindings::$world::exports::paracle::plugin::plugin::Guest for $glue<P> {
            fn info() -> PluginInfo {
                P::info()
            }

            fn init(config: String) -> Result<(), Error> {
                instance::init::<P>(&config)
            }

            fn health() -> HealthStatus {
                match instance::with::<P, _>(|p| p.health()) {
                    Ok(status) => status,
                    Err(error) => HealthStatus::not_ready(error.message()),
                }
            }
        }
    };
}

impl_plugin_export!(ProviderExport, Provider, provider);
impl_plugin_export!(ToolExport, Tool, tool);
impl_plugin_export!(MemoryExport, Memory, memory);
impl_plugin_export!(ObserverExport, Observer, observer);
impl_plugin_export!(AdapterExport, Adapter, adapter);
impl_plugin_export!(GitWorkflowExport, GitWorkflow, git_workflow);

impl<P: Provider> bindings::provider::exports::paracle::plugin::provider::Guest
    for ProviderExport<P>
{
    fn list_models() -> Result<Vec<ModelInfo>, Error> {
        instance::with::<P, _>(|p| p.list_models())?
    }

    fn chat(request: ChatRequest) -> Result<ChatResponse, Error> {
        instance::with::<P, _>(|p| p.chat(request))?
    }
}

impl<P: Tool> bindings::tool::exports::paracle::plugin::tool::Guest for ToolExport<P> {
    fn list_tools() -> Vec<ToolSpec> {
        instance::with_or_trap::<P, _>(|p| p.list_tools())
    }

    fn invoke(
        name: String,
        arguments: String,
        context: InvocationContext,
    ) -> Result<String, Error> {
        let arguments: serde_json::Value = serde_json::from_str(&arguments)
            .map_err(|e| Error::InvalidInput(format!("arguments are not valid JSON: {e}")))?;
        let result = instance::with::<P, _>(|p| p.invoke(&name, arguments, &context))??;
        Ok(result.to_string())
    }
}

impl<P: Memory> bindings::memory::exports::paracle::plugin::memory::Guest for MemoryExport<P> {
    fn put(namespace: String, key: String, value: String) -> Result<(), Error> {
        instance::with::<P, _>(|p| p.put(&namespace, &key, &value))?
    }

    fn get(namespace: String, key: String) -> Result<Option<String>, Error> {
        instance::with::<P, _>(|p| p.get(&namespace, &key))?
    }

    fn delete(namespace: String, key: String) -> Result<bool, Error> {
        instance::with::<P, _>(|p| p.delete(&namespace, &key))?
    }

    fn keys(namespace: String, prefix: String) -> Result<Vec<String>, Error> {
        instance::with::<P, _>(|p| p.keys(&namespace, &prefix))?
    }

    fn search(namespace: String, query: String, limit: u32) -> Result<Vec<SearchHit>, Error> {
        instance::with::<P, _>(|p| p.search(&namespace, &query, limit))?
    }
}

/// Two worlds export `observer`: plain observers and git workflows.
macro_rules! impl_observer_export {
    ($glue:ident, $bound:ident, $world:ident) => {
        impl<P: $bound> bindings::$world::exports::paracle::plugin::observer::Guest for $glue<P> {
            fn on_event(event: Event) -> Result<(), Error> {
                instance::with::<P, _>(|p| p.on_event(event))?
            }

            fn report() -> String {
                instance::with_or_trap::<P, _>(|p| p.report()).to_string()
            }
        }
    };
}

impl_observer_export!(ObserverExport, Observer, observer);
impl_observer_export!(GitWorkflowExport, GitWorkflow, git_workflow);

impl<P: GitWorkflow> bindings::git_workflow::exports::paracle::plugin::git_workflow::Guest
    for GitWorkflowExport<P>
{
    fn init_workflow(requested: SettingsRequest) -> Result<GitSettings, Error> {
        instance::with::<P, _>(|p| p.init_workflow(requested))?
    }

    fn branches() -> Result<Vec<ExecutionBranch>, Error> {
        instance::with::<P, _>(|p| p.branches())?
    }

    fn merge(branch: String, target: Option<String>) -> Result<MergeOutcome, Error> {
        instance::with::<P, _>(|p| p.merge(&branch, target.as_deref()))?
    }

    fn describe_pull_request(
        execution_id: String,
        run: String,
        title: Option<String>,
        body: Option<String>,
    ) -> Result<PullRequest, Error> {
        let run: serde_json::Value = serde_json::from_str(&run)
            .map_err(|e| Error::InvalidInput(format!("the run is not valid JSON: {e}")))?;
        instance::with::<P, _>(|p| {
            p.describe_pull_request(&execution_id, run, title.as_deref(), body.as_deref())
        })?
    }

    fn cleanup(
        target: Option<String>,
        older_than_ms: Option<u64>,
        active: Vec<String>,
    ) -> Result<Vec<Cleaned>, Error> {
        instance::with::<P, _>(|p| p.cleanup(target.as_deref(), older_than_ms, &active))?
    }
}

impl<P: Adapter> bindings::adapter::exports::paracle::plugin::adapter::Guest for AdapterExport<P> {
    fn run_agent(agent: AgentSpec, task: Task) -> Result<Outcome, Error> {
        instance::with::<P, _>(|p| p.run_agent(agent, task))?
    }
}

/// Export a type as this component's plugin. Call it once per crate:
///
/// ```ignore
/// paracle_sdk::export!(tool: MyTools);
/// ```
///
/// The kind is one of `provider`, `tool`, `memory`, `observer`, `adapter` or
/// `git_workflow`, and the type must implement [`Plugin`](crate::Plugin) and
/// the kind's trait (for `git_workflow`, [`Observer`](crate::Observer) and
/// [`GitWorkflow`](crate::GitWorkflow)).
#[macro_export]
macro_rules! export {
    (provider: $ty:ty) => {
        $crate::__export_world!(ProviderExport, $ty, provider, __export_provider_plugin_impl);
    };
    (tool: $ty:ty) => {
        $crate::__export_world!(ToolExport, $ty, tool, __export_tool_plugin_impl);
    };
    (memory: $ty:ty) => {
        $crate::__export_world!(MemoryExport, $ty, memory, __export_memory_plugin_impl);
    };
    (observer: $ty:ty) => {
        $crate::__export_world!(ObserverExport, $ty, observer, __export_observer_plugin_impl);
    };
    (adapter: $ty:ty) => {
        $crate::__export_world!(AdapterExport, $ty, adapter, __export_adapter_plugin_impl);
    };
    (git_workflow: $ty:ty) => {
        $crate::__export_world!(
            GitWorkflowExport,
            $ty,
            git_workflow,
            __export_git_workflow_plugin_impl
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_world {
    ($glue:ident, $ty:ty, $world:ident, $world_macro:ident) => {
        // The generated macro takes an identifier, not a type. The exports
        // exist on wasm only: a native build (the plugin's own `cargo
        // test`) would fail to link their `ns:pkg/iface#func` symbol names.
        #[doc(hidden)]
        #[cfg(target_arch = "wasm32")]
        type __ParacleExportedPlugin = $crate::__private::$glue<$ty>;
        #[cfg(target_arch = "wasm32")]
        $crate::$world_macro!(
            __ParacleExportedPlugin with_types_in $crate::__private::bindings::$world
        );
    };
}
