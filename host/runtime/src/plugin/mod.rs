//! A loaded plugin: its digest, kind, info, pre-linked component, a pool of
//! warm instances, and its call statistics.

mod calls;
mod deadline;
mod kind;
mod linkers;
mod pool;
mod returned;
mod tool_output;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Store;

use paracle_contract::{
    AdapterPlugin, GitWorkflowPlugin, HealthStatus, MemoryPlugin, ObserverPlugin, PluginInfo,
    ProviderPlugin, ToolPlugin, ToolSpec,
};
use paracle_policy::{Approvals, DirGrant, Grant, Grants, Limit, Limits};

use crate::capability::git::GitBackend;
use crate::capability::network::NetPolicy;
use crate::engine::{CacheUse, CompileObserver, EngineShape, PluginEngine, Ticker};
use crate::error::{root_cause, CallError, EngineError, LoadError, PluginError};
use crate::incident::Incident;
use crate::person::{Answer, AtHand, PermissionRequest, Wanted};
use crate::secrets::{Redactor, SecretSource};
use crate::stats::{CallOutcome, CallStats, LiveStats};
use crate::store::{self, Sandbox, StoreState};
use deadline::{Deadline, TimedOut};
use linkers::{Linkers, Pre};
use pool::{Checkout, InstancePool, Place};

pub use kind::{PluginKind, UnknownKind};
pub use tool_output::ToolOutput;

/// Extra time the host waits past a call's deadline before it gives up on a
/// call that is stuck in host code rather than in wasm. A few epoch ticks, so
/// that the epoch deadline, which stops wasm itself, fires first.
const HOST_GRACE: Duration = Duration::from_millis(10);

/// Whether an instance serves many calls or one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// Instances are kept warm and reused: fastest.
    #[default]
    Warm,
    /// Every call gets a fresh instance, so no state leaks between calls.
    Fresh,
}

/// How the operator wants a plugin run.
#[derive(Debug, Clone, Default)]
pub struct PluginSettings {
    /// The name to register it under; defaults to the name in its info.
    pub name: Option<String>,
    /// The config passed to `init`, a JSON object.
    pub config: Option<serde_json::Value>,
    pub grants: Grants,
    pub limits: Limits,
    pub isolation: Isolation,
    /// The repository that a `git` grant reaches; the registry sets it to
    /// the project's.
    pub git: Option<Arc<dyn GitBackend>>,
    /// Where the values of `secret:` grants come from.
    pub secrets: Option<Arc<dyn SecretSource>>,
    /// Who signed it, as the loader verified, for the questions a person is
    /// asked about it.
    pub signer: Option<String>,
    /// Which of its tool calls need a person's approval.
    pub approvals: Approvals,
}

/// A component inspected without running `init`: see [`Runtime::inspect`].
#[derive(Debug, Clone)]
pub struct Inspected {
    pub info: PluginInfo,
    pub kind: PluginKind,
    /// The names of the interfaces it imports and exports, as registries
    /// that hold components list them.
    pub world: World,
}

/// What a component imports and exports, by interface name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct World {
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

/// The sha256 of a plugin's bytes, as `sha256:<hex>`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The process-wide runtime: engines, each with one linker per kind. The
/// plain one is made at once; the others (fuel-counting, on-demand,
/// concurrent: see [`EngineShape`]) when the first plugin that needs one
/// loads.
pub struct Runtime {
    engines: [OnceLock<Result<Engines, EngineError>>; EngineShape::COUNT],
    cache_dir: Option<PathBuf>,
    observer: Option<Arc<dyn CompileObserver>>,
}

struct Engines {
    engine: PluginEngine,
    linkers: Linkers,
}

impl Engines {
    fn new(cache_dir: Option<PathBuf>, shape: EngineShape) -> Result<Self, EngineError> {
        let engine = PluginEngine::new(cache_dir, shape)?;
        let linkers = Linkers::new(engine.engine()).map_err(|e| EngineError(root_cause(&e)))?;
        Ok(Engines { engine, linkers })
    }
}

impl Runtime {
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Self, EngineError> {
        let runtime = Runtime {
            engines: Default::default(),
            cache_dir,
            observer: None,
        };
        // The plain engine is the one nearly every plugin runs on: an
        // error in making it is an error now, not at the first load.
        runtime
            .engines(EngineShape::default())
            .map_err(|e| EngineError(e.0.clone()))?;
        Ok(runtime)
    }

    /// Have `observer` hear every compilation the code cache cannot spare.
    pub fn observe_compiles(&mut self, observer: Arc<dyn CompileObserver>) {
        self.observer = Some(observer);
    }

    /// Whether `plugin` was loaded on one of this runtime's engines.
    pub fn made(&self, plugin: &Plugin) -> bool {
        self.engines.iter().any(|engines| {
            engines
                .get()
                .and_then(|made| made.as_ref().ok())
                .is_some_and(|made| wasmtime::Engine::same(made.engine.engine(), &plugin.engine))
        })
    }

    pub fn uses_pooling(&self) -> bool {
        self.engines(EngineShape::default())
            .map(|engines| engines.engine.uses_pooling())
            .unwrap_or(false)
    }

    fn engines(&self, shape: EngineShape) -> Result<&Engines, &EngineError> {
        self.engines[shape.index()]
            .get_or_init(|| Engines::new(self.cache_dir.clone(), shape))
            .as_ref()
    }

    /// `bytes` compiled on the first engine that takes them: the plain one
    /// for the limits, or a wider shape when the component needs it.
    fn compile(
        &self,
        path: &Path,
        bytes: &[u8],
        digest: &str,
        limits: &Limits,
    ) -> Result<(&Engines, Component, CacheUse), LoadError> {
        let first = EngineShape {
            metered: limits.fuel.is_some(),
            ..EngineShape::default()
        };
        let mut shape = first;
        let engine_error = |e: &EngineError| LoadError::Engine {
            path: path.to_path_buf(),
            reason: e.0.clone(),
        };
        let first_engines = self.engines(first).map_err(engine_error)?;
        if let Some(remembered) = first_engines.engine.remembered_shape(digest) {
            shape.on_demand = remembered.on_demand;
            shape.concurrent = remembered.concurrent;
        }
        loop {
            let engines = self.engines(shape).map_err(engine_error)?;
            match engines
                .engine
                .component(path, bytes, digest, self.observer.as_deref())
            {
                Ok((component, cache_use)) => {
                    if shape != first {
                        first_engines.engine.remember_shape(digest, shape);
                    }
                    return Ok((engines, component, cache_use));
                }
                Err(error) => {
                    let reason = root_cause(&error);
                    match shape.widened_for(&reason) {
                        Some(wider) => {
                            tracing::debug!(
                                "{}: compiling on a wider engine ({wider:?}): {reason}",
                                path.display()
                            );
                            shape = wider;
                        }
                        None => return Err(LoadError::malformed(path, reason)),
                    }
                }
            }
        }
    }

    /// Load `bytes` (read from `path`) as a plugin: check, compile or take
    /// from the cache, find its kind, link it, and start one instance to ask
    /// for its info and initialise it.
    pub async fn load(
        &self,
        path: &Path,
        bytes: &[u8],
        settings: PluginSettings,
    ) -> Result<Plugin, LoadError> {
        self.load_digested(path, bytes, digest_of(bytes), settings)
            .await
    }

    /// [`Runtime::load`], for a caller that has just computed `digest`, the
    /// [`digest_of`] `bytes` (to check a pin or a signature), so that a large
    /// component is not hashed twice.
    pub async fn load_digested(
        &self,
        path: &Path,
        bytes: &[u8],
        digest: String,
        settings: PluginSettings,
    ) -> Result<Plugin, LoadError> {
        let (mut plugin, kind) = self.with_info(path, bytes, digest, settings, false).await?;
        // A first initialised instance proves that the config is accepted, and
        // stays warm for the first call.
        let lease = plugin
            .check_out(Grants::default())
            .await
            .map_err(|source| match source {
                CallError::InitRejected { error, .. } => LoadError::Init {
                    path: path.to_path_buf(),
                    reason: format!("{}: {}", error.kind, error.message),
                },
                source => LoadError::Call {
                    path: path.to_path_buf(),
                    source,
                },
            })?;
        plugin.give_back(lease);

        if kind == PluginKind::Tool {
            let tools = plugin
                .list_tools()
                .await
                .map_err(|source| LoadError::Call {
                    path: path.to_path_buf(),
                    source,
                })?;
            plugin.validators =
                compile_tool_schemas(&tools).map_err(|reason| LoadError::BadInfo {
                    path: path.to_path_buf(),
                    reason,
                })?;
            plugin.tools = tools;
        }
        Ok(plugin)
    }

    /// What the component is and says about itself, asked of an instance
    /// with no grants, no config and no `init`: for deciding whether to load
    /// it with the grants another version was given, and for describing it
    /// to a registry. Its config and grants play no part, so a plugin that
    /// needs either is inspected as well as any other.
    pub async fn inspect(
        &self,
        path: &Path,
        bytes: &[u8],
        digest: String,
    ) -> Result<Inspected, LoadError> {
        let (plugin, kind) = self
            .with_info(path, bytes, digest, PluginSettings::default(), true)
            .await?;
        let component_type = plugin.pre.component().component_type();
        let world = World {
            imports: component_type
                .imports(&plugin.engine)
                .map(|(name, _)| name.to_string())
                .collect(),
            exports: component_type
                .exports(&plugin.engine)
                .map(|(name, _)| name.to_string())
                .collect(),
        };
        Ok(Inspected {
            info: plugin.info,
            kind,
            world,
        })
    }

    /// The plugin compiled, linked and asked for its info on a bare
    /// instance, not yet initialised. `probe`: only to read the info, so a
    /// `git` import needs no grant (the instance reaches no repository).
    async fn with_info(
        &self,
        path: &Path,
        bytes: &[u8],
        digest: String,
        settings: PluginSettings,
        probe: bool,
    ) -> Result<(Plugin, PluginKind), LoadError> {
        debug_assert_eq!(digest, digest_of(bytes));
        kind::check_header(bytes, path)?;
        let bad_limits = |reason| LoadError::Limits {
            path: path.to_path_buf(),
            reason,
        };
        settings
            .limits
            .validate()
            .map_err(|e| bad_limits(e.to_string()))?;
        let (engines, component, cache_use) =
            self.compile(path, bytes, &digest, &settings.limits)?;
        let engine = engines.engine.engine();
        let kind = kind::detect(&component, engine, path)?;
        let extras = kind::extras(&component, engine);
        // Checked before linking: the linker offers `git` to everyone, so
        // the grant is what stands between a plugin and the repository.
        if extras.imports_git && !probe && (settings.git.is_none() || !settings.grants.git) {
            return Err(LoadError::GitNotGranted {
                path: path.to_path_buf(),
            });
        }
        let git = if extras.imports_git {
            settings.git.clone()
        } else {
            None
        };
        let pre = engines
            .linkers
            .pre(kind, &component, path, extras.git_workflow)?;

        let provisional: Arc<str> = settings
            .name
            .clone()
            .unwrap_or_else(|| {
                path.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .into();
        let config = settings
            .config
            .clone()
            .unwrap_or_else(|| serde_json::json!({}));
        if !config.is_object() {
            return Err(LoadError::ConfigSchema {
                path: path.to_path_buf(),
                reason: "the config must be a JSON object".into(),
            });
        }
        let mut plugin = Plugin {
            name: provisional,
            kind,
            digest: digest.into(),
            info: empty_info(),
            tools: Vec::new(),
            validators: HashMap::new(),
            config: config.to_string().into(),
            network: Arc::new(NetPolicy::new(
                settings.grants.net.clone(),
                settings.limits.max_response_kib.saturating_mul(1024),
            )),
            secret_values: RwLock::new(granted_secrets(
                &settings.grants,
                settings.secrets.as_deref(),
                path,
            )?),
            grants: settings.grants,
            added: RwLock::default(),
            generation: AtomicU64::new(0),
            may_ask: AtomicBool::new(false),
            secrets: settings.secrets.clone(),
            signer: settings.signer.clone(),
            approvals: settings.approvals.clone(),
            redactor: Arc::default(),
            limits: settings.limits.clone(),
            isolation: settings.isolation,
            engine: engine.clone(),
            _ticker: engines.engine.ticker(),
            pre,
            git,
            pool: InstancePool::new(settings.limits.max_instances as usize),
            stats: Mutex::new(LiveStats::default()),
            cache_use,
        };

        // `info` must work before `init`, so ask a bare instance first.
        let info = plugin
            .fetch_info()
            .await
            .map_err(|source| LoadError::Call {
                path: path.to_path_buf(),
                source,
            })?;
        let config_validator = validate_info(&info).map_err(|reason| LoadError::BadInfo {
            path: path.to_path_buf(),
            reason,
        })?;
        if let Some(reason) = config_validator.and_then(|v| schema_errors(&v, &config)) {
            return Err(LoadError::ConfigSchema {
                path: path.to_path_buf(),
                reason,
            });
        }
        plugin.name = settings.name.unwrap_or_else(|| info.name.clone()).into();
        plugin.info = info;
        for (name, value) in plugin.secret_values.read().unwrap().iter() {
            plugin.redactor.hide(name, value);
        }
        plugin.note_what_may_be_asked();
        Ok((plugin, kind))
    }
}

/// The values of the secrets `grants` names; each must be set.
fn granted_secrets(
    grants: &Grants,
    source: Option<&dyn SecretSource>,
    path: &Path,
) -> Result<Vec<(String, String)>, LoadError> {
    grants
        .secrets
        .iter()
        .map(|name| {
            source
                .and_then(|source| source.value(name))
                .map(|value| (name.clone(), value))
                .ok_or_else(|| LoadError::SecretNotSet {
                    path: path.to_path_buf(),
                    name: name.clone(),
                })
        })
        .collect()
}

/// Every grant in `grants`, one at a time.
fn each_grant(grants: &Grants) -> impl Iterator<Item = Grant> + '_ {
    grants
        .dirs
        .iter()
        .cloned()
        .map(Grant::Dir)
        .chain(grants.net.iter().cloned().map(Grant::Net))
        .chain(grants.env.iter().cloned().map(Grant::Env))
        .chain(grants.secrets.iter().cloned().map(Grant::Secret))
}

/// Whether `grant` is what was asked for: an answer cannot widen the
/// question into something else.
fn answers(wanted: &Wanted, grant: &Grant) -> bool {
    match (wanted, grant) {
        (
            Wanted::Dir { guest, writable },
            Grant::Dir(DirGrant {
                guest: given,
                writable: given_writable,
                ..
            }),
        ) => guest == given && (!given_writable || *writable),
        (Wanted::Variable { name }, Grant::Env(given) | Grant::Secret(given)) => name == given,
        (Wanted::Net { grant: asked }, Grant::Net(given)) => asked == given,
        _ => false,
    }
}

fn empty_info() -> PluginInfo {
    PluginInfo {
        name: String::new(),
        version: String::new(),
        description: String::new(),
        author: String::new(),
        license: String::new(),
        tags: Vec::new(),
        config_schema: None,
        requests: paracle_contract::Capabilities {
            paths: Vec::new(),
            hosts: Vec::new(),
            env: Vec::new(),
        },
    }
}

pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && !name.starts_with('-')
}

/// Check what a plugin says about itself; returns its config schema, compiled.
fn validate_info(info: &PluginInfo) -> Result<Option<jsonschema::Validator>, String> {
    if !valid_name(&info.name) {
        return Err(format!(
            "its name `{}` is not valid: use 1 to 64 lowercase letters, digits, `-` or `_`",
            info.name
        ));
    }
    if info.version.trim().is_empty() {
        return Err("it gives no version".into());
    }
    let Some(schema) = &info.config_schema else {
        return Ok(None);
    };
    let schema: serde_json::Value =
        serde_json::from_str(schema).map_err(|e| format!("its config schema is not JSON: {e}"))?;
    let validator = jsonschema::validator_for(&schema)
        .map_err(|e| format!("its config schema is invalid: {e}"))?;
    Ok(Some(validator))
}

/// The validation errors of `value`, as one line, or `None` when it is valid.
pub fn schema_errors(
    validator: &jsonschema::Validator,
    value: &serde_json::Value,
) -> Option<String> {
    // Every tool call passes through here: valid arguments take the cheap path.
    if validator.is_valid(value) {
        return None;
    }
    let errors: Vec<String> = validator
        .iter_errors(value)
        .take(3)
        .map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("at {at}: {e}")
            }
        })
        .collect();
    (!errors.is_empty()).then(|| errors.join("; "))
}

fn compile_tool_schemas(
    tools: &[ToolSpec],
) -> Result<HashMap<String, jsonschema::Validator>, String> {
    let mut validators = HashMap::new();
    for tool in tools {
        if tool.name.is_empty()
            || !tool
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "tool name `{}` is not valid: use letters, digits, `_` and `-`",
                tool.name
            ));
        }
        let schema: serde_json::Value = serde_json::from_str(&tool.input_schema)
            .map_err(|e| format!("the input schema of tool `{}` is not JSON: {e}", tool.name))?;
        let validator = jsonschema::validator_for(&schema)
            .map_err(|e| format!("the input schema of tool `{}` is invalid: {e}", tool.name))?;
        if validators.insert(tool.name.clone(), validator).is_some() {
            return Err(format!("tool `{}` is listed twice", tool.name));
        }
    }
    Ok(validators)
}

/// The exports of one live instance.
pub(crate) enum Exports {
    Provider(ProviderPlugin),
    Tool(ToolPlugin),
    Memory(MemoryPlugin),
    Observer(ObserverPlugin),
    GitWorkflow(GitWorkflowPlugin),
    Adapter(AdapterPlugin),
}

/// Every world has its own generated accessor for the shared `plugin`
/// interface; this picks the right one.
macro_rules! plugin_interface {
    ($exports:expr, |$iface:ident| $body:expr) => {
        match $exports {
            Exports::Provider(b) => {
                let $iface = b.paracle_plugin_plugin();
                $body
            }
            Exports::Tool(b) => {
                let $iface = b.paracle_plugin_plugin();
                $body
            }
            Exports::Memory(b) => {
                let $iface = b.paracle_plugin_plugin();
                $body
            }
            Exports::Observer(b) => {
                let $iface = b.paracle_plugin_plugin();
                $body
            }
            Exports::GitWorkflow(b) => {
                let $iface = b.paracle_plugin_plugin();
                $body
            }
            Exports::Adapter(b) => {
                let $iface = b.paracle_plugin_plugin();
                $body
            }
        }
    };
}

pub(crate) struct Instance {
    store: Store<StoreState>,
    exports: Exports,
    /// Which of the plugin's added grants it was made with.
    generation: u64,
    /// False when it holds something allowed for one call only.
    reusable: bool,
}

/// Grants a person allowed for a plugin while it ran. Each one starts a new
/// generation: instances made before it do not have it, and are replaced.
/// The generation is also kept in an atomic, which every call reads.
#[derive(Debug, Default)]
struct Added {
    grants: Grants,
    generation: u64,
}

/// An instance checked out for one call, with its place among the plugin's
/// `max_instances`.
pub(crate) struct Lease<'p> {
    /// Boxed, here and in the pool: an instance is a few hundred bytes, and
    /// it moves several times on every call's way out of the pool and back.
    instance: Box<Instance>,
    place: Place<'p, Box<Instance>>,
    /// When the call's deadline started.
    began: Instant,
}

pub struct Plugin {
    name: Arc<str>,
    kind: PluginKind,
    digest: Arc<str>,
    info: PluginInfo,
    tools: Vec<ToolSpec>,
    validators: HashMap<String, jsonschema::Validator>,
    config: Arc<str>,
    grants: Grants,
    /// Directories, variables and secrets a person allowed since the load.
    added: RwLock<Added>,
    /// `added`'s generation, read by every call without the lock.
    generation: AtomicU64,
    /// Whether the plugin declares a directory or variable it has not been
    /// granted, which a person at hand is asked for when a call starts.
    may_ask: AtomicBool,
    secrets: Option<Arc<dyn SecretSource>>,
    signer: Option<String>,
    approvals: Approvals,
    /// The values of the secrets it holds, by name.
    secret_values: RwLock<Vec<(String, String)>>,
    /// Hides those values in what it returns, logs and fails with.
    redactor: Arc<Redactor>,
    /// What the grants allow on the network, shared by every instance.
    network: Arc<NetPolicy>,
    limits: Limits,
    isolation: Isolation,
    engine: wasmtime::Engine,
    /// Keeps the engine's epoch ticker running as long as this plugin.
    _ticker: Arc<Ticker>,
    pre: Pre,
    /// Only for plugins that import `git` and were granted it.
    git: Option<Arc<dyn GitBackend>>,
    pool: InstancePool<Box<Instance>>,
    stats: Mutex<LiveStats>,
    cache_use: CacheUse,
}

impl Plugin {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> PluginKind {
        self.kind
    }

    pub fn digest(&self) -> &str {
        &self.digest
    }

    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// The tools of a tool plugin, as listed when it was loaded.
    pub fn tools(&self) -> &[ToolSpec] {
        &self.tools
    }

    pub fn config(&self) -> &str {
        &self.config
    }

    pub fn grants(&self) -> &Grants {
        &self.grants
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Which of its tool calls need a person's approval.
    pub fn approvals(&self) -> &Approvals {
        &self.approvals
    }

    pub fn isolation(&self) -> Isolation {
        self.isolation
    }

    pub fn cache_use(&self) -> CacheUse {
        self.cache_use
    }

    /// Statistics of the calls made in this process.
    pub fn stats(&self) -> CallStats {
        self.stats.lock().unwrap().snapshot()
    }

    fn record(&self, started: Instant, outcome: CallOutcome) {
        let elapsed = started.elapsed();
        self.stats.lock().unwrap().record(outcome, elapsed);
        if let Some(recorder) = crate::recorder::recorder() {
            recorder.record(&crate::recorder::RecordedCall {
                plugin: &self.name,
                digest: &self.digest,
                kind: self.kind.as_str(),
                outcome,
                elapsed,
            });
        }
    }

    /// Give a call its whole fuel budget; fuel left from the last call does
    /// not carry over.
    fn refuel(&self, store: &mut Store<StoreState>) {
        if let Some(fuel) = self.limits.fuel {
            store
                .set_fuel(fuel)
                .expect("plugins with a fuel limit run on the metered engine");
        }
    }

    fn deadline_ticks(&self) -> u64 {
        PluginEngine::deadline_ticks(self.limits.timeout())
    }

    /// `future` under the host's deadline: the call's own limit plus a grace
    /// period, so that the epoch deadline, which stops wasm, fires first.
    fn with_deadline<F: std::future::Future>(&self, future: F) -> Deadline<F> {
        self.with_deadline_from(Instant::now(), future)
    }

    /// [`Self::with_deadline`] for a call that `began` (when its instance
    /// was leased), which saves reading the clock again.
    fn with_deadline_from<F: std::future::Future>(&self, began: Instant, future: F) -> Deadline<F> {
        let deadline = tokio::time::Instant::from_std(began) + self.limits.timeout() + HOST_GRACE;
        let pause = AtHand::current().map(|person| person.clock().mark());
        Deadline::new(future, deadline, pause)
    }

    /// What the plugin declares in its info and the grants in force do not
    /// give it.
    fn declared_and_missing(&self) -> Vec<Wanted> {
        let (grants, _) = self.in_force(&Grants::default());
        let requests = &self.info.requests;
        // Only what can be shown plainly and granted as declared is ever
        // asked for: a path or name with control characters, or a relative
        // path, is the plugin's to fix, not a person's to read.
        let plain = |text: &str| !text.chars().any(char::is_control);
        let dirs = requests
            .paths
            .iter()
            .filter(|asked| asked.guest_path.starts_with('/') && plain(&asked.guest_path))
            .filter(|asked| {
                !grants
                    .dirs
                    .iter()
                    .any(|d| d.guest == asked.guest_path && (d.writable || !asked.writable))
            })
            .map(|asked| Wanted::Dir {
                guest: asked.guest_path.clone(),
                writable: asked.writable,
            });
        let variables = requests
            .env
            .iter()
            .filter(|name| paracle_policy::valid_variable_name(name))
            .filter(|name| !grants.env.contains(name) && !grants.secrets.contains(name))
            .map(|name| Wanted::Variable { name: name.clone() });
        dirs.chain(variables).collect()
    }

    fn note_what_may_be_asked(&self) {
        self.may_ask
            .store(!self.declared_and_missing().is_empty(), Ordering::Relaxed);
    }

    /// Ask the person at hand for each declared directory and variable the
    /// plugin lacks. Returns what was allowed for this call only; what was
    /// allowed for good is added to the plugin.
    async fn ask_for_declared(&self, person: &AtHand) -> Grants {
        let mut once = Grants::default();
        for wanted in self.declared_and_missing() {
            let reason = match &wanted {
                Wanted::Dir { guest, .. } => self
                    .info
                    .requests
                    .paths
                    .iter()
                    .find(|p| &p.guest_path == guest)
                    .map(|p| p.reason.clone()),
                _ => None,
            };
            let request = PermissionRequest {
                plugin: self.name.to_string(),
                digest: self.digest.to_string(),
                signer: self.signer.clone(),
                wanted: wanted.clone(),
                reason,
            };
            match person.permit(request).await {
                Answer::Once(grant) if answers(&wanted, &grant) => {
                    once.add(grant);
                }
                Answer::Always(grant) if answers(&wanted, &grant) => self.add_grant(grant),
                _ => {}
            }
        }
        once
    }

    /// Grant `grant` from now on, as a person allowed it. Instances made
    /// before it are replaced as they come up for a call.
    pub fn add_grant(&self, grant: Grant) {
        match grant {
            Grant::Net(host) => self.network.add(host),
            Grant::Git => {}
            grant => {
                if let Grant::Secret(name) = &grant {
                    if let Some(value) = self.secrets.as_ref().and_then(|s| s.value(name)) {
                        self.redactor.hide(name, &value);
                        self.secret_values
                            .write()
                            .unwrap()
                            .push((name.clone(), value));
                    }
                }
                let mut added = self.added.write().unwrap();
                if added.grants.add(grant) {
                    added.generation += 1;
                    self.generation.store(added.generation, Ordering::Release);
                }
                drop(added);
                self.note_what_may_be_asked();
            }
        }
    }

    /// The grants in force for an instance: the plugin's, those a person
    /// added since, and `once`, for one call. With the generation of the
    /// added ones.
    fn in_force(&self, once: &Grants) -> (Grants, u64) {
        let added = self.added.read().unwrap();
        let mut grants = self.grants.clone();
        for grant in each_grant(&added.grants).chain(each_grant(once)) {
            grants.add(grant);
        }
        (grants, added.generation)
    }

    async fn instantiate(
        &self,
        initialise: bool,
        once: &Grants,
    ) -> Result<Box<Instance>, CallError> {
        let instantiate_error = |reason: String| CallError::Instantiate {
            plugin: self.name.to_string(),
            reason,
        };
        let (grants, generation) = self.in_force(once);
        let mut secrets = self.secret_values.read().unwrap().clone();
        for name in &once.secrets {
            if let Some(value) = self.secrets.as_ref().and_then(|s| s.value(name)) {
                self.redactor.hide(name, &value);
                secrets.push((name.clone(), value));
            }
        }
        let mut store = store::new_store(
            &self.engine,
            Sandbox {
                plugin: &self.name,
                digest: &self.digest,
                config: &self.config,
                grants: &grants,
                secrets: &secrets,
                limits: &self.limits,
                network: &self.network,
                git: self.git.as_ref(),
                signer: self.signer.as_ref(),
                redactor: &self.redactor,
            },
        )
        .map_err(instantiate_error)?;
        store.set_epoch_deadline(self.deadline_ticks());
        self.refuel(&mut store);
        store.data_mut().begin_call(Instant::now());
        let started = self.with_deadline(async {
            let exports = match &self.pre {
                Pre::Provider(pre) => Exports::Provider(pre.instantiate_async(&mut store).await?),
                Pre::Tool(pre) => Exports::Tool(pre.instantiate_async(&mut store).await?),
                Pre::Memory(pre) => Exports::Memory(pre.instantiate_async(&mut store).await?),
                Pre::Observer(pre) => Exports::Observer(pre.instantiate_async(&mut store).await?),
                Pre::GitWorkflow(pre) => {
                    Exports::GitWorkflow(pre.instantiate_async(&mut store).await?)
                }
                Pre::Adapter(pre) => Exports::Adapter(pre.instantiate_async(&mut store).await?),
            };
            let init = if initialise {
                let config = self.config.to_string();
                plugin_interface!(&exports, |iface| iface
                    .call_init(&mut store, &config)
                    .await?)
            } else {
                Ok(())
            };
            Ok::<_, wasmtime::Error>((exports, init))
        });
        match started.await {
            Ok(Ok((exports, Ok(())))) => Ok(Box::new(Instance {
                store,
                exports,
                generation,
                reusable: once == &Grants::default(),
            })),
            Ok(Ok((_, Err(error)))) => Err(CallError::InitRejected {
                plugin: self.name.to_string(),
                error: PluginError::from_wit(&self.name, error),
            }),
            Ok(Err(error)) => Err(self.classify("init", error, store.data())),
            Err(_) => Err(self.timed_out("init")),
        }
    }

    async fn fetch_info(&self) -> Result<PluginInfo, CallError> {
        let started = Instant::now();
        // `info` wants a bare instance, never a pooled one; at load time the
        // pool is empty anyway.
        let (Checkout::Warm(_, place) | Checkout::Empty(place)) = self.pool.check_out().await;
        let mut instance = self.instantiate(false, &Grants::default()).await?;
        let outcome = {
            let Instance { store, exports, .. } = &mut *instance;
            self.with_deadline(async {
                plugin_interface!(&*exports, |iface| iface.call_info(&mut *store).await)
            })
            .await
        };
        let result = self
            .settle(
                Lease {
                    instance,
                    place,
                    began: Instant::now(),
                },
                "info",
                outcome,
                false,
            )
            .and_then(|info| {
                returned::check_info(&info).map_err(|over| self.over("info", over))?;
                Ok(info)
            });
        self.record(started, CallOutcome::of_plain(&result));
        result
    }

    /// Check out an instance for a call, after asking the person at hand
    /// for what the plugin declares and lacks.
    pub(crate) async fn lease(&self) -> Result<Lease<'_>, CallError> {
        // Asking is the rare path: boxed, so that it adds nothing to the
        // size of every call's future.
        if self.may_ask.load(Ordering::Relaxed) {
            if let Some(person) = AtHand::current() {
                let once = Box::pin(self.ask_for_declared(&person)).await;
                return Box::pin(self.check_out(once)).await;
            }
        }
        self.check_out(Grants::default()).await
    }

    /// Check out an instance: a warm one from the pool, or a new one when
    /// there is none, the warm one predates a grant, or the call has grants
    /// of its own.
    async fn check_out(&self, once: Grants) -> Result<Lease<'_>, CallError> {
        let generation = self.generation.load(Ordering::Acquire);
        let (mut instance, place) = match self.pool.check_out().await {
            Checkout::Warm(instance, place)
                if instance.generation == generation && once == Grants::default() =>
            {
                (instance, place)
            }
            // Boxed: inline, the instantiation future would make every call's
            // future several KiB larger, and futures are copied as they move.
            Checkout::Warm(_, place) | Checkout::Empty(place) => {
                (Box::pin(self.instantiate(true, &once)).await?, place)
            }
        };
        instance.store.set_epoch_deadline(self.deadline_ticks());
        self.refuel(&mut instance.store);
        let began = Instant::now();
        instance.store.data_mut().begin_call(began);
        Ok(Lease {
            instance,
            place,
            began,
        })
    }

    fn give_back(&self, lease: Lease<'_>) {
        if self.isolation == Isolation::Warm && lease.instance.reusable {
            let Lease {
                mut instance,
                place,
                ..
            } = lease;
            instance.store.data_mut().agent.leave();
            self.pool.check_in(instance, place);
        }
    }

    /// Turn the raw outcome of a call into a value or the host's verdict. An
    /// instance that failed is dropped: its state can no longer be trusted.
    fn settle<T>(
        &self,
        lease: Lease<'_>,
        function: &str,
        outcome: Result<wasmtime::Result<T>, TimedOut>,
        reuse: bool,
    ) -> Result<T, CallError> {
        if let Some(incident) = lease.instance.store.data().take_incident() {
            return Err(self.incident_error(function, incident));
        }
        match outcome {
            Ok(Ok(value)) => {
                if reuse {
                    self.give_back(lease);
                }
                Ok(value)
            }
            Ok(Err(error)) => Err(self.classify(function, error, lease.instance.store.data())),
            Err(_) => Err(self.timed_out(function)),
        }
    }

    fn incident_error(&self, function: &str, incident: Incident) -> CallError {
        let plugin = self.name.to_string();
        let function = function.to_string();
        match incident {
            Incident::Denied {
                capability,
                reason,
                grant,
            } => CallError::Denied {
                reason: match grant {
                    Some(grant) => {
                        format!("{reason}; grant it with `paracle plugin grant {plugin} {grant}`")
                    }
                    None => reason,
                },
                plugin,
                function,
                capability,
            },
            Incident::Limit { limit, detail } => CallError::Limit {
                plugin,
                function,
                limit,
                detail,
            },
        }
    }

    fn timed_out(&self, function: &str) -> CallError {
        CallError::Limit {
            plugin: self.name.to_string(),
            function: function.to_string(),
            limit: Limit::Time,
            detail: format!("no answer within {} ms", self.limits.timeout_ms),
        }
    }

    fn classify(&self, function: &str, error: wasmtime::Error, state: &StoreState) -> CallError {
        let plugin = self.name.to_string();
        let function = function.to_string();
        let limit = |limit: Limit, detail: String| CallError::Limit {
            plugin: plugin.clone(),
            function: function.clone(),
            limit,
            detail,
        };
        // Instantiation does not pass through `settle`, which takes it first.
        if let Some(incident) = state.take_incident() {
            return self.incident_error(&function, incident);
        }
        if error
            .downcast_ref::<wasmtime::component::ResourceTableError>()
            .is_some()
        {
            return limit(
                Limit::Handles,
                format!(
                    "held more than {} open handles (files, streams, pollables) at once",
                    store::MAX_HANDLES
                ),
            );
        }
        if let Some(trap) = error.downcast_ref::<wasmtime::Trap>() {
            match trap {
                wasmtime::Trap::Interrupt => {
                    return limit(
                        Limit::Time,
                        format!("still running after {} ms", self.limits.timeout_ms),
                    )
                }
                wasmtime::Trap::OutOfFuel => {
                    return limit(
                        Limit::Fuel,
                        format!(
                            "used all {} units of fuel",
                            self.limits.fuel.unwrap_or_default()
                        ),
                    )
                }
                wasmtime::Trap::StackOverflow => {
                    return limit(
                        Limit::Stack,
                        "the wasm stack overflowed (runaway recursion?)".into(),
                    )
                }
                _ => {}
            }
        }
        let mut reason = root_cause(&error);
        if let Some(said) = state.stderr_tail() {
            reason = format!("{reason} (the plugin said: {said})");
        }
        CallError::Trap {
            plugin,
            function,
            reason,
        }
    }

    fn check_output(&self, function: &str, bytes: usize) -> Result<(), CallError> {
        if bytes > self.limits.output_bytes() {
            return Err(CallError::Limit {
                plugin: self.name.to_string(),
                function: function.to_string(),
                limit: Limit::Output,
                detail: format!(
                    "returned {bytes} bytes, over the {} KiB allowed",
                    self.limits.max_output_kib
                ),
            });
        }
        Ok(())
    }

    fn expect_kind(&self, wanted: PluginKind) -> Result<(), CallError> {
        if self.kind != wanted {
            return Err(CallError::InvalidRequest {
                plugin: self.name.to_string(),
                message: format!("it is a {} plugin, not a {wanted} plugin", self.kind),
            });
        }
        Ok(())
    }

    /// Ask the plugin how it is doing.
    pub async fn health(&self) -> Result<HealthStatus, CallError> {
        let started = Instant::now();
        let result = async {
            let mut lease = self.lease().await?;
            let outcome = {
                let Instance { store, exports, .. } = &mut *lease.instance;
                self.with_deadline(async {
                    plugin_interface!(&*exports, |iface| iface.call_health(&mut *store).await)
                })
                .await
            };
            let mut health = self.settle(lease, "health", outcome, true)?;
            health.message = crate::error::cut_message(health.message);
            Ok(health)
        }
        .await;
        self.record(started, CallOutcome::of_plain(&result));
        result
    }
}
