//! The `openai-provider` sample against a fake OpenAI-compatible server on
//! loopback, granted by address: the wire format of requests, tool calls and
//! tool results, model listing, the API key, and errors.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::test_host::TestHost;
use paracle_contract::{ChatRequest, FinishReason, Message, Role, ToolSpec};
use paracle_policy::Grants;
use paracle_policy::NetGrant;
use paracle_runtime::CallError;
use paracle_runtime::{Plugin, PluginSettings};
use paracle_testing::http::{FakeServer, Recorded, Reply};
use serde_json::{json, Value};

/// Set once for the whole binary; only granted plugins can read it.
const KEY_VARIABLE: &str = "PARACLE_TEST_OPENAI_KEY";
const KEY: &str = "sk-test-123";

async fn provider(host: &TestHost, server: &FakeServer, grant_key: bool) -> Plugin {
    // SAFETY: every test sets the same value, before any plugin reads it.
    unsafe { std::env::set_var(KEY_VARIABLE, KEY) };
    let mut grants = Grants {
        net: vec![NetGrant::parse(&server.addr.to_string()).unwrap()],
        ..Grants::default()
    };
    if grant_key {
        grants.env.push(KEY_VARIABLE.into());
    }
    host.plugin(
        "openai_provider.wasm",
        PluginSettings {
            config: Some(json!({
                "base_url": server.url("/v1"),
                "model": "test-model",
                "api_key_env": KEY_VARIABLE,
            })),
            grants,
            ..PluginSettings::default()
        },
    )
    .await
}

fn message(role: Role, content: &str) -> Message {
    Message {
        role,
        content: content.into(),
        tool_calls: vec![],
        tool_call_id: None,
    }
}

fn request(messages: Vec<Message>, tools: Vec<ToolSpec>) -> ChatRequest {
    ChatRequest {
        model: String::new(),
        messages,
        tools,
        temperature: Some(0.5),
        max_tokens: Some(100),
    }
}

fn body(recorded: &Recorded) -> Value {
    serde_json::from_str(&recorded.body).expect("the provider sends JSON")
}

#[tokio::test]
async fn a_tool_call_goes_out_and_its_result_comes_back() {
    let host = TestHost::new().await;
    let turn = Arc::new(AtomicUsize::new(0));
    let server = {
        let turn = turn.clone();
        FakeServer::start(move |_| {
            if turn.fetch_add(1, Ordering::SeqCst) == 0 {
                Reply::json(&json!({
                    "model": "test-model-0613",
                    "choices": [{"finish_reason": "tool_calls", "message": {
                        "role": "assistant", "content": null,
                        "tool_calls": [{"id": "call_abc", "type": "function", "function": {
                            "name": "count_vowels", "arguments": "{\"text\":\"hello\"}"
                        }}]
                    }}],
                    "usage": {"prompt_tokens": 42, "completion_tokens": 7}
                }))
            } else {
                Reply::json(&json!({
                    "choices": [{"finish_reason": "stop", "message": {
                        "role": "assistant", "content": "hello has 2 vowels"
                    }}],
                    "usage": {"prompt_tokens": 60, "completion_tokens": 5}
                }))
            }
        })
        .await
    };
    let plugin = provider(&host, &server, true).await;
    let tool = ToolSpec {
        name: "count_vowels".into(),
        description: "Count vowels".into(),
        input_schema: r#"{"type":"object","properties":{"text":{"type":"string"}}}"#.into(),
    };
    let mut messages = vec![
        message(Role::System, "Be brief."),
        message(Role::User, "How many vowels in hello?"),
    ];
    let first = plugin
        .chat(&request(messages.clone(), vec![tool.clone()]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.finish_reason, FinishReason::ToolCalls);
    assert_eq!(first.model, "test-model-0613");
    assert_eq!(
        (first.usage.prompt_tokens, first.usage.completion_tokens),
        (42, 7)
    );
    let call = &first.message.tool_calls[0];
    assert_eq!(
        (call.id.as_str(), call.name.as_str()),
        ("call_abc", "count_vowels")
    );
    assert_eq!(call.arguments, r#"{"text":"hello"}"#);

    let sent = &server.requests()[0];
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(sent.header("authorization"), Some("Bearer sk-test-123"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    let wire = body(sent);
    assert_eq!(wire["model"], "test-model", "the configured model fills in");
    assert_eq!(wire["temperature"], 0.5);
    assert_eq!(wire["max_tokens"], 100);
    assert_eq!(
        wire["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(
        wire["tools"][0],
        json!({"type": "function", "function": {
            "name": "count_vowels", "description": "Count vowels",
            "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}
        }})
    );

    messages.push(first.message.clone());
    messages.push(Message {
        tool_call_id: Some("call_abc".into()),
        ..message(Role::Tool, r#"{"vowels":2}"#)
    });
    let second = plugin
        .chat(&request(messages, vec![tool]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.finish_reason, FinishReason::Stop);
    assert_eq!(second.message.content, "hello has 2 vowels");
    assert_eq!(
        second.model, "test-model",
        "the asked model when the server names none"
    );
    let wire = body(&server.requests()[1]);
    assert_eq!(
        wire["messages"][2],
        json!({"role": "assistant", "content": null, "tool_calls": [{
            "id": "call_abc", "type": "function",
            "function": {"name": "count_vowels", "arguments": "{\"text\":\"hello\"}"}
        }]})
    );
    assert_eq!(
        wire["messages"][3],
        json!({"role": "tool", "tool_call_id": "call_abc", "content": "{\"vowels\":2}"})
    );
}

#[tokio::test]
async fn models_are_listed_from_the_server() {
    let host = TestHost::new().await;
    let server = FakeServer::start(|request| {
        assert_eq!(request.path, "/v1/models");
        Reply::json(&json!({"object": "list", "data": [{"id": "llama3"}, {"id": "qwen2"}]}))
    })
    .await;
    let plugin = provider(&host, &server, true).await;
    let models = plugin.list_models().await.unwrap().unwrap();
    let ids: Vec<&str> = models.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["llama3", "qwen2"]);
}

#[tokio::test]
async fn without_the_key_granted_the_server_refusal_says_what_to_grant() {
    let host = TestHost::new().await;
    let server = FakeServer::start(|request| {
        if request.header("authorization").is_some() {
            Reply::json(&json!({"data": []}))
        } else {
            Reply {
                status: 401,
                headers: vec![],
                body: br#"{"error":{"message":"missing key"}}"#.to_vec(),
            }
        }
    })
    .await;
    let plugin = provider(&host, &server, false).await;
    let error = plugin.list_models().await.unwrap().expect_err("refused");
    assert_eq!(error.kind, paracle_runtime::PluginErrorKind::Denied);
    assert!(
        error.message.contains(&format!("env:{KEY_VARIABLE}")),
        "{}",
        error.message
    );
    assert!(
        server.requests()[0].header("authorization").is_none(),
        "the key stayed out of reach"
    );
}

#[tokio::test]
async fn server_errors_and_unreachable_hosts_are_told_apart() {
    let host = TestHost::new().await;
    let server = FakeServer::start(|_| Reply {
        status: 500,
        headers: vec![],
        body: b"overloaded".to_vec(),
    })
    .await;
    let plugin = provider(&host, &server, true).await;
    let chat = request(vec![message(Role::User, "hi")], vec![]);
    let error = plugin
        .chat(&chat)
        .await
        .unwrap()
        .expect_err("a 500 is an error");
    assert_eq!(error.kind, paracle_runtime::PluginErrorKind::Unavailable);
    assert!(
        error.message.contains("500") && error.message.contains("overloaded"),
        "{}",
        error.message
    );

    // Pointed at a server it was not granted, the call is denied by the host.
    let elsewhere = FakeServer::start(|_| Reply::json(&json!({}))).await;
    let plugin = host
        .plugin(
            "openai_provider.wasm",
            PluginSettings {
                config: Some(
                    json!({"base_url": elsewhere.url("/v1"), "model": "m", "api_key_env": ""}),
                ),
                grants: Grants {
                    net: vec![NetGrant::parse(&server.addr.to_string()).unwrap()],
                    ..Grants::default()
                },
                ..PluginSettings::default()
            },
        )
        .await;
    match plugin.chat(&chat).await {
        Err(CallError::Denied {
            plugin, capability, ..
        }) => {
            assert_eq!(plugin, "openai-provider");
            assert!(
                capability.contains(&elsewhere.addr.to_string()),
                "{capability}"
            );
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    assert!(elsewhere.requests().is_empty());
    host.still_serves().await;
}
