//! # paracle-sdk
//!
//! Write [Paracle](https://github.com/) plugins in Rust. A plugin is a
//! WebAssembly component of one of five kinds; you implement [`Plugin`] and the
//! trait of your kind, then call [`export!`] once:
//!
//! | kind | trait | what the host calls |
//! | --- | --- | --- |
//! | provider | [`Provider`] | `list_models`, `chat` |
//! | tool | [`Tool`] | `list_tools`, `invoke` |
//! | memory | [`Memory`] | `put`, `get`, `delete`, `keys`, `search` |
//! | observer | [`Observer`] | `on_event`, `report` |
//! | adapter | [`Adapter`] | `run_agent` (reaching models, tools and memory through [`agent`]) |
//! | git workflow | [`Observer`] and [`GitWorkflow`] | `on_event`, and what `paracle git` runs (reaching the repository through [`git`]) |
//!
//! ```ignore
//! use paracle_sdk::{json, Error, Plugin, PluginInfo, Tool, ToolSpec, InvocationContext, Value};
//!
//! struct Echo;
//!
//! impl Plugin for Echo {
//!     fn info() -> PluginInfo {
//!         PluginInfo::new("echo", env!("CARGO_PKG_VERSION"), "Returns what it is given")
//!     }
//!     fn init(_config: Value) -> Result<Self, Error> {
//!         Ok(Echo)
//!     }
//! }
//!
//! impl Tool for Echo {
//!     fn list_tools(&self) -> Vec<ToolSpec> {
//!         vec![ToolSpec::new("echo", "Returns its input", json!({"type": "object"}))]
//!     }
//!     fn invoke(&mut self, _name: &str, arguments: Value, _context: &InvocationContext) -> Result<Value, Error> {
//!         Ok(arguments)
//!     }
//! }
//!
//! paracle_sdk::export!(tool: Echo);
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2 --release` (the crate must
//! be a `cdylib`) and load `target/wasm32-wasip2/release/<name>.wasm` with
//! `paracle plugin load`.

extern crate self as paracle_sdk;

#[doc(hidden)]
pub mod bindings;
mod export;
mod instance;
mod kinds;
mod types;

pub mod agent;
pub mod git;
pub mod host;
pub mod http;

pub use kinds::{Adapter, GitWorkflow, Memory, Observer, Plugin, Provider, Tool};
/// The contract this SDK builds plugins for: the version the host checks a
/// plugin's exports against, from the same constant the host reads.
pub use paracle_contract_version::{CONTRACT_PACKAGE, CONTRACT_VERSION};
pub use serde_json::{json, Value};
pub use types::*;

#[doc(hidden)]
pub mod __private {
    pub use crate::bindings;
    pub use crate::export::{
        AdapterExport, GitWorkflowExport, MemoryExport, ObserverExport, ProviderExport, ToolExport,
    };
    pub use wit_bindgen::rt;
}
