//! What the hostile-plugin tests share: a host with a well-behaved
//! bystander plugin, and the `hostile` fixture loaded with chosen limits.

#[allow(dead_code)] // only the network tests serve HTTP
pub mod fake_http;

use std::path::Path;

use paracle::plugin::{Plugin, PluginSettings, Runtime};
use paracle::sandbox::{DirGrant, Grants, Limits};
use paracle::InvocationContext;
use serde_json::{json, Value};

const GUESTS: &str = env!("PARACLE_GUEST_DIR");

pub struct Host {
    runtime: Runtime,
    bystander: Plugin,
    _cache: tempfile::TempDir,
}

impl Host {
    pub async fn new() -> Self {
        let cache = tempfile::tempdir().unwrap();
        let runtime = Runtime::new(Some(cache.path().to_path_buf())).expect("engine starts");
        let bystander = load(&runtime, "text_tools.wasm", PluginSettings::default()).await;
        Host {
            runtime,
            bystander,
            _cache: cache,
        }
    }

    #[allow(dead_code)] // the provider tests load other guests
    pub async fn hostile(&self, limits: Limits, grants: Grants) -> Plugin {
        let settings = PluginSettings {
            limits,
            grants,
            ..PluginSettings::default()
        };
        load(&self.runtime, "hostile.wasm", settings).await
    }

    /// Any guest built for the tests, loaded with `settings`.
    #[allow(dead_code)] // not every test binary loads other guests
    pub async fn plugin(&self, file: &str, settings: PluginSettings) -> Plugin {
        load(&self.runtime, file, settings).await
    }

    /// Load `bytes` as if read from `label`, and give back the verdict.
    #[allow(dead_code)] // only the load-time tests load raw bytes
    pub async fn load_bytes(
        &self,
        label: &str,
        bytes: &[u8],
        settings: PluginSettings,
    ) -> Result<Plugin, paracle::error::LoadError> {
        self.runtime.load(Path::new(label), bytes, settings).await
    }

    /// The host goes on: another plugin's call right after succeeds.
    pub async fn still_serves(&self) {
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
pub fn guest(file: &str) -> std::path::PathBuf {
    Path::new(GUESTS).join(file)
}

async fn load(runtime: &Runtime, file: &str, settings: PluginSettings) -> Plugin {
    let path = guest(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    runtime
        .load(&path, &bytes, settings)
        .await
        .unwrap_or_else(|e| panic!("loading {file}: {e}"))
}

pub fn context() -> InvocationContext {
    InvocationContext {
        caller: "hostile-suite".into(),
        run_id: None,
        agent: None,
    }
}

#[allow(dead_code)] // the provider tests keep the default limits
pub fn limits(adjust: impl FnOnce(&mut Limits)) -> Limits {
    let mut limits = Limits::default();
    adjust(&mut limits);
    limits
}

/// `dir` granted at /data.
#[allow(dead_code)] // not every test binary grants directories
pub fn data_dir(dir: &Path, writable: bool) -> Grants {
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
#[allow(dead_code)] // not every test binary expects answers
pub async fn answer(plugin: &Plugin, tool: &str, arguments: Value) -> Value {
    plugin
        .invoke_tool(tool, &arguments, &context())
        .await
        .unwrap_or_else(|e| panic!("{tool} trapped: {e}"))
        .unwrap_or_else(|e| panic!("{tool} failed: {e}"))
        .to_value()
}
