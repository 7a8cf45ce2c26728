//! What a tool call costs, side by side, in one run:
//!
//! - `native`: the `count_vowels` function of `text-tools`, compiled for the
//!   host (the very source file the plugin is built from);
//! - `raw wasmtime`: a typed call of the plugin's `invoke` export on one
//!   instance, with no Paracle code in between, on a default engine;
//! - `raw + epoch`: the same on an engine with epoch interruption, the one
//!   engine setting Paracle's deadlines need that changes the guest's code;
//! - `raw + guards`: the same with everything Paracle does per call to
//!   enforce deadlines and limits: epoch interruption with a ticking epoch, a
//!   fresh epoch deadline per call, a memory limiter on the store, and the
//!   output size check. `guards cost` is what that adds over `raw wasmtime`,
//!   as a share of `paracle warm`;
//! - `paracle warm`: `Plugin::invoke_tool` on a pooled instance (schema check,
//!   deadline, statistics included);
//! - `paracle fresh`: the same with `Isolation::Fresh`, a new instance per call;
//! - `telemetry off` / `on`: `paracle warm` again, without and then with
//!   OpenTelemetry's per-plugin metrics recording every call;
//! - `cold load`: a new `Runtime` and `Runtime::load` with the compiled code
//!   already in the on-disk cache;
//! - `cli load`: a second `paracle plugin load` of the same file, end to end,
//!   as a new process;
//! - `runaway`: how long after its deadline a plugin stuck in a loop
//!   (`hostile`'s `spin`), or blocked in the host (`sleep`), is stopped.
//!
//! Run with `cargo bench -p paracle --bench plugin_call`. Add `-- --quick` for
//! a shorter run. Figures go to stdout; docs/performance.md records them.

#[path = "shared/inputs.rs"]
mod inputs;
#[path = "../../../sample-plugins/text-tools/src/vowels.rs"]
pub mod vowels;

use inputs::{text_of, INPUT_SIZES};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use paracle_contract::InvocationContext;
use paracle_runtime::{Isolation, Plugin, PluginSettings, Runtime};
use serde_json::{json, Value};

const GUESTS: &str = paracle_guests::GUEST_DIR;
const PLUGIN_FILE: &str = "text_tools.wasm";

/// The typed baseline: bindings of the tool world made here, against the same
/// WIT, so that nothing of Paracle's host sits between the caller and wasm.
mod raw {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "tool-plugin",
        exports: { default: async },
    });

    pub(crate) struct State {
        pub wasi: wasmtime_wasi::WasiCtx,
        pub table: wasmtime::component::ResourceTable,
        pub memory_limit: usize,
    }

    impl wasmtime::ResourceLimiter for State {
        fn memory_growing(
            &mut self,
            _current: usize,
            desired: usize,
            _maximum: Option<usize>,
        ) -> wasmtime::Result<bool> {
            Ok(desired <= self.memory_limit)
        }

        fn table_growing(
            &mut self,
            _current: usize,
            desired: usize,
            _maximum: Option<usize>,
        ) -> wasmtime::Result<bool> {
            Ok(desired <= 1_000_000)
        }
    }

    impl wasmtime_wasi::WasiView for State {
        fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
            wasmtime_wasi::WasiCtxView {
                ctx: &mut self.wasi,
                table: &mut self.table,
            }
        }
    }

    impl paracle::plugin::types::Host for State {}

    impl paracle::plugin::host::Host for State {
        fn log(&mut self, _level: paracle::plugin::host::LogLevel, _message: String) {}

        fn config(&mut self) -> String {
            "{}".into()
        }
    }
}

struct Settings {
    /// Timed samples per case; the report gives their median and minimum.
    samples: usize,
    /// Rough wall time of one sample.
    sample_time: Duration,
    cli_runs: usize,
    /// Run only the cases whose "case input" text contains this.
    filter: Option<String>,
}

impl Settings {
    fn wants(&self, case: &str, input: &str) -> bool {
        self.filter
            .as_deref()
            .is_none_or(|filter| format!("{case} {input}").contains(filter))
    }
}

/// Per-call times of one case, in nanoseconds, one entry per sample.
struct Figures {
    per_call_ns: Vec<f64>,
}

impl Figures {
    fn median(&self) -> f64 {
        let mut sorted = self.per_call_ns.clone();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    }

    fn min(&self) -> f64 {
        self.per_call_ns
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min)
    }

    fn max(&self) -> f64 {
        self.per_call_ns.iter().copied().fold(0.0, f64::max)
    }
}

/// Time `$call` (an expression that may `.await`) in samples, with a batch
/// size chosen so that one sample takes about `settings.sample_time`. A macro
/// rather than a function taking a closure, because some calls hold `&mut`
/// borrows across their awaits.
macro_rules! measure {
    ($settings:expr, $call:expr) => {{
        let settings: &Settings = $settings;
        // Warm up, and find how many calls fill one sample.
        let mut batch = 1usize;
        loop {
            let started = Instant::now();
            for _ in 0..batch {
                $call;
            }
            let took = started.elapsed();
            if took >= settings.sample_time / 4 || batch >= 1 << 24 {
                let per_call = took.as_secs_f64() / batch as f64;
                batch = ((settings.sample_time.as_secs_f64() / per_call) as usize).max(1);
                break;
            }
            batch *= 2;
        }
        let mut per_call_ns = Vec::with_capacity(settings.samples);
        for _ in 0..settings.samples {
            let started = Instant::now();
            for _ in 0..batch {
                $call;
            }
            per_call_ns.push(started.elapsed().as_nanos() as f64 / batch as f64);
        }
        Figures { per_call_ns }
    }};
}

/// Measure and print one case if the filter wants it.
macro_rules! case {
    ($settings:expr, $case:expr, $input:expr, $call:expr) => {{
        let settings: &Settings = $settings;
        if settings.wants($case, $input) {
            let figures = measure!(settings, $call);
            row($case, $input, &figures);
            Some(figures)
        } else {
            None
        }
    }};
}

fn context() -> InvocationContext {
    InvocationContext {
        caller: "bench".into(),
        run_id: None,
        agent: None,
    }
}

fn show(duration_ns: f64) -> String {
    if duration_ns < 1e3 {
        format!("{duration_ns:.0} ns")
    } else if duration_ns < 1e6 {
        format!("{:.2} µs", duration_ns / 1e3)
    } else {
        format!("{:.2} ms", duration_ns / 1e6)
    }
}

fn row(case: &str, input: &str, figures: &Figures) {
    println!(
        "| {case:<14} | {input:>6} | {:>10} | {:>10} | {:>10} |",
        show(figures.median()),
        show(figures.min()),
        show(figures.max())
    );
}

/// One instance of the plugin on a plain engine. `epoch` turns on epoch
/// interruption, which Paracle needs to stop runaway guests, and which makes
/// the compiled guest check the epoch at every function entry and loop.
async fn raw_instance(name: &'static str, path: &Path, guard: Guard) -> RawCase {
    use wasmtime::component::{Component, HasSelf, Linker};
    let mut config = wasmtime::Config::new();
    // The floor is wasmtime as Paracle's plain engine runs it: without the
    // concurrency support that the component model's async ABI needs, which
    // wasmtime turns on by default when built with it.
    config.concurrency_support(false);
    config.epoch_interruption(guard != Guard::None);
    let engine = wasmtime::Engine::new(&config).expect("engine starts");
    let component = Component::from_file(&engine, path).expect("text-tools compiles");
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("wasi links");
    raw::ToolPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
        .expect("host links");
    let state = raw::State {
        wasi: wasmtime_wasi::WasiCtx::builder().build(),
        table: wasmtime::component::ResourceTable::new(),
        memory_limit: 64 << 20,
    };
    let mut store = wasmtime::Store::new(&engine, state);
    if guard == Guard::All {
        store.limiter(|state| state as &mut dyn wasmtime::ResourceLimiter);
        store.epoch_deadline_trap();
        // As Paracle's ticker does; the deadline set per call stays ahead.
        let ticking = engine.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(paracle_runtime::EPOCH_TICK);
            ticking.increment_epoch();
        });
    }
    // Far ahead: `Guard::All` sets it again before every call.
    store.set_epoch_deadline(u64::MAX / 2);
    let bindings = raw::ToolPlugin::instantiate_async(&mut store, &component, &linker)
        .await
        .expect("text-tools instantiates");
    bindings
        .paracle_plugin_plugin()
        .call_init(&mut store, &"{}".to_string())
        .await
        .expect("init runs")
        .expect("init accepts {}");
    RawCase {
        name,
        guard,
        store,
        bindings,
    }
}

/// What a raw case enforces.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Guard {
    None,
    /// Epoch interruption compiled in, never armed.
    Epoch,
    /// Everything Paracle does per call for deadlines and limits.
    All,
}

/// A plugin instance called through wasmtime alone.
struct RawCase {
    name: &'static str,
    guard: Guard,
    store: wasmtime::Store<raw::State>,
    bindings: raw::ToolPlugin,
}

impl RawCase {
    async fn count_vowels(
        &mut self,
        arguments: &String,
        context: &raw::paracle::plugin::types::InvocationContext,
    ) -> String {
        if self.guard == Guard::All {
            let ticks = paracle_runtime::PluginEngine::deadline_ticks(Duration::from_secs(10));
            self.store.set_epoch_deadline(ticks);
        }
        let answer = self
            .bindings
            .paracle_plugin_tool()
            .call_invoke(&mut self.store, "count_vowels", arguments, context)
            .await
            .expect("no trap")
            .expect("no plugin error");
        if self.guard == Guard::All {
            assert!(
                black_box(answer.len()) <= 1 << 20,
                "within the output limit"
            );
        }
        answer
    }
}

fn vowels_in(answer: &str) -> u64 {
    let value: Value = serde_json::from_str(answer).expect("the answer is JSON");
    value["vowels"].as_u64().expect("the answer counts vowels")
}

async fn call_cases(settings: &Settings, path: &Path, bytes: &[u8], cache: &Path) {
    let mut raw_cases = [
        raw_instance("raw wasmtime", path, Guard::None).await,
        raw_instance("raw + epoch", path, Guard::Epoch).await,
        raw_instance("raw + guards", path, Guard::All).await,
    ];
    let runtime = Runtime::new(Some(cache.to_path_buf())).expect("engine starts");
    let warm = runtime
        .load(path, bytes, PluginSettings::default())
        .await
        .expect("text-tools loads");
    let fresh = runtime
        .load(
            path,
            bytes,
            PluginSettings {
                isolation: Isolation::Fresh,
                ..PluginSettings::default()
            },
        )
        .await
        .expect("text-tools loads fresh");
    let ctx = context();
    let raw_ctx = raw::paracle::plugin::types::InvocationContext {
        caller: ctx.caller.clone(),
        run_id: None,
        agent: None,
    };

    println!("| case           |  input |     median |        min |        max |");
    println!("|----------------|-------:|-----------:|-----------:|-----------:|");
    for (label, size) in INPUT_SIZES {
        let text = text_of(size);
        let expected = vowels::count_vowels(&text) as u64;
        let arguments = json!({ "text": text });
        let arguments_json = arguments.to_string();

        // Every path must give the same answer before its time means anything.
        for raw_case in &mut raw_cases {
            let answer = raw_case.count_vowels(&arguments_json, &raw_ctx).await;
            assert_eq!(vowels_in(&answer), expected, "{} answer", raw_case.name);
        }
        for plugin in [&warm, &fresh] {
            let answer = plugin
                .invoke_tool("count_vowels", &arguments, &ctx)
                .await
                .expect("no trap")
                .expect("no plugin error");
            assert_eq!(vowels_in(answer.as_str()), expected, "paracle answer");
        }

        let native = case!(settings, "native", label, {
            black_box(vowels::count_vowels(black_box(&text)));
        });

        let mut raw_figures = Vec::new();
        for raw_case in &mut raw_cases {
            raw_figures.push(case!(settings, raw_case.name, label, {
                let answer = raw_case
                    .count_vowels(black_box(&arguments_json), &raw_ctx)
                    .await;
                black_box(answer);
            }));
        }
        let [raw_call, raw_epoch, raw_guards] = <[Option<Figures>; 3]>::try_from(raw_figures)
            .unwrap_or_else(|_| unreachable!("one figure per raw case"));

        let paracle_warm = case!(settings, "paracle warm", label, {
            let answer = warm
                .invoke_tool("count_vowels", black_box(&arguments), &ctx)
                .await;
            black_box(answer.expect("no trap").expect("no plugin error"));
        });

        case!(settings, "paracle fresh", label, {
            let answer = fresh
                .invoke_tool("count_vowels", black_box(&arguments), &ctx)
                .await;
            black_box(answer.expect("no trap").expect("no plugin error"));
        });

        if let (Some(native), Some(raw_call)) = (&native, &raw_call) {
            ratio("raw / native", label, raw_call.median() / native.median());
        }
        if let (Some(raw_call), Some(paracle_warm)) = (&raw_call, &paracle_warm) {
            ratio(
                "warm / raw",
                label,
                paracle_warm.median() / raw_call.median(),
            );
        }
        if let (Some(raw_epoch), Some(paracle_warm)) = (&raw_epoch, &paracle_warm) {
            ratio(
                "warm / epoch",
                label,
                paracle_warm.median() / raw_epoch.median(),
            );
        }
        if let (Some(raw_call), Some(raw_guards), Some(paracle_warm)) =
            (&raw_call, &raw_guards, &paracle_warm)
        {
            let cost = (raw_guards.median() - raw_call.median()) / paracle_warm.median();
            println!(
                "| guards cost    | {label:>6} | {:>9.1}% |            |            |",
                cost * 100.0
            );
        }
    }
    telemetry_case(settings, &warm, &ctx).await;
}

/// A warm call with OpenTelemetry off (the default: one atomic load finds
/// no recorder) and on (every call counted and timed into OTel
/// instruments), measured back to back. The recorder can be installed only
/// once per process, so this runs last.
async fn telemetry_case(settings: &Settings, warm: &Plugin, ctx: &InvocationContext) {
    let label = INPUT_SIZES[0].0;
    if !settings.wants("telemetry", label) {
        return;
    }
    let arguments = json!({ "text": text_of(INPUT_SIZES[0].1) });
    let off = case!(settings, "telemetry off", label, {
        let answer = warm
            .invoke_tool("count_vowels", black_box(&arguments), ctx)
            .await;
        black_box(answer.expect("no trap").expect("no plugin error"));
    });
    // An endpoint nothing listens on: metrics are only sent every 30 s, and
    // the bench is over before then.
    let config = paracle_telemetry::TelemetryConfig {
        endpoint: "http://127.0.0.1:9".into(),
        service_name: "bench".into(),
        timeout: Duration::from_secs(1),
        metrics_interval: Duration::from_secs(3600),
    };
    let telemetry = paracle_telemetry::Telemetry::start(config).expect("telemetry starts");
    assert!(telemetry.record_plugin_calls(), "the first recorder");
    let on = case!(settings, "telemetry on", label, {
        let answer = warm
            .invoke_tool("count_vowels", black_box(&arguments), ctx)
            .await;
        black_box(answer.expect("no trap").expect("no plugin error"));
    });
    if let (Some(off), Some(on)) = (off, on) {
        ratio("on / off", label, on.median() / off.median());
    }
}

/// A plugin stopped at its deadline: how late, over `runs` calls each of a
/// loop in wasm and of a block in the host.
async fn runaway_cases(settings: &Settings, cache: &Path) {
    const DEADLINE_MS: u64 = 100;
    let path = Path::new(GUESTS).join("hostile.wasm");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let runtime = Runtime::new(Some(cache.to_path_buf())).expect("engine starts");
    let limits = paracle_policy::Limits {
        timeout_ms: DEADLINE_MS,
        ..paracle_policy::Limits::default()
    };
    let hostile = runtime
        .load(
            &path,
            &bytes,
            PluginSettings {
                limits,
                ..PluginSettings::default()
            },
        )
        .await
        .expect("hostile loads");
    for (case, tool) in [("runaway loop", "spin"), ("runaway block", "sleep")] {
        if !settings.wants(case, "100 ms") {
            continue;
        }
        let mut late_ns = Vec::new();
        for _ in 0..settings.samples {
            let started = Instant::now();
            let error = hostile
                .invoke_tool(tool, &json!({}), &context())
                .await
                .expect_err("the deadline stops it");
            let took = started.elapsed();
            assert!(
                matches!(
                    error,
                    paracle_runtime::CallError::Limit {
                        limit: paracle_runtime::Limit::Time,
                        ..
                    }
                ),
                "{error}"
            );
            late_ns.push(took.as_nanos() as f64 - (DEADLINE_MS * 1_000_000) as f64);
        }
        row(
            case,
            "100 ms",
            &Figures {
                per_call_ns: late_ns,
            },
        );
    }
}

fn ratio(what: &str, input: &str, value: f64) {
    println!("| {what:<14} | {input:>6} | {value:>9.2}x |            |            |");
}

async fn cold_load_case(settings: &Settings, path: &Path, bytes: &[u8], cache: &Path) {
    // The cache was filled by `call_cases`; each sample is one new runtime, as
    // a new process would make, and one load.
    let mut per_call_ns = Vec::new();
    for _ in 0..settings.samples.max(5) {
        let started = Instant::now();
        let runtime = Runtime::new(Some(cache.to_path_buf())).expect("engine starts");
        let plugin = runtime
            .load(path, bytes, PluginSettings::default())
            .await
            .expect("text-tools loads");
        per_call_ns.push(started.elapsed().as_nanos() as f64);
        assert_eq!(
            plugin.cache_use(),
            paracle_runtime::CacheUse::Hit,
            "the compiled code should come from the cache"
        );
    }
    row("cold load", "-", &Figures { per_call_ns });
}

fn cli_load_case(settings: &Settings, path: &Path) {
    let project = tempfile::tempdir().expect("temp dir");
    let home = project.path().join("home");
    let run = || {
        let started = Instant::now();
        let output = Command::new(env!("CARGO_BIN_EXE_paracle"))
            .args(["plugin", "load"])
            .arg(path)
            .current_dir(project.path())
            .env("PARACLE_HOME", &home)
            .env("PARACLE_CACHE_DIR", home.join("cache"))
            .env_remove("PARACLE_LOG")
            .output()
            .expect("paracle runs");
        let took = started.elapsed();
        assert!(
            output.status.success(),
            "paracle plugin load failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        took
    };
    let first = run();
    let per_call_ns: Vec<f64> = (0..settings.cli_runs)
        .map(|_| run().as_nanos() as f64)
        .collect();
    row(
        "cli first load",
        "-",
        &Figures {
            per_call_ns: vec![first.as_nanos() as f64],
        },
    );
    row("cli load again", "-", &Figures { per_call_ns });
}

fn main() {
    // `cargo bench` passes `--bench`; the first other word, if any, filters
    // the cases, as with libtest.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let filter = args.iter().find(|a| !a.starts_with("--")).cloned();
    let settings = if quick {
        Settings {
            samples: 5,
            sample_time: Duration::from_millis(20),
            cli_runs: 5,
            filter,
        }
    } else {
        Settings {
            samples: 21,
            sample_time: Duration::from_millis(50),
            cli_runs: 21,
            filter,
        }
    };
    let path: PathBuf = Path::new(GUESTS).join(PLUGIN_FILE);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let cache = tempfile::tempdir().expect("temp dir");

    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio starts");
    println!(
        "paracle {} · text-tools count_vowels · {} samples of ~{} ms · pooling allocator: {}",
        env!("CARGO_PKG_VERSION"),
        settings.samples,
        settings.sample_time.as_millis(),
        Runtime::new(None).expect("engine starts").uses_pooling()
    );
    println!();
    // The call cases also fill the cache that the load cases read.
    tokio.block_on(call_cases(&settings, &path, &bytes, cache.path()));
    println!();
    println!("| case           |  input |     median |        min |        max |");
    println!("|----------------|-------:|-----------:|-----------:|-----------:|");
    if settings.wants("cold load", "-") {
        tokio.block_on(cold_load_case(&settings, &path, &bytes, cache.path()));
    }
    if settings.wants("cli load", "-") {
        cli_load_case(&settings, &path);
    }
    println!();
    println!("How late a runaway plugin is stopped, past its 100 ms deadline:");
    println!();
    println!("| case           |  input |     median |        min |        max |");
    println!("|----------------|-------:|-----------:|-----------:|-----------:|");
    tokio.block_on(runaway_cases(&settings, cache.path()));
}
