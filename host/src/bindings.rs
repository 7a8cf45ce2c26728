//! Host-side bindings for the contract, one `bindgen!` per world.
//!
//! The adapter world imports every interface, so it generates `types` and
//! `host` once; the other worlds reuse them through `with`, and the whole host
//! works with one Rust type per WIT type. Only the names the host needs leave
//! this module.

mod generated {
    pub mod adapter {
        wasmtime::component::bindgen!({
            path: "../wit",
            world: "adapter-plugin",
            imports: { default: async | trappable },
            exports: { default: async },
            additional_derives: [PartialEq],
        });
    }

    macro_rules! world {
        ($module:ident, $world:literal) => {
            pub mod $module {
                wasmtime::component::bindgen!({
                    path: "../wit",
                    world: $world,
                    imports: { default: async | trappable },
                    exports: { default: async },
                    with: {
                        "paracle:plugin/types": super::adapter::paracle::plugin::types,
                        "paracle:plugin/host": super::adapter::paracle::plugin::host,
                    },
                });
            }
        };
    }

    world!(provider, "provider-plugin");
    world!(tool, "tool-plugin");
    world!(memory, "memory-plugin");
    world!(observer, "observer-plugin");
    world!(git_workflow, "git-workflow-plugin");
}

pub use generated::adapter::paracle::plugin::host::{Host as HostImports, LogLevel};
pub use generated::adapter::paracle::plugin::memory::Host as MemoryImports;
pub use generated::adapter::paracle::plugin::provider::Host as ProviderImports;
pub use generated::adapter::paracle::plugin::tool::Host as ToolImports;
pub use generated::adapter::paracle::plugin::types::Host as TypesImports;
pub use generated::adapter::paracle::plugin::types::{
    AgentSpec, Artifact, Capabilities, ChatRequest, ChatResponse, Error as WitError, Event,
    EventKind, FinishReason, HealthStatus, InvocationContext, Message, ModelInfo, Outcome,
    PathRequest, PluginInfo, Role, SearchHit, Task, ToolCall, ToolSpec, Usage,
};
pub use generated::adapter::{AdapterPlugin, AdapterPluginPre};
pub use generated::git_workflow::exports::paracle::plugin::git_workflow::{
    Cleaned, ExecutionBranch, PullRequest, Settings as GitSettingsRecord, SettingsRequest,
};
pub use generated::git_workflow::paracle::plugin::git::{
    add_to_linker as add_git_to_linker, BranchInfo, CommitInfo, DiffStat, FileStat,
    Host as GitImports, MergeOutcome, RepositoryInfo,
};
pub use generated::git_workflow::{GitWorkflowPlugin, GitWorkflowPluginPre};
pub use generated::memory::{MemoryPlugin, MemoryPluginPre};
pub use generated::observer::{ObserverPlugin, ObserverPluginPre};
pub use generated::provider::{ProviderPlugin, ProviderPluginPre};
pub use generated::tool::{ToolPlugin, ToolPluginPre};

/// The interface that only plugins granted `git` may import.
pub const GIT_INTERFACE: &str = "paracle:plugin/git@0.1.0";

/// The contract version this host speaks, as it appears in export names.
pub const CONTRACT_VERSION: &str = "0.1.0";
pub const CONTRACT_PACKAGE: &str = "paracle:plugin";
