//! The user's secrets (`paracle secret`): kept per user, outside every
//! project, in `secrets.toml` beside the trust list, readable by its owner
//! only. A project's files never hold a value, only `secret:NAME` grants.
//!
//! Values are read from stdin or a prompt by the CLI, never from argv (which
//! every process on the machine can read), and are handed only to the
//! plugins granted them, as an environment variable of the secret's name.

use std::collections::BTreeMap;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use paracle_base::{atomic, strict_toml};
use paracle_policy::valid_variable_name;
use paracle_runtime::SecretSource;

/// The longest value a secret may have: an environment variable, not a
/// file.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;
/// Shorter values would be hidden wherever the same few characters occur in
/// ordinary text.
pub const MIN_SECRET_BYTES: usize = 6;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("`{0}` is not a secret's name: use letters, digits and `_`, like OPENAI_API_KEY")]
    BadName(String),
    #[error("the value of `{name}` {problem}")]
    BadValue { name: String, problem: String },
    #[error("no secret named `{0}`; see `paracle secret list`")]
    Unknown(String),
    #[error("{file} can be read by other users (mode {mode:o}); run `chmod 600 {file}` and check who read it")]
    Exposed { file: PathBuf, mode: u32 },
    #[error("{file}: {message}")]
    File { file: PathBuf, message: String },
    #[error("cannot write {file}: {source}")]
    Write {
        file: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretsFile {
    #[serde(default)]
    secrets: BTreeMap<String, String>,
}

/// The user's secrets file, read once; a shared, cheap handle.
#[derive(Clone)]
pub struct SecretStore {
    file: PathBuf,
    values: Arc<RwLock<BTreeMap<String, String>>>,
}

/// Names only: a value must never reach a log through `{:?}`.
impl std::fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretStore")
            .field("file", &self.file)
            .field("names", &self.names())
            .finish()
    }
}

/// The per-user directory, made owner-only when it is made here.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

impl SecretStore {
    /// Read `file` (none yet: no secrets). A file others can read is
    /// refused, so that a leak is noticed rather than continued.
    pub fn open(file: &Path) -> Result<Self, SecretError> {
        let values = match std::fs::symlink_metadata(file) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(file_error(file, e.to_string())),
            Ok(meta) => {
                if !meta.file_type().is_file() {
                    return Err(file_error(file, "is not a regular file".into()));
                }
                let mode = meta.mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(SecretError::Exposed {
                        file: file.to_path_buf(),
                        mode,
                    });
                }
                let text =
                    std::fs::read_to_string(file).map_err(|e| file_error(file, e.to_string()))?;
                let parsed: SecretsFile =
                    strict_toml::parse(&text).map_err(|e| file_error(file, e.to_string()))?;
                parsed.secrets
            }
        };
        Ok(SecretStore {
            file: file.to_path_buf(),
            values: Arc::new(RwLock::new(values)),
        })
    }

    /// Names only, in order.
    pub fn names(&self) -> Vec<String> {
        self.values.read().unwrap().keys().cloned().collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.values.read().unwrap().contains_key(name)
    }

    /// Every value, for the scans that must not find one (a run's hygiene
    /// report), with its name.
    pub fn values(&self) -> Vec<(String, String)> {
        self.values
            .read()
            .unwrap()
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect()
    }

    /// Set `name` to `value`. Returns whether it replaced a value.
    pub fn set(&self, name: &str, value: &str) -> Result<bool, SecretError> {
        check_name(name)?;
        let bad = |problem: &str| SecretError::BadValue {
            name: name.to_string(),
            problem: problem.to_string(),
        };
        if value.len() < MIN_SECRET_BYTES {
            return Err(bad(&format!(
                "is shorter than {MIN_SECRET_BYTES} bytes: it could not be told apart from ordinary text when it is hidden"
            )));
        }
        if value.len() > MAX_SECRET_BYTES {
            return Err(bad("is over 64 KiB"));
        }
        if value.contains('\0') {
            return Err(bad(
                "holds a NUL byte, which an environment variable cannot",
            ));
        }
        let mut values = self.values.write().unwrap();
        let replaced = values.insert(name.to_string(), value.to_string()).is_some();
        self.save(&values)?;
        Ok(replaced)
    }

    pub fn remove(&self, name: &str) -> Result<(), SecretError> {
        let mut values = self.values.write().unwrap();
        if values.remove(name).is_none() {
            return Err(SecretError::Unknown(name.to_string()));
        }
        self.save(&values)
    }

    fn save(&self, values: &BTreeMap<String, String>) -> Result<(), SecretError> {
        let text = toml::to_string(&SecretsFile {
            secrets: values.clone(),
        })
        .expect("names and values serialize");
        if let Some(dir) = self.file.parent() {
            create_private_dir(dir).map_err(|source| SecretError::Write {
                file: dir.to_path_buf(),
                source,
            })?;
        }
        atomic::write_private(&self.file, text.as_bytes()).map_err(|source| SecretError::Write {
            file: self.file.clone(),
            source,
        })
    }
}

impl SecretSource for SecretStore {
    fn value(&self, name: &str) -> Option<String> {
        self.values.read().unwrap().get(name).cloned()
    }
}

pub fn check_name(name: &str) -> Result<(), SecretError> {
    if valid_variable_name(name) {
        Ok(())
    } else {
        Err(SecretError::BadName(name.to_string()))
    }
}

fn file_error(file: &Path, message: String) -> SecretError {
    SecretError::File {
        file: file.to_path_buf(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn secrets_are_kept_owner_only_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secrets.toml");
        let store = SecretStore::open(&file).unwrap();
        assert!(store.names().is_empty());
        assert!(!store.set("API_KEY", "sk-test-123456").unwrap());
        assert!(store.set("API_KEY", "sk-test-654321").unwrap());
        assert!(matches!(
            store.set("bad name", "xxxxxxxx"),
            Err(SecretError::BadName(_))
        ));
        assert!(matches!(
            store.set("SHORT", "abc"),
            Err(SecretError::BadValue { .. })
        ));
        let mode = std::fs::metadata(&file).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = SecretStore::open(&file).unwrap();
        assert_eq!(again.value("API_KEY").as_deref(), Some("sk-test-654321"));
        assert_eq!(again.names(), vec!["API_KEY".to_string()]);
        assert!(matches!(again.remove("NOPE"), Err(SecretError::Unknown(_))));
        assert!(
            !format!("{again:?}").contains("sk-test"),
            "Debug shows names only"
        );
        again.remove("API_KEY").unwrap();
        assert!(SecretStore::open(&file).unwrap().names().is_empty());

        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = SecretStore::open(&file).unwrap_err().to_string();
        assert!(error.contains("chmod 600"), "{error}");
    }
}
