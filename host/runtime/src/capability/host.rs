//! The `host` interface every plugin imports: its config, and log lines,
//! counted against the plugin's log limit and escaped before they reach the
//! host's log.

use std::sync::Arc;

use paracle_base::shown;
use paracle_contract::imports::{host, types};
use paracle_contract::LogLevel;
use paracle_policy::Limit;
use wasmtime::component::{HasData, Linker};

use crate::incident::{Incident, Incidents};
use crate::secrets::Redactor;

/// The host capability of one store.
pub(crate) struct HostCtx {
    plugin: Arc<str>,
    config: Arc<str>,
    log_limit: usize,
    log_used: usize,
    incidents: Incidents,
    redactor: Arc<Redactor>,
}

impl HostCtx {
    pub(crate) fn new(
        plugin: Arc<str>,
        config: Arc<str>,
        log_limit: usize,
        incidents: Incidents,
        redactor: Arc<Redactor>,
    ) -> Self {
        HostCtx {
            plugin,
            config,
            log_limit,
            log_used: 0,
            incidents,
            redactor,
        }
    }

    /// Each call gets its own log budget.
    pub(crate) fn begin_call(&mut self) {
        self.log_used = 0;
    }
}

/// The [`HasData`] marker under which `host` and `types` see only [`HostCtx`].
pub(crate) struct Host;

impl HasData for Host {
    type Data<'a> = &'a mut HostCtx;
}

/// Link `types` and `host` to the store's [`HostCtx`].
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut HostCtx,
) -> wasmtime::Result<()> {
    types::add_to_linker::<T, Host>(linker, get)?;
    host::add_to_linker::<T, Host>(linker, get)
}

impl types::Host for HostCtx {}

impl host::Host for HostCtx {
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
        let message = self.redactor.scrub(&message);
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
