//! One registry, reached: the OCI client with the scheme and credentials
//! for it.

use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::Client;

use crate::error::DistributionError;
use crate::reference::{is_loopback_host, ArtifactRef};
use paracle_project::UserConfig;

/// Where registry credentials come from.
#[derive(Clone, Default)]
pub enum Credentials {
    /// The standard docker config (`$DOCKER_CONFIG/config.json` or
    /// `~/.docker/config.json`, credential helpers included); anonymous for
    /// a registry it does not name.
    #[default]
    DockerConfig,
    /// Given on the command line (the password from stdin), for the one
    /// registry the command named: never sent to another, such as one a
    /// template's plugin reference names.
    Given {
        registry: String,
        username: String,
        password: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::DockerConfig => f.write_str("DockerConfig"),
            Credentials::Given {
                registry, username, ..
            } => write!(f, "Given({registry}, {username}, <redacted>)"),
        }
    }
}

impl Credentials {
    /// The credentials for `registry` (as a reference names it), looked up
    /// in the docker config as `resolved`.
    fn auth_for(&self, registry: &str, resolved: &str) -> Result<RegistryAuth, DistributionError> {
        match self {
            Credentials::Given {
                registry: given,
                username,
                password,
            } if given == registry => Ok(RegistryAuth::Basic(username.clone(), password.clone())),
            Credentials::Given { .. } | Credentials::DockerConfig => {
                let registry = resolved;
                use docker_credential::{CredentialRetrievalError as E, DockerCredential};
                match docker_credential::get_credential(registry) {
                    Ok(DockerCredential::UsernamePassword(user, password)) => {
                        Ok(RegistryAuth::Basic(user, password))
                    }
                    Ok(DockerCredential::IdentityToken(token)) => Ok(RegistryAuth::Bearer(token)),
                    Err(E::ConfigNotFound | E::NoCredentialConfigured | E::ConfigReadError) => {
                        Ok(RegistryAuth::Anonymous)
                    }
                    Err(error) => Err(DistributionError::Credentials {
                        registry: registry.to_string(),
                        reason: format!("{error}; fix the docker config, or pass --username and --password-stdin"),
                    }),
                }
            }
        }
    }
}

/// How the host reaches registries: the user's settings and credentials,
/// and who hears how a long pull is going.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub config: UserConfig,
    pub credentials: Credentials,
    pub progress: Progress,
}

/// Told, as a blob arrives, what it is, how many bytes have come and how
/// many it has.
#[derive(Clone, Default)]
pub struct Progress(Option<std::sync::Arc<ReportFn>>);

type ReportFn = dyn Fn(&str, u64, u64) + Send + Sync;

impl Progress {
    pub fn new(report: impl Fn(&str, u64, u64) + Send + Sync + 'static) -> Self {
        Progress(Some(std::sync::Arc::new(report)))
    }

    pub(crate) fn report(&self, what: &str, received: u64, total: u64) {
        if let Some(report) = &self.0 {
            report(what, received, total);
        }
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Progress(..)"
        } else {
            "Progress(none)"
        })
    }
}

/// A registry, ready to be asked.
pub struct Remote {
    pub(crate) client: Client,
    pub(crate) auth: RegistryAuth,
    registry: String,
    pub(crate) progress: Progress,
}

impl Remote {
    /// The registry `reference` lives in. Plain HTTP on loopback or when the
    /// user listed it as insecure; HTTPS otherwise.
    pub fn connect(reference: &ArtifactRef, access: &Access) -> Result<Self, DistributionError> {
        // reqwest is built without a crypto provider of its own: it takes the
        // process default, which is ring, as for the rest of the host.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let registry = reference.registry().to_string();
        let plain = is_loopback_host(&registry) || access.config.is_insecure(&registry);
        let client = Client::new(ClientConfig {
            protocol: if plain {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(60)),
            user_agent: concat!("paracle/", env!("CARGO_PKG_VERSION")),
            // A component is one artifact, never an index to choose from.
            platform_resolver: None,
            ..ClientConfig::default()
        });
        let auth = access
            .credentials
            .auth_for(&registry, reference.oci().resolve_registry())?;
        Ok(Remote {
            client,
            auth,
            registry,
            progress: access.progress.clone(),
        })
    }

    /// Hand the credentials to the client for `reference`'s registry, before
    /// any request that does not do so itself.
    pub(crate) async fn authenticate(&self, reference: &ArtifactRef) {
        self.client
            .store_auth_if_needed(reference.oci().resolve_registry(), &self.auth)
            .await;
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The error for `action` on `reference`, told apart: the registry not
    /// answering, a digest that did not match, or the registry saying no.
    pub(crate) fn error(
        &self,
        action: &'static str,
        reference: &str,
        error: OciDistributionError,
    ) -> DistributionError {
        let denied = match &error {
            OciDistributionError::RequestError(e) => e
                .status()
                .is_some_and(|s| s.as_u16() == 401 || s.as_u16() == 403),
            OciDistributionError::ServerError { code, .. } => *code == 401 || *code == 403,
            OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_) => true,
            _ => false,
        };
        if denied {
            return DistributionError::Refused {
                registry: self.registry.clone(),
                action,
                reference: reference.to_string(),
                reason: "not authorized; log in with `docker login`, or pass --username and --password-stdin".into(),
            };
        }
        match error {
            OciDistributionError::RequestError(e) if e.is_connect() || e.is_timeout() => {
                DistributionError::Unreachable {
                    registry: self.registry.clone(),
                    reason: root_cause(&e),
                }
            }
            OciDistributionError::DigestError(
                oci_client::errors::DigestError::VerificationError { expected, actual },
            ) => DistributionError::DigestMismatch {
                reference: reference.to_string(),
                what: "content".into(),
                expected,
                actual,
            },
            other => DistributionError::Refused {
                registry: self.registry.clone(),
                action,
                reference: reference.to_string(),
                reason: root_cause(&other),
            },
        }
    }
}

fn root_cause(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_given_for_one_registry_go_to_no_other() {
        let empty = tempfile::tempdir().unwrap();
        // No docker config: any other registry is asked anonymously.
        std::env::set_var("DOCKER_CONFIG", empty.path());
        let given = Credentials::Given {
            registry: "registry.example:5000".into(),
            username: "me".into(),
            password: "secret".into(),
        };
        assert_eq!(
            given
                .auth_for("registry.example:5000", "registry.example:5000")
                .unwrap(),
            RegistryAuth::Basic("me".into(), "secret".into())
        );
        for other in ["evil.example", "registry.example:5001", "registry.example"] {
            assert_eq!(
                given.auth_for(other, other).unwrap(),
                RegistryAuth::Anonymous,
                "{other}"
            );
        }
        assert!(!format!("{given:?}").contains("secret"));
    }
}
