//! The default plugins, built from `sample-plugins/` by the build script and
//! embedded in the binary so that `paracle` works out of the box, offline.

use paracle_runtime::PluginKind;

pub struct Builtin {
    pub name: &'static str,
    pub kind: PluginKind,
    pub bytes: &'static [u8],
    /// A directory under `.paracle/` granted at this guest path, read-write.
    pub workdir: Option<(&'static str, &'static str)>,
    /// Granted the `git` interface on the project's repository.
    pub git: bool,
}

macro_rules! guest {
    ($file:literal) => {
        include_bytes!(concat!(env!("PARACLE_SAMPLE_DIR"), "/", $file))
    };
}

pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "mock-provider",
        kind: PluginKind::Provider,
        bytes: guest!("mock_provider.wasm"),
        workdir: None,
        git: false,
    },
    Builtin {
        name: "text-tools",
        kind: PluginKind::Tool,
        bytes: guest!("text_tools.wasm"),
        workdir: None,
        git: false,
    },
    Builtin {
        name: "fs-tools",
        kind: PluginKind::Tool,
        bytes: guest!("fs_tools.wasm"),
        workdir: Some(("workspace", "/workspace")),
        git: false,
    },
    Builtin {
        name: "kv-memory",
        kind: PluginKind::Memory,
        bytes: guest!("kv_memory.wasm"),
        workdir: Some(("memory", "/data")),
        git: false,
    },
    Builtin {
        name: "metrics-collector",
        kind: PluginKind::Observer,
        bytes: guest!("metrics_collector.wasm"),
        workdir: None,
        git: false,
    },
    Builtin {
        name: "agent-runner",
        kind: PluginKind::Adapter,
        bytes: guest!("agent_runner.wasm"),
        workdir: None,
        git: false,
    },
    Builtin {
        name: "git-workflow",
        kind: PluginKind::Observer,
        bytes: guest!("git_workflow.wasm"),
        workdir: None,
        git: true,
    },
];

/// The default plugin of each role, used when nothing else is named.
pub const DEFAULT_PROVIDER: &str = "mock-provider";
pub const DEFAULT_ADAPTER: &str = "agent-runner";
pub const DEFAULT_MEMORY: &str = "kv-memory";
pub const DEFAULT_TOOLS: &[&str] = &["text-tools"];

pub fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}
