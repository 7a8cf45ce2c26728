use std::path::PathBuf;

use paracle_orchestrator::OrchestratorError;
use paracle_project::signing::SigningError;
use paracle_project::RegistryError;

/// What went wrong sharing a plugin or a template. Each names the artifact
/// or the file, and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum DistributionError {
    #[error("`{reference}` is not an OCI reference ({reason}); write it as oci://HOST/REPOSITORY:TAG or oci://HOST/REPOSITORY@sha256:DIGEST")]
    BadReference { reference: String, reason: String },

    #[error("cannot reach the registry {registry}: {reason}")]
    Unreachable { registry: String, reason: String },

    #[error("`{reference}` is not pinned in this project, so its tag must be looked up, and the registry {registry} cannot be reached ({reason}); install it by digest (oci://...@sha256:DIGEST) to use the cache, or try again when the registry is up")]
    NotPinnedOffline {
        reference: String,
        registry: String,
        reason: String,
    },

    #[error("the registry {registry} refused to {action} `{reference}`: {reason}")]
    Refused {
        registry: String,
        action: &'static str,
        reference: String,
        reason: String,
    },

    #[error("the {what} of `{reference}` does not match its digest (expected {expected}, got {actual}): it was changed after it was published, so nothing was used; publish it again, or ask its publisher")]
    DigestMismatch {
        reference: String,
        what: String,
        expected: String,
        actual: String,
    },

    #[error("`{reference}` is not {expected}: {reason}")]
    WrongArtifact {
        reference: String,
        expected: &'static str,
        reason: String,
    },

    #[error("the {what} of `{reference}` is {size} bytes, more than the {limit} allowed")]
    TooLarge {
        reference: String,
        what: String,
        size: u64,
        limit: u64,
    },

    #[error("registry credentials for {registry}: {reason}")]
    Credentials { registry: String, reason: String },

    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },

    #[error("{}: line {line}: {message}", path.display())]
    At {
        path: PathBuf,
        line: usize,
        message: String,
    },

    #[error("plugin `{name}` was not installed from a registry; `paracle plugin reload {name}` reads its file again")]
    NotInstalled { name: String },

    #[error("plugin `{name}` came with the template {template}; `paracle template install` of a newer version of it updates the plugin")]
    CameWithTemplate { name: String, template: String },

    #[error("{0}")]
    Template(String),

    #[error(transparent)]
    Signing(#[from] SigningError),

    #[error(transparent)]
    Project(#[from] RegistryError),

    #[error(transparent)]
    Orchestrator(#[from] OrchestratorError),
}

impl DistributionError {
    pub(crate) fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        DistributionError::File {
            path: path.into(),
            message: message.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Self::file(path, error.to_string())
    }

    /// Whether this is the registry not answering at all, as opposed to
    /// answering no.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, DistributionError::Unreachable { .. })
    }
}
