//! Errors of the project layer: its registry and project files.

use std::path::PathBuf;

use paracle_policy::PolicyError;
use paracle_runtime::LoadError;

use crate::settings::SettingsError;
use crate::signing::SigningError;

/// Errors of the plugin registry and project files.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Load(#[from] LoadError),

    #[error(transparent)]
    Signing(#[from] SigningError),

    #[error(transparent)]
    Policy(#[from] PolicyError),

    #[error("no plugin named `{0}`; see `paracle plugin list`")]
    UnknownPlugin(String),

    #[error("a plugin named `{name}` is already loaded from {source_desc}; pick another name with `--name`, or `paracle plugin reload {name}`")]
    NameTaken { name: String, source_desc: String },

    #[error("`{name}` is a built-in plugin and cannot be {action}; load your own plugin under that name to replace it")]
    Builtin { name: String, action: &'static str },

    #[error("the file of plugin `{name}` changed since it was loaded (pinned {pinned}, now {found}); run `paracle plugin reload {name}` to accept the new version")]
    DigestMismatch {
        name: String,
        pinned: String,
        found: String,
    },

    #[error("{file}: {message}")]
    Config { file: PathBuf, message: String },

    /// `.paracle/config.toml` (`file:line: message`).
    #[error(transparent)]
    Settings(#[from] SettingsError),

    #[error("cannot write {file}: {source}")]
    Write {
        file: PathBuf,
        source: std::io::Error,
    },

    #[error("plugin `{name}`: {message}")]
    Invalid { name: String, message: String },
}
