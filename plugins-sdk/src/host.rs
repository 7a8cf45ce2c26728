//! What the host offers every plugin: logging and its config.

use crate::bindings::adapter::paracle::plugin::host as imports;
pub use crate::types::LogLevel;

/// Write a line to the host's log, tagged with the plugin's name.
pub fn log(level: LogLevel, message: impl AsRef<str>) {
    imports::log(level, message.as_ref());
}

pub fn trace(message: impl AsRef<str>) {
    log(LogLevel::Trace, message)
}

pub fn debug(message: impl AsRef<str>) {
    log(LogLevel::Debug, message)
}

pub fn info(message: impl AsRef<str>) {
    log(LogLevel::Info, message)
}

pub fn warn(message: impl AsRef<str>) {
    log(LogLevel::Warn, message)
}

pub fn error(message: impl AsRef<str>) {
    log(LogLevel::Error, message)
}

/// The config the operator gave this plugin (`{}` when none).
pub fn config() -> serde_json::Value {
    serde_json::from_str(&raw_config())
        .unwrap_or_else(|_| serde_json::Value::Object(Default::default()))
}

pub(crate) fn raw_config() -> String {
    imports::config()
}
