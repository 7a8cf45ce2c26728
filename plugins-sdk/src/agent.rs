//! What an adapter reaches while it runs an agent.
//!
//! These functions are imports of the adapter world: the host routes them to
//! the provider, tools and memory that the agent's spec names, under the
//! agent's grants. Only adapters may call them; a plugin of another kind that
//! does is refused by the host when it is loaded.

use serde_json::Value;

use crate::bindings::adapter::paracle::plugin::{memory, provider, tool};
use crate::types::*;

/// The models of the agent's provider.
pub fn list_models() -> Result<Vec<ModelInfo>, Error> {
    provider::list_models()
}

/// Ask the agent's provider for the next message.
pub fn chat(request: &ChatRequest) -> Result<ChatResponse, Error> {
    provider::chat(request)
}

/// The tools the agent may use, across all its tool plugins.
pub fn list_tools() -> Vec<ToolSpec> {
    tool::list_tools()
}

/// Call one of the agent's tools.
pub fn invoke_tool(
    name: &str,
    arguments: &Value,
    context: &InvocationContext,
) -> Result<Value, Error> {
    let result = tool::invoke(name, &arguments.to_string(), context)?;
    serde_json::from_str(&result)
        .map_err(|e| Error::Internal(format!("tool `{name}` returned invalid JSON: {e}")))
}

pub fn memory_put(namespace: &str, key: &str, value: &str) -> Result<(), Error> {
    memory::put(namespace, key, value)
}

pub fn memory_get(namespace: &str, key: &str) -> Result<Option<String>, Error> {
    memory::get(namespace, key)
}

pub fn memory_delete(namespace: &str, key: &str) -> Result<bool, Error> {
    memory::delete(namespace, key)
}

pub fn memory_keys(namespace: &str, prefix: &str) -> Result<Vec<String>, Error> {
    memory::keys(namespace, prefix)
}

pub fn memory_search(namespace: &str, query: &str, limit: u32) -> Result<Vec<SearchHit>, Error> {
    memory::search(namespace, query, limit)
}
