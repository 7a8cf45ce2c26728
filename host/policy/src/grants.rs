//! What an operator grants a plugin: directories, network hosts, environment
//! variables, the user's secrets and the project's repository. Nothing by
//! default.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::PolicyError;
use crate::network::NetGrant;

/// A host directory mapped into a plugin's sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// Absolute path on the host.
    pub host: PathBuf,
    /// Where the plugin sees it, for example `/data`.
    pub guest: String,
    pub writable: bool,
}

impl DirGrant {
    /// Parse `HOST[:GUEST][:ro|rw]`. The guest path defaults to `/data` and
    /// the mode to read-only.
    pub fn parse(spec: &str) -> Result<Self, PolicyError> {
        let bad = |reason: &str| PolicyError::BadGrant {
            grant: spec.to_string(),
            reason: reason.to_string(),
        };
        let mut parts: Vec<&str> = spec.split(':').collect();
        let mut writable = false;
        if let Some(last) = parts.last() {
            match *last {
                "ro" => {
                    parts.pop();
                }
                "rw" => {
                    writable = true;
                    parts.pop();
                }
                _ => {}
            }
        }
        let (host, guest) = match parts.as_slice() {
            [host] => (*host, "/data".to_string()),
            [host, guest] => (*host, guest.to_string()),
            _ => return Err(bad("expected HOST_DIR[:GUEST_PATH][:ro|rw]")),
        };
        if host.is_empty() {
            return Err(bad("the host directory is empty"));
        }
        if !guest.starts_with('/') {
            return Err(bad("the guest path must be absolute, like /data"));
        }
        let host = std::fs::canonicalize(host)
            .map_err(|e| bad(&format!("cannot open host directory `{host}`: {e}")))?;
        if !host.is_dir() {
            return Err(bad("the host path is not a directory"));
        }
        Ok(DirGrant {
            host,
            guest,
            writable,
        })
    }

    pub fn describe(&self) -> String {
        format!(
            "{} -> {} ({})",
            self.host.display(),
            self.guest,
            if self.writable { "rw" } else { "ro" }
        )
    }
}

/// What the operator granted a plugin. Nothing by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Grants {
    pub dirs: Vec<DirGrant>,
    /// Hosts reachable over `wasi:http`; IP addresses also over
    /// `wasi:sockets`.
    pub net: Vec<NetGrant>,
    /// Environment variables, by name; the plugin sees the host's value.
    pub env: Vec<String>,
    /// The user's secrets (`paracle secret set`), by name; the plugin sees
    /// each as an environment variable of that name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// The `git` interface, on the project's repository.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub git: bool,
}

/// The forms a grant is written in, for messages.
pub const GRANT_FORMS: &str =
    "dir:HOST_DIR[:GUEST_PATH][:ro|rw], net:HOST[:PORT], env:NAME, secret:NAME or git";

/// Whether `name` can name an environment variable or a secret: letters,
/// digits and `_`, at most 128 of them.
pub fn valid_variable_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One grant as an operator writes it on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    Dir(DirGrant),
    Net(NetGrant),
    Env(String),
    /// A secret of the user's, seen as an environment variable.
    Secret(String),
    /// The `git` interface on the project's repository.
    Git,
}

impl Grant {
    /// Parse `dir:HOST_DIR[:GUEST_PATH][:ro|rw]`, `net:HOST[:PORT]` or
    /// `env:NAME`.
    pub fn parse(spec: &str) -> Result<Self, PolicyError> {
        let bad = |reason: String| PolicyError::BadGrant {
            grant: spec.to_string(),
            reason,
        };
        match spec.split_once(':') {
            Some(("dir", dir)) => Ok(Grant::Dir(DirGrant::parse(dir)?)),
            Some(("env", name)) => {
                if !valid_variable_name(name) {
                    return Err(bad(
                        "a variable name is letters, digits and `_`, like env:API_KEY".into(),
                    ));
                }
                Ok(Grant::Env(name.to_string()))
            }
            Some(("secret", name)) => {
                if !valid_variable_name(name) {
                    return Err(bad(
                        "a secret's name is letters, digits and `_`, like secret:API_KEY".into(),
                    ));
                }
                Ok(Grant::Secret(name.to_string()))
            }
            Some(("net", host)) => NetGrant::parse(host)
                .map(Grant::Net)
                .map_err(|e| bad(e.reason)),
            None if spec == "git" => Ok(Grant::Git),
            _ => Err(bad(format!("write it as {GRANT_FORMS}"))),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Grant::Dir(dir) => format!("dir {}", dir.describe()),
            Grant::Net(host) => format!("net {host}"),
            Grant::Env(name) => format!("env {name}"),
            Grant::Secret(name) => format!("secret {name}"),
            Grant::Git => "git (the project's repository)".to_string(),
        }
    }

    /// The grant as `plugin grant` takes it.
    pub fn spec(&self) -> String {
        match self {
            Grant::Dir(dir) => format!(
                "dir:{}:{}:{}",
                dir.host.display(),
                dir.guest,
                if dir.writable { "rw" } else { "ro" }
            ),
            Grant::Net(host) => format!("net:{host}"),
            Grant::Env(name) => format!("env:{name}"),
            Grant::Secret(name) => format!("secret:{name}"),
            Grant::Git => "git".to_string(),
        }
    }
}

impl Grants {
    /// Add `grant`. A directory granted at a guest path that is already
    /// granted replaces the old one. Returns whether anything changed.
    pub fn add(&mut self, grant: Grant) -> bool {
        match grant {
            Grant::Dir(dir) => {
                if self.dirs.contains(&dir) {
                    return false;
                }
                self.dirs.retain(|d| d.guest != dir.guest);
                self.dirs.push(dir);
            }
            Grant::Net(host) => {
                if self.net.contains(&host) {
                    return false;
                }
                self.net.push(host);
            }
            Grant::Env(name) => {
                if self.env.contains(&name) {
                    return false;
                }
                self.env.push(name);
            }
            Grant::Secret(name) => {
                if self.secrets.contains(&name) {
                    return false;
                }
                self.secrets.push(name);
            }
            Grant::Git => return !std::mem::replace(&mut self.git, true),
        }
        true
    }

    /// Remove what `spec` names: `dir:PATH`, where PATH is the guest path or
    /// the host directory, `net:HOST[:PORT]` or `env:NAME`. Returns what was
    /// removed.
    pub fn revoke(&mut self, spec: &str) -> Result<Vec<Grant>, PolicyError> {
        let removed: Vec<Grant> = match spec.split_once(':') {
            Some(("dir", path)) => {
                let host = std::fs::canonicalize(path).ok();
                let (gone, kept) = std::mem::take(&mut self.dirs)
                    .into_iter()
                    .partition(|d| d.guest == path || Some(&d.host) == host.as_ref());
                self.dirs = kept;
                gone.into_iter().map(Grant::Dir).collect()
            }
            Some(("net", host)) => {
                let wanted = NetGrant::parse(host).map_err(|e| PolicyError::BadGrant {
                    grant: spec.to_string(),
                    reason: e.reason,
                })?;
                let (gone, kept) = std::mem::take(&mut self.net)
                    .into_iter()
                    .partition(|granted| *granted == wanted);
                self.net = kept;
                gone.into_iter().map(Grant::Net).collect()
            }
            Some(("env", name)) => {
                let before = self.env.len();
                self.env.retain(|e| e != name);
                if self.env.len() < before {
                    vec![Grant::Env(name.to_string())]
                } else {
                    vec![]
                }
            }
            Some(("secret", name)) => {
                let before = self.secrets.len();
                self.secrets.retain(|e| e != name);
                if self.secrets.len() < before {
                    vec![Grant::Secret(name.to_string())]
                } else {
                    vec![]
                }
            }
            None if spec == "git" => {
                if std::mem::replace(&mut self.git, false) {
                    vec![Grant::Git]
                } else {
                    vec![]
                }
            }
            _ => return Err(PolicyError::BadGrant {
                grant: spec.to_string(),
                reason:
                    "name what to revoke as dir:PATH, net:HOST[:PORT], env:NAME, secret:NAME or git"
                        .into(),
            }),
        };
        if removed.is_empty() {
            return Err(PolicyError::BadGrant {
                grant: spec.to_string(),
                reason: format!("nothing granted matches it; granted: {}", self.describe()),
            });
        }
        Ok(removed)
    }

    /// Every grant on one line, or `none`.
    pub fn describe(&self) -> String {
        let all: Vec<String> = self
            .dirs
            .iter()
            .map(|d| format!("dir {}", d.describe()))
            .chain(self.net.iter().map(|n| format!("net {n}")))
            .chain(self.env.iter().map(|e| format!("env {e}")))
            .chain(self.secrets.iter().map(|e| format!("secret {e}")))
            .chain(self.git.then(|| "git".to_string()))
            .collect();
        if all.is_empty() {
            "none".into()
        } else {
            all.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Grant, Grants};

    #[test]
    fn grants_parse_add_and_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().display().to_string();
        let mut grants = Grants::default();
        let data = Grant::parse(&format!("dir:{host}")).unwrap();
        let Grant::Dir(parsed) = &data else {
            panic!("a dir grant")
        };
        assert_eq!((parsed.guest.as_str(), parsed.writable), ("/data", false));
        assert!(grants.add(data.clone()));
        assert!(!grants.add(data), "granting twice changes nothing");
        // The same guest path granted again replaces the old grant.
        assert!(grants.add(Grant::parse(&format!("dir:{host}:/data:rw")).unwrap()));
        assert_eq!(grants.dirs.len(), 1);
        assert!(grants.dirs[0].writable);
        assert!(grants.add(Grant::parse("env:API_KEY").unwrap()));
        assert!(grants.add(Grant::parse("secret:OPENAI_KEY").unwrap()));
        assert!(!grants.add(Grant::parse("secret:OPENAI_KEY").unwrap()));
        assert_eq!(
            grants.describe(),
            format!("dir {host} -> /data (rw), env API_KEY, secret OPENAI_KEY")
        );
        assert_eq!(grants.revoke("secret:OPENAI_KEY").unwrap().len(), 1);
        assert!(grants.add(Grant::parse("net:api.example.com:443").unwrap()));
        assert_eq!(grants.revoke("net:api.example.com:443").unwrap().len(), 1);

        for bad in [
            "env:",
            "env:A=B",
            "secret:",
            "secret:A B",
            "disk:/tmp",
            "dir:/no/such/dir",
            "net:https://x.org",
        ] {
            assert!(Grant::parse(bad).is_err(), "{bad}");
        }
        assert!(grants.revoke("env:OTHER").is_err());
        assert_eq!(grants.revoke("env:API_KEY").unwrap().len(), 1);
        // A directory is revoked by its host path as well as its guest path.
        assert_eq!(grants.revoke(&format!("dir:{host}")).unwrap().len(), 1);
        assert_eq!(grants.describe(), "none");
    }
}
