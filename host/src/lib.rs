//! Paracle: a WebAssembly plugin host for AI agents.
//!
//! Plugins are components written against the `paracle:plugin` WIT contract
//! and run sandboxed in wasmtime. [`plugin::Runtime`] loads them;
//! [`registry::Registry`] keeps the project's set of plugins; the `paracle`
//! binary's commands live in [`cli`].

pub mod atomic;
mod beneath;
mod bindings;
mod descriptors;
pub mod engine;
pub mod error;
pub mod plugin;
pub mod router;
pub mod sandbox;
mod shown;
pub mod signing;
pub mod stats;
mod strict_toml;

pub use bindings::{
    AgentSpec, Artifact, Capabilities, ChatRequest, ChatResponse, Event, EventKind, FinishReason,
    HealthStatus, InvocationContext, Message, ModelInfo, Outcome, PathRequest, PluginInfo, Role,
    SearchHit, Task, ToolCall, ToolSpec, Usage, CONTRACT_VERSION,
};
pub mod cli;
pub mod defaults;
pub mod gitflow;
pub mod json;
pub mod mcp;
pub mod net;
pub mod orchestrator;
pub mod registry;
