//! A plugin's kind, found from what its component exports.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use wasmtime::component::Component;
use wasmtime::Engine;

use crate::error::LoadError;
use paracle_contract::{CONTRACT_PACKAGE, CONTRACT_VERSION, GIT_INTERFACE};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    Provider,
    Tool,
    Memory,
    Observer,
    Adapter,
}

impl PluginKind {
    pub const ALL: [PluginKind; 5] = [
        PluginKind::Provider,
        PluginKind::Tool,
        PluginKind::Memory,
        PluginKind::Observer,
        PluginKind::Adapter,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Provider => "provider",
            PluginKind::Tool => "tool",
            PluginKind::Memory => "memory",
            PluginKind::Observer => "observer",
            PluginKind::Adapter => "adapter",
        }
    }

    /// The interface a plugin of this kind exports besides `plugin`.
    fn interface(self) -> &'static str {
        self.as_str()
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind name that is none of the five.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown kind `{0}`; expected provider, tool, memory, observer or adapter")]
pub struct UnknownKind(String);

impl FromStr for PluginKind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PluginKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownKind(s.to_string()))
    }
}

/// Split `paracle:plugin/tool@0.1.0` into (`tool`, `0.1.0`).
fn contract_export(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix(CONTRACT_PACKAGE)?.strip_prefix('/')?;
    Some(rest.split_once('@').unwrap_or((rest, "")))
}

/// What a component exports and imports besides its kind.
pub(crate) struct Extras {
    /// It exports `git-workflow`, the policy behind `paracle git`.
    pub git_workflow: bool,
    /// It imports the `git` interface, which needs the `git` grant.
    pub imports_git: bool,
}

pub(crate) fn extras(component: &Component, engine: &Engine) -> Extras {
    let ty = component.component_type();
    let git_workflow = ty
        .exports(engine)
        .any(|(name, _)| contract_export(name).is_some_and(|(i, _)| i == "git-workflow"));
    // Any version counts: wasmtime links imports by semver, so a component
    // asking for `git@0.1.7` would reach the `git@0.1.0` the linker offers.
    let imports_git = ty.imports(engine).any(|(name, _)| {
        name.strip_prefix(GIT_INTERFACE)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('@'))
    });
    Extras {
        git_workflow,
        imports_git,
    }
}

pub(crate) fn detect(
    component: &Component,
    engine: &Engine,
    path: &Path,
) -> Result<PluginKind, LoadError> {
    let names: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();

    let mut other_versions: Vec<&str> = names
        .iter()
        .filter_map(|n| contract_export(n))
        .map(|(_, version)| version)
        .filter(|v| *v != CONTRACT_VERSION)
        .collect();
    other_versions.dedup();
    if let Some(version) = other_versions.first() {
        let found = if version.is_empty() {
            format!("an unversioned {CONTRACT_PACKAGE}")
        } else {
            format!("{CONTRACT_PACKAGE}@{version}")
        };
        return Err(LoadError::ContractVersion {
            path: path.to_path_buf(),
            found,
            expected: CONTRACT_VERSION.to_string(),
        });
    }

    let exported: Vec<&str> = names
        .iter()
        .filter_map(|n| contract_export(n))
        .map(|(i, _)| i)
        .collect();
    let kinds: Vec<PluginKind> = PluginKind::ALL
        .into_iter()
        .filter(|k| exported.contains(&k.interface()))
        .collect();
    let no_world = || LoadError::NoWorld {
        path: path.to_path_buf(),
        exports: if names.is_empty() {
            "nothing".to_string()
        } else {
            names.join(", ")
        },
    };
    if !exported.contains(&"plugin") {
        return Err(no_world());
    }
    match kinds.as_slice() {
        [kind] => Ok(*kind),
        [] => Err(no_world()),
        many => Err(LoadError::ManyKinds {
            path: path.to_path_buf(),
            kinds: many
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Refuse bytes that are not a component before wasmtime sees them, with a
/// message that says what the file is instead.
pub(crate) fn check_header(bytes: &[u8], path: &Path) -> Result<(), LoadError> {
    const MAGIC: &[u8] = b"\0asm";
    if bytes.is_empty() {
        return Err(LoadError::Empty {
            path: path.to_path_buf(),
        });
    }
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(LoadError::NotWasm {
            path: path.to_path_buf(),
        });
    }
    // Bytes 4..8 are a version and a layer: layer 0 is a core module, layer 1
    // a component.
    match bytes[6..8] {
        [0, 0] => Err(LoadError::CoreModule {
            path: path.to_path_buf(),
        }),
        [1, 0] => Ok(()),
        _ => Err(LoadError::Malformed {
            path: path.to_path_buf(),
            reason: "unknown WebAssembly encoding version".into(),
        }),
    }
}
