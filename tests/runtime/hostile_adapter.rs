//! The `hostile-adapter` fixture: an adapter that asks the host, on its
//! agent's behalf, for more than the agent was given. The host holds every
//! agent run to its own memory namespace and to at most `max_steps`
//! provider calls, whatever the adapter does.

use std::sync::Arc;

use crate::test_host::{configured, TestHost};
use paracle_contract::{AgentSpec, Task};
use paracle_runtime::{AgentRoutes, CallError, Limit, Plugin, PluginSettings};
use serde_json::json;

fn agent(max_steps: u32) -> AgentSpec {
    AgentSpec {
        name: "writer".into(),
        description: String::new(),
        system_prompt: String::new(),
        model: String::new(),
        temperature: None,
        max_tokens: None,
        max_steps,
        memory_namespace: "writer".into(),
        config: "{}".into(),
    }
}

fn task() -> Task {
    Task {
        id: "t1".into(),
        input: "hello".into(),
        context: "{}".into(),
    }
}

async fn adapter_routes(
    host: &TestHost,
    memory: Option<Arc<Plugin>>,
) -> (Arc<AgentRoutes>, Arc<Plugin>) {
    let provider = Arc::new(
        host.plugin("mock_provider.wasm", PluginSettings::default())
            .await,
    );
    let routes = AgentRoutes::new(
        "hostile-adapter",
        Some(provider.clone()),
        Vec::new(),
        memory,
        Some("run-1".into()),
        Some("writer".into()),
    )
    .unwrap();
    (Arc::new(routes), provider)
}

#[tokio::test]
async fn an_adapter_makes_no_more_provider_calls_than_max_steps() {
    let host = TestHost::new().await;
    let adapter = host
        .plugin(
            "hostile_adapter.wasm",
            configured(json!({"provider_calls": 100_000})),
        )
        .await;
    let (routes, provider) = adapter_routes(&host, None).await;
    let calls_before = provider.stats().calls;
    let error = adapter
        .run_agent(&agent(2), &task(), routes.clone())
        .await
        .expect_err("the host stops the third provider call");
    assert!(
        matches!(&error, CallError::Limit { plugin, limit: Limit::Steps, .. } if plugin == "hostile-adapter"),
        "{error}"
    );
    assert!(error.to_string().contains("max_steps (2)"), "{error}");
    // The provider itself was called twice, not a hundred thousand times.
    assert_eq!(provider.stats().calls - calls_before, 2);
    host.still_serves().await;

    // Within its steps, the same adapter runs.
    let within = host
        .plugin(
            "hostile_adapter.wasm",
            configured(json!({"provider_calls": 2})),
        )
        .await;
    let outcome = within
        .run_agent(&agent(2), &task(), routes)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outcome.steps, 2);
}

#[tokio::test]
async fn an_adapter_reaches_only_its_agents_memory_namespace() {
    let host = TestHost::new().await;
    let memory = Arc::new(
        host.plugin("hostile_memory.wasm", PluginSettings::default())
            .await,
    );
    let adapter = host
        .plugin(
            "hostile_adapter.wasm",
            configured(json!({"namespace": "mcp"})),
        )
        .await;
    let (routes, _) = adapter_routes(&host, Some(memory.clone())).await;
    let calls_before = memory.stats().calls;
    // The adapter swallows the refusal; the host reports it all the same.
    let error = adapter
        .run_agent(&agent(4), &task(), routes.clone())
        .await
        .expect_err("another namespace is denied");
    match &error {
        CallError::Denied {
            plugin, capability, ..
        } => {
            assert_eq!(plugin, "hostile-adapter");
            assert!(
                capability.contains("memory namespace `mcp`"),
                "{capability}"
            );
        }
        other => panic!("expected a denial, got {other}"),
    }
    assert_eq!(
        memory.stats().calls,
        calls_before,
        "the memory was never reached"
    );

    let own = host
        .plugin(
            "hostile_adapter.wasm",
            configured(json!({"namespace": "writer"})),
        )
        .await;
    let outcome = own
        .run_agent(&agent(4), &task(), routes)
        .await
        .unwrap()
        .unwrap();
    assert!(
        outcome.output.contains("\"written\":true"),
        "{}",
        outcome.output
    );
    host.still_serves().await;
}
