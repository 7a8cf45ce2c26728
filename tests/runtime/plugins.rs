//! Load every sample plugin through the library, call every export, and try
//! each kind of bad input.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use paracle_contract::{AgentSpec, ChatRequest, InvocationContext, Message, Role, Task};
use paracle_policy::{DirGrant, Grants};
use paracle_runtime::AgentRoutes;
use paracle_runtime::{CallError, LoadError, PluginErrorKind};
use paracle_runtime::{Isolation, PluginKind, PluginSettings, Runtime};
use serde_json::json;

use crate::test_host::{load, TestHost};

fn guest(file: &str) -> (PathBuf, Vec<u8>) {
    let path = crate::test_host::guest(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (path, bytes)
}

fn runtime(cache: &Path) -> Runtime {
    Runtime::new(Some(cache.to_path_buf())).expect("engine starts")
}

fn rw_grant(dir: &Path, guest: &str) -> Grants {
    Grants {
        dirs: vec![DirGrant {
            host: dir.to_path_buf(),
            guest: guest.into(),
            writable: true,
        }],
        ..Grants::default()
    }
}

fn context() -> InvocationContext {
    InvocationContext {
        caller: "test".into(),
        run_id: None,
        agent: None,
    }
}

fn user(text: &str) -> Message {
    Message {
        role: Role::User,
        content: text.into(),
        tool_calls: vec![],
        tool_call_id: None,
    }
}

#[tokio::test]
async fn text_tools_answer_every_tool() {
    let cache = tempfile::tempdir().unwrap();
    let rt = runtime(cache.path());
    let plugin = load(&rt, "text_tools.wasm", PluginSettings::default()).await;
    assert_eq!(plugin.kind(), PluginKind::Tool);
    assert_eq!(plugin.name(), "text-tools");
    assert!(plugin.health().await.unwrap().ready);
    let names: Vec<&str> = plugin.tools().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["count_words", "count_vowels", "regex_extract", "json_query"]
    );

    let call = |tool: &'static str, args: serde_json::Value| {
        let plugin = &plugin;
        async move {
            plugin
                .invoke_tool(tool, &args, &context())
                .await
                .unwrap()
                .unwrap()
                .to_value()
        }
    };
    assert_eq!(
        call("count_words", json!({"text": "one two  three"})).await,
        json!({"words": 3})
    );
    assert_eq!(
        call("count_vowels", json!({"text": "Paracle AI"})).await,
        json!({"vowels": 5})
    );
    assert_eq!(
        call(
            "regex_extract",
            json!({"text": "a1 b22 c333", "pattern": "[a-z](\\d+)", "group": 1})
        )
        .await,
        json!({"count": 3, "matches": ["1", "22", "333"]})
    );
    assert_eq!(
        call(
            "json_query",
            json!({"document": {"items": [{"id": 1}, {"id": 2}]}, "path": "items[*].id"})
        )
        .await,
        json!({"count": 2, "results": [1, 2]})
    );
    // The plugin's own error comes back as the inner error, naming the plugin.
    let bad = plugin
        .invoke_tool(
            "regex_extract",
            &json!({"text": "x", "pattern": "("}),
            &context(),
        )
        .await
        .unwrap();
    let error = bad.unwrap_err();
    assert_eq!(error.kind, PluginErrorKind::InvalidInput);
    assert_eq!(error.plugin, "text-tools");
}

#[tokio::test]
async fn arguments_are_checked_against_the_schema_before_the_plugin_runs() {
    let cache = tempfile::tempdir().unwrap();
    let rt = runtime(cache.path());
    let plugin = load(&rt, "text_tools.wasm", PluginSettings::default()).await;
    for arguments in [
        json!({"text": 5}),
        json!({}),
        json!({"text": "a", "extra": 1}),
        json!("text"),
    ] {
        let error = plugin
            .invoke_tool("count_vowels", &arguments, &context())
            .await
            .unwrap_err();
        assert!(
            matches!(error, CallError::InvalidRequest { .. }),
            "{arguments}: {error}"
        );
        assert!(error.to_string().contains("text-tools"), "{error}");
    }
    let error = plugin
        .invoke_tool("no_such_tool", &json!({}), &context())
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("count_vowels"),
        "lists the tools: {error}"
    );

    // Arguments given as JSON text go through the same checks, and valid
    // ones reach the tool as they were written.
    let answer = plugin
        .invoke_tool_json("count_vowels", r#"{"text": "Paracle"}"#, &context())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer.as_str(), r#"{"vowels":3}"#);
    for text in [r#"{"text": "#, r#"{"text": 5}"#, ""] {
        let error = plugin
            .invoke_tool_json("count_vowels", text, &context())
            .await
            .unwrap_err();
        assert!(
            matches!(error, CallError::InvalidRequest { .. }),
            "{text}: {error}"
        );
    }

    let stats = plugin.stats();
    assert!(stats.rejected >= 8, "{stats:?}");
}

#[tokio::test]
async fn fs_tools_stay_inside_their_grant() {
    let cache = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let rt = runtime(cache.path());
    let settings = PluginSettings {
        grants: rw_grant(work.path(), "/workspace"),
        ..Default::default()
    };
    let plugin = load(&rt, "fs_tools.wasm", settings).await;
    let invoke = |tool: &'static str, args: serde_json::Value| {
        let plugin = &plugin;
        async move { plugin.invoke_tool(tool, &args, &context()).await.unwrap() }
    };
    invoke(
        "write_file",
        json!({"path": "notes/a.txt", "content": "hello"}),
    )
    .await
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(work.path().join("notes/a.txt")).unwrap(),
        "hello"
    );
    let read = invoke("read_file", json!({"path": "notes/a.txt"}))
        .await
        .unwrap();
    assert_eq!(read.to_value()["content"], "hello");
    let listed = invoke("list_dir", json!({"path": "notes"})).await.unwrap();
    assert_eq!(
        listed.to_value()["entries"],
        json!([{"name": "a.txt", "kind": "file"}])
    );
    let escape = invoke("read_file", json!({"path": "../../etc/passwd"}))
        .await
        .unwrap_err();
    assert_eq!(escape.kind, PluginErrorKind::Denied);

    // Without a grant the plugin sees no directory at all.
    let bare = load(&rt, "fs_tools.wasm", PluginSettings::default()).await;
    let denied = bare
        .invoke_tool("list_dir", &json!({"path": "."}), &context())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(denied.kind, PluginErrorKind::Denied);
}

#[tokio::test]
async fn kv_memory_persists_across_restarts_and_ranks_search() {
    let cache = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    {
        let rt = runtime(cache.path());
        let plugin = load(
            &rt,
            "kv_memory.wasm",
            PluginSettings {
                grants: rw_grant(data.path(), "/data"),
                ..Default::default()
            },
        )
        .await;
        plugin
            .memory_put("ns", "rust", "rust compiles to wasm components")
            .await
            .unwrap()
            .unwrap();
        plugin
            .memory_put("ns", "python", "python is interpreted")
            .await
            .unwrap()
            .unwrap();
        plugin
            .memory_put("ns", "wasm", "wasm wasm sandbox")
            .await
            .unwrap()
            .unwrap();
        assert!(plugin.memory_delete("ns", "python").await.unwrap().unwrap());
        assert!(!plugin.memory_delete("ns", "python").await.unwrap().unwrap());
    }
    // A new runtime and a new instance: only the directory carries state.
    let rt = runtime(cache.path());
    let plugin = load(
        &rt,
        "kv_memory.wasm",
        PluginSettings {
            grants: rw_grant(data.path(), "/data"),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        plugin
            .memory_get("ns", "rust")
            .await
            .unwrap()
            .unwrap()
            .as_deref(),
        Some("rust compiles to wasm components")
    );
    assert_eq!(
        plugin.memory_get("ns", "python").await.unwrap().unwrap(),
        None
    );
    assert_eq!(
        plugin.memory_keys("ns", "r").await.unwrap().unwrap(),
        ["rust"]
    );
    let hits = plugin
        .memory_search("ns", "wasm", 5)
        .await
        .unwrap()
        .unwrap();
    let keys: Vec<&str> = hits.iter().map(|h| h.key.as_str()).collect();
    assert_eq!(
        keys,
        ["wasm", "rust"],
        "the entry that says wasm most ranks first"
    );
    assert!(hits[0].score > hits[1].score);
    let bad = plugin
        .memory_put("../escape", "k", "v")
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(bad.kind, PluginErrorKind::InvalidInput);
}

#[tokio::test]
async fn mock_provider_is_deterministic_and_scriptable() {
    let cache = tempfile::tempdir().unwrap();
    let rt = runtime(cache.path());
    let plain = load(&rt, "mock_provider.wasm", PluginSettings::default()).await;
    let models = plain.list_models().await.unwrap().unwrap();
    assert_eq!(models[0].id, "mock-1");
    let request = ChatRequest {
        model: String::new(),
        messages: vec![user("hello")],
        tools: vec![],
        temperature: None,
        max_tokens: None,
    };
    let first = plain.chat(&request).await.unwrap().unwrap();
    let second = plain.chat(&request).await.unwrap().unwrap();
    assert_eq!(first, second);
    assert_eq!(first.message.content, "Mock reply to: hello");

    let scripted = load(
        &rt,
        "mock_provider.wasm",
        PluginSettings {
            config: Some(json!({"responses": [{"tool_calls": [{"name": "lookup", "arguments": {"q": "x"}}]}, "final"]})),
            ..Default::default()
        },
    )
    .await;
    let reply = scripted.chat(&request).await.unwrap().unwrap();
    assert_eq!(reply.message.tool_calls.len(), 1);
    assert_eq!(reply.message.tool_calls[0].name, "lookup");

    let error = scripted
        .chat(&ChatRequest {
            model: "gpt-9".into(),
            ..request.clone()
        })
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(error.kind, PluginErrorKind::NotFound);

    // A config that breaks the plugin's schema is refused at load.
    let (path, bytes) = guest("mock_provider.wasm");
    let refused = rt
        .load(
            &path,
            &bytes,
            PluginSettings {
                config: Some(json!({"delay_ms": "soon"})),
                ..Default::default()
            },
        )
        .await
        .err()
        .expect("bad config refused");
    assert!(
        matches!(refused, LoadError::ConfigSchema { .. }),
        "{refused}"
    );
}

#[tokio::test]
async fn metrics_collector_aggregates_events() {
    let cache = tempfile::tempdir().unwrap();
    let rt = runtime(cache.path());
    let plugin = load(&rt, "metrics_collector.wasm", PluginSettings::default()).await;
    for (ms, ok) in [(10, true), (30, false)] {
        let event = paracle_contract::json::event_from_json(
            &json!({"kind": "agent-finished", "agent": "a", "duration_ms": ms, "success": ok}),
        )
        .unwrap();
        plugin.on_event(&event).await.unwrap().unwrap();
    }
    let report = plugin.report().await.unwrap().unwrap();
    assert_eq!(report["events"], 2);
    assert_eq!(report["durations"]["agent-finished"]["mean_ms"], 20.0);
    assert_eq!(report["failed"]["agent-finished"], 1);
    assert_eq!(report["by_agent"]["a"]["max_ms"], 30);
}

#[tokio::test]
async fn agent_runner_reaches_tools_and_memory_only_through_the_host() {
    let cache = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let rt = runtime(cache.path());
    let adapter = load(&rt, "agent_runner.wasm", PluginSettings::default()).await;
    let provider = Arc::new(load(&rt, "mock_provider.wasm", PluginSettings::default()).await);
    let tools = Arc::new(load(&rt, "text_tools.wasm", PluginSettings::default()).await);
    let memory = Arc::new(
        load(
            &rt,
            "kv_memory.wasm",
            PluginSettings {
                grants: rw_grant(data.path(), "/data"),
                ..Default::default()
            },
        )
        .await,
    );
    let routes = Arc::new(
        AgentRoutes::new(
            "agent-runner",
            Some(provider.clone()),
            vec![tools.clone().into()],
            Some(memory.clone()),
            Some("run-1".into()),
            Some("counter".into()),
        )
        .unwrap(),
    );
    let agent = AgentSpec {
        name: "counter".into(),
        description: String::new(),
        system_prompt: String::new(),
        model: String::new(),
        temperature: None,
        max_tokens: None,
        max_steps: 4,
        memory_namespace: "counter".into(),
        config: json!({"output_file": "answer.md"}).to_string(),
    };
    let task = Task {
        id: "t1".into(),
        input: "count_vowels: banana".into(),
        context: "{}".into(),
    };
    let tool_calls_before = tools.stats().calls;
    let outcome = adapter
        .run_agent(&agent, &task, routes.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outcome.tool_calls, 1);
    assert_eq!(outcome.steps, 2);
    assert!(
        outcome.output.contains(r#"{"vowels":3}"#),
        "{}",
        outcome.output
    );
    assert_eq!(outcome.artifacts[0].path, "answer.md");
    assert_eq!(
        tools.stats().calls - tool_calls_before,
        1,
        "the routed invoke reached the tool plugin"
    );
    let noted = memory
        .memory_get("counter", "task-t1")
        .await
        .unwrap()
        .unwrap();
    assert!(noted.unwrap().contains("banana"));

    // A step limit ends the loop with the adapter's own error.
    let looping = Arc::new(
        load(&rt, "mock_provider.wasm", PluginSettings {
            config: Some(json!({"rules": [{"match": "", "tool_calls": [{"name": "count_words", "arguments": {"text": "a"}}]}]})),
            ..Default::default()
        })
        .await,
    );
    let routes = Arc::new(
        AgentRoutes::new(
            "agent-runner",
            Some(looping),
            vec![tools.into()],
            None,
            None,
            None,
        )
        .unwrap(),
    );
    let error = adapter
        .run_agent(
            &AgentSpec {
                max_steps: 3,
                ..agent
            },
            &task,
            routes,
        )
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        error.message.contains("step limit of 3"),
        "{}",
        error.message
    );

    // Routes refuse a plugin of the wrong kind.
    assert!(AgentRoutes::new("agent-runner", Some(memory), vec![], None, None, None).is_err());
}

#[tokio::test]
async fn fresh_isolation_keeps_no_state_and_warm_reuses() {
    let cache = tempfile::tempdir().unwrap();
    let rt = runtime(cache.path());
    let warm = load(&rt, "metrics_collector.wasm", PluginSettings::default()).await;
    let fresh = load(
        &rt,
        "metrics_collector.wasm",
        PluginSettings {
            isolation: Isolation::Fresh,
            ..Default::default()
        },
    )
    .await;
    let event = paracle_contract::json::event_from_json(&json!({"kind": "tool-call"})).unwrap();
    for plugin in [&warm, &fresh] {
        plugin.on_event(&event).await.unwrap().unwrap();
        plugin.on_event(&event).await.unwrap().unwrap();
    }
    assert_eq!(warm.report().await.unwrap().unwrap()["events"], 2);
    assert_eq!(fresh.report().await.unwrap().unwrap()["events"], 0);
}

#[tokio::test]
async fn the_cache_skips_compilation_the_second_time() {
    let cache = tempfile::tempdir().unwrap();
    let host = |dir: &Path| TestHost::builder().cache_dir(dir.to_path_buf()).build();
    let first = host(cache.path()).await;
    let plugin = first
        .plugin("kv_memory.wasm", PluginSettings::default())
        .await;
    assert_eq!(plugin.cache_use(), paracle_runtime::CacheUse::Compiled);
    let second = host(cache.path()).await;
    let again = second
        .plugin("kv_memory.wasm", PluginSettings::default())
        .await;
    assert_eq!(again.cache_use(), paracle_runtime::CacheUse::Hit);
    assert_eq!(plugin.digest(), again.digest());
}

// ---- bad input ----

async fn load_error(bytes: &[u8]) -> LoadError {
    let cache = tempfile::tempdir().unwrap();
    let rt = runtime(cache.path());
    rt.load(Path::new("bad.wasm"), bytes, PluginSettings::default())
        .await
        .err()
        .expect("refused")
}

#[tokio::test]
async fn empty_random_and_truncated_files_are_refused() {
    assert!(matches!(load_error(b"").await, LoadError::Empty { .. }));
    assert!(matches!(
        load_error(b"this is not wasm at all").await,
        LoadError::NotWasm { .. }
    ));
    let (_, bytes) = guest("text_tools.wasm");
    for cut in [9, 100, bytes.len() / 2, bytes.len() - 1] {
        let error = load_error(&bytes[..cut]).await;
        assert!(
            matches!(error, LoadError::Malformed { .. }),
            "cut at {cut}: {error}"
        );
        assert!(error.to_string().contains("rebuild"), "{error}");
    }
}

#[tokio::test]
async fn a_core_module_is_told_to_build_for_wasip2() {
    let module = wat::parse_str("(module (func (export \"f\")))").unwrap();
    let error = load_error(&module).await;
    assert!(matches!(error, LoadError::CoreModule { .. }), "{error}");
    assert!(
        error.to_string().contains("--target wasm32-wasip2"),
        "{error}"
    );
}

fn component_exporting(names: &[&str]) -> Vec<u8> {
    let exports: String = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            format!(
                "(instance $i{i} (export \"f\" (func $f))) (export \"{name}\" (instance $i{i}))"
            )
        })
        .collect();
    wat::parse_str(format!(
        "(component (core module $m (func (export \"f\"))) (core instance $c (instantiate $m)) \
         (func $f (canon lift (core func $c \"f\"))) {exports})"
    ))
    .unwrap()
}

#[tokio::test]
async fn a_component_of_no_paracle_world_says_what_it_exports() {
    let error = load_error(&component_exporting(&["wasi:cli/run@0.2.0"])).await;
    assert!(matches!(error, LoadError::NoWorld { .. }), "{error}");
    assert!(error.to_string().contains("wasi:cli/run@0.2.0"), "{error}");
}

#[tokio::test]
async fn a_component_of_another_contract_version_names_it() {
    let error = load_error(&component_exporting(&[
        "paracle:plugin/plugin@0.2.0",
        "paracle:plugin/tool@0.2.0",
    ]))
    .await;
    assert!(
        matches!(error, LoadError::ContractVersion { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("paracle:plugin@0.2.0") && message.contains("0.1.0"),
        "{message}"
    );
}

#[tokio::test]
async fn a_component_with_the_right_names_but_wrong_types_is_refused() {
    let error = load_error(&component_exporting(&[
        "paracle:plugin/plugin@0.1.0",
        "paracle:plugin/tool@0.1.0",
    ]))
    .await;
    assert!(matches!(error, LoadError::Link { .. }), "{error}");
}
