//! The hostile-plugin suite: a plugin that attacks the host in one way per
//! tool (tests/fixtures/hostile). Each test checks that the call fails with a
//! typed error naming the plugin and what stopped it, that a different
//! plugin's call right after still succeeds, and that nothing outside the
//! grants was reached. The memory check over 1,000 calls is in
//! hostile_memory.rs, alone in its process so that no other test moves the
//! figure it reads.
//!
//! Time is never asserted against an upper bound here: the machines are
//! shared. A deadline is checked from below (it did not fire early) and by
//! its verdict; the stop latency is measured by the benchmark.

use std::path::PathBuf;
use std::time::Instant;

use crate::test_host::{answer, context, data_dir, limits, TestHost};
use paracle_policy::{Grants, Limits};
use paracle_runtime::{CallError, Limit};
use paracle_runtime::{Plugin, PluginSettings};
use serde_json::{json, Value};

/// Call `tool` and expect the host to stop it for `limit`.
async fn expect_limit(plugin: &Plugin, tool: &str, arguments: Value, limit: Limit) -> CallError {
    let error = plugin
        .invoke_tool(tool, &arguments, &context())
        .await
        .expect_err("the host stops the call");
    match &error {
        CallError::Limit {
            plugin: name,
            limit: hit,
            ..
        } => {
            assert_eq!(name, "hostile", "{error}");
            assert_eq!(*hit, limit, "{error}");
        }
        other => panic!("expected the {limit} limit, got: {other}"),
    }
    let message = error.to_string();
    assert!(message.contains("hostile"), "names the plugin: {message}");
    assert!(
        message.contains(&limit.to_string()),
        "names the limit: {message}"
    );
    error
}

/// Call `tool` and expect the plugin's own error, since the sandbox gave it
/// nothing to reach. Returns the plugin's message.
async fn expect_refused(plugin: &Plugin, tool: &str, arguments: Value) -> String {
    let answer = plugin
        .invoke_tool(tool, &arguments, &context())
        .await
        .expect("an unreachable resource is an error for the plugin, not a trap");
    let error = answer.expect_err("the resource is out of reach");
    assert_eq!(error.plugin, "hostile");
    error.message
}

#[tokio::test]
async fn an_endless_loop_is_stopped_at_its_deadline() {
    let host = TestHost::new().await;
    let plugin = host
        .hostile(limits(|l| l.timeout_ms = 300), Grants::default())
        .await;
    let started = Instant::now();
    let error = expect_limit(&plugin, "spin", json!({}), Limit::Time).await;
    assert!(
        started.elapsed().as_millis() >= 300,
        "the deadline fired early: {error}"
    );
    host.still_serves().await;
    // The plugin itself serves the next call on a new instance.
    expect_limit(&plugin, "spin", json!({}), Limit::Time).await;
    assert_eq!(plugin.stats().limits, 2);
}

#[tokio::test]
async fn a_call_blocked_in_the_host_is_stopped_at_its_deadline() {
    // `sleep` waits on a WASI pollable: no wasm runs, so the epoch deadline
    // cannot fire, and the host's own deadline has to.
    let host = TestHost::new().await;
    let plugin = host
        .hostile(limits(|l| l.timeout_ms = 200), Grants::default())
        .await;
    let started = Instant::now();
    expect_limit(&plugin, "sleep", json!({"ms": 3_600_000}), Limit::Time).await;
    assert!(started.elapsed().as_millis() >= 200);
    host.still_serves().await;
}

#[tokio::test]
async fn a_memory_bomb_hits_the_memory_limit() {
    let host = TestHost::new().await;
    let plugin = host
        .hostile(limits(|l| l.memory_mib = 16), Grants::default())
        .await;
    let error = expect_limit(&plugin, "grow", json!({"chunk_kib": 1024}), Limit::Memory).await;
    assert!(error.to_string().contains("16 MiB"), "{error}");
    host.still_serves().await;
}

#[tokio::test]
async fn deep_recursion_overflows_the_wasm_stack_only() {
    let host = TestHost::new().await;
    let plugin = host.hostile(Limits::default(), Grants::default()).await;
    expect_limit(
        &plugin,
        "recurse",
        json!({"depth": 1u64 << 40}),
        Limit::Stack,
    )
    .await;
    host.still_serves().await;
    // Shallow recursion still works on the next instance.
    let got = answer(&plugin, "recurse", json!({"depth": 10})).await;
    assert!(got["result"].is_u64());
}

/// Call `tool` and expect a trap in this plugin; returns its one-line reason.
async fn expect_trap(plugin: &Plugin, tool: &str, arguments: Value) -> String {
    let error = plugin
        .invoke_tool(tool, &arguments, &context())
        .await
        .expect_err("the call traps");
    let CallError::Trap {
        plugin: name,
        reason,
        ..
    } = error
    else {
        panic!("expected a trap, got: {error}");
    };
    assert_eq!(name, "hostile");
    assert!(!reason.contains('\n'), "one line: {reason}");
    reason
}

#[tokio::test]
async fn overflowing_the_guests_own_stack_is_a_trap_in_that_plugin_only() {
    // Rust keeps large frames on a stack in linear memory, below the data.
    // When it runs out, the guest writes out of bounds and traps.
    let host = TestHost::new().await;
    let plugin = host.hostile(Limits::default(), Grants::default()).await;
    let reason = expect_trap(&plugin, "recurse_big_frames", json!({"depth": 1u64 << 40})).await;
    assert!(reason.contains("out of bounds"), "{reason}");
    host.still_serves().await;
}

#[tokio::test]
async fn a_panic_is_a_trap_that_carries_the_message() {
    let host = TestHost::new().await;
    let plugin = host.hostile(Limits::default(), Grants::default()).await;
    let reason = expect_trap(&plugin, "panic", json!({})).await;
    assert!(reason.contains("panics on purpose"), "{reason}");
    assert!(
        reason.contains("panicked at hostile/src/lib.rs"),
        "{reason}"
    );
    host.still_serves().await;
}

#[tokio::test]
async fn a_huge_answer_hits_the_output_limit() {
    let host = TestHost::new().await;
    let plugin = host
        .hostile(limits(|l| l.max_output_kib = 64), Grants::default())
        .await;
    expect_limit(&plugin, "huge_output", json!({"kib": 1024}), Limit::Output).await;
    host.still_serves().await;
    // An answer within the limit passes.
    let got = answer(&plugin, "huge_output", json!({"kib": 16})).await;
    assert_eq!(got["data"].as_str().unwrap().len(), 16 * 1024);
}

#[tokio::test]
async fn a_flood_of_logs_hits_the_log_limit() {
    let host = TestHost::new().await;
    let plugin = host
        .hostile(limits(|l| l.max_log_kib = 8), Grants::default())
        .await;
    expect_limit(&plugin, "log_flood", json!({}), Limit::Logs).await;
    host.still_serves().await;
    // The budget is per call: a few lines pass on the next call.
    answer(&plugin, "log_flood", json!({"lines": 4})).await;
}

#[tokio::test]
async fn environment_variables_are_seen_only_when_granted() {
    let host = TestHost::new().await;
    let host_path = std::env::var("PATH").expect("the test runs with a PATH");
    let bare = host.hostile(Limits::default(), Grants::default()).await;
    let got = answer(&bare, "read_env", json!({"name": "PATH"})).await;
    assert_eq!(got["value"], Value::Null);

    let granted = host
        .hostile(
            Limits::default(),
            Grants {
                env: vec!["PATH".into()],
                ..Grants::default()
            },
        )
        .await;
    let got = answer(&granted, "read_env", json!({"name": "PATH"})).await;
    assert_eq!(got["value"], host_path);
    // A granted name does not open the rest of the environment.
    let got = answer(&granted, "read_env", json!({"name": "HOME"})).await;
    assert_eq!(got["value"], Value::Null);
    host.still_serves().await;
}

const SECRET: &str = "the-secret-content";

struct Escape {
    _root: tempfile::TempDir,
    granted: PathBuf,
    outside: PathBuf,
}

/// A granted directory with a symlink inside that points at a secret file
/// outside it.
fn escape_setup() -> Escape {
    let root = tempfile::tempdir().unwrap();
    let granted = root.path().join("granted");
    std::fs::create_dir(&granted).unwrap();
    std::fs::write(granted.join("inside.txt"), "inside").unwrap();
    let outside = root.path().join("secret.txt");
    std::fs::write(&outside, SECRET).unwrap();
    std::os::unix::fs::symlink(&outside, granted.join("link.txt")).unwrap();
    Escape {
        _root: root,
        granted,
        outside,
    }
}

#[tokio::test]
async fn the_file_system_ends_at_the_granted_directory() {
    let host = TestHost::new().await;
    let escape = escape_setup();
    let plugin = host
        .hostile(Limits::default(), data_dir(&escape.granted, false))
        .await;
    // The grant itself works.
    let got = answer(&plugin, "read_file", json!({"path": "/data/inside.txt"})).await;
    assert_eq!(got["content"], "inside");

    let outside = escape.outside.to_string_lossy().into_owned();
    for path in [
        "/data/../secret.txt",
        "../secret.txt",
        outside.as_str(),
        "/data/link.txt",
        "/etc/passwd",
    ] {
        let message = expect_refused(&plugin, "read_file", json!({"path": path})).await;
        assert!(!message.contains(SECRET), "{path} leaked: {message}");
    }
    // The grant is read-only.
    expect_refused(
        &plugin,
        "write_file",
        json!({"path": "/data/inside.txt", "content": "overwritten"}),
    )
    .await;
    expect_refused(
        &plugin,
        "write_file",
        json!({"path": "/data/new.txt", "content": "new"}),
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(escape.granted.join("inside.txt")).unwrap(),
        "inside"
    );
    assert!(!escape.granted.join("new.txt").exists());
    assert_eq!(std::fs::read_to_string(&escape.outside).unwrap(), SECRET);
    host.still_serves().await;
}

#[tokio::test]
async fn a_writable_grant_still_ends_at_the_granted_directory() {
    let host = TestHost::new().await;
    let escape = escape_setup();
    let plugin = host
        .hostile(Limits::default(), data_dir(&escape.granted, true))
        .await;
    answer(
        &plugin,
        "write_file",
        json!({"path": "/data/new.txt", "content": "new"}),
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(escape.granted.join("new.txt")).unwrap(),
        "new"
    );
    // A plugin may make links of its own in a writable grant, pointing
    // anywhere; the sandbox never follows them out. What the host itself
    // does with such links (artifacts, bundles, commits) is tested in
    // workflows.rs and git.rs.
    answer(
        &plugin,
        "symlink",
        json!({"target": "../..", "link": "/data/src"}),
    )
    .await;
    assert!(std::fs::symlink_metadata(escape.granted.join("src"))
        .unwrap()
        .file_type()
        .is_symlink());
    for path in [
        "/data/../secret.txt",
        "/data/link.txt",
        "/data/src/planted.txt",
    ] {
        expect_refused(
            &plugin,
            "write_file",
            json!({"path": path, "content": "overwritten"}),
        )
        .await;
    }
    assert_eq!(std::fs::read_to_string(&escape.outside).unwrap(), SECRET);
    host.still_serves().await;
}

#[tokio::test]
async fn leaking_handles_in_a_loop_hits_the_handle_limit() {
    let host = TestHost::new().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.txt"), "x").unwrap();
    let plugin = host
        .hostile(Limits::default(), data_dir(dir.path(), false))
        .await;
    // Each open file is a descriptor of the host's own, so files have a cap
    // of their own, well below the handle cap.
    let error = expect_limit(
        &plugin,
        "leak_files",
        json!({"path": "/data/f.txt"}),
        Limit::Handles,
    )
    .await;
    assert!(
        error
            .to_string()
            .contains(&format!("{} open files", paracle_runtime::MAX_OPEN_FILES)),
        "{error}"
    );
    host.still_serves().await;
    // Below the cap, files open, and closed ones do not count: 250 kept
    // and 10 opened and closed would be 260 otherwise.
    answer(
        &plugin,
        "leak_files",
        json!({"path": "/data/f.txt", "count": 250}),
    )
    .await;
    for _ in 0..10 {
        answer(&plugin, "read_file", json!({"path": "/data/f.txt"})).await;
    }
    // A stream keeps its file open after the file's descriptor is dropped:
    // streams count too.
    let fresh = host
        .hostile(Limits::default(), data_dir(dir.path(), false))
        .await;
    let error = expect_limit(
        &fresh,
        "leak_streams",
        json!({"name": "f.txt", "count": 1000}),
        Limit::Handles,
    )
    .await;
    assert!(error.to_string().contains("open files"), "{error}");
    host.still_serves().await;
}

#[tokio::test]
async fn hoarding_sockets_hits_the_socket_cap_without_any_grant() {
    // Sockets can be made with no grant (only their use is checked), and
    // each is a descriptor of the host's own: an instance may hold a few.
    let host = TestHost::new().await;
    let plugin = host.hostile(Limits::default(), Grants::default()).await;
    let got = answer(&plugin, "hold_sockets", json!({"count": 10})).await;
    assert_eq!(got["held"], 10);
    let error = expect_limit(
        &plugin,
        "hold_sockets",
        json!({"count": 1000}),
        Limit::Handles,
    )
    .await;
    assert!(
        error
            .to_string()
            .contains(&format!("{} sockets", paracle_runtime::MAX_SOCKETS)),
        "{error}"
    );
    host.still_serves().await;
    // The instance that hoarded them was dropped with its sockets; a new
    // one may make its own.
    let got = answer(&plugin, "hold_sockets", json!({"count": 10})).await;
    assert_eq!(got["held"], 10);
}

#[tokio::test]
async fn a_loop_of_host_calls_is_stopped_at_its_deadline() {
    // Each round trip allocates on both sides of the boundary; the loop must
    // still end at the deadline and leave the host as it was.
    let host = TestHost::new().await;
    let plugin = host
        .hostile(limits(|l| l.timeout_ms = 300), Grants::default())
        .await;
    let started = Instant::now();
    expect_limit(&plugin, "host_loop", json!({}), Limit::Time).await;
    assert!(started.elapsed().as_millis() >= 300);
    host.still_serves().await;
    let got = answer(&plugin, "host_loop", json!({"count": 1000})).await;
    assert_eq!(got["bytes"], 2000, "1,000 configs of `{{}}`");
}

#[tokio::test]
async fn a_fuel_budget_stops_a_loop_whatever_the_clock() {
    let host = TestHost::new().await;
    let plugin = host
        .hostile(limits(|l| l.fuel = Some(5_000_000)), Grants::default())
        .await;
    let error = expect_limit(&plugin, "spin", json!({}), Limit::Fuel).await;
    assert!(error.to_string().contains("5000000"), "{error}");
    host.still_serves().await;
    // Each call gets the whole budget again: small work fits, call after call.
    for _ in 0..3 {
        let got = answer(&plugin, "recurse", json!({"depth": 1000})).await;
        assert_eq!(got["result"], 1000);
    }
}

/// A component that exports the tool world's names, with functions of the
/// wrong types, and imports `import` if given.
fn component_importing(import: Option<&str>) -> Vec<u8> {
    let import = import.map_or(String::new(), |name| {
        format!("(import \"{name}\" (instance (export \"send\" (func (param \"data\" string)))))")
    });
    wat::parse_str(format!(
        "(component {import} \
         (core module $m (func (export \"f\"))) (core instance $c (instantiate $m)) \
         (func $f (canon lift (core func $c \"f\"))) \
         (instance $p (export \"f\" (func $f))) (export \"paracle:plugin/plugin@0.1.0\" (instance $p)) \
         (instance $t (export \"f\" (func $f))) (export \"paracle:plugin/tool@0.1.0\" (instance $t)))"
    ))
    .unwrap()
}

#[tokio::test]
async fn imports_that_are_not_offered_tampered_files_and_wrong_worlds_are_refused_at_load() {
    use paracle_runtime::LoadError;
    let host = TestHost::new().await;
    // An interface the host does not offer, and one it offers only to adapters.
    for import in [
        "evil:host/exfiltrate@1.0.0",
        "paracle:plugin/provider@0.1.0",
    ] {
        let error = host
            .load_bytes(
                "evil.wasm",
                &component_importing(Some(import)),
                PluginSettings::default(),
            )
            .await
            .err()
            .expect("refused");
        match &error {
            LoadError::ForbiddenImport {
                import: named,
                kind,
                ..
            } => {
                assert_eq!((named.as_str(), kind.as_str()), (import, "tool"));
                assert!(error.to_string().contains("evil.wasm"), "{error}");
            }
            other => panic!("expected a forbidden import, got: {other}"),
        }
        host.still_serves().await;
    }

    // The hostile plugin with bytes changed in its code section.
    let path = PathBuf::from(paracle_guests::GUEST_DIR).join("hostile.wasm");
    let mut tampered = std::fs::read(&path).unwrap();
    let middle = tampered.len() / 2;
    for byte in &mut tampered[middle..middle + 64] {
        *byte ^= 0x5a;
    }
    let error = host
        .load_bytes("tampered.wasm", &tampered, PluginSettings::default())
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(error, LoadError::Malformed { .. } | LoadError::Link { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("tampered.wasm"), "{error}");
    host.still_serves().await;

    // The right names with the wrong types: not the world it claims.
    let error = host
        .load_bytes(
            "wrong-world.wasm",
            &component_importing(None),
            PluginSettings::default(),
        )
        .await
        .err()
        .expect("refused");
    assert!(matches!(error, LoadError::Link { .. }), "{error}");
    assert!(error.to_string().contains("wrong-world.wasm"), "{error}");
    host.still_serves().await;
}

#[tokio::test]
async fn a_rejected_config_and_limits_that_cannot_hold_are_refused_at_load() {
    use paracle_runtime::LoadError;
    let host = TestHost::new().await;
    let path = PathBuf::from(paracle_guests::GUEST_DIR).join("hostile.wasm");
    let bytes = std::fs::read(&path).unwrap();
    let label = path.display().to_string();

    let rejecting = PluginSettings {
        config: Some(json!({"reject": "not today"})),
        ..PluginSettings::default()
    };
    let error = host
        .load_bytes(&label, &bytes, rejecting)
        .await
        .err()
        .expect("refused");
    assert!(matches!(error, LoadError::Init { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("invalid input: not today") && message.contains("hostile.wasm"),
        "{message}"
    );

    let no_memory = PluginSettings {
        limits: limits(|l| l.memory_mib = 0),
        ..PluginSettings::default()
    };
    let error = host
        .load_bytes(&label, &bytes, no_memory)
        .await
        .err()
        .expect("refused");
    assert!(matches!(error, LoadError::Limits { .. }), "{error}");
    assert!(error.to_string().contains("memory_mib"), "{error}");
    host.still_serves().await;
}
