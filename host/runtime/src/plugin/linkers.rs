//! One linker per kind, with the capabilities the store composes
//! (`crate::store::add_to_linker`). A component that imports anything else
//! is refused at load.

use std::collections::HashMap;
use std::path::Path;

use wasmtime::component::{Component, Linker};
use wasmtime::Engine;

use paracle_contract::{
    AdapterPluginPre, GitWorkflowPluginPre, MemoryPluginPre, ObserverPluginPre, ProviderPluginPre,
    ToolPluginPre,
};

use super::kind::PluginKind;
use crate::error::{root_cause, LoadError};
use crate::store::{self, StoreState};

/// A pre-linked component of one kind.
pub(crate) enum Pre {
    Provider(ProviderPluginPre<StoreState>),
    Tool(ToolPluginPre<StoreState>),
    Memory(MemoryPluginPre<StoreState>),
    Observer(ObserverPluginPre<StoreState>),
    /// An observer that also exports `git-workflow`.
    GitWorkflow(GitWorkflowPluginPre<StoreState>),
    Adapter(AdapterPluginPre<StoreState>),
}

impl Pre {
    pub(crate) fn component(&self) -> &Component {
        match self {
            Pre::Provider(pre) => pre.instance_pre().component(),
            Pre::Tool(pre) => pre.instance_pre().component(),
            Pre::Memory(pre) => pre.instance_pre().component(),
            Pre::Observer(pre) => pre.instance_pre().component(),
            Pre::GitWorkflow(pre) => pre.instance_pre().component(),
            Pre::Adapter(pre) => pre.instance_pre().component(),
        }
    }
}

pub(crate) struct Linkers {
    by_kind: HashMap<PluginKind, Linker<StoreState>>,
}

impl Linkers {
    pub(crate) fn new(engine: &Engine) -> wasmtime::Result<Self> {
        let mut by_kind = HashMap::new();
        for kind in PluginKind::ALL {
            let mut linker = Linker::new(engine);
            store::add_to_linker(&mut linker, kind == PluginKind::Adapter)?;
            by_kind.insert(kind, linker);
        }
        Ok(Linkers { by_kind })
    }

    pub(crate) fn pre(
        &self,
        kind: PluginKind,
        component: &Component,
        path: &Path,
        git_workflow: bool,
    ) -> Result<Pre, LoadError> {
        let linker = &self.by_kind[&kind];
        let instance_pre = linker.instantiate_pre(component).map_err(|error| {
            let message = root_cause(&error);
            match missing_import(&message) {
                Some(import) => LoadError::ForbiddenImport {
                    path: path.to_path_buf(),
                    kind: kind.to_string(),
                    import,
                },
                None => LoadError::Link {
                    path: path.to_path_buf(),
                    reason: message,
                },
            }
        })?;
        let link = |error: wasmtime::Error| LoadError::Link {
            path: path.to_path_buf(),
            reason: root_cause(&error),
        };
        Ok(match kind {
            PluginKind::Provider => {
                Pre::Provider(ProviderPluginPre::new(instance_pre).map_err(link)?)
            }
            PluginKind::Tool => Pre::Tool(ToolPluginPre::new(instance_pre).map_err(link)?),
            PluginKind::Memory => Pre::Memory(MemoryPluginPre::new(instance_pre).map_err(link)?),
            PluginKind::Observer if git_workflow => {
                Pre::GitWorkflow(GitWorkflowPluginPre::new(instance_pre).map_err(link)?)
            }
            PluginKind::Observer => {
                Pre::Observer(ObserverPluginPre::new(instance_pre).map_err(link)?)
            }
            PluginKind::Adapter => Pre::Adapter(AdapterPluginPre::new(instance_pre).map_err(link)?),
        })
    }
}

/// wasmtime names an unsatisfied import as "... import `NAME` ..."; pull out
/// the first backquoted name.
fn missing_import(message: &str) -> Option<String> {
    if !message.contains("matching implementation was not found")
        && !message.contains("not defined")
    {
        return None;
    }
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(message[start..end].to_string())
}
