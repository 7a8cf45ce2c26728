//! A Paracle project: where it keeps things ([`Paths`]), its settings
//! (`.paracle/config.toml`, read once into [`Settings`]), its plugins and
//! their pinned digests, grants and limits ([`Registry`]), signatures and the
//! trust list ([`signing`]), and the built-in plugins this binary embeds
//! ([`defaults`]).

pub mod defaults;
mod error;
mod paths;
mod registry;
pub mod settings;
pub mod signing;

pub use error::RegistryError;
pub use paths::Paths;
pub use registry::{Entry, Known, Origin, Registry, RequestedDir, Requests, Source};
pub use settings::{GitSettings, Settings, SettingsError};
