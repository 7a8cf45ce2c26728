//! A plugin written with wit-bindgen alone, without paracle-sdk, and
//! components shaped beyond what the host's instance pool holds: the host
//! loads what mainstream toolchains emit, not only its own SDK's output.

use std::path::Path;

use paracle_runtime::{LoadError, PluginKind, PluginSettings, Runtime};
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
