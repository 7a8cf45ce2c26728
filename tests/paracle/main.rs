//! The tests of the `paracle` command line, driving the binary as users do:
//! plugins, workflows, the git workflow, the MCP server, sharing plugins
//! and templates through a real OCI registry, and writing plugins in Rust,
//! Python and JavaScript, each against a fresh project.

mod approvals;
mod asking;
mod authoring;
mod cli;
mod git;
mod mcp;
mod project;
mod python;
mod secrets;
mod share;
mod toolchains;
mod workers;
mod workflows;
