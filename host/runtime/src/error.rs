//! Errors at the library boundary.
//!
//! A plugin call has two layers of failure, kept apart on purpose:
//! [`CallError`] is the host's verdict (the plugin trapped, hit a limit, or
//! could not be run), and [`PluginError`] is the plugin's own answer. Both
//! name the plugin.

use std::fmt;
use std::path::{Path, PathBuf};

use paracle_contract::WitError;
use paracle_policy::Limit;

/// The kinds of error a plugin can answer with, as in the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginErrorKind {
    InvalidInput,
    NotFound,
    Denied,
    Timeout,
    Unavailable,
    Internal,
}

impl fmt::Display for PluginErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PluginErrorKind::InvalidInput => "invalid input",
            PluginErrorKind::NotFound => "not found",
            PluginErrorKind::Denied => "denied",
            PluginErrorKind::Timeout => "timeout",
            PluginErrorKind::Unavailable => "unavailable",
            PluginErrorKind::Internal => "internal error",
        })
    }
}

/// The longest plugin error or health message the host keeps; longer ones
/// are cut, so that what is stored, printed or sent stays small.
pub const MAX_MESSAGE: usize = 4096;

/// `message`, cut to [`MAX_MESSAGE`] bytes on a character boundary, saying
/// how much was left out.
pub fn cut_message(mut message: String) -> String {
    if message.len() <= MAX_MESSAGE {
        return message;
    }
    let total = message.len();
    let mut end = MAX_MESSAGE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message.truncate(end);
    message.push_str(&format!("… ({} more bytes)", total - end));
    message
}

/// A plugin's own error answer.
#[derive(Debug, Clone, thiserror::Error, serde::Serialize)]
#[error("plugin `{plugin}` answered {kind}: {message}")]
pub struct PluginError {
    pub plugin: String,
    pub kind: PluginErrorKind,
    pub message: String,
}

impl PluginError {
    /// A plugin's error as the contract carries it, named after `plugin`.
    pub fn from_wit(plugin: &str, error: WitError) -> Self {
        let (kind, message) = match error {
            WitError::InvalidInput(m) => (PluginErrorKind::InvalidInput, m),
            WitError::NotFound(m) => (PluginErrorKind::NotFound, m),
            WitError::Denied(m) => (PluginErrorKind::Denied, m),
            WitError::Timeout(m) => (PluginErrorKind::Timeout, m),
            WitError::Unavailable(m) => (PluginErrorKind::Unavailable, m),
            WitError::Internal(m) => (PluginErrorKind::Internal, m),
        };
        PluginError {
            plugin: plugin.to_string(),
            kind,
            message: cut_message(message),
        }
    }

    /// The error as a plugin sees it, when a routed call passes it on.
    pub fn to_wit(&self) -> WitError {
        let message = format!("{}: {}", self.plugin, self.message);
        match self.kind {
            PluginErrorKind::InvalidInput => WitError::InvalidInput(message),
            PluginErrorKind::NotFound => WitError::NotFound(message),
            PluginErrorKind::Denied => WitError::Denied(message),
            PluginErrorKind::Timeout => WitError::Timeout(message),
            PluginErrorKind::Unavailable => WitError::Unavailable(message),
            PluginErrorKind::Internal => WitError::Internal(message),
        }
    }
}

/// Why the host could not get an answer from a plugin.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("plugin `{plugin}` trapped in `{function}`: {reason}")]
    Trap {
        plugin: String,
        function: String,
        reason: String,
    },

    #[error("plugin `{plugin}` exceeded its {limit} limit in `{function}`: {detail} ({})", limit.how_to_raise(plugin))]
    Limit {
        plugin: String,
        function: String,
        limit: Limit,
        detail: String,
    },

    /// The plugin tried to reach something it was not granted. Reported
    /// whatever the plugin made of the refusal.
    #[error("plugin `{plugin}` was denied {capability} in `{function}`: {reason}")]
    Denied {
        plugin: String,
        function: String,
        capability: String,
        reason: String,
    },

    #[error("plugin `{plugin}`: {message}")]
    InvalidRequest { plugin: String, message: String },

    #[error("plugin `{plugin}` could not be started: {reason}")]
    Instantiate { plugin: String, reason: String },

    /// `init` answered with an error: the plugin refuses its config.
    #[error("plugin `{plugin}` rejected its config: {}: {}", .error.kind, .error.message)]
    InitRejected { plugin: String, error: PluginError },
}

impl CallError {
    pub fn plugin(&self) -> &str {
        match self {
            CallError::Trap { plugin, .. }
            | CallError::Limit { plugin, .. }
            | CallError::Denied { plugin, .. }
            | CallError::InvalidRequest { plugin, .. }
            | CallError::Instantiate { plugin, .. }
            | CallError::InitRejected { plugin, .. } => plugin,
        }
    }
}

/// A call's result: the outer error is the host's verdict, the inner one the
/// plugin's own answer.
pub type CallResult<T> = Result<Result<T, PluginError>, CallError>;

/// Why a file could not be loaded as a plugin. Every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("`{path}` is empty; build the plugin with `cargo build --target wasm32-wasip2 --release` and load the .wasm file it writes")]
    Empty { path: PathBuf },

    #[error("`{path}` is not a WebAssembly file (it does not start with `\\0asm`); load the .wasm component built with `--target wasm32-wasip2`")]
    NotWasm { path: PathBuf },

    #[error("`{path}` is a core WebAssembly module, not a component; build it with `--target wasm32-wasip2` (not wasm32-unknown-unknown or wasm32-wasip1)")]
    CoreModule { path: PathBuf },

    #[error("`{path}` is not a valid component ({reason}); the file may be truncated or corrupt, so rebuild it")]
    Malformed { path: PathBuf, reason: String },

    #[error("`{path}` uses a WebAssembly feature this host does not run ({reason}); rebuild it for wasm32-wasip2 without that proposal (the host runs the component model's async ABI, but not its error contexts, threads, GC or stackful calls)")]
    Unsupported { path: PathBuf, reason: String },

    #[error("`{path}` needs more than the host allows any plugin ({reason}); this is a fixed limit of the host, not a fault in the file")]
    HostLimit { path: PathBuf, reason: String },

    #[error("`{path}` needs an engine the host could not start: {reason}")]
    Engine { path: PathBuf, reason: String },

    #[error("`{path}` was built against {found}, but this host speaks paracle:plugin@{expected}; rebuild it with a paracle-sdk for {expected}")]
    ContractVersion {
        path: PathBuf,
        found: String,
        expected: String,
    },

    #[error("`{path}` exports no Paracle world (it exports: {exports}); a plugin must export `paracle:plugin/plugin` and one of provider, tool, memory, observer or adapter, as paracle-sdk's `export!` does")]
    NoWorld { path: PathBuf, exports: String },

    #[error("`{path}` exports more than one kind ({kinds}); a plugin is exactly one of provider, tool, memory, observer or adapter")]
    ManyKinds { path: PathBuf, kinds: String },

    #[error("`{path}` imports `{import}`, which a {kind} plugin may not use; remove that dependency from the plugin")]
    ForbiddenImport {
        path: PathBuf,
        kind: String,
        import: String,
    },

    #[error("`{path}` imports the `git` interface, which it was not granted; if you trust it with this project's repository, load it with `--grant git`")]
    GitNotGranted { path: PathBuf },

    #[error(
        "`{path}` does not match the contract: {reason}; rebuild it with the current paracle-sdk"
    )]
    Link { path: PathBuf, reason: String },

    #[error("`{path}` is granted the secret `{name}`, which this user has not set; set it with `paracle secret set {name}`, or revoke the grant with `paracle plugin revoke PLUGIN secret:{name}`")]
    SecretNotSet { path: PathBuf, name: String },

    #[error("plugin at `{path}` failed to start: {source}")]
    Call { path: PathBuf, source: CallError },

    #[error("plugin at `{path}` rejected its config ({reason}); fix the config given with `--config` or in paracle.toml")]
    Init { path: PathBuf, reason: String },

    #[error("the config for `{path}` does not match the plugin's config schema: {reason}")]
    ConfigSchema { path: PathBuf, reason: String },

    #[error("plugin at `{path}` describes itself badly: {reason}")]
    BadInfo { path: PathBuf, reason: String },

    #[error("`{path}` cannot run with the limits it was given: {reason}; change them with the load flags, `paracle plugin limit` or paracle.toml")]
    Limits { path: PathBuf, reason: String },
}

impl LoadError {
    /// A component wasmtime refused to compile on every engine shape the
    /// host has: one that needs a proposal the host leaves off is told
    /// apart from one that is broken.
    pub(crate) fn malformed(path: &Path, reason: String) -> Self {
        let path = path.to_path_buf();
        let needs_feature = reason.contains("feature") && reason.contains("requires")
            || reason.contains("support is not enabled");
        if needs_feature {
            LoadError::Unsupported { path, reason }
        } else if reason.contains("pooling allocator") {
            LoadError::HostLimit { path, reason }
        } else {
            LoadError::Malformed { path, reason }
        }
    }
}

/// Why the runtime could not start: the engine or its linkers could not be
/// made with this configuration, or the code cache could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the plugin engine: {0}")]
pub struct EngineError(pub(crate) String);

/// A wasmtime error chain as one line. The wasm backtrace that wasmtime adds
/// as context is left out: it spans many lines and names only function
/// indices, which mean nothing to an operator.
pub(crate) fn root_cause(error: &wasmtime::Error) -> String {
    let backtrace = error
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .map(ToString::to_string);
    let mut chain: Vec<String> = error
        .chain()
        .map(|e| e.to_string())
        .filter(|message| Some(message) != backtrace.as_ref())
        .map(|message| message.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    chain.dedup();
    chain.join(": ")
}
