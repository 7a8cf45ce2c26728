//! The hostile-plugin suite, for what plugins return and what adapters ask
//! of the host on their agents' behalf: every returned value is capped
//! before the host keeps it, JSON nests no deeper than one limit, a memory
//! answers no more than it was asked, and an adapter reaches only its
//! agent's namespace and makes at most `max_steps` provider calls. Each test
//! checks the typed error, that it names the plugin, and that the host goes
//! on serving.

use crate::test_host::{answer, configured, context, TestHost};
use paracle_policy::Grants;
use paracle_runtime::{CallError, Limit, LoadError};
use serde_json::json;

/// The load of `file` with `config` is refused for a returned value over
/// its cap, in `function`; returns the message.
async fn refused_at_load(
    host: &TestHost,
    file: &str,
    config: serde_json::Value,
    function: &str,
) -> String {
    let refused = host
        .load_bytes(
            file,
            &std::fs::read(crate::test_host::guest(file)).unwrap(),
            configured(config),
        )
        .await
        .map(|p| p.name().to_string())
        .expect_err("the load is refused");
    let LoadError::Call {
        source:
            CallError::Limit {
                plugin,
                function: called,
                limit,
                ..
            },
        ..
    } = &refused
    else {
        panic!("expected the returned-value limit, got: {refused}");
    };
    assert_eq!(plugin, "hostile");
    assert_eq!(called, function);
    assert_eq!(*limit, Limit::Value);
    let message = refused.to_string();
    assert!(message.contains("returned value size"), "{message}");
    assert!(
        message.len() < 600,
        "one short line: {} bytes",
        message.len()
    );
    message
}

#[tokio::test]
async fn an_info_over_its_caps_is_refused_at_load() {
    let host = TestHost::new().await;
    let message = refused_at_load(
        &host,
        "hostile.wasm",
        json!({"version_bytes": 1 << 20}),
        "info",
    )
    .await;
    assert!(message.contains("version is 1048576 bytes"), "{message}");
    let message = refused_at_load(
        &host,
        "hostile.wasm",
        json!({"description": "d".repeat(70_000)}),
        "info",
    )
    .await;
    assert!(message.contains("description"), "{message}");
    let message = refused_at_load(&host, "hostile.wasm", json!({"tags": 1000}), "info").await;
    assert!(message.contains("1000 tags"), "{message}");
    host.still_serves().await;

    // Within the caps, the same plugin loads.
    let fine = host
        .plugin(
            "hostile.wasm",
            configured(json!({"version_bytes": 20, "tags": 3})),
        )
        .await;
    assert_eq!(fine.info().version.len(), 20);
}

#[tokio::test]
async fn a_tool_list_over_its_caps_is_refused_at_load() {
    let host = TestHost::new().await;
    let message = refused_at_load(
        &host,
        "hostile.wasm",
        json!({"tool_count": 100_000}),
        "list-tools",
    )
    .await;
    assert!(message.contains("100000 tools"), "{message}");
    host.still_serves().await;
}

#[tokio::test]
async fn json_nested_past_the_limit_is_the_depth_limit_not_a_panic() {
    let host = TestHost::new().await;
    let plugin = host.hostile(Default::default(), Grants::default()).await;
    // Deeper than serde_json reads (127): this used to pass the check and
    // then panic where the answer was parsed.
    let error = plugin
        .invoke_tool("deep_json", &json!({"depth": 200}), &context())
        .await
        .expect_err("the host refuses the answer");
    assert!(
        matches!(&error, CallError::Limit { plugin, limit: Limit::Depth, function, .. } if plugin == "hostile" && function == "invoke"),
        "{error}"
    );
    assert!(error.to_string().contains("JSON depth"), "{error}");
    host.still_serves().await;
    let shallow = answer(&plugin, "deep_json", json!({"depth": 30})).await;
    assert!(shallow.is_array());
}

#[tokio::test]
async fn a_memory_answers_no_more_hits_than_were_asked_for() {
    let host = TestHost::new().await;
    let memory = host
        .plugin("hostile_memory.wasm", configured(json!({"hits": 100_000})))
        .await;
    let error = memory
        .memory_search("notes", "anything", 1)
        .await
        .expect_err("a hundred thousand hits for a limit of one");
    match &error {
        CallError::Limit {
            plugin,
            limit: Limit::Value,
            detail,
            ..
        } => {
            assert_eq!(plugin, "hostile-memory");
            assert!(detail.contains("100000 hits where at most 1"), "{detail}");
        }
        other => panic!("expected the returned-value limit, got {other}"),
    }
    // A hundred thousand empty keys are not free: each counts against the
    // output limit.
    let error = memory
        .memory_keys("notes", "")
        .await
        .expect_err("too many keys");
    assert!(
        matches!(
            &error,
            CallError::Limit {
                limit: Limit::Output,
                ..
            }
        ),
        "{error}"
    );
    host.still_serves().await;

    let honest = host
        .plugin("hostile_memory.wasm", configured(json!({"hits": 1})))
        .await;
    let hits = honest
        .memory_search("notes", "q", 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hits.len(), 1);
}
#[tokio::test]
async fn a_udp_socket_is_denied_like_tcp() {
    let host = TestHost::new().await;
    let plugin = host.hostile(Default::default(), Grants::default()).await;
    let error = plugin
        .invoke_tool("udp_send", &json!({"addr": "127.0.0.1:9"}), &context())
        .await
        .expect_err("UDP is denied");
    match &error {
        CallError::Denied {
            plugin, capability, ..
        } => {
            assert_eq!(plugin, "hostile");
            assert!(capability.contains("UDP"), "{capability}");
        }
        other => panic!("expected a denial, got {other}"),
    }
    host.still_serves().await;
}
