//! Tool calls that need a person's approval, set in the three places (a
//! plugin command, paracle.toml, an agent's spec) and decided in the three
//! ways (at the terminal, by an MCP client's user, at a workflow's gate).

use std::path::Path;

use serde_json::Value;

use crate::project::{audited, exit_code, on_terminal, Project};

const GUESTS: &str = paracle_guests::GUEST_DIR;

fn approvals_in_audit(project: &Project) -> Vec<String> {
    audited(project, "approval")
}

#[test]
fn the_terminal_approves_or_refuses_and_never_means_never() {
    let project = Project::new();
    project.ok(&["plugin", "load", &format!("{GUESTS}/hostile.wasm")]);
    let set = project.json(&["plugin", "approve", "hostile", "read_env", "ask"]);
    assert_eq!(set["approve"]["read_env"], "ask", "{set}");
    let error = project.fails(&["plugin", "approve", "hostile", "no_such_tool", "ask"]);
    assert!(error.contains("no tool `no_such_tool`"), "{error}");
    let error = project.fails(&["plugin", "approve", "hostile", "maybe"]);
    assert!(
        error.contains("always") && error.contains("never"),
        "{error}"
    );
    let call = [
        "plugin",
        "call",
        "hostile",
        "read_env",
        r#"{"name":"HOME"}"#,
    ];

    let mut session = on_terminal(&project, &call);
    let asked = session.exp_string("Run it?").unwrap();
    assert!(
        asked.contains("tool `read_env` of plugin `hostile`"),
        "{asked}"
    );
    assert!(
        asked.contains(r#"{"name":"HOME"}"#),
        "the arguments are shown: {asked}"
    );
    session.send_line("y").unwrap();
    let out = session.exp_eof().unwrap();
    assert_eq!(exit_code(&mut session), 0, "{out}");

    let mut session = on_terminal(&project, &call);
    session.exp_string("Run it?").unwrap();
    session.send_line("n").unwrap();
    let out = session.exp_eof().unwrap();
    assert_eq!(exit_code(&mut session), 1, "{out}");
    assert!(out.contains("a person refused this call"), "{out}");

    // Nobody at hand: refused, saying how to change it.
    let error = project.fails(&call);
    assert!(error.contains("no person is at hand"), "{error}");
    assert!(
        error.contains("paracle plugin approve hostile read_env always"),
        "{error}"
    );
    // Other tools are not touched.
    project.ok(&[
        "plugin",
        "call",
        "hostile",
        "leak_env",
        r#"{"name":"NONE"}"#,
    ]);

    // Never: refused without a question, even at a terminal.
    project.ok(&["plugin", "approve", "hostile", "never"]);
    let mut session = on_terminal(&project, &call);
    let out = session.exp_eof().unwrap();
    assert_eq!(exit_code(&mut session), 1, "{out}");
    assert!(!out.contains("Run it?") && out.contains("`never`"), "{out}");

    assert_eq!(
        approvals_in_audit(&project),
        vec![
            "operator tool hostile/read_env set ask".to_string(),
            "terminal:alice tool hostile/read_env approved".into(),
            "terminal:alice tool hostile/read_env refused".into(),
            "operator tool hostile/* set never".into(),
        ]
    );
}

#[test]
fn an_mcp_client_user_approves_through_elicitation() {
    let project = Project::new();
    project.write(
        "paracle.toml",
        &format!(
            "[plugins.hostile]\npath = {:?}\napprove = {{ read_env = \"ask\" }}\n",
            Path::new(GUESTS).join("hostile.wasm")
        ),
    );
    let printed = crate::mcp::scenario_with(&project, "approval", &[]);
    assert!(printed.contains("\"asked\": 2"), "{printed}");
    let decided = approvals_in_audit(&project);
    assert_eq!(decided.len(), 2, "{decided:?}");
    assert!(
        decided[0].starts_with("mcp:") && decided[0].ends_with("tool hostile/read_env approved"),
        "{decided:?}"
    );
    assert!(
        decided[1].ends_with("tool hostile/read_env refused"),
        "{decided:?}"
    );
    // A setting paracle.toml does not know is an error with its line.
    project.write(
        "paracle.toml",
        &format!(
            "[plugins.hostile]\npath = {:?}\napprove = \"sometimes\"\n",
            Path::new(GUESTS).join("hostile.wasm")
        ),
    );
    let error = project.fails(&["plugin", "list"]);
    assert!(error.contains("paracle.toml"), "{error}");
}

/// A project whose agent `scribe` writes a file through fs-tools, a call
/// its spec wants approved, beside an agent that needs no approval.
fn gated_project() -> Project {
    let project = Project::new();
    project.write(
        "paracle.toml",
        &format!(
            r#"[plugins.scripted]
path = {:?}
config = {{ responses = [{{ tool_calls = [{{ name = "write_file", arguments = {{ path = "notes/a.txt", content = "from the agent" }} }}] }}, "written"] }}
"#,
            Path::new(GUESTS).join("mock_provider.wasm")
        ),
    );
    project.write(
        ".paracle/agents/a.toml",
        "[agents.scribe]\nprovider = \"scripted\"\ntools = [\"fs-tools/write_file\"]\nmemory = \"none\"\napprove = { \"fs-tools/write_file\" = \"ask\" }\n\n\
         [agents.planner]\nmemory = \"none\"\nconfig = { output_file = \"plan.md\" }\n",
    );
    project.write(
        ".paracle/workflows/w.toml",
        "task = \"Write notes.\"\n[[phases]]\nname = \"p\"\nagents = [\"scribe\", \"planner\"]\n",
    );
    project
}

fn start(project: &Project) -> (String, std::path::PathBuf) {
    let started = project.json(&["run", "start", "w"]);
    let id = started["id"].as_str().unwrap().to_string();
    let dir = project.path().join(".paracle/runs").join(&id);
    (id, dir)
}

#[test]
fn a_workflow_with_nobody_at_hand_stops_at_a_gate_for_the_call() {
    let project = gated_project();
    let (id, dir) = start(&project);
    let held = project.json(&["run", "next"]);
    assert_eq!(held["status"], "awaiting-approval", "{held}");
    let phase = &held["phases"][0];
    let calls = phase["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{held}");
    assert_eq!(calls[0]["agent"], "scribe");
    assert_eq!(calls[0]["plugin"], "fs-tools");
    assert_eq!(calls[0]["tool"], "write_file");
    assert_eq!(calls[0]["decision"], "pending");
    let agent = |state: &Value, name: &str| -> Value {
        state["phases"][0]["agents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(agent(&held, "scribe")["status"], "pending", "{held}");
    assert_eq!(agent(&held, "planner")["status"], "succeeded", "{held}");
    assert!(
        !dir.join("workspace/notes/a.txt").exists(),
        "the call did not run"
    );
    let request = std::fs::read_to_string(dir.join("p/REQUEST.md")).unwrap();
    assert!(
        request.contains("Tool calls awaiting approval"),
        "{request}"
    );
    assert!(
        request.contains("write_file") && request.contains("notes/a.txt"),
        "{request}"
    );

    let approved = project.json(&["run", "approve"]);
    assert_eq!(approved["status"], "ready", "{approved}");
    assert!(Path::new(approved["decision_file"].as_str().unwrap()).exists());
    let done = project.json(&["run", "next"]);
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        std::fs::read_to_string(dir.join("workspace/notes/a.txt")).unwrap(),
        "from the agent"
    );
    assert_eq!(agent(&done, "scribe")["status"], "succeeded", "{done}");
    assert_eq!(
        agent(&done, "planner")["attempts"],
        1,
        "the planner's work was kept: {done}"
    );
    assert_eq!(done["phases"][0]["calls"][0]["decision"], "approved");
    let decided = approvals_in_audit(&project);
    assert_eq!(
        decided,
        vec![format!("run:{id} tool fs-tools/write_file approved")]
    );

    // Rejected: the agent runs again, and its call is refused to it.
    let (_, dir) = start(&project);
    project.json(&["run", "next"]);
    let rejected = project.json(&["run", "reject", "--reason", "not that file"]);
    assert_eq!(rejected["status"], "ready", "{rejected}");
    let done = project.json(&["run", "next"]);
    assert_eq!(
        done["phases"][0]["calls"][0]["decision"], "rejected",
        "{done}"
    );
    assert!(
        !dir.join("workspace/notes/a.txt").exists(),
        "a rejected call never ran"
    );
}
