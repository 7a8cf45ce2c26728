//! Grants and limits turned into a `Store`: the WASI context sees only the
//! granted directories and variables, and the store enforces the limits.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use wasmtime::component::ResourceTable;
use wasmtime::component::{Linker, Resource};
use wasmtime::StoreContextMut;
use wasmtime::{ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::filesystem::WasiFilesystemCtxView;
use wasmtime_wasi::p2::bindings::filesystem::types::{ErrorCode as FsErrorCode, Host as FsHost};
use wasmtime_wasi::sockets::WasiSocketsCtxView;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::bindings::{HostImports, LogLevel};
use crate::descriptors::Held;
use crate::engine::EPOCH_TICK;
use crate::error::{Limit, RegistryError};
use crate::gitflow::GitRepo;
use crate::net::{CountedSocketsView, HttpGate, Incident, Incidents, NetGrant, NetPolicy};
use crate::router::{AgentBounds, AgentRoutes};
use crate::shown;

/// A host directory mapped into a plugin's sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// Absolute path on the host.
    pub host: PathBuf,
    /// Where the plugin sees it, for example `/data`.
    pub guest: String,
    pub writable: bool,
}

impl DirGrant {
    /// Parse `HOST[:GUEST][:ro|rw]`. The guest path defaults to `/data` and
    /// the mode to read-only.
    pub fn parse(spec: &str) -> Result<Self, RegistryError> {
        let bad = |reason: &str| RegistryError::BadGrant {
            grant: spec.to_string(),
            reason: reason.to_string(),
        };
        let mut parts: Vec<&str> = spec.split(':').collect();
        let mut writable = false;
        if let Some(last) = parts.last() {
            match *last {
                "ro" => {
                    parts.pop();
                }
                "rw" => {
                    writable = true;
                    parts.pop();
                }
                _ => {}
            }
        }
        let (host, guest) = match parts.as_slice() {
            [host] => (*host, "/data".to_string()),
            [host, guest] => (*host, guest.to_string()),
            _ => return Err(bad("expected HOST_DIR[:GUEST_PATH][:ro|rw]")),
        };
        if host.is_empty() {
            return Err(bad("the host directory is empty"));
        }
        if !guest.starts_with('/') {
            return Err(bad("the guest path must be absolute, like /data"));
        }
        let host = std::fs::canonicalize(host)
            .map_err(|e| bad(&format!("cannot open host directory `{host}`: {e}")))?;
        if !host.is_dir() {
            return Err(bad("the host path is not a directory"));
        }
        Ok(DirGrant {
            host,
            guest,
            writable,
        })
    }

    pub fn describe(&self) -> String {
        format!(
            "{} -> {} ({})",
            self.host.display(),
            self.guest,
            if self.writable { "rw" } else { "ro" }
        )
    }
}

/// What the operator granted a plugin. Nothing by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Grants {
    pub dirs: Vec<DirGrant>,
    /// Hosts reachable over `wasi:http`; IP addresses also over
    /// `wasi:sockets`.
    pub net: Vec<NetGrant>,
    /// Environment variables, by name; the plugin sees the host's value.
    pub env: Vec<String>,
    /// The `git` interface, on the project's repository.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub git: bool,
}

/// The forms a grant is written in, for messages.
pub const GRANT_FORMS: &str = "dir:HOST_DIR[:GUEST_PATH][:ro|rw], net:HOST[:PORT], env:NAME or git";

/// One grant as an operator writes it on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    Dir(DirGrant),
    Net(NetGrant),
    Env(String),
    /// The `git` interface on the project's repository.
    Git,
}

impl Grant {
    /// Parse `dir:HOST_DIR[:GUEST_PATH][:ro|rw]`, `net:HOST[:PORT]` or
    /// `env:NAME`.
    pub fn parse(spec: &str) -> Result<Self, RegistryError> {
        let bad = |reason: String| RegistryError::BadGrant {
            grant: spec.to_string(),
            reason,
        };
        match spec.split_once(':') {
            Some(("dir", dir)) => Ok(Grant::Dir(DirGrant::parse(dir)?)),
            Some(("env", name)) => {
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(bad(
                        "a variable name is letters, digits and `_`, like env:API_KEY".into(),
                    ));
                }
                Ok(Grant::Env(name.to_string()))
            }
            Some(("net", host)) => NetGrant::parse(host).map(Grant::Net).map_err(bad),
            None if spec == "git" => Ok(Grant::Git),
            _ => Err(bad(format!("write it as {GRANT_FORMS}"))),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Grant::Dir(dir) => format!("dir {}", dir.describe()),
            Grant::Net(host) => format!("net {host}"),
            Grant::Env(name) => format!("env {name}"),
            Grant::Git => "git (the project's repository)".to_string(),
        }
    }
}

impl Grants {
    /// Add `grant`. A directory granted at a guest path that is already
    /// granted replaces the old one. Returns whether anything changed.
    pub fn add(&mut self, grant: Grant) -> bool {
        match grant {
            Grant::Dir(dir) => {
                if self.dirs.contains(&dir) {
                    return false;
                }
                self.dirs.retain(|d| d.guest != dir.guest);
                self.dirs.push(dir);
            }
            Grant::Net(host) => {
                if self.net.contains(&host) {
                    return false;
                }
                self.net.push(host);
            }
            Grant::Env(name) => {
                if self.env.contains(&name) {
                    return false;
                }
                self.env.push(name);
            }
            Grant::Git => return !std::mem::replace(&mut self.git, true),
        }
        true
    }

    /// Remove what `spec` names: `dir:PATH`, where PATH is the guest path or
    /// the host directory, `net:HOST[:PORT]` or `env:NAME`. Returns what was
    /// removed.
    pub fn revoke(&mut self, spec: &str) -> Result<Vec<Grant>, RegistryError> {
        let removed: Vec<Grant> = match spec.split_once(':') {
            Some(("dir", path)) => {
                let host = std::fs::canonicalize(path).ok();
                let (gone, kept) = std::mem::take(&mut self.dirs)
                    .into_iter()
                    .partition(|d| d.guest == path || Some(&d.host) == host.as_ref());
                self.dirs = kept;
                gone.into_iter().map(Grant::Dir).collect()
            }
            Some(("net", host)) => {
                let wanted = NetGrant::parse(host).map_err(|reason| RegistryError::BadGrant {
                    grant: spec.to_string(),
                    reason,
                })?;
                let (gone, kept) = std::mem::take(&mut self.net)
                    .into_iter()
                    .partition(|granted| *granted == wanted);
                self.net = kept;
                gone.into_iter().map(Grant::Net).collect()
            }
            Some(("env", name)) => {
                let before = self.env.len();
                self.env.retain(|e| e != name);
                if self.env.len() < before {
                    vec![Grant::Env(name.to_string())]
                } else {
                    vec![]
                }
            }
            None if spec == "git" => {
                if std::mem::replace(&mut self.git, false) {
                    vec![Grant::Git]
                } else {
                    vec![]
                }
            }
            _ => {
                return Err(RegistryError::BadGrant {
                    grant: spec.to_string(),
                    reason: "name what to revoke as dir:PATH, net:HOST[:PORT], env:NAME or git"
                        .into(),
                })
            }
        };
        if removed.is_empty() {
            return Err(RegistryError::BadGrant {
                grant: spec.to_string(),
                reason: format!("nothing granted matches it; granted: {}", self.describe()),
            });
        }
        Ok(removed)
    }

    /// Every grant on one line, or `none`.
    pub fn describe(&self) -> String {
        let all: Vec<String> = self
            .dirs
            .iter()
            .map(|d| format!("dir {}", d.describe()))
            .chain(self.net.iter().map(|n| format!("net {n}")))
            .chain(self.env.iter().map(|e| format!("env {e}")))
            .chain(self.git.then(|| "git".to_string()))
            .collect();
        if all.is_empty() {
            "none".into()
        } else {
            all.join(", ")
        }
    }
}

/// Per-plugin limits. The defaults are safe for a stranger's code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Linear memory per instance, in MiB.
    pub memory_mib: u64,
    /// Wall-clock time per call, in milliseconds.
    pub timeout_ms: u64,
    /// Instances of this plugin that may exist at once.
    pub max_instances: u32,
    /// Bytes one call may return, in KiB.
    pub max_output_kib: u64,
    /// Bytes one call may log, in KiB.
    pub max_log_kib: u64,
    /// Bytes of one HTTP response body, in KiB.
    pub max_response_kib: u64,
    /// Fuel per call: a deterministic budget of wasm work, roughly one unit
    /// per instruction. None for no fuel limit (the default).
    pub fuel: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mib: 64,
            timeout_ms: 10_000,
            max_instances: 4,
            max_output_kib: 1024,
            max_log_kib: 64,
            max_response_kib: 4096,
            fuel: None,
        }
    }
}

impl Limits {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub fn memory_bytes(&self) -> u64 {
        self.memory_mib.saturating_mul(1 << 20)
    }

    pub fn output_bytes(&self) -> usize {
        self.max_output_kib.saturating_mul(1024) as usize
    }

    /// The names `set` takes.
    pub const NAMES: &'static str =
        "memory_mib, timeout_ms, fuel, max_instances, max_output_kib, max_log_kib, max_response_kib";

    /// Set one limit from `NAME=VALUE`; `fuel=none` removes the fuel limit.
    /// The result is validated as a whole.
    pub fn set(&mut self, assignment: &str) -> Result<(), String> {
        let (name, value) = assignment
            .split_once('=')
            .ok_or_else(|| format!("write `{assignment}` as NAME=VALUE, one of {}", Self::NAMES))?;
        let number = || {
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("`{value}` is not a whole number"))
        };
        match name.trim() {
            "memory_mib" => self.memory_mib = number()?,
            "timeout_ms" => self.timeout_ms = number()?,
            "fuel" if value.trim() == "none" => self.fuel = None,
            "fuel" => self.fuel = Some(number()?),
            "max_instances" => {
                self.max_instances = u32::try_from(number()?)
                    .map_err(|_| "max_instances is too large".to_string())?
            }
            "max_output_kib" => self.max_output_kib = number()?,
            "max_log_kib" => self.max_log_kib = number()?,
            "max_response_kib" => self.max_response_kib = number()?,
            other => {
                return Err(format!(
                    "no limit `{other}`; the limits are {}",
                    Self::NAMES
                ))
            }
        }
        self.validate()
    }

    /// Every limit on one line.
    pub fn describe(&self) -> String {
        let fuel = match self.fuel {
            Some(fuel) => format!("{fuel} fuel"),
            None => "no fuel limit".into(),
        };
        format!(
            "memory {} MiB, {} ms per call, {fuel}, {} instances, output {} KiB, logs {} KiB, HTTP responses {} KiB",
            self.memory_mib,
            self.timeout_ms,
            self.max_instances,
            self.max_output_kib,
            self.max_log_kib,
            self.max_response_kib
        )
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.memory_mib == 0 || self.memory_bytes() > crate::engine::MAX_MEMORY_BYTES {
            return Err(format!(
                "memory_mib must be between 1 and {}",
                crate::engine::MAX_MEMORY_BYTES >> 20
            ));
        }
        if self.timeout_ms == 0 {
            return Err("timeout_ms must be at least 1".into());
        }
        if self.max_instances == 0 {
            return Err("max_instances must be at least 1".into());
        }
        if self.fuel == Some(0) {
            return Err("fuel must be at least 1; leave it out for no fuel limit".into());
        }
        Ok(())
    }
}

/// The data of one plugin instance's store.
pub struct StoreState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    http_gate: HttpGate,
    incidents: Incidents,
    table: ResourceTable,
    plugin: Arc<str>,
    config: Arc<str>,
    memory_limit: usize,
    /// The bytes of all the instance's linear memories together.
    memory_used: usize,
    /// The sockets the instance made, for [`crate::net::MAX_SOCKETS`].
    sockets_held: Held,
    /// The files it holds open, for [`MAX_OPEN_FILES`].
    files_held: Held,
    log_limit: usize,
    log_used: usize,
    stderr: CapturedOutput,
    /// Where an adapter's provider, tool and memory imports go.
    pub(crate) routes: Option<Arc<AgentRoutes>>,
    /// What the host holds the current agent run to.
    pub(crate) bounds: Option<AgentBounds>,
    /// The repository the `git` imports reach; None without the grant.
    pub(crate) git: Option<Arc<GitRepo>>,
    timeout: Duration,
    /// When the current call's time is up, by the wall clock. Epoch ticks
    /// only approximate it: a ticker that catches up after the machine
    /// stalled it ticks faster than real time.
    call_deadline: Instant,
}

impl StoreState {
    /// Reset the per-call budgets.
    pub(crate) fn begin_call(&mut self) {
        self.call_deadline = Instant::now() + self.timeout;
        self.log_used = 0;
        self.stderr.clear();
        self.incidents.take();
    }

    /// Stop the current call for what host code refused on its behalf; the
    /// call fails with this whatever the plugin makes of the refusal.
    pub(crate) fn record_incident(&self, incident: Incident) {
        self.incidents.record(incident);
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

/// Build a store for one instance of `plugin`.
pub(crate) fn new_store(
    engine: &wasmtime::Engine,
    plugin: &Arc<str>,
    config: &Arc<str>,
    grants: &Grants,
    limits: &Limits,
    network: &Arc<NetPolicy>,
    git: Option<&Arc<GitRepo>>,
) -> Result<Store<StoreState>, String> {
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
    let incidents = Incidents::default();
    crate::net::gate_sockets(&mut wasi, network, &incidents);
    let state = StoreState {
        wasi: wasi.build(),
        http: WasiHttpCtx::new(),
        http_gate: HttpGate {
            policy: network.clone(),
            incidents: incidents.clone(),
        },
        incidents,
        table: handle_table(),
        plugin: plugin.clone(),
        config: config.clone(),
        memory_limit: limits.memory_bytes() as usize,
        memory_used: 0,
        sockets_held: crate::net::held_sockets(),
        files_held: Held::new(MAX_OPEN_FILES, "open files", |entry| {
            // A file's stream holds the file open after its descriptor is
            // dropped.
            entry.is::<wasmtime_wasi::filesystem::Descriptor>()
                || entry.is::<wasmtime_wasi::p2::DynInputStream>()
                || entry.is::<wasmtime_wasi::p2::DynOutputStream>()
        }),
        log_limit: limits.max_log_kib.saturating_mul(1024) as usize,
        log_used: 0,
        stderr,
        routes: None,
        bounds: None,
        git: git.cloned(),
        timeout: limits.timeout(),
        call_deadline: Instant::now() + limits.timeout(),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|state| state as &mut dyn ResourceLimiter);
    store.epoch_deadline_callback(|store| {
        let left = store
            .data()
            .call_deadline
            .saturating_duration_since(Instant::now());
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
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
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

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a million is far beyond any
        // honest plugin and bounds host memory.
        Ok(desired <= 1_000_000)
    }
}

/// Files and directories one instance may hold open at once (through
/// `open-at`, and the streams that keep a file open after its descriptor is
/// dropped). Each holds a descriptor of the host process's own: with
/// sockets capped too, one instance holds a few hundred at most, far below
/// the process's limit, which the CLI raises to the hard limit at start.
pub const MAX_OPEN_FILES: usize = 256;

/// Count `wasi:filesystem`'s `open-at`: past [`MAX_OPEN_FILES`] open
/// descriptors, a new one is refused (`insufficient-memory`, the nearest
/// code the interface has) and the call fails with the `open handles`
/// limit.
pub(crate) fn count_open_files(linker: &mut Linker<StoreState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::p2::bindings::filesystem::types::{
        self, DescriptorFlags, HostDescriptor, OpenFlags, PathFlags,
    };
    linker.allow_shadowing(true);
    // The version wasmtime-wasi 48 registers (its wit/deps/filesystem.wit);
    // guests importing any 0.2.x reach it by semver. Another name would
    // define a new instance and shadow nothing:
    // hostile::leaking_handles_in_a_loop_hits_the_handle_limit would fail.
    let mut interface = linker.instance("wasi:filesystem/types@0.2.12")?;
    interface.func_wrap_async(
        "[method]descriptor.open-at",
        |mut store: StoreContextMut<'_, StoreState>,
         (dir, path_flags, path, open_flags, flags): (
            Resource<types::Descriptor>,
            PathFlags,
            String,
            OpenFlags,
            DescriptorFlags,
        )| {
            Box::new(async move {
                let state = store.data_mut();
                if !state.admit_file() {
                    return Ok((Err(types::ErrorCode::InsufficientMemory),));
                }
                let mut view = WasiFilesystemCtxView {
                    ctx: state.wasi.filesystem(),
                    table: &mut state.table,
                };
                let answer = match HostDescriptor::open_at(
                    &mut view, dir, path_flags, path, open_flags, flags,
                )
                .await
                {
                    Ok(opened) => Ok(opened),
                    Err(error) => Err(types::Host::convert_error_code(&mut view, error)?),
                };
                if let Ok(opened) = &answer {
                    state.files_held.push(opened.rep());
                }
                Ok((answer,))
            })
        },
    )?;
    // A file's stream holds the file open after its descriptor is dropped,
    // so streams count too.
    interface.func_wrap(
        "[method]descriptor.read-via-stream",
        |mut store: StoreContextMut<'_, StoreState>,
         (file, offset): (Resource<types::Descriptor>, u64)| {
            let answer = store
                .data_mut()
                .counted_file(|view| HostDescriptor::read_via_stream(view, file, offset))?;
            Ok((answer,))
        },
    )?;
    interface.func_wrap(
        "[method]descriptor.write-via-stream",
        |mut store: StoreContextMut<'_, StoreState>,
         (file, offset): (Resource<types::Descriptor>, u64)| {
            let answer = store
                .data_mut()
                .counted_file(|view| HostDescriptor::write_via_stream(view, file, offset))?;
            Ok((answer,))
        },
    )?;
    interface.func_wrap(
        "[method]descriptor.append-via-stream",
        |mut store: StoreContextMut<'_, StoreState>, (file,): (Resource<types::Descriptor>,)| {
            let answer = store
                .data_mut()
                .counted_file(|view| HostDescriptor::append_via_stream(view, file))?;
            Ok((answer,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

impl StoreState {
    /// Make one more thing that holds a file open, if the instance may: its
    /// answer as the guest sees it, counted when it succeeds.
    fn counted_file<T: 'static>(
        &mut self,
        make: impl FnOnce(&mut WasiFilesystemCtxView<'_>) -> wasmtime_wasi::p2::FsResult<Resource<T>>,
    ) -> wasmtime::Result<Result<Resource<T>, FsErrorCode>> {
        if !self.admit_file() {
            return Ok(Err(FsErrorCode::InsufficientMemory));
        }
        let mut view = WasiFilesystemCtxView {
            ctx: self.wasi.filesystem(),
            table: &mut self.table,
        };
        let answer = match make(&mut view) {
            Ok(made) => Ok(made),
            Err(error) => Err(FsHost::convert_error_code(&mut view, error)?),
        };
        if let Ok(made) = &answer {
            self.files_held.push(made.rep());
        }
        Ok(answer)
    }

    /// Whether the instance may open one more file; if not, the call fails
    /// with the handle limit.
    fn admit_file(&mut self) -> bool {
        match self.files_held.admit(&mut self.table) {
            Ok(()) => true,
            Err(incident) => {
                self.incidents.record(incident);
                false
            }
        }
    }

    /// `wasi:sockets`' constructors, counted per instance.
    pub(crate) fn counted_sockets(&mut self) -> CountedSocketsView<'_> {
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

impl crate::bindings::TypesImports for StoreState {}

impl HostImports for StoreState {
    async fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        self.log_used = self.log_used.saturating_add(message.len());
        if self.log_used > self.log_limit {
            let detail = format!("logged more than {} KiB", self.log_limit / 1024);
            self.incidents.record(Incident::Limit {
                limit: Limit::Logs,
                detail: detail.clone(),
            });
            return Err(wasmtime::format_err!("{detail}"));
        }
        let plugin = &*self.plugin;
        // One line each, escaped: a plugin's newline or escape sequence would
        // forge log lines of the host's, or rewrite the terminal showing them.
        // Only formatted when the level is on.
        match level {
            LogLevel::Trace => {
                tracing::trace!(target: "plugin", plugin, "{}", shown::line(&message))
            }
            LogLevel::Debug => {
                tracing::debug!(target: "plugin", plugin, "{}", shown::line(&message))
            }
            LogLevel::Info => tracing::info!(target: "plugin", plugin, "{}", shown::line(&message)),
            LogLevel::Warn => tracing::warn!(target: "plugin", plugin, "{}", shown::line(&message)),
            LogLevel::Error => {
                tracing::error!(target: "plugin", plugin, "{}", shown::line(&message))
            }
        }
        Ok(())
    }

    async fn config(&mut self) -> wasmtime::Result<String> {
        Ok(self.config.to_string())
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
    use super::{last_words, Grant, Grants};

    #[test]
    fn grants_parse_add_and_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().display().to_string();
        let mut grants = Grants::default();
        let data = Grant::parse(&format!("dir:{host}")).unwrap();
        let Grant::Dir(parsed) = &data else {
            panic!("a dir grant")
        };
        assert_eq!((parsed.guest.as_str(), parsed.writable), ("/data", false));
        assert!(grants.add(data.clone()));
        assert!(!grants.add(data), "granting twice changes nothing");
        // The same guest path granted again replaces the old grant.
        assert!(grants.add(Grant::parse(&format!("dir:{host}:/data:rw")).unwrap()));
        assert_eq!(grants.dirs.len(), 1);
        assert!(grants.dirs[0].writable);
        assert!(grants.add(Grant::parse("env:API_KEY").unwrap()));
        assert!(grants.add(Grant::parse("net:api.example.com:443").unwrap()));
        assert_eq!(grants.revoke("net:api.example.com:443").unwrap().len(), 1);

        for bad in [
            "env:",
            "env:A=B",
            "disk:/tmp",
            "dir:/no/such/dir",
            "net:https://x.org",
        ] {
            assert!(Grant::parse(bad).is_err(), "{bad}");
        }
        assert!(grants.revoke("env:OTHER").is_err());
        assert_eq!(grants.revoke("env:API_KEY").unwrap().len(), 1);
        // A directory is revoked by its host path as well as its guest path.
        assert_eq!(grants.revoke(&format!("dir:{host}")).unwrap().len(), 1);
        assert_eq!(grants.describe(), "none");
    }

    #[test]
    fn limits_are_set_by_name_and_validated() {
        let mut limits = super::Limits::default();
        limits.set("memory_mib=128").unwrap();
        limits.set("fuel=1000").unwrap();
        assert_eq!((limits.memory_mib, limits.fuel), (128, Some(1000)));
        limits.set("fuel=none").unwrap();
        assert_eq!(limits.fuel, None);
        for bad in [
            "memory_mib",
            "memory_mib=lots",
            "speed=9",
            "timeout_ms=0",
            "fuel=0",
        ] {
            assert!(limits.set(bad).is_err(), "{bad}");
        }
    }

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

    use super::{new_store, Grants, Limits};
    use crate::error::Limit;
    use crate::net::{Incident, NetPolicy};

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
            &Arc::from("multi"),
            &Arc::from("{}"),
            &Grants::default(),
            &limits,
            &Arc::new(NetPolicy::new(Vec::new(), 0)),
            None,
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
}
