//! Host-side bindings for `paracle:plugin@0.1.x`, one `bindgen!` per world.
//!
//! A later `0.2.0` gets its own module beside this one (`v0_2`), generated
//! from its own copy of the WIT; the host links each component against the
//! version it exports, and converts at this boundary, so the rest of the host
//! works with one set of types.
//!
//! The adapter world imports every interface, so it generates `types` and
//! `host` once; the other worlds reuse them through `with`, and the whole host
//! works with one Rust type per WIT type. Only the names the host needs leave
//! this module.

// Generated code names its items `pub`; what leaves is re-exported below.
#[allow(unreachable_pub)]
mod generated {
    pub mod adapter {
        wasmtime::component::bindgen!({
            path: "../../wit",
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
                    path: "../../wit",
                    world: $world,
                    imports: { default: async | trappable },
                    exports: { default: async },
                    with: {
                        "paracle:plugin/types": crate::v0_1::generated::adapter::paracle::plugin::types,
                        "paracle:plugin/host": crate::v0_1::generated::adapter::paracle::plugin::host,
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

/// The imported interfaces, each with its `Host` trait and `add_to_linker`,
/// so that each of the host's capabilities links its own.
pub mod imports {
    pub use crate::v0_1::generated::adapter::paracle::plugin::{
        host, memory, provider, tool, types,
    };
    pub use crate::v0_1::generated::git_workflow::paracle::plugin::git;
}

pub use generated::adapter::paracle::plugin::host::{Host as HostImports, LogLevel};
pub use generated::adapter::paracle::plugin::memory::Host as MemoryImports;
pub use generated::adapter::paracle::plugin::provider::Host as ProviderImports;
pub use generated::adapter::paracle::plugin::tool::Host as ToolImports;
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
    BranchInfo, CommitInfo, DiffStat, FileStat, Host as GitImports, MergeOutcome, RepositoryInfo,
};
pub use generated::git_workflow::{GitWorkflowPlugin, GitWorkflowPluginPre};
pub use generated::memory::{MemoryPlugin, MemoryPluginPre};
pub use generated::observer::{ObserverPlugin, ObserverPluginPre};
pub use generated::provider::{ProviderPlugin, ProviderPluginPre};
pub use generated::tool::{ToolPlugin, ToolPluginPre};

/// The interface that only plugins granted `git` may import, without its
/// version.
pub const GIT_INTERFACE: &str = "paracle:plugin/git";
