//! `paracle mcp serve`: the project's tools and workflows for MCP clients,
//! on the official Rust MCP SDK (rmcp).
//!
//! - [`names`]: the stable MCP names of plugin tools;
//! - `catalog`: which tools there are, with their schemas;
//! - `calls`: what each tool does, under the project's grants and limits;
//! - `handler`: rmcp's side: requests in, tool results out.
//! - `lines`: the stdio transport, which hands a call's arguments on as the
//!   text the client sent.
//!
//! Nothing but protocol messages goes to stdout: logs go to stderr, and
//! plugins' own stdout goes nowhere (the sandbox gives them none).

mod calls;
mod catalog;
mod elicit;
mod handler;
mod lines;
pub mod names;
mod server;

pub use calls::DEFAULT_NAMESPACE;
pub use server::{ListedTool, McpOptions, McpServer, DEFAULT_WORKFLOW_TIMEOUT};
