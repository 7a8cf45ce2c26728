//! Loads, links, sandboxes and calls Paracle plugins in wasmtime.
//!
//! [`Runtime`] loads a component into a [`Plugin`] under its [`Grants`] and
//! [`Limits`] (from `paracle-policy`); each call runs on a pooled instance
//! whose store composes the host's capabilities (`capability/`: the `host`
//! interface, counted files and sockets, the network policy, an agent's
//! routed imports and the `git` imports). What needs a heavy dependency is
//! served through a trait this crate defines: [`GitBackend`] (implemented
//! with libgit2 by `paracle-gitflow`) and [`AgentRouter`] (implemented by
//! [`AgentRoutes`] over loaded plugins).
//!
//! A plugin is the adversary: every value it returns is size-checked before
//! it leaves [`Plugin`], and everything the host stops on its behalf is
//! reported as [`CallError`], told apart from the plugin's own
//! [`PluginError`].

mod capability;
mod descriptors;
mod engine;
mod error;
mod incident;
mod person;
mod plugin;
mod recorder;
mod routes;
mod secrets;
mod stats;
mod store;

pub use capability::agent::{no_route, AgentRouter, Routed};
pub use capability::files::MAX_OPEN_FILES;
pub use capability::git::{GitBackend, GitResult};
pub use capability::network::MAX_SOCKETS;
pub use descriptors::HOST_RESERVE;
pub use engine::{CacheUse, CompileObserver, EngineShape, PluginEngine, EPOCH_TICK};
pub use error::{
    cut_message, CallError, CallResult, EngineError, LoadError, PluginError, PluginErrorKind,
    MAX_MESSAGE,
};
pub use paracle_policy::{Approvals, Approve, Grants, Limit, Limits};
pub use person::{
    person_at_hand, with_person, Answer, Approval, ApprovalRequest, Asking, PermissionRequest,
    Person, Wanted,
};
pub use plugin::{
    digest_of, schema_errors, valid_name, Inspected, Isolation, Plugin, PluginKind, PluginSettings,
    Runtime, ToolOutput, UnknownKind, World,
};
pub use recorder::{record_calls_with, CallRecorder, RecordedCall};
pub use routes::{AgentRoutes, CallObserver, RouteError, ToolChoice};
pub use secrets::SecretSource;
pub use stats::{CallOutcome, CallStats};
pub use store::MAX_HANDLES;
