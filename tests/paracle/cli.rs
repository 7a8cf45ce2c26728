//! Drive the `paracle` binary as an operator would, in a temporary project.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::project::Project;

const GUESTS: &str = paracle_guests::GUEST_DIR;
const SAMPLES: [(&str, &str, &str); 6] = [
    ("mock_provider.wasm", "mock-provider", "provider"),
    ("text_tools.wasm", "text-tools", "tool"),
    ("fs_tools.wasm", "fs-tools", "tool"),
    ("kv_memory.wasm", "kv-memory", "memory"),
    ("metrics_collector.wasm", "metrics-collector", "observer"),
    ("agent_runner.wasm", "agent-runner", "adapter"),
];

fn sample(file: &str) -> PathBuf {
    Path::new(GUESTS).join(file)
}

#[test]
fn every_sample_loads_and_answers_through_the_cli() {
    let project = Project::new();
    let work = project.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    for (file, name, kind) in SAMPLES {
        let path = sample(file).display().to_string();
        let mut args = vec!["plugin", "load", path.as_str(), "--name", name];
        let grant;
        if name == "fs-tools" || name == "kv-memory" {
            let guest = if name == "fs-tools" {
                "/workspace"
            } else {
                "/data"
            };
            grant = format!("dir:{}:{guest}:rw", work.display());
            args.extend(["--grant", grant.as_str()]);
        }
        let loaded = project.json(&args);
        assert_eq!(loaded["kind"], kind);
        assert!(loaded["digest"].as_str().unwrap().starts_with("sha256:"));
    }
    assert!(project.path().join(".paracle/registry.toml").exists());

    let listed = project.json(&["plugin", "list"]);
    for (_, name, _) in SAMPLES {
        let entry = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap();
        assert_eq!(
            entry["source"]["type"], "loaded",
            "{name} resolves to the loaded file"
        );
    }
    let tools = project.json(&["plugin", "list", "--kind", "tool"]);
    assert_eq!(tools.as_array().unwrap().len(), 2);
    assert!(project.ok(&["plugin", "list"]).contains("text-tools"));

    let shown = project.json(&["plugin", "show", "fs-tools"]);
    assert_eq!(shown["grants"]["dirs"][0]["guest"], "/workspace");
    assert_eq!(
        shown["info"]["requests"]["paths"][0]["guest_path"],
        "/workspace"
    );
    assert!(project
        .ok(&["plugin", "show", "fs-tools"])
        .contains("granted"));

    let health = project.json(&["plugin", "health"]);
    assert!(
        health
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["ready"] == true),
        "{health}"
    );

    assert_eq!(
        project.json(&[
            "plugin",
            "call",
            "text-tools",
            "count_vowels",
            r#"{"text":"banana"}"#
        ])["vowels"],
        3
    );
    assert_eq!(
        project
            .ok(&["plugin", "call", "mock-provider", "hi"])
            .trim(),
        "Mock reply to: hi"
    );
    assert_eq!(
        project.json(&["plugin", "call", "mock-provider"])[0]["id"],
        "mock-1"
    );
    project.ok(&[
        "plugin",
        "call",
        "kv-memory",
        "put",
        "ns",
        "k",
        "kept across runs",
    ]);
    assert_eq!(
        project
            .ok(&["plugin", "call", "kv-memory", "get", "ns", "k"])
            .trim(),
        "kept across runs"
    );
    assert_eq!(
        project.json(&["plugin", "call", "kv-memory", "search", "ns", "runs"])[0]["key"],
        "k"
    );
    project.ok(&[
        "plugin",
        "call",
        "fs-tools",
        "write_file",
        r#"{"path":"x.txt","content":"hi"}"#,
    ]);
    assert_eq!(std::fs::read_to_string(work.join("x.txt")).unwrap(), "hi");
    let report = project.json(&[
        "plugin",
        "call",
        "metrics-collector",
        r#"{"kind":"llm-call","duration_ms":5}"#,
    ]);
    assert_eq!(report["counts"]["llm-call"], 1);
    let outcome = project.json(&[
        "plugin",
        "call",
        "agent-runner",
        "count_words: one two three",
    ]);
    assert_eq!(outcome["tool_calls"], 1);
    assert!(
        outcome["output"]
            .as_str()
            .unwrap()
            .contains(r#"{"words":3}"#),
        "{outcome}"
    );

    // Statistics add up across separate invocations.
    let stats = project.json(&["plugin", "stats"]);
    assert!(
        stats["text-tools"]["calls"].as_u64().unwrap() >= 2,
        "{stats}"
    );
    assert!(stats["kv-memory"]["ok"].as_u64().unwrap() >= 3, "{stats}");
    assert!(stats["text-tools"]["p99_us"].as_f64().unwrap() > 0.0);
    project.ok(&[
        "plugin",
        "call",
        "text-tools",
        "count_words",
        r#"{"text":"a b"}"#,
    ]);
    let after = project.json(&["plugin", "stats", "text-tools"]);
    assert!(
        after["text-tools"]["calls"].as_u64().unwrap()
            > stats["text-tools"]["calls"].as_u64().unwrap()
    );
    assert!(project.ok(&["plugin", "stats"]).contains("P99"));

    let reloaded = project.json(&["plugin", "reload", "text-tools"]);
    assert_eq!(reloaded["changed"], false);

    let unloaded = project.json(&["plugin", "unload", "text-tools"]);
    assert_eq!(unloaded["now_resolves_to"], "built in");
}

#[test]
fn a_changed_file_is_refused_until_reloaded() {
    let project = Project::new();
    let copy = project.path().join("tool.wasm");
    std::fs::copy(sample("text_tools.wasm"), &copy).unwrap();
    project.ok(&["plugin", "load", "tool.wasm", "--name", "mine"]);
    // The new version asks for a directory that the old one did not.
    std::fs::copy(sample("fs_tools.wasm"), &copy).unwrap();
    let error = project.fails(&["plugin", "call", "mine", "count_words", r#"{"text":"a"}"#]);
    assert!(
        error.contains("changed since it was loaded")
            && error.contains("paracle plugin reload mine"),
        "{error}"
    );
    let reloaded = project.json(&["plugin", "reload", "mine"]);
    assert_eq!(reloaded["changed"], true);
    assert_eq!(
        reloaded["new_requests"],
        serde_json::json!(["dir /workspace (rw)"])
    );
    assert!(project.ok(&["plugin", "show", "mine"]).contains("list_dir"));
}

#[test]
fn bad_input_gets_one_line_that_says_what_to_do() {
    let project = Project::new();
    let dir = project.path();
    std::fs::write(dir.join("empty.wasm"), b"").unwrap();
    std::fs::write(dir.join("random.wasm"), b"\x13\x37 definitely not wasm").unwrap();
    let bytes = std::fs::read(sample("text_tools.wasm")).unwrap();
    std::fs::write(dir.join("truncated.wasm"), &bytes[..bytes.len() / 3]).unwrap();
    std::fs::write(dir.join("core.wasm"), wat::parse_str("(module)").unwrap()).unwrap();

    assert!(project
        .fails(&["plugin", "load", "empty.wasm"])
        .contains("is empty"));
    assert!(project
        .fails(&["plugin", "load", "random.wasm"])
        .contains("not a WebAssembly file"));
    assert!(project
        .fails(&["plugin", "load", "truncated.wasm"])
        .contains("truncated or corrupt"));
    assert!(project
        .fails(&["plugin", "load", "core.wasm"])
        .contains("--target wasm32-wasip2"));
    assert!(project
        .fails(&["plugin", "load", "missing.wasm"])
        .contains("cannot read"));
    assert!(project
        .fails(&["plugin", "show", "nobody"])
        .contains("paracle plugin list"));
    assert!(project
        .fails(&["plugin", "call", "text-tools", "count_vowels", "{oops"])
        .contains("not valid JSON"));
    assert!(project
        .fails(&[
            "plugin",
            "call",
            "text-tools",
            "count_vowels",
            r#"{"text":1}"#
        ])
        .contains("schema"));
    assert!(project
        .fails(&["plugin", "call", "kv-memory", "fetch"])
        .contains("usage"));
    assert!(project
        .fails(&["plugin", "unload", "text-tools"])
        .contains("built-in"));
    assert!(project
        .fails(&["plugin", "list", "--kind", "robot"])
        .contains("unknown kind"));
}

#[test]
fn paracle_toml_is_strict_and_points_at_the_line() {
    let project = Project::new();
    let plugin = sample("text_tools.wasm");
    std::fs::write(
        project.path().join("paracle.toml"),
        format!(
            "[plugins.words]\npath = {:?}\n\n[plugins.words.limits]\nmemory_mb = 32\n",
            plugin.display().to_string()
        ),
    )
    .unwrap();
    let error = project.fails(&["plugin", "list"]);
    assert!(
        error.contains("paracle.toml") && error.contains("line 5") && error.contains("memory_mb"),
        "{error}"
    );

    std::fs::write(
        project.path().join("paracle.toml"),
        format!("[plugins.words]\npath = {:?}\nconfig = {{}}\n[plugins.words.limits]\nmemory_mib = 32\n", plugin.display().to_string()),
    )
    .unwrap();
    let shown = project.json(&["plugin", "show", "words"]);
    assert_eq!(shown["limits"]["memory_mib"], 32);
    assert_eq!(
        shown["source"].as_str().unwrap().split(' ').next(),
        Some("paracle.toml")
    );
}

#[test]
fn plugins_dropped_in_the_plugins_directory_are_discovered() {
    let project = Project::new();
    let dir = project.path().join(".paracle/plugins");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(sample("text_tools.wasm"), dir.join("word_tools.wasm")).unwrap();
    let listed = project.json(&["plugin", "list", "--kind", "tool"]);
    let found = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "word-tools")
        .expect("discovered");
    assert_eq!(found["source"]["type"], "plugins-dir");
}

#[test]
fn grants_are_given_and_taken_back_and_persist() {
    let project = Project::new();
    let work = project.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let path = sample("fs_tools.wasm").display().to_string();
    project.ok(&["plugin", "load", &path]);
    let write = ["plugin", "call", "fs-tools", "write_file"];
    let content = r#"{"path": "a.txt", "content": "hi"}"#;

    // Nothing is granted by default: the plugin sees no directory.
    let shown = project.ok(&["plugin", "show", "fs-tools"]);
    assert!(shown.contains("grants: none"), "{shown}");
    assert!(
        shown.contains("paracle plugin grant fs-tools dir:HOST_DIR:/workspace:rw"),
        "says how to grant: {shown}"
    );
    project.fails(&[write.as_slice(), &[content]].concat());

    let spec = format!("dir:{}:/workspace:rw", work.display());
    let granted = project.json(&["plugin", "grant", "fs-tools", &spec, "env:HOME"]);
    assert_eq!(granted["granted"].as_array().unwrap().len(), 2);
    assert_eq!(granted["grants"]["dirs"][0]["guest"], "/workspace");
    assert_eq!(granted["grants"]["env"][0], "HOME");
    // A new process sees the grant: it was saved.
    project.ok(&[write.as_slice(), &[content]].concat());
    assert_eq!(std::fs::read_to_string(work.join("a.txt")).unwrap(), "hi");

    let revoked = project.json(&["plugin", "revoke", "fs-tools", "dir:/workspace"]);
    assert_eq!(revoked["revoked"].as_array().unwrap().len(), 1);
    assert_eq!(revoked["grants"]["dirs"].as_array().unwrap().len(), 0);
    assert_eq!(revoked["grants"]["env"][0], "HOME");
    project.fails(&[write.as_slice(), &[content]].concat());

    // Bad grants, and grants on what cannot take them, get one line each.
    let error = project.fails(&["plugin", "grant", "fs-tools", "disk:/tmp"]);
    assert!(error.contains("dir:HOST_DIR"), "{error}");
    let error = project.fails(&["plugin", "grant", "fs-tools", "dir:/no/such/dir"]);
    assert!(error.contains("/no/such/dir"), "{error}");
    let error = project.fails(&["plugin", "revoke", "fs-tools", "env:PATH"]);
    assert!(error.contains("nothing granted matches"), "{error}");
    let error = project.fails(&["plugin", "grant", "kv-memory", "env:HOME"]);
    assert!(error.contains("built-in"), "{error}");
    let shown = project.json(&["plugin", "show", "fs-tools"]);
    assert_eq!(
        shown["grants"]["env"][0], "HOME",
        "failed grants change nothing"
    );
}

#[test]
fn an_agent_runs_on_a_granted_http_provider() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let turn = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let server = {
        let turn = turn.clone();
        runtime.block_on(paracle_testing::http::FakeServer::start(move |_| {
            let reply = if turn.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                json!({"finish_reason": "tool_calls", "message": {"role": "assistant", "content": "",
                    "tool_calls": [{"id": "c1", "type": "function", "function": {
                        "name": "count_vowels", "arguments": "{\"text\": \"hello paracle\"}"}}]}})
            } else {
                json!({"finish_reason": "stop", "message": {"role": "assistant",
                    "content": "There are 5 vowels."}})
            };
            paracle_testing::http::Reply::json(&json!({"choices": [reply]}))
        }))
    };
    let project = Project::new();
    let path = sample("openai_provider.wasm").display().to_string();
    let config =
        json!({"base_url": server.url("/v1"), "model": "m", "api_key_env": ""}).to_string();
    let grant = format!("net:{}", server.addr);
    let loaded = project.ok(&[
        "plugin", "load", &path, "--grant", &grant, "--config", &config,
    ]);
    assert!(
        loaded.contains("net api.openai.com:443: NOT granted; grant with `paracle plugin grant openai-provider net:api.openai.com:443`"),
        "{loaded}"
    );
    assert!(
        loaded.contains(&format!(
            "net {}: granted though not asked for",
            server.addr
        )),
        "{loaded}"
    );
    let shown = project.json(&["plugin", "show", "openai-provider"]);
    assert_eq!(shown["grants"]["net"][0], server.addr.to_string());

    let outcome = project.json(&[
        "plugin",
        "call",
        "agent-runner",
        "--provider",
        "openai-provider",
        "How many vowels in hello paracle?",
    ]);
    assert_eq!(outcome["output"], "There are 5 vowels.", "{outcome}");
    assert_eq!(outcome["tool_calls"], 1);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let second: Value = serde_json::from_str(&requests[1].body).unwrap();
    let tool_result = second["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .expect("the tool's result goes back to the model");
    assert_eq!(tool_result["tool_call_id"], "c1");
    assert_eq!(tool_result["content"], r#"{"vowels":5}"#);

    // Revoked, the provider is denied, and the error names what to grant.
    project.ok(&["plugin", "revoke", "openai-provider", &grant]);
    let error = project.fails(&["plugin", "call", "openai-provider", "hi"]);
    assert!(error.contains("denied network access"), "{error}");
    assert!(error.contains(&grant), "{error}");
    // Routed through an adapter, the denial reaches it as `denied`.
    let error = project.fails(&[
        "plugin",
        "call",
        "agent-runner",
        "--provider",
        "openai-provider",
        "hi",
    ]);
    assert!(error.contains("denied"), "{error}");
    assert!(error.contains("network access"), "{error}");
}

#[test]
fn a_signing_policy_refuses_unsigned_and_untrusted_plugins() {
    let project = Project::new();
    // A copy, so that signing writes beside it and not beside the build output.
    let plugin = project.path().join("text_tools.wasm");
    std::fs::copy(sample("text_tools.wasm"), &plugin).unwrap();
    let plugin = plugin.display().to_string();
    let key_file = project.path().join("author.key").display().to_string();

    let key = project.json(&["plugin", "keygen", "--out", &key_file]);
    let public = key["public_key"].as_str().unwrap().to_string();
    assert!(public.starts_with("ed25519:"), "{key}");
    project.fails(&["plugin", "keygen", "--out", &key_file]);

    project.ok(&["trust", "policy", "require-signed"]);
    let error = project.fails(&["plugin", "load", &plugin]);
    assert!(error.contains("is not signed"), "{error}");
    assert!(
        error.contains("paracle plugin sign"),
        "says what to do: {error}"
    );

    let signed = project.json(&["plugin", "sign", &plugin, "--key", &key_file]);
    assert_eq!(signed["key"], public);
    let error = project.fails(&["plugin", "load", &plugin]);
    assert!(error.contains("not in the trust list"), "{error}");
    assert!(
        error.contains(&format!("paracle trust add NAME {public}")),
        "{error}"
    );

    project.ok(&["trust", "add", "author", &public]);
    project.ok(&["plugin", "load", &plugin]);
    let shown = project.ok(&["plugin", "show", "text-tools"]);
    assert!(
        shown.contains("signature: signed by trusted key `author`"),
        "{shown}"
    );
    let listed = project.json(&["trust", "list"]);
    assert_eq!(listed["policy"], "require-signed");
    assert_eq!(listed["keys"]["author"], public);

    // A signature altered after signing is refused, even for a file that is
    // otherwise unchanged.
    let signature = format!("{plugin}.sig");
    let text = std::fs::read_to_string(&signature).unwrap();
    std::fs::write(&signature, text.replace("signature ", "signature 00")).unwrap();
    let error = project.fails(&[
        "plugin",
        "call",
        "text-tools",
        "count_words",
        r#"{"text": "a b"}"#,
    ]);
    assert!(error.contains("signature"), "{error}");

    // Back to the default, an unsigned plugin loads again, and says so.
    std::fs::remove_file(&signature).unwrap();
    project.ok(&["trust", "remove", "author"]);
    project.ok(&["trust", "policy", "allow-unsigned"]);
    project.ok(&["plugin", "reload", "text-tools"]);
    let shown = project.json(&["plugin", "show", "text-tools"]);
    assert_eq!(shown["signature"]["status"], "unsigned");
}

#[test]
fn limits_are_changed_by_name_and_persist() {
    let project = Project::new();
    let path = sample("text_tools.wasm").display().to_string();
    project.ok(&[
        "plugin",
        "load",
        &path,
        "--fuel",
        "50000000",
        "--max-output-kib",
        "8",
    ]);
    let shown = project.json(&["plugin", "show", "text-tools"]);
    assert_eq!(shown["limits"]["fuel"], 50_000_000);
    assert_eq!(shown["limits"]["max_output_kib"], 8);

    let changed = project.json(&[
        "plugin",
        "limit",
        "text-tools",
        "memory_mib=32",
        "fuel=none",
    ]);
    assert_eq!(changed["previous_limits"]["fuel"], 50_000_000);
    assert_eq!(changed["limits"]["memory_mib"], 32);
    assert!(changed["limits"]["fuel"].is_null());
    // Saved: a new process sees them, and the plugin still answers.
    let shown = project.ok(&["plugin", "show", "text-tools"]);
    assert!(
        shown.contains("memory 32 MiB") && shown.contains("no fuel limit"),
        "{shown}"
    );
    project.ok(&[
        "plugin",
        "call",
        "text-tools",
        "count_words",
        r#"{"text": "a b"}"#,
    ]);

    let error = project.fails(&["plugin", "limit", "text-tools", "speed=9"]);
    assert!(error.contains("memory_mib"), "lists the limits: {error}");
    let error = project.fails(&["plugin", "limit", "text-tools", "timeout_ms=0"]);
    assert!(error.contains("timeout_ms"), "{error}");
    // A built-in's limits and approvals are the operator's as well, as the
    // README tells users for an agent on a real model (its grants are not:
    // `grants_are_given_and_taken_back_and_persist`).
    let changed = project.json(&["plugin", "limit", "agent-runner", "timeout_ms=600000"]);
    assert_eq!(
        changed["previous_limits"]["timeout_ms"], 10_000,
        "{changed}"
    );
    let shown = project.json(&["plugin", "show", "agent-runner"]);
    assert_eq!(shown["limits"]["timeout_ms"], 600_000, "{shown}");
    assert_eq!(shown["source"], "built in", "{shown}");
    let set = project.json(&["plugin", "approve", "fs-tools", "write_file", "ask"]);
    assert_eq!(set["approve"]["write_file"], "ask", "{set}");
    let shown = project.json(&["plugin", "show", "fs-tools"]);
    assert_eq!(shown["approve"]["write_file"], "ask", "{shown}");
}

#[test]
fn a_plugins_text_reaches_the_terminal_escaped_and_json_exactly() {
    let project = Project::new();
    // Erase the line above, then write over it: what would hide the lines
    // that say what the plugin asks for.
    let sly = "1.0\u{1b}[1A\u{1b}[2K\u{9b}2K\u{202e}";
    let config =
        serde_json::json!({"version": sly, "description": "calm\nforged: line"}).to_string();
    let loaded = project.ok(&[
        "plugin",
        "load",
        sample("hostile.wasm").to_str().unwrap(),
        "--config",
        &config,
    ]);
    let listed = project.ok(&["plugin", "list"]);
    let shown = project.ok(&["plugin", "show", "hostile"]);
    for out in [&loaded, &listed, &shown] {
        assert!(
            !out.contains('\u{1b}') && !out.contains('\u{9b}') && !out.contains('\u{202e}'),
            "a raw control reached the terminal: {out:?}"
        );
        assert!(
            out.contains("1.0\\u{1b}[1A\\u{1b}[2K\\u{9b}2K\\u{202e}"),
            "{out}"
        );
        assert!(!out.contains("\nforged: line"), "{out}");
    }
    assert!(
        loaded.contains("asks for:") && loaded.contains("env HOSTILE_SECRET"),
        "{loaded}"
    );
    assert!(shown.contains("calm\\u{a}forged: line"), "{shown}");
    // JSON is for programs, and keeps the text exactly.
    let json = project.json(&["plugin", "show", "hostile"]);
    assert_eq!(json["info"]["version"], sly);
    assert_eq!(json["info"]["description"], "calm\nforged: line");
}
