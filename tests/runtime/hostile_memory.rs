//! The `hostile-memory` fixture, and memory: over 1,000 hostile calls (and
//! as many searches answered with too many hits), the host's resident memory
//! stays put. Measured in a process of its own, so that no other test
//! allocates while it measures.

use std::process::Command;

use crate::test_host::{context, limits, TestHost};
use paracle_policy::Grants;
use paracle_runtime::PluginSettings;
use serde_json::json;

/// Resident memory of this process, in bytes.
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("statm has a resident field");
    pages * 4096
}

/// The measuring test, run alone in a child process of this test binary.
#[test]
fn a_thousand_hostile_calls_do_not_grow_the_host() {
    const ALONE: &str = "hostile_memory::hostile_calls_measured_alone";
    let output = Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "--exact",
            ALONE,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{ALONE} in its own process:\n{stdout}\n{stderr}"
    );
}

#[ignore = "measures the whole process: a_thousand_hostile_calls_do_not_grow_the_host runs it alone"]
#[tokio::test(flavor = "current_thread")]
async fn hostile_calls_measured_alone() {
    let host = TestHost::new().await;
    let plugin = host
        .hostile(
            limits(|l| {
                // The limit also bounds `info` and `init` at load, on a cold
                // instance while the rest of this binary's tests run beside
                // it: 10 ms was once not enough there.
                l.timeout_ms = 30;
                l.memory_mib = 8;
                l.max_output_kib = 16;
                l.max_log_kib = 4;
            }),
            Grants::default(),
        )
        .await;
    let attacks = [
        ("panic", json!({})),
        ("grow", json!({"chunk_kib": 256})),
        ("huge_output", json!({"kib": 64})),
        ("log_flood", json!({})),
        ("spin", json!({})),
        ("recurse", json!({"depth": 1u64 << 40})),
        ("host_loop", json!({})),
        ("http_get", json!({"url": "http://127.0.0.1:9/"})),
        ("tcp_connect", json!({"addr": "127.0.0.1:9"})),
        ("deep_json", json!({"depth": 200})),
        ("udp_send", json!({"addr": "127.0.0.1:9"})),
    ];
    // A memory that answers ten thousand hits to every search for one.
    let memory = host
        .plugin(
            "hostile_memory.wasm",
            PluginSettings {
                config: Some(json!({"hits": 10_000})),
                ..PluginSettings::default()
            },
        )
        .await;
    let mut call = 0usize;
    let mut attack = |count: usize| {
        let plugin = &plugin;
        let memory = &memory;
        let batch: Vec<_> = (0..count)
            .map(|_| {
                call += 1;
                attacks[call % attacks.len()].clone()
            })
            .collect();
        async move {
            for (tool, arguments) in batch {
                let result = plugin.invoke_tool(tool, &arguments, &context()).await;
                assert!(result.is_err(), "{tool} was not stopped");
                let hits = memory.memory_search("notes", "q", 1).await;
                assert!(hits.is_err(), "the memory's extra hits were kept");
            }
        }
    };
    let calls_before = plugin.stats().calls;
    // Warm up: caches, pools and allocator arenas reach their steady size.
    attack(200).await;
    let before = resident_bytes();
    attack(1000).await;
    let after = resident_bytes();
    let growth = after.saturating_sub(before);
    eprintln!(
        "resident memory: {} KiB after 200 hostile calls, {} KiB after 1,200",
        before >> 10,
        after >> 10
    );
    // A leak of even 16 KiB per call would show as 16 MiB.
    assert!(
        growth < 16 << 20,
        "resident memory grew by {} KiB over 1,000 hostile calls ({} -> {} KiB)",
        growth >> 10,
        before >> 10,
        after >> 10
    );
    assert_eq!(
        plugin.stats().calls,
        calls_before + 1200,
        "every call is counted"
    );
    host.still_serves().await;
}
