//! `paracle mcp serve`, driven by the official Python MCP SDK as a client:
//! the handshake, the tool list, tool calls that succeed and fail, bytes no
//! client would send, a hostile plugin that runs out of time, workflows,
//! memory, and the streamable-HTTP transport.
//!
//! Each test sets up a project and runs one scenario of tests/mcp/client.py
//! against a server of its own.

use std::path::Path;

use crate::project::Project;

const GUESTS: &str = paracle_guests::GUEST_DIR;
const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/mcp/client.py");

/// A project with the built-in plugins, the hostile fixture with a 300 ms
/// time limit, a provider that takes 5 s, and two workflows: `quick` and
/// `slow`.
fn project() -> Project {
    let project = Project::new();
    project.write(
        "paracle.toml",
        &format!(
            "[plugins.hostile]\npath = {:?}\n[plugins.hostile.limits]\ntimeout_ms = 300\n\n\
             [plugins.slow-provider]\npath = {:?}\nconfig = {{ delay_ms = 5000 }}\n",
            Path::new(GUESTS).join("hostile.wasm"),
            Path::new(GUESTS).join("mock_provider.wasm"),
        ),
    );
    project.write(
        ".paracle/agents/agents.toml",
        r#"[agents.planner]
config = { output_file = "plan.md" }

[agents.builder]
config = { output_file = "notes.md" }

[agents.slow-builder]
provider = "slow-provider"
config = { output_file = "slow.md" }
"#,
    );
    project.write(
        ".paracle/workflows/quick.toml",
        r#"task = "Plan and build."
[[phases]]
name = "plan"
agents = ["planner"]

[[phases]]
name = "build"
agents = ["builder"]
"#,
    );
    project.write(
        ".paracle/workflows/slow.toml",
        r#"task = "Build it slowly."
[[phases]]
name = "build"
agents = ["slow-builder"]
"#,
    );
    project
}

/// Run `scenario` of the client against `project`; returns what it printed.
fn scenario(project: &Project, scenario: &str) -> String {
    scenario_with(project, scenario, &[])
}

/// [`scenario`], with `env` set for the client.
pub(crate) fn scenario_with(project: &Project, scenario: &str, env: &[(&str, &str)]) -> String {
    let out = std::process::Command::new(crate::python::mcp_python())
        .arg(CLIENT)
        .arg(scenario)
        .envs(env.iter().copied())
        .current_dir(project.path())
        .env("PARACLE_BIN", env!("CARGO_BIN_EXE_paracle"))
        .envs(
            project
                .command(&[])
                .get_envs()
                .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
        )
        .output()
        .expect("the Python client starts");
    let server_log =
        std::fs::read_to_string(project.path().join("server-stderr.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "scenario `{scenario}` failed:\n{}{}\n--- server stderr ---\n{server_log}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn initialize() {
    scenario(&project(), "initialize");
}

#[test]
fn tools_list_names_every_plugin_tool_with_its_schema() {
    let project = project();
    scenario(&project, "tools_list");
    // The CLI lists the same tools the server offers.
    let names = |args: &[&str]| -> Vec<String> {
        let listed = project.json(args);
        let tools = listed.as_array().expect("a list of tools");
        tools
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    let all = names(&["mcp", "tools"]);
    assert!(all.iter().any(|n| n == "hostile__spin"), "{all:?}");
    assert!(all.iter().any(|n| n == "memory_get"), "{all:?}");
    let without_memory = names(&["mcp", "tools", "--memory", "none"]);
    assert!(
        without_memory.iter().all(|n| !n.starts_with("memory_")),
        "{without_memory:?}"
    );
    assert_eq!(all.len() - without_memory.len(), 3);
}

#[test]
fn a_call_succeeds() {
    scenario(&project(), "call_success");
}

#[test]
fn a_failing_call_is_a_tool_error_and_an_unknown_tool_a_protocol_error() {
    scenario(&project(), "call_failure");
}

/// Four calls of a 150 ms tool at once take less than 2.5 times one
/// (they run in parallel, up to the plugin's instance limit), and 1 MiB
/// arguments cross whole, each answer to its own call. Over HTTP, the
/// `http` scenario checks the same.
#[test]
fn calls_in_flight_run_at_once() {
    scenario(&project(), "in_flight");
}

#[test]
fn malformed_requests_get_json_rpc_errors_and_stdout_carries_only_protocol() {
    scenario(&project(), "malformed");
}

#[test]
fn a_hostile_call_times_out_and_the_server_answers_the_next() {
    let project = project();
    scenario(&project, "timeout");
    // Every call went through the plugin's own limits, as from the CLI.
    let stats = project.json(&["plugin", "stats", "hostile"]);
    assert_eq!(stats["hostile"]["limits"], 3, "{stats}");
}

#[test]
fn workflows_run_in_process_with_progress_and_status() {
    scenario(&project(), "workflow");
}

#[test]
fn a_workflow_past_its_timeout_is_left_interrupted_and_can_be_finished() {
    let project = project();
    let run = scenario(&project, "workflow_timeout");
    let run = run.trim();
    let status = project.json(&["run", "status", "--run", run]);
    assert_eq!(status["status"], "interrupted", "{status}");
    let finished = project.json(&["run", "next", "--run", run]);
    assert_eq!(finished["status"], "completed", "{finished}");
}

#[test]
fn memory_tools_reach_the_memory_plugin() {
    let project = project();
    scenario(&project, "memory");
    // The same store the CLI sees.
    let value = project.ok(&["plugin", "call", "kv-memory", "get", "notes", "colour"]);
    assert_eq!(value.trim(), "deep blue sea");
}

#[test]
fn streamable_http_serves_on_loopback_and_refuses_web_origins() {
    let project = project();
    let before = project.json(&["plugin", "stats", "text-tools"]);
    assert!(before["text-tools"].is_null(), "{before}");
    scenario(&project, "http");
    // Stopped with SIGTERM, the server saved the statistics of its calls.
    let after = project.json(&["plugin", "stats", "text-tools"]);
    assert!(after["text-tools"]["ok"].as_u64() >= Some(1), "{after}");
    let refused = project.fails(&["mcp", "serve", "--http", "0.0.0.0:0"]);
    assert!(refused.contains("not a loopback address"), "{refused}");
}
