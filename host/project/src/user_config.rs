//! The per-user settings (`config.toml` beside the trust list): where
//! templates are searched for, which registries are reached over plain
//! HTTP, and what a person may be asked to grant (`[prompts]`). Never in
//! the project: a project someone else wrote must not be able to point this
//! user at another registry, turn off TLS, or widen what can be asked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use paracle_base::strict_toml;

use crate::error::RegistryError;
use crate::prompts::PromptPolicy;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// `HOST[:PORT]` of registries reached over plain HTTP. Loopback ones
    /// always are.
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// Where `template search` and `template install NAME` look, by name.
    #[serde(default)]
    pub registries: BTreeMap<String, RegistryDecl>,
    /// What a person may be asked for when a plugin is denied.
    #[serde(default)]
    pub prompts: PromptPolicy,
    #[serde(skip)]
    pub file: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryDecl {
    /// `HOST[:PORT][/NAMESPACE]`: templates are the repositories under it.
    pub location: String,
    /// The templates' repositories under the namespace, by name, for a
    /// registry that does not list its repositories (GHCR and Docker Hub
    /// have no catalog API). Empty: ask the registry's catalog.
    #[serde(default)]
    pub repositories: Vec<String>,
}

impl RegistryDecl {
    /// The registry host and the namespace under it.
    pub fn split(&self) -> (&str, &str) {
        let location = self.location.trim_start_matches("oci://");
        let location = location.trim_end_matches('/');
        location.split_once('/').unwrap_or((location, ""))
    }
}

impl UserConfig {
    pub fn load(file: &Path) -> Result<Self, RegistryError> {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(UserConfig {
                    file: file.to_path_buf(),
                    ..UserConfig::default()
                })
            }
            Err(e) => return Err(config_error(file, e.to_string())),
        };
        let mut config: UserConfig =
            strict_toml::parse(&text).map_err(|e| config_error(file, e.to_string()))?;
        config.file = file.to_path_buf();
        for (name, registry) in &config.registries {
            if !paracle_runtime::valid_name(name) {
                return Err(config_error(
                    file,
                    format!("registry `{name}`: names are 1 to 64 lowercase letters, digits, `-` or `_`"),
                ));
            }
            let (host, _) = registry.split();
            if host.is_empty() || !(host.contains('.') || host.contains(':') || host == "localhost")
            {
                return Err(config_error(
                    file,
                    format!(
                        "registry `{name}`: location `{}` names no host; write HOST[:PORT][/NAMESPACE]",
                        registry.location
                    ),
                ));
            }
        }
        Ok(config)
    }

    pub fn is_insecure(&self, registry: &str) -> bool {
        self.insecure_registries.iter().any(|r| r == registry)
    }
}

fn config_error(file: &Path, message: impl Into<String>) -> RegistryError {
    RegistryError::Config {
        file: file.to_path_buf(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_refused_with_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        assert!(UserConfig::load(&file).unwrap().registries.is_empty());
        std::fs::write(
            &file,
            "insecure_registries = [\"lan:5000\"]\n[registries.team]\nlocation = \"lan:5000/templates\"\n",
        )
        .unwrap();
        let config = UserConfig::load(&file).unwrap();
        assert!(config.is_insecure("lan:5000"));
        assert_eq!(config.registries["team"].split(), ("lan:5000", "templates"));
        std::fs::write(&file, "[registries.team]\nlocation = \"x:1\"\nurl = 2\n").unwrap();
        let error = UserConfig::load(&file).unwrap_err().to_string();
        assert!(
            error.contains("config.toml") && error.contains("line 3"),
            "{error}"
        );
    }
}
