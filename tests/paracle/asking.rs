//! A person asked at the terminal when a plugin is denied: `plugin call`
//! under a real pseudo-terminal, each of the three answers, what was saved
//! and what the audit log says; the operator's policy refusing to ask; and
//! no terminal (or `--no-prompt`) keeping today's denial.

use paracle_testing::http::{FakeServer, Reply};
use serde_json::{json, Value};

use crate::project::{audited, exit_code, on_terminal, Project};

const GUESTS: &str = paracle_guests::GUEST_DIR;

fn hostile() -> String {
    format!("{GUESTS}/hostile.wasm")
}

fn audit(project: &Project) -> Vec<Value> {
    project.json(&["audit"])["records"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_person_at_the_terminal_answers_once_deny_and_always() {
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let server = tokio.block_on(FakeServer::start(|_| {
        Reply::json(&json!({"hello": "person"}))
    }));
    let port = server.addr.port();
    let grant = format!("net:127.0.0.1:{port}");
    let project = Project::new();
    project.ok(&["plugin", "load", &hostile()]);
    std::fs::create_dir_all(project.home()).unwrap();
    std::fs::write(
        project.home().join("config.toml"),
        "[prompts]\nnet = [\"public\", \"loopback\"]\ntimeout_secs = 60\n",
    )
    .unwrap();
    let arguments = json!({ "url": server.url("/hello") }).to_string();
    let call = ["plugin", "call", "hostile", "http_get", arguments.as_str()];

    // Once: the call goes through, nothing is saved.
    let mut session = on_terminal(&project, &call);
    let asked = session.exp_string("Allow?").unwrap();
    assert!(asked.contains("plugin `hostile`"), "{asked}");
    assert!(asked.contains("sha256:"), "the digest is shown: {asked}");
    assert!(asked.contains("unsigned"), "the signer is shown: {asked}");
    assert!(
        asked.contains(&format!("network access to 127.0.0.1:{port}")),
        "{asked}"
    );
    assert!(asked.contains(&grant), "{asked}");
    session.send_line("o").unwrap();
    let answer = session.exp_eof().unwrap();
    assert_eq!(exit_code(&mut session), 0, "{answer}");
    assert!(answer.contains("\"status\": 200"), "{answer}");
    assert_eq!(server.requests().len(), 1);
    let registry = std::fs::read_to_string(project.path().join(".paracle/registry.toml")).unwrap();
    assert!(
        !registry.contains(&format!("127.0.0.1:{port}")),
        "once is not saved: {registry}"
    );

    // Deny: the call fails as denied, and says how to grant it.
    let mut session = on_terminal(&project, &call);
    session.exp_string("Allow?").unwrap();
    session.send_line("d").unwrap();
    let answer = session.exp_eof().unwrap();
    assert_eq!(exit_code(&mut session), 1, "{answer}");
    assert!(answer.contains("was denied network access"), "{answer}");
    assert!(
        answer.contains(&format!("paracle plugin grant hostile {grant}")),
        "{answer}"
    );
    assert_eq!(server.requests().len(), 1, "nothing was sent");

    // Always: saved as `plugin grant` would, so the next call needs no one.
    let mut session = on_terminal(&project, &call);
    session.exp_string("Allow?").unwrap();
    session.send_line("a").unwrap();
    let answer = session.exp_eof().unwrap();
    assert_eq!(exit_code(&mut session), 0, "{answer}");
    assert_eq!(server.requests().len(), 2);
    let listed = project.json(&["plugin", "show", "hostile"]);
    assert!(
        listed.to_string().contains(&format!("127.0.0.1:{port}")),
        "the grant is saved: {listed}"
    );
    let unattended = project.json(&["plugin", "call", "hostile", "http_get", &arguments]);
    assert_eq!(unattended["status"], 200, "{unattended}");

    let records = audit(&project);
    assert_eq!(
        audited(&project, "prompt"),
        vec![
            format!("terminal:alice {grant} once"),
            format!("terminal:alice {grant} deny"),
            format!("terminal:alice {grant} always"),
        ]
    );
    let saved: Vec<&Value> = records
        .iter()
        .filter(|r| r["action"] == "grant" && r["what"] == grant.as_str())
        .collect();
    assert_eq!(saved.len(), 1, "{records:?}");
    assert!(saved[0]["digest"].as_str().unwrap().starts_with("sha256:"));
    // The plugin's declared writable /data is not offered under the default
    // `dirs = "read"`: refused by the policy, once, without a question.
    assert!(
        records.iter().any(|r| r["action"] == "denial"
            && r["who"] == "policy"
            && r["what"].as_str().unwrap().contains("/data")),
        "{records:?}"
    );
}

#[test]
fn the_policy_refuses_without_asking_and_no_terminal_means_no_question() {
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let server = tokio.block_on(FakeServer::start(|_| Reply::json(&json!({"ok": true}))));
    let project = Project::new();
    project.ok(&["plugin", "load", &hostile()]);
    let arguments = json!({ "url": server.url("/") }).to_string();
    let call = ["plugin", "call", "hostile", "http_get", arguments.as_str()];

    // The default policy asks for public hosts only: loopback is refused
    // with no question shown.
    let mut session = on_terminal(&project, &call);
    let output = session.exp_eof().unwrap();
    assert_eq!(exit_code(&mut session), 1, "{output}");
    assert!(!output.contains("Allow?"), "{output}");
    assert!(output.contains("was denied network access"), "{output}");
    let records = audit(&project);
    assert!(
        records.iter().any(|r| r["action"] == "denial"
            && r["who"] == "policy"
            && r["what"].as_str().unwrap().contains("127.0.0.1")
            && r["detail"].as_str().unwrap().contains("loopback")),
        "{records:?}"
    );

    // Allowed by the policy, but `--no-prompt`, or no terminal: no question.
    std::fs::create_dir_all(project.home()).unwrap();
    std::fs::write(
        project.home().join("config.toml"),
        "[prompts]\nnet = [\"loopback\"]\n",
    )
    .unwrap();
    let mut with_flag: Vec<&str> = call.to_vec();
    with_flag.push("--no-prompt");
    let mut session = on_terminal(&project, &with_flag);
    let output = session.exp_eof().unwrap();
    assert_eq!(exit_code(&mut session), 1, "{output}");
    assert!(!output.contains("Allow?"), "{output}");
    let error = project.fails(&call);
    assert!(
        error.contains("paracle plugin grant hostile net:127.0.0.1"),
        "{error}"
    );
    assert!(server.requests().is_empty());
    let records = audit(&project);
    assert!(audited(&project, "prompt").is_empty());
    // Refused by the sandbox with nobody to ask: recorded all the same.
    assert!(
        records.iter().any(|r| r["action"] == "denial"
            && r["who"] == "sandbox"
            && r["what"]
                .as_str()
                .unwrap()
                .starts_with("network access to 127.0.0.1")),
        "{records:?}"
    );

    // A write torn by a crash is skipped and reported, and the next one is
    // a line of its own.
    let log = project.path().join(".paracle/audit.jsonl");
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut file, b"{\"at\":\"2026-").unwrap();
    drop(file);
    project.fails(&call);
    let read = project.json(&["audit"]);
    assert_eq!(read["torn"].as_array().unwrap().len(), 1, "{read}");
    let after_tear = read["records"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(after_tear["action"], "denial", "{read}");
    let out = project.run(&["audit"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cut short by a crash"));
    let recent = project.json(&["audit", "--since", "1h", "--plugin", "hostile"]);
    assert_eq!(recent["records"], read["records"]);
    let none = project.json(&["audit", "--since", "2999-01-01T00:00:00Z"]);
    assert_eq!(none["records"].as_array().unwrap().len(), 0);
    let error = project.fails(&["audit", "--since", "yesterday-ish"]);
    assert!(error.contains("--since"), "{error}");

    // A key the policy never lets anyone ask for.
    std::fs::write(
        project.home().join("config.toml"),
        "[prompts]\nnet = [\"anywhere\"]\n",
    )
    .unwrap();
    let mut session = on_terminal(&project, &call);
    let output = session.exp_eof().unwrap();
    assert_eq!(exit_code(&mut session), 1, "{output}");
    assert!(
        output.contains("config.toml") && output.contains("anywhere"),
        "{output}"
    );
}

#[test]
fn an_mcp_client_user_answers_through_elicitation() {
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let server = tokio.block_on(FakeServer::start(|_| Reply::json(&json!({"via": "mcp"}))));
    let port = server.addr.port();
    let grant = format!("net:127.0.0.1:{port}");
    let project = Project::new();
    // A time limit shorter than the person takes to answer: waiting for
    // them is not the plugin's time.
    project.ok(&["plugin", "load", &hostile(), "--timeout-ms", "1500"]);
    std::fs::create_dir_all(project.home()).unwrap();
    std::fs::write(
        project.home().join("config.toml"),
        "[prompts]\nnet = [\"public\", \"loopback\"]\ntimeout_secs = 4\n",
    )
    .unwrap();
    let url = server.url("/");
    let printed = crate::mcp::scenario_with(&project, "elicitation", &[("ELICIT_URL", &url)]);
    assert!(printed.contains("\"asked\": 4"), "{printed}");
    // once, then always: two requests before the saved grant, one after.
    assert_eq!(server.requests().len(), 3);
    let by_name = format!("net:localhost:{port}");
    let shown = project.json(&["plugin", "show", "hostile"]).to_string();
    assert!(
        shown.contains(&format!("127.0.0.1:{port}")),
        "saved: {shown}"
    );

    let records = audit(&project);
    let answers: Vec<String> = records
        .iter()
        .filter(|r| r["action"] == "prompt")
        .map(|r| {
            let what = r["what"].as_str().unwrap();
            assert!(what == grant || what == by_name, "{r}");
            format!(
                "{} {what} {}",
                r["who"].as_str().unwrap(),
                r["outcome"].as_str().unwrap()
            )
        })
        .collect();
    let client = answers
        .first()
        .map(|a| a.split(' ').next().unwrap().to_string())
        .unwrap_or_default();
    assert!(client.starts_with("mcp:"), "{answers:?}");
    assert_eq!(
        answers,
        vec![
            format!("{client} {grant} once"),
            format!("{client} {grant} timeout"),
            format!("{client} {grant} always"),
            format!("{client} {by_name} deny"),
        ]
    );
}
