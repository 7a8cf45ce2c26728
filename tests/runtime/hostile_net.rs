//! The hostile-plugin suite, network part: the `hostile` fixture tries to
//! reach hosts over `wasi:http` and `wasi:sockets`. Every request goes to a
//! server this test starts on loopback, so each test also checks, from the
//! server's side, that nothing it refused got through.

use crate::test_host::{answer, context, limits, TestHost};
use paracle_policy::Grants;
use paracle_policy::NetGrant;
use paracle_runtime::Plugin;
use paracle_runtime::{CallError, Limit};
use paracle_testing::http::{FakeServer, Reply};
use serde_json::{json, Value};

fn net(grants: &[&str]) -> Grants {
    Grants {
        net: grants.iter().map(|g| NetGrant::parse(g).unwrap()).collect(),
        ..Grants::default()
    }
}

/// Call `tool` and expect the host to deny `capability`. Returns the reason.
async fn expect_denied(plugin: &Plugin, tool: &str, arguments: Value, capability: &str) -> String {
    let error = plugin
        .invoke_tool(tool, &arguments, &context())
        .await
        .expect_err("the host denies the call");
    match &error {
        CallError::Denied {
            plugin: name,
            capability: denied,
            reason,
            ..
        } => {
            assert_eq!(name, "hostile", "{error}");
            assert!(denied.contains(capability), "{error}");
            let message = error.to_string();
            assert!(message.contains("hostile") && message.contains(capability));
            reason.clone()
        }
        other => panic!("expected a denial of {capability}, got: {other}"),
    }
}

async fn hello_server() -> FakeServer {
    FakeServer::start(|_| Reply::json(&json!({"hello": "world"}))).await
}

#[tokio::test]
async fn a_host_that_was_not_granted_is_denied() {
    let host = TestHost::new().await;
    let server = hello_server().await;
    let plugin = host.hostile(limits(|_| {}), Grants::default()).await;
    let reason = expect_denied(
        &plugin,
        "http_get",
        json!({"url": server.url("/")}),
        &format!("network access to {}", server.addr),
    )
    .await;
    assert!(
        reason.contains(&format!("paracle plugin grant hostile net:{}", server.addr)),
        "says how to grant it: {reason}"
    );
    // The plugin swallowing the refusal does not turn the call into success.
    expect_denied(
        &plugin,
        "http_get",
        json!({"url": server.url("/"), "swallow": true}),
        "network access",
    )
    .await;
    assert!(server.requests().is_empty(), "nothing reached the server");
    assert_eq!(plugin.stats().denied, 2);
    host.still_serves().await;
}

#[tokio::test]
async fn a_granted_address_is_reached() {
    let host = TestHost::new().await;
    let server = hello_server().await;
    let plugin = host
        .hostile(limits(|_| {}), net(&[&server.addr.to_string()]))
        .await;
    let got = answer(&plugin, "http_get", json!({"url": server.url("/hi?x=1")})).await;
    assert_eq!(got["status"], 200);
    assert_eq!(got["body"], r#"{"hello":"world"}"#);
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("GET", "/hi?x=1")
    );
    assert_eq!(
        requests[0].header("host"),
        Some(server.addr.to_string().as_str())
    );
}

#[tokio::test]
async fn a_redirect_to_a_host_not_granted_is_denied() {
    let host = TestHost::new().await;
    let elsewhere = hello_server().await;
    let target = elsewhere.url("/stolen");
    let granted = FakeServer::start(move |_| Reply::redirect(&target)).await;
    let plugin = host
        .hostile(limits(|_| {}), net(&[&granted.addr.to_string()]))
        .await;
    expect_denied(
        &plugin,
        "http_get",
        json!({"url": granted.url("/start")}),
        &format!("network access to {}", elsewhere.addr),
    )
    .await;
    assert_eq!(granted.requests().len(), 1, "the granted host was asked");
    assert!(
        elsewhere.requests().is_empty(),
        "the redirect was not followed"
    );
    host.still_serves().await;
}

#[tokio::test]
async fn loopback_and_metadata_addresses_are_refused() {
    let host = TestHost::new().await;
    let server = hello_server().await;
    let port = server.addr.port();
    // Granting the name is not enough when it resolves to loopback.
    let plugin = host
        .hostile(limits(|_| {}), net(&[&format!("localhost:{port}")]))
        .await;
    let reason = expect_denied(
        &plugin,
        "http_get",
        json!({"url": format!("http://localhost:{port}/")}),
        &format!("network access to localhost:{port}"),
    )
    .await;
    assert!(reason.contains("loopback"), "{reason}");
    assert!(
        reason.contains(&format!("net:127.0.0.1:{port}"))
            || reason.contains(&format!("net:[::1]:{port}")),
        "{reason}"
    );
    for url in [
        format!("http://127.0.0.1:{port}/"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://[::1]:9/".to_string(),
    ] {
        expect_denied(&plugin, "http_get", json!({"url": url}), "network access").await;
    }
    assert!(server.requests().is_empty(), "nothing reached the server");
    host.still_serves().await;
}

#[tokio::test]
async fn a_response_over_the_limit_is_cut_off() {
    let host = TestHost::new().await;
    let server = FakeServer::start(|_| Reply::bytes(1 << 20)).await;
    let plugin = host
        .hostile(
            limits(|l| l.max_response_kib = 64),
            net(&[&server.addr.to_string()]),
        )
        .await;
    let error = plugin
        .invoke_tool("http_get", &json!({"url": server.url("/big")}), &context())
        .await
        .expect_err("the host cuts the response off");
    match &error {
        CallError::Limit {
            plugin,
            limit,
            detail,
            ..
        } => {
            assert_eq!((plugin.as_str(), *limit), ("hostile", Limit::Response));
            assert!(detail.contains("64 KiB"), "{detail}");
        }
        other => panic!("expected the response limit, got: {other}"),
    }
    host.still_serves().await;
    // A response under the limit still goes through on the same plugin.
    let small = FakeServer::start(|_| Reply::bytes(1000)).await;
    let plugin = host
        .hostile(
            limits(|l| l.max_response_kib = 64),
            net(&[&small.addr.to_string()]),
        )
        .await;
    assert_eq!(
        answer(&plugin, "http_get", json!({"url": small.url("/")})).await["bytes"],
        1000
    );
}

#[tokio::test]
async fn sockets_reach_only_granted_addresses() {
    let host = TestHost::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let plugin = host.hostile(limits(|_| {}), Grants::default()).await;
    expect_denied(
        &plugin,
        "tcp_connect",
        json!({"addr": addr.to_string()}),
        &format!("a TCP connection to {addr}"),
    )
    .await;
    host.still_serves().await;

    let plugin = host
        .hostile(limits(|_| {}), net(&[&addr.to_string()]))
        .await;
    let (got, accepted) = tokio::join!(
        answer(&plugin, "tcp_connect", json!({"addr": addr.to_string()})),
        listener.accept()
    );
    assert_eq!(got["connected"], addr.to_string());
    assert!(accepted.is_ok());
}
