//! The tests of the `paracle` command line, driving the binary as users do:
//! plugins, workflows, the git workflow and the MCP server, each against a
//! fresh project.

mod cli;
mod git;
mod mcp;
mod project;
mod python;
mod workflows;
