//! What a plugin costs by the language it was written in, in one run: the
//! same `greet` tool, scaffolded by `paracle plugin new` in Rust (on
//! paracle-sdk), Python (componentize-py) and JavaScript (componentize-js
//! on StarlingMonkey, and jco's QuickJS backend), each built with its
//! toolchain.
//!
//! For each: the component's size; its first load, which compiles it (an
//! empty code cache); a later load, which takes the compiled code from the
//! cache (median of several); and a warm call through the library, as
//! every CLI, MCP and agent call makes it (median over many, after a warm
//! up). Ratios are to the Rust plugin of the same run.
//!
//! Needs the toolchains the authoring tests use: componentize-py beside
//! `PARACLE_TEST_PYTHON` (or on PATH), componentize-js and jco in
//! `PARACLE_TEST_JS_TOOLS/node_modules/.bin` (or on PATH), and Rust's
//! wasm32-wasip2 target. Run with `cargo bench -p paracle --bench authored`;
//! `-- --quick` for fewer rounds.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use paracle_authoring::{Language, PluginManifest, ScaffoldKind, ScaffoldRequest};
use paracle_contract::InvocationContext;
use paracle_runtime::{PluginSettings, Runtime};
use serde_json::json;

fn toolchain_path() -> std::ffi::OsString {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(python) = std::env::var_os("PARACLE_TEST_PYTHON") {
        dirs.extend(Path::new(&python).parent().map(Path::to_path_buf));
    }
    if let Some(js) = std::env::var_os("PARACLE_TEST_JS_TOOLS") {
        dirs.push(Path::new(&js).join("node_modules/.bin"));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(dirs.into_iter().chain(std::env::split_paths(&path))).unwrap()
}

/// Scaffold a `greet` tool in `language` under `root` and build it; with
/// `build`, replace the manifest's build command (and output) first.
fn build(root: &Path, name: &str, language: Language, build: Option<(&[&str], &str)>) -> PathBuf {
    let dir = root.join(name);
    paracle_authoring::scaffold(&ScaffoldRequest {
        name: name.into(),
        kind: ScaffoldKind::Tool,
        language,
        dir: dir.clone(),
        sdk: None,
    })
    .expect("scaffold");
    let mut manifest = PluginManifest::read(&dir).unwrap();
    if let Some((command, output)) = build {
        manifest.build = command.iter().map(|s| s.to_string()).collect();
        manifest.output = output.into();
    }
    let started = Instant::now();
    let built = paracle_authoring::build(&dir, &manifest, |_| {})
        .unwrap_or_else(|e| panic!("building {name}: {e}"));
    eprintln!("built {name} in {:.1} s", started.elapsed().as_secs_f64());
    built.output
}

struct Figures {
    name: &'static str,
    megabytes: f64,
    first_load: Duration,
    cached_load: Duration,
    warm_call: Duration,
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

async fn measure(
    name: &'static str,
    file: &Path,
    scratch: &Path,
    loads: usize,
    calls: usize,
) -> Figures {
    let bytes = std::fs::read(file).unwrap();
    let cache = scratch.join(format!("cache-{name}"));
    async fn load(
        runtime: &Runtime,
        file: &Path,
        bytes: &[u8],
        name: &str,
    ) -> (paracle_runtime::Plugin, Duration) {
        let started = Instant::now();
        let plugin = runtime
            .load(file, bytes, PluginSettings::default())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        (plugin, started.elapsed())
    }
    let cold = Runtime::new(Some(cache.clone())).unwrap();
    let (_, first_load) = load(&cold, file, &bytes, name).await;
    let mut cached = Vec::new();
    for _ in 0..loads {
        let warm = Runtime::new(Some(cache.clone())).unwrap();
        cached.push(load(&warm, file, &bytes, name).await.1);
    }
    let runtime = Runtime::new(Some(cache.clone())).unwrap();
    let (plugin, _) = load(&runtime, file, &bytes, name).await;
    let context = InvocationContext {
        caller: "bench".into(),
        run_id: None,
        agent: None,
    };
    let arguments = json!({"name": "Ada"});
    let call = || async {
        let answer = plugin
            .invoke_tool("greet", &arguments, &context)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(answer.to_value(), json!({"greeting": "Hello, Ada!"}));
    };
    for _ in 0..calls / 10 {
        call().await;
    }
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        call().await;
        samples.push(started.elapsed());
    }
    Figures {
        name,
        megabytes: bytes.len() as f64 / 1e6,
        first_load,
        cached_load: median(cached),
        warm_call: median(samples),
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (loads, calls) = if quick { (3, 300) } else { (9, 3000) };
    // SAFETY: set before any thread is started.
    unsafe { std::env::set_var("PATH", toolchain_path()) };
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path();

    let rust = build(root, "bench-rust", Language::Rust, None);
    let python = build(root, "bench-python", Language::Python, None);
    let starlingmonkey = build(root, "bench-js", Language::Js, None);
    let quickjs = build(
        root,
        "bench-quickjs",
        Language::Js,
        Some((
            &[
                "jco",
                "componentize",
                "app.js",
                "--wit",
                "wit",
                "-n",
                "tool-plugin",
                "--backend",
                "quickjs",
                "-o",
                "qjs.wasm",
            ],
            "qjs.wasm",
        )),
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let figures: Vec<Figures> = runtime.block_on(async {
        let mut figures = Vec::new();
        for (name, file) in [
            ("rust (sdk)", &rust),
            ("python (componentize-py)", &python),
            ("js (componentize-js)", &starlingmonkey),
            ("js (jco quickjs)", &quickjs),
        ] {
            figures.push(measure(name, file, root, loads, calls).await);
        }
        figures
    });

    let base = &figures[0];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{:<26} {:>8} {:>14} {:>14} {:>12} {:>10} {:>10}",
        "plugin",
        "MB",
        "first load ms",
        "cached load ms",
        "warm call µs",
        "load ×rust",
        "call ×rust"
    );
    for f in &figures {
        println!(
            "{:<26} {:>8.2} {:>14.0} {:>14.2} {:>12.2} {:>10.1} {:>10.1}",
            f.name,
            f.megabytes,
            ms(f.first_load),
            ms(f.cached_load),
            us(f.warm_call),
            ms(f.cached_load) / ms(base.cached_load),
            us(f.warm_call) / us(base.warm_call),
        );
    }
}
