//! One plugin instance's store: the capabilities' contexts composed, with
//! the grants and limits turned into them. The WASI context sees only the
//! granted directories and variables; the store's resource limiter holds the
//! instance to its memory, and its epoch callback to its time.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use paracle_policy::{Grants, Limit, Limits};
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::filesystem::WasiFilesystemCtxView;
use wasmtime_wasi::p2::bindings::sockets::{tcp_create_socket, udp_create_socket};
use wasmtime_wasi::sockets::WasiSocketsCtxView;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::capability::agent::{self, AgentCtx};
use crate::capability::files::{self, CountedFiles, FilesView};
use crate::capability::git::{self, GitBackend, GitCtx};
use crate::capability::host::{self, HostCtx};
use crate::capability::network::{
    self, AllowedOnce, Asker, CountedSockets, CountedSocketsView, HttpGate, NetPolicy,
};
use crate::descriptors::Held;
use crate::engine::EPOCH_TICK;
use crate::incident::{Incident, Incidents};
use crate::person::{answered_since, AtHand, PauseMark};
use crate::secrets::Redactor;

/// The data of one plugin instance's store.
pub(crate) struct StoreState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    http_gate: HttpGate,
    incidents: Incidents,
    table: ResourceTable,
    memory_limit: usize,
    /// The bytes of all the instance's linear memories together.
    memory_used: usize,
    /// Elements of all the instance's tables together: the second kind of
    /// host memory a guest grows.
    table_elements_used: usize,
    /// The sockets the instance made, for [`network::MAX_SOCKETS`].
    sockets_held: Held,
    /// The files it holds open, for [`files::MAX_OPEN_FILES`].
    files_held: Held,
    stderr: CapturedOutput,
    host: HostCtx,
    pub(crate) agent: AgentCtx,
    git: GitCtx,
    timeout: Duration,
    /// When the current call's time is up, by the wall clock. Epoch ticks
    /// only approximate it: a ticker that catches up after the machine
    /// stalled it ticks faster than real time.
    call_deadline: Instant,
    /// The time this call waited on a person, which moves its deadline.
    pause: Option<PauseMark>,
}

impl StoreState {
    /// Reset the per-call budgets for a call that begins `now`.
    pub(crate) fn begin_call(&mut self, now: Instant) {
        self.call_deadline = now + self.timeout;
        self.pause = AtHand::current().map(|person| person.clock().mark());
        self.http_gate.once.clear();
        self.host.begin_call();
        self.stderr.clear();
        self.incidents.take();
    }

    /// What the host stopped during this call: a denied capability, or a
    /// limit enforced in host code (memory growth refused, logs or an HTTP
    /// response cut off). A refused `memory.grow` looks to wasm like any
    /// other abort, so only the host can say which limit it was.
    pub(crate) fn take_incident(&self) -> Option<Incident> {
        self.incidents.take()
    }

    /// The tail of what the guest wrote to stderr during this call, such as
    /// a panic message.
    pub(crate) fn stderr_tail(&self) -> Option<String> {
        last_words(&self.stderr.text())
    }

    /// `wasi:sockets`' constructors, counted per instance.
    fn counted_sockets(&mut self) -> CountedSocketsView<'_> {
        CountedSocketsView {
            sockets: WasiSocketsCtxView {
                ctx: self.wasi.sockets(),
                table: &mut self.table,
            },
            held: &mut self.sockets_held,
            incidents: &self.incidents,
        }
    }
}

impl FilesView for StoreState {
    fn counted_files(&mut self) -> CountedFiles<'_> {
        CountedFiles {
            fs: WasiFilesystemCtxView {
                ctx: self.wasi.filesystem(),
                table: &mut self.table,
            },
            held: &mut self.files_held,
            incidents: &self.incidents,
        }
    }
}

/// Link every capability a plugin may import: WASI and `wasi:http`
/// (deny-by-default through each store's context and network policy), with
/// sockets and files counted; `host`; `git` (which only plugins granted it
/// get past loading to use); and for adapters the routed `provider`, `tool`
/// and `memory`.
pub(crate) fn add_to_linker(
    linker: &mut Linker<StoreState>,
    adapter: bool,
) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    // Sockets are made through the host's count instead.
    linker.allow_shadowing(true);
    tcp_create_socket::add_to_linker::<_, CountedSockets>(linker, StoreState::counted_sockets)?;
    udp_create_socket::add_to_linker::<_, CountedSockets>(linker, StoreState::counted_sockets)?;
    linker.allow_shadowing(false);
    files::add_to_linker(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    host::add_to_linker(linker, |state| &mut state.host)?;
    if adapter {
        agent::add_to_linker(linker, |state| &mut state.agent)?;
    }
    git::add_to_linker(linker, |state| &mut state.git)
}

/// What a guest last wrote to stderr, as one line: a Rust panic's location
/// and message, or else the last line. Rust's hint about `RUST_BACKTRACE` is
/// dropped, since an operator cannot set it for a plugin.
fn last_words(text: &str) -> Option<String> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
        .collect();
    let said = match lines.iter().rposition(|l| l.contains(" panicked at ")) {
        Some(at) => {
            let location = lines[at]
                .split_once(" panicked at ")
                .map_or("", |(_, rest)| rest)
                .trim_end_matches(':');
            let message = lines[at + 1..].join(" ");
            format!("panicked at {location}: {message}")
                .trim_end_matches([':', ' '])
                .to_string()
        }
        None => lines.last()?.to_string(),
    };
    Some(said.chars().take(500).collect())
}

/// What one instance of a plugin is made with.
pub(crate) struct Sandbox<'a> {
    pub(crate) plugin: &'a Arc<str>,
    pub(crate) digest: &'a Arc<str>,
    pub(crate) config: &'a Arc<str>,
    /// Every grant in force for the instance.
    pub(crate) grants: &'a Grants,
    /// The values of the granted secrets, by name.
    pub(crate) secrets: &'a [(String, String)],
    pub(crate) limits: &'a Limits,
    pub(crate) network: &'a Arc<NetPolicy>,
    pub(crate) git: Option<&'a Arc<dyn GitBackend>>,
    pub(crate) signer: Option<&'a String>,
    pub(crate) redactor: &'a Arc<Redactor>,
}

/// Build a store for one instance of a plugin.
pub(crate) fn new_store(
    engine: &wasmtime::Engine,
    sandbox: Sandbox<'_>,
) -> Result<Store<StoreState>, String> {
    let Sandbox {
        plugin,
        digest,
        config,
        grants,
        secrets,
        limits,
        network,
        git,
        signer,
        redactor,
    } = sandbox;
    let mut wasi = WasiCtx::builder();
    wasi.args(&[plugin.as_ref()]);
    let stderr = CapturedOutput::new(STDERR_CAPTURE_BYTES);
    wasi.stderr(stderr.clone());
    for dir in &grants.dirs {
        let perms = if dir.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        wasi.preopened_dir(&dir.host, &dir.guest, perms)
            .map_err(|e| format!("cannot open granted directory {}: {e}", dir.host.display()))?;
    }
    for name in &grants.env {
        if let Ok(value) = std::env::var(name) {
            wasi.env(name, value);
        }
    }
    // A secret wins over a host variable of the same name: it is what the
    // user granted by that name.
    for (name, value) in secrets {
        wasi.env(name, value);
    }
    let incidents = Incidents::default();
    let http_gate = HttpGate {
        policy: network.clone(),
        incidents: incidents.clone(),
        once: AllowedOnce::default(),
        asker: Asker {
            plugin: plugin.clone(),
            digest: digest.clone(),
            signer: signer.cloned(),
        },
    };
    network::gate_sockets(&mut wasi, &http_gate);
    let state = StoreState {
        wasi: wasi.build(),
        http: WasiHttpCtx::new(),
        http_gate,
        table: handle_table(),
        memory_limit: limits.memory_bytes() as usize,
        memory_used: 0,
        table_elements_used: 0,
        sockets_held: network::held_sockets(),
        files_held: files::held_files(),
        stderr,
        host: HostCtx::new(
            plugin.clone(),
            config.clone(),
            limits.max_log_kib.saturating_mul(1024) as usize,
            incidents.clone(),
            redactor.clone(),
        ),
        agent: AgentCtx::new(incidents.clone()),
        git: GitCtx::new(git.cloned()),
        incidents,
        timeout: limits.timeout(),
        call_deadline: Instant::now() + limits.timeout(),
        pause: None,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|state| state as &mut dyn ResourceLimiter);
    // Handles wasmtime keeps for the component model itself (resources,
    // and the async ABI's tasks, streams and waitable sets) are host memory
    // too: the same cap as the host's own table.
    store.set_max_component_handles(MAX_HANDLES);
    store.epoch_deadline_callback(|store| {
        let state = store.data();
        let deadline = state.call_deadline + answered_since(state.pause.as_ref());
        let left = deadline.saturating_duration_since(Instant::now());
        Ok(if left.is_zero() {
            UpdateDeadline::Interrupt
        } else {
            // Ticks came faster than time: check again once it is up.
            let ticks = left.as_micros().div_ceil(EPOCH_TICK.as_micros()).max(1);
            UpdateDeadline::Continue(ticks as u64)
        })
    });
    Ok(store)
}

const STDERR_CAPTURE_BYTES: usize = 4096;

/// Host resources one instance may hold at once. Each lives in host memory,
/// outside the plugin's linear-memory limit, so a loop that opens and never
/// closes would otherwise grow the host until wasmtime's default of a million
/// entries.
pub const MAX_HANDLES: usize = 4096;

fn handle_table() -> ResourceTable {
    let mut table = ResourceTable::new();
    table.set_max_capacity(MAX_HANDLES);
    table
}

impl ResourceLimiter for StoreState {
    /// Every memory of the component counts against one limit: a component
    /// may define several, and a limit per memory would multiply.
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Growth wasmtime refuses anyway must not be counted as used.
        if maximum.is_some_and(|maximum| desired > maximum) {
            return Ok(false);
        }
        let total = self
            .memory_used
            .saturating_sub(current)
            .saturating_add(desired);
        if total > self.memory_limit {
            self.incidents.record(Incident::Limit {
                limit: Limit::Memory,
                detail: format!(
                    "tried to grow its linear memory past {} MiB",
                    self.memory_limit >> 20
                ),
            });
            return Ok(false);
        }
        self.memory_used = total;
        Ok(true)
    }

    /// Tables hold function references in host memory, outside the memory
    /// limit: all of an instance's tables together stay under one bound, far
    /// beyond any honest plugin, whether the pool or the on-demand allocator
    /// made them.
    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|maximum| desired > maximum) {
            return Ok(false);
        }
        let total = self
            .table_elements_used
            .saturating_sub(current)
            .saturating_add(desired);
        if total > MAX_TABLE_ELEMENTS {
            return Ok(false);
        }
        self.table_elements_used = total;
        Ok(true)
    }

    // The pool caps these per component; the on-demand allocator, which a
    // component shaped past the pool's slots gets, does not, so the store
    // does. Each is well above what the pool allows, and far below
    // wasmtime's defaults of ten thousand.
    fn instances(&self) -> usize {
        MAX_CORE_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }
}

/// Function references in all of one instance's tables.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;
/// Core instances, memories and tables of one plugin instance.
const MAX_CORE_INSTANCES: usize = 256;
const MAX_MEMORIES: usize = 16;
const MAX_TABLES: usize = 128;

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for StoreState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_gate,
        }
    }
}

/// A guest's stderr: keeps the first bytes of each call, drops the rest, and
/// never fails a write, so a chatty plugin cannot break itself by printing.
#[derive(Clone)]
struct CapturedOutput {
    buffer: Arc<Mutex<Vec<u8>>>,
    capacity: usize,
}

impl CapturedOutput {
    fn new(capacity: usize) -> Self {
        CapturedOutput {
            buffer: Arc::new(Mutex::new(Vec::new())),
            capacity,
        }
    }

    fn clear(&self) {
        self.buffer.lock().unwrap().clear();
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().unwrap()).into_owned()
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for CapturedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut buffer = self.buffer.lock().unwrap();
        let room = self.capacity.saturating_sub(buffer.len());
        buffer.extend_from_slice(&buf[..buf.len().min(room)]);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::last_words;

    #[test]
    fn a_rust_panic_becomes_its_location_and_message() {
        let stderr = "\nthread '<unnamed>' panicked at src/lib.rs:171:24:\nboom on purpose\n\
                      note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(
            last_words(stderr).as_deref(),
            Some("panicked at src/lib.rs:171:24: boom on purpose")
        );
    }

    #[test]
    fn other_output_gives_its_last_line() {
        assert_eq!(
            last_words("starting\nfatal: no config\n\n").as_deref(),
            Some("fatal: no config")
        );
        assert_eq!(last_words("  \n"), None);
    }
}

#[cfg(test)]
mod memory_tests {
    use std::sync::Arc;

    use paracle_policy::{Grants, Limit, Limits};

    use super::new_store;
    use crate::capability::network::NetPolicy;
    use crate::incident::Incident;

    /// A store for one instance under a 64 MiB limit, on an engine without
    /// the pooling allocator, where each memory would otherwise get the
    /// whole limit.
    fn store(engine: &wasmtime::Engine) -> wasmtime::Store<super::StoreState> {
        let limits = Limits {
            memory_mib: 64,
            ..Limits::default()
        };
        new_store(
            engine,
            super::Sandbox {
                plugin: &Arc::from("multi"),
                digest: &Arc::from("sha256:00"),
                config: &Arc::from("{}"),
                grants: &Grants::default(),
                secrets: &[],
                limits: &limits,
                network: &Arc::new(NetPolicy::new(Vec::new(), 0)),
                git: None,
                signer: None,
                redactor: &Arc::default(),
            },
        )
        .unwrap()
    }

    #[test]
    fn all_of_an_instances_memories_count_against_one_limit() {
        let engine = wasmtime::Engine::default();
        // 640 pages are 40 MiB: one fits under the limit, two do not.
        let one = wasmtime::Module::new(&engine, "(module (memory 640))").unwrap();
        let two = wasmtime::Module::new(&engine, "(module (memory 640) (memory 640))").unwrap();
        let mut fits = store(&engine);
        wasmtime::Instance::new(&mut fits, &one, &[]).expect("40 MiB fits in 64");
        let mut refused = store(&engine);
        assert!(wasmtime::Instance::new(&mut refused, &two, &[]).is_err());
        assert!(matches!(
            refused.data().take_incident(),
            Some(Incident::Limit {
                limit: Limit::Memory,
                ..
            })
        ));
        // Two instances in one store (as a component's core modules are)
        // add up the same way.
        let mut shared = store(&engine);
        wasmtime::Instance::new(&mut shared, &one, &[]).unwrap();
        assert!(wasmtime::Instance::new(&mut shared, &one, &[]).is_err());
    }

    /// What the on-demand allocator (for components past the pool's slots)
    /// does not cap, the store does: table elements across all tables, and
    /// how many instances, memories and tables one store holds.
    #[test]
    fn tables_instances_and_memories_are_capped_without_the_pool() {
        let engine = wasmtime::Engine::default();
        let table = |elements: usize| {
            wasmtime::Module::new(&engine, format!("(module (table {elements} funcref))")).unwrap()
        };
        // Half the bound each: two fit, a third does not.
        let half = table(super::MAX_TABLE_ELEMENTS / 2);
        let mut tables = store(&engine);
        wasmtime::Instance::new(&mut tables, &half, &[]).unwrap();
        wasmtime::Instance::new(&mut tables, &half, &[]).unwrap();
        assert!(wasmtime::Instance::new(&mut tables, &half, &[]).is_err());

        let empty = wasmtime::Module::new(&engine, "(module)").unwrap();
        let mut instances = store(&engine);
        for _ in 0..super::MAX_CORE_INSTANCES {
            wasmtime::Instance::new(&mut instances, &empty, &[]).unwrap();
        }
        assert!(wasmtime::Instance::new(&mut instances, &empty, &[]).is_err());

        // wasmparser allows 100 tables a module: two such instances pass
        // the store's bound.
        let hundred_tables = format!("(module {})", "(table 1 funcref)".repeat(100));
        let hundred_tables = wasmtime::Module::new(&engine, hundred_tables).unwrap();
        let mut tables = store(&engine);
        wasmtime::Instance::new(&mut tables, &hundred_tables, &[]).unwrap();
        assert!(wasmtime::Instance::new(&mut tables, &hundred_tables, &[]).is_err());
        let many_memories = format!("(module {})", "(memory 0)".repeat(super::MAX_MEMORIES + 1));
        let many_memories = wasmtime::Module::new(&engine, many_memories).unwrap();
        assert!(wasmtime::Instance::new(&mut store(&engine), &many_memories, &[]).is_err());
    }
}
