//! What the runtime's tests share: [`TestHost`], a runtime with a
//! well-behaved bystander plugin, and the guests built for the tests (by
//! `paracle-guests`) loaded with chosen grants and limits.

use std::path::{Path, PathBuf};

use paracle_contract::InvocationContext;
use paracle_policy::{DirGrant, Grants, Limits};
use paracle_runtime::{LoadError, Plugin, PluginSettings, Runtime};
use serde_json::{json, Value};

/// A runtime with a well-behaved bystander plugin loaded, to show that the
/// host goes on serving after a hostile plugin's call. Made with
/// [`TestHost::builder`].
pub(crate) struct TestHost {
    runtime: Runtime,
    bystander: Plugin,
    _cache: tempfile::TempDir,
}

/// How a [`TestHost`] is made: where it keeps compiled code.
pub(crate) struct TestHostBuilder {
    cache: Option<PathBuf>,
}

impl TestHostBuilder {
    /// Keep compiled components in `dir` (a fresh temporary directory by
    /// default, so that no test sees another's cache).
    pub(crate) fn cache_dir(mut self, dir: PathBuf) -> Self {
        self.cache = Some(dir);
        self
    }

    pub(crate) async fn build(self) -> TestHost {
        let temporary = tempfile::tempdir().expect("a temporary directory");
        let cache = self.cache.unwrap_or_else(|| temporary.path().to_path_buf());
        let runtime = Runtime::new(Some(cache)).expect("engine starts");
        let bystander = load(&runtime, "text_tools.wasm", PluginSettings::default()).await;
        TestHost {
            runtime,
            bystander,
            _cache: temporary,
        }
    }
}

impl TestHost {
    pub(crate) fn builder() -> TestHostBuilder {
        TestHostBuilder { cache: None }
    }

    /// The default host: `text_tools.wasm` as the bystander, a fresh cache.
    pub(crate) async fn new() -> Self {
        Self::builder().build().await
    }

    /// The `hostile` fixture, under `limits` and `grants`.
    pub(crate) async fn hostile(&self, limits: Limits, grants: Grants) -> Plugin {
        let settings = PluginSettings {
            limits,
            grants,
            ..PluginSettings::default()
        };
        load(&self.runtime, "hostile.wasm", settings).await
    }

    /// Any guest built for the tests, loaded with `settings`.
    pub(crate) async fn plugin(&self, file: &str, settings: PluginSettings) -> Plugin {
        load(&self.runtime, file, settings).await
    }

    /// Load `bytes` as if read from `label`, and give back the verdict.
    pub(crate) async fn load_bytes(
        &self,
        label: &str,
        bytes: &[u8],
        settings: PluginSettings,
    ) -> Result<Plugin, LoadError> {
        self.runtime.load(Path::new(label), bytes, settings).await
    }

    /// The host goes on: another plugin's call right after succeeds.
    pub(crate) async fn still_serves(&self) {
        let answer = self
            .bystander
            .invoke_tool("count_vowels", &json!({"text": "still here"}), &context())
            .await
            .expect("the bystander does not trap")
            .expect("the bystander answers");
        assert_eq!(answer.to_value()["vowels"], 3);
    }
}

/// Where the guest `file`, built for the tests, is.
pub(crate) fn guest(file: &str) -> PathBuf {
    Path::new(paracle_guests::GUEST_DIR).join(file)
}

/// Load the guest `file` on `runtime`, or fail the test saying why.
pub(crate) async fn load(runtime: &Runtime, file: &str, settings: PluginSettings) -> Plugin {
    let path = guest(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    runtime
        .load(&path, &bytes, settings)
        .await
        .unwrap_or_else(|e| panic!("loading {file}: {e}"))
}

pub(crate) fn context() -> InvocationContext {
    InvocationContext {
        caller: "hostile-suite".into(),
        run_id: None,
        agent: None,
    }
}

pub(crate) fn limits(adjust: impl FnOnce(&mut Limits)) -> Limits {
    let mut limits = Limits::default();
    adjust(&mut limits);
    limits
}

/// `dir` granted at /data.
pub(crate) fn data_dir(dir: &Path, writable: bool) -> Grants {
    Grants {
        dirs: vec![DirGrant {
            host: dir.canonicalize().unwrap(),
            guest: "/data".into(),
            writable,
        }],
        ..Grants::default()
    }
}

/// Call `tool` and expect an answer.
pub(crate) async fn answer(plugin: &Plugin, tool: &str, arguments: Value) -> Value {
    plugin
        .invoke_tool(tool, &arguments, &context())
        .await
        .unwrap_or_else(|e| panic!("{tool} trapped: {e}"))
        .unwrap_or_else(|e| panic!("{tool} failed: {e}"))
        .to_value()
}

/// Settings that give a plugin `config` and nothing else.
pub(crate) fn configured(config: Value) -> PluginSettings {
    PluginSettings {
        config: Some(config),
        ..PluginSettings::default()
    }
}
