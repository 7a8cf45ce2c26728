//! One linker per kind: WASI and `wasi:http` (deny-by-default through each
//! store's context and network policy),
//! the `host` interface, the `git` interface (which only plugins granted
//! `git` get past loading to use), and for adapters the routed provider, tool
//! and memory imports. A component that imports anything else is refused at
//! load.

use std::collections::HashMap;
use std::path::Path;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::Engine;

use super::{PluginKind, Pre};
use crate::bindings::{
    add_git_to_linker, AdapterPlugin, AdapterPluginPre, GitWorkflowPluginPre, MemoryPlugin,
    MemoryPluginPre, ObserverPlugin, ObserverPluginPre, ProviderPlugin, ProviderPluginPre,
    ToolPlugin, ToolPluginPre,
};
use crate::error::LoadError;
use crate::net::CountedSockets;
use crate::sandbox::StoreState;
use wasmtime_wasi::p2::bindings::sockets::{tcp_create_socket, udp_create_socket};

pub(crate) struct Linkers {
    by_kind: HashMap<PluginKind, Linker<StoreState>>,
}

impl Linkers {
    pub(crate) fn new(engine: &Engine) -> wasmtime::Result<Self> {
        let mut by_kind = HashMap::new();
        for kind in PluginKind::ALL {
            let mut linker = Linker::new(engine);
            wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
            // Sockets are made through the host's count instead.
            linker.allow_shadowing(true);
            tcp_create_socket::add_to_linker::<_, CountedSockets>(
                &mut linker,
                StoreState::counted_sockets,
            )?;
            udp_create_socket::add_to_linker::<_, CountedSockets>(
                &mut linker,
                StoreState::counted_sockets,
            )?;
            linker.allow_shadowing(false);
            crate::sandbox::count_open_files(&mut linker)?;
            wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
            match kind {
                PluginKind::Provider => {
                    ProviderPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?
                }
                PluginKind::Tool => ToolPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?,
                PluginKind::Memory => {
                    MemoryPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?
                }
                PluginKind::Observer => {
                    ObserverPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?
                }
                PluginKind::Adapter => {
                    AdapterPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?
                }
            }
            add_git_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
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
            let message = super::root_cause(&error);
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
            reason: super::root_cause(&error),
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
