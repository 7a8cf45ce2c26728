//! The tests of the `paracle` command line, driving the binary as users do:
//! plugins, workflows, the git workflow, the MCP server, and sharing plugins
//! and templates through a real OCI registry, each against a fresh project.

mod cli;
mod git;
mod mcp;
mod project;
mod python;
mod share;
mod workflows;
