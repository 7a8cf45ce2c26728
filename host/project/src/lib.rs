//! A Paracle project: where it keeps things ([`Paths`]), its settings
//! (`.paracle/config.toml`, read once into [`Settings`]), its plugins and
//! their pinned digests, grants and limits ([`Registry`]), signatures and the
//! trust list ([`signing`]), and the built-in plugins this binary embeds
//! ([`defaults`]).

pub mod audit;
pub mod defaults;
mod error;
mod paths;
pub mod prompts;
mod registry;
pub mod secrets;
pub mod settings;
pub mod signing;
mod user_config;

pub use audit::{AuditAction, AuditLog, AuditRecord};
pub use error::RegistryError;
pub use paths::Paths;
pub use prompts::{Asker, CallQuestion, Choice, Gatekeeper, PromptPolicy, Question, Refusals};
pub use registry::{Component, Entry, Known, Origin, Registry, RequestedDir, Requests, Source};
pub use secrets::SecretStore;
pub use settings::{ExecutorKind, ExecutorSettings, GitSettings, Settings, SettingsError};
pub use user_config::{RegistryDecl, UserConfig};
