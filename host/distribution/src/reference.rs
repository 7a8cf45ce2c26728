//! Artifact references: `oci://HOST/REPOSITORY:TAG`, `…@sha256:DIGEST`,
//! or the same without `oci://`.

use std::fmt;
use std::net::IpAddr;

use oci_client::Reference;

use crate::error::DistributionError;

/// A parsed reference to an artifact in an OCI registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRef(Reference);

impl ArtifactRef {
    pub fn parse(text: &str) -> Result<Self, DistributionError> {
        let bare = text.strip_prefix("oci://").unwrap_or(text);
        let bad = |reason: String| DistributionError::BadReference {
            reference: text.to_string(),
            reason,
        };
        if bare.is_empty() || bare.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("it is empty or has spaces".into()));
        }
        // Without a host, the OCI parser would quietly send it to Docker Hub.
        let first = bare.split('/').next().unwrap_or_default();
        if !bare.contains('/')
            || !(first.contains('.') || first.contains(':') || first == "localhost")
        {
            return Err(bad(
                "it names no registry host; put the host first, like oci://ghcr.io/OWNER/NAME:TAG"
                    .into(),
            ));
        }
        // Parsed here rather than by the OCI crate's reference regex, which
        // takes tens of milliseconds to compile on first use.
        let (name, digest) = match bare.rsplit_once('@') {
            Some((name, digest)) => {
                check_digest(digest).map_err(bad)?;
                (name, Some(digest))
            }
            None => (bare, None),
        };
        let (registry, rest) = name.split_once('/').expect("checked: it has a `/`");
        let (repository, tag) = match rest.rsplit_once(':') {
            Some((repository, tag)) if !tag.contains('/') => (repository, Some(tag)),
            _ => (rest, None),
        };
        if !valid_registry(registry) {
            return Err(bad(format!("`{registry}` is not a registry host")));
        }
        if !valid_repository(repository) {
            return Err(bad(format!(
                "`{repository}` is not a repository name (lowercase letters, digits, `.`, `_`, `-`, and `/` between parts)"
            )));
        }
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(bad(format!("`{tag}` is not a tag")));
            }
        }
        let (registry, repository) = (registry.to_string(), repository.to_string());
        Ok(ArtifactRef(match (tag, digest) {
            (Some(tag), Some(digest)) => {
                Reference::with_tag_and_digest(registry, repository, tag.into(), digest.into())
            }
            (None, Some(digest)) => Reference::with_digest(registry, repository, digest.into()),
            (Some(tag), None) => Reference::with_tag(registry, repository, tag.into()),
            (None, None) => Reference::with_tag(registry, repository, "latest".into()),
        }))
    }

    pub(crate) fn from_parts(registry: &str, repository: &str, tag: &str) -> Self {
        ArtifactRef(Reference::with_tag(
            registry.to_string(),
            repository.to_string(),
            tag.to_string(),
        ))
    }

    pub fn oci(&self) -> &Reference {
        &self.0
    }

    pub fn registry(&self) -> &str {
        self.0.registry()
    }

    pub fn repository(&self) -> &str {
        self.0.repository()
    }

    pub fn tag(&self) -> Option<&str> {
        self.0.tag()
    }

    pub fn digest(&self) -> Option<&str> {
        self.0.digest()
    }

    /// The same artifact, by `digest`.
    pub fn at_digest(&self, digest: &str) -> Self {
        ArtifactRef(match self.0.tag() {
            Some(tag) => Reference::with_tag_and_digest(
                self.0.registry().to_string(),
                self.0.repository().to_string(),
                tag.to_string(),
                digest.to_string(),
            ),
            None => self.0.clone_with_digest(digest.to_string()),
        })
    }

    /// The reference without its digest: what a lockfile pins.
    pub fn unpinned(&self) -> String {
        match self.0.tag() {
            Some(tag) => format!("oci://{}/{}:{tag}", self.registry(), self.repository()),
            None => format!("oci://{}/{}", self.registry(), self.repository()),
        }
    }

    /// The repository, without tag or digest: `oci://HOST/REPOSITORY`.
    pub fn repository_ref(&self) -> String {
        format!("oci://{}/{}", self.registry(), self.repository())
    }

    /// Whether the registry is on this machine, which docker (and we) reach
    /// over plain HTTP.
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(self.registry())
    }
}

impl fmt::Display for ArtifactRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oci://{}", self.0.whole())
    }
}

/// `HOST[:PORT]`, a name or an address.
fn valid_registry(registry: &str) -> bool {
    !registry.is_empty()
        && registry.len() <= 255
        && registry
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

/// A repository name as the OCI distribution spec allows it.
pub(crate) fn valid_repository(name: &str) -> bool {
    name.len() <= 255
        && name.split('/').all(|part| {
            let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
            // Each part starts and ends with a letter or digit, as the
            // spec's grammar has it: so never `.` or `..`.
            part.bytes().next().is_some_and(alnum)
                && part.bytes().last().is_some_and(alnum)
                && part
                    .bytes()
                    .all(|b| alnum(b) || b == b'.' || b == b'_' || b == b'-')
        })
}

/// A tag as the OCI distribution spec allows it.
pub(crate) fn valid_tag(tag: &str) -> bool {
    (1..=128).contains(&tag.len())
        && !tag.starts_with(['.', '-'])
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// `HOST[:PORT]` names a loopback address: `localhost`, 127.0.0.0/8 or ::1.
pub(crate) fn is_loopback_host(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        registry.rsplit_once(':').map_or(registry, |(host, _)| host)
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `sha256:` and 64 lowercase hex digits: the only digests we accept, so
/// that one can name a file in the cache.
pub(crate) fn check_digest(digest: &str) -> Result<(), String> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| format!("digest `{digest}` is not sha256"))?;
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!("digest `{digest}` is not 64 lowercase hex digits"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_need_a_host_and_a_sha256_digest() {
        let r = ArtifactRef::parse("oci://127.0.0.1:5000/plugins/echo:1.0").unwrap();
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("127.0.0.1:5000", "plugins/echo", Some("1.0"))
        );
        assert!(r.is_loopback());
        assert_eq!(r.to_string(), "oci://127.0.0.1:5000/plugins/echo:1.0");
        let plain = ArtifactRef::parse("ghcr.io/me/tool:2").unwrap();
        assert!(!plain.is_loopback());
        assert!(ArtifactRef::parse("me/tool:2").is_err(), "no host");
        assert!(ArtifactRef::parse("tool").is_err());
        assert!(ArtifactRef::parse("oci://ghcr.io/me/tool@md5:abc").is_err());
        assert!(
            ArtifactRef::parse("ghcr.io/Me/tool:2").is_err(),
            "uppercase"
        );
        assert!(ArtifactRef::parse("ghcr.io/me/tool:-x").is_err());
        assert!(ArtifactRef::parse("ghcr.io/me/../tool").is_err());
        let both = ArtifactRef::parse(&format!("localhost:5000/a/b:1.0@sha256:{}", "b".repeat(64)))
            .unwrap();
        assert_eq!((both.repository(), both.tag()), ("a/b", Some("1.0")));
        assert_eq!(
            ArtifactRef::parse("localhost:5000/a").unwrap().tag(),
            Some("latest")
        );
        let pinned = format!("localhost:5000/x@sha256:{}", "a".repeat(64));
        assert_eq!(
            ArtifactRef::parse(&pinned).unwrap().digest(),
            Some(format!("sha256:{}", "a".repeat(64)).as_str())
        );
        for host in ["localhost:1", "127.9.9.9:80", "[::1]:5000", "127.0.0.1"] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["10.0.0.1:5000", "example.com", "127.example.com:5000"] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
