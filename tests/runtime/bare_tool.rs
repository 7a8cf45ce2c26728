//! A plugin written with wit-bindgen alone, without paracle-sdk, and
//! components shaped beyond what the host's instance pool holds: the host
//! loads what mainstream toolchains emit, not only its own SDK's output.

use std::path::Path;
use std::sync::{Arc, Mutex};

use paracle_runtime::{
    with_person, Answer, Approval, ApprovalRequest, Approvals, Approve, Asking, LoadError,
    PermissionRequest, Person, PluginKind, PluginSettings, Runtime,
};
use serde_json::json;

use crate::test_host::{context, load};

#[tokio::test]
async fn a_plugin_without_the_sdk_loads_and_answers() {
    let cache = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(Some(cache.path().to_path_buf())).unwrap();
    let plugin = load(&runtime, "bare_tool.wasm", PluginSettings::default()).await;
    assert_eq!(plugin.kind(), PluginKind::Tool);
    assert_eq!(plugin.name(), "bare-tool");
    let answer = plugin
        .invoke_tool("length", &json!({"text": "héllo"}), &context())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer.to_value(), json!({"length": 5}));
}

/// A person who approves every tool call and keeps what they were shown.
#[derive(Default)]
struct Approver {
    shown: Mutex<Vec<String>>,
}

impl Person for Approver {
    fn permit(&self, _request: PermissionRequest) -> Asking<Answer> {
        Box::pin(async { Answer::Deny })
    }

    fn approve(&self, request: ApprovalRequest) -> Asking<Approval> {
        self.shown.lock().unwrap().push(request.arguments);
        Box::pin(async { Approval::Approved })
    }
}

/// Arguments that read one way to a JSON parser and another to a plain
/// scan: the caller's text goes to the guest as it is only when nobody
/// approves it. An approved call gets what the person was shown, written
/// by the host, so a repeated key, padding or an escape cannot show the
/// person one value and hand the plugin another. `bare-tool` takes the
/// first `"text":"` it finds, as a careless parser would.
#[tokio::test]
async fn an_approved_call_gets_the_arguments_the_person_was_shown() {
    let cache = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(Some(cache.path().to_path_buf())).unwrap();
    let ask = PluginSettings {
        approvals: Approvals::all(Approve::Ask),
        ..PluginSettings::default()
    };
    let gated = load(&runtime, "bare_tool.wasm", ask).await;
    let open = load(&runtime, "bare_tool.wasm", PluginSettings::default()).await;
    for (sent, shown, approved_length, raw_length) in [
        // A JSON parser keeps the last of a repeated key; the scan, the first.
        (
            r#"{"text":"seven!!","text":"ok"}"#,
            r#"{"text":"ok"}"#,
            2,
            Some(7),
        ),
        // An escape is one character to a parser, six to the scan.
        (r#"{"text":"\u006fk"}"#, r#"{"text":"ok"}"#, 2, Some(7)),
        // Padding the scan cannot read at all.
        (r#"{ "text" : "spaced" }"#, r#"{"text":"spaced"}"#, 6, None),
    ] {
        let approver = Arc::new(Approver::default());
        let answer = with_person(
            approver.clone(),
            gated.invoke_tool_json("length", sent, &context()),
        )
        .await;
        assert_eq!(
            *approver.shown.lock().unwrap(),
            vec![shown.to_string()],
            "{sent}"
        );
        let answer = answer.unwrap().unwrap().to_value();
        assert_eq!(answer["length"], approved_length, "{sent}");
        // Nobody approves this one: the client's text is passed on as sent.
        let answer = open.invoke_tool_json("length", sent, &context()).await;
        match raw_length {
            Some(raw) => assert_eq!(answer.unwrap().unwrap().to_value()["length"], raw),
            None => assert!(answer.unwrap().is_err(), "{sent}"),
        }
    }
}

/// A component with `count` core instances of an empty module, and no
/// Paracle exports.
fn many_instances(count: usize) -> Vec<u8> {
    let mut text = String::from("(component (core module $m)\n");
    for _ in 0..count {
        text.push_str("  (core instance (instantiate $m))\n");
    }
    text.push(')');
    wat::parse_str(&text).unwrap()
}

#[tokio::test]
async fn a_component_beyond_the_pools_slots_is_compiled_on_demand_not_refused() {
    let cache = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(Some(cache.path().to_path_buf())).unwrap();
    if !runtime.uses_pooling() {
        eprintln!("this machine refused the pool; nothing to fall back from");
        return;
    }
    // 38 is what componentize-py --stub-wasi emits; 200 is past any pool
    // setting. Both get as far as the check for Paracle's exports, which
    // they lack: compiled, not refused as malformed.
    for count in [38, 200] {
        let bytes = many_instances(count);
        for attempt in ["first load", "cached"] {
            let error = runtime
                .load(Path::new("many.wasm"), &bytes, PluginSettings::default())
                .await
                .err()
                .expect("it has no Paracle world");
            assert!(
                matches!(error, LoadError::NoWorld { .. }),
                "{count} instances, {attempt}: {error}"
            );
        }
    }
}
