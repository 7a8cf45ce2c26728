//! Blobs pulled from registries, kept by digest under the cache directory,
//! so that a pinned install needs no network. A blob is checked against its
//! digest whenever it is read: a cache entry that does not match is
//! dropped and pulled again, never used.

use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use oci_client::manifest::OciDescriptor;
use sha2::{Digest, Sha256};

use crate::error::DistributionError;
use crate::reference::{check_digest, ArtifactRef};
use crate::remote::Remote;

pub(crate) fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[derive(Debug, Clone)]
pub struct BlobCache {
    root: PathBuf,
}

impl BlobCache {
    pub fn new(root: &Path) -> Self {
        BlobCache {
            root: root.to_path_buf(),
        }
    }

    /// Where the blob `digest` is kept. Only well-formed sha256 digests
    /// name a file, so a digest from a manifest cannot name a path.
    pub fn path_of(&self, digest: &str) -> Result<PathBuf, DistributionError> {
        check_digest(digest).map_err(|reason| DistributionError::file(&self.root, reason))?;
        Ok(self
            .root
            .join("sha256")
            .join(digest.trim_start_matches("sha256:")))
    }

    /// The blob `digest`, if it is cached and still matches.
    pub fn read(&self, digest: &str) -> Result<Option<Vec<u8>>, DistributionError> {
        let path = self.path_of(digest)?;
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(DistributionError::io(&path, e)),
        };
        if sha256(&bytes) != digest {
            tracing::warn!(
                "cached blob {} does not match its digest; pulling it again",
                path.display()
            );
            let _ = std::fs::remove_file(&path);
            return Ok(None);
        }
        Ok(Some(bytes))
    }

    /// Keep `bytes` under their digest, hashed here; returns both.
    pub fn put(&self, bytes: &[u8]) -> Result<(String, PathBuf), DistributionError> {
        let digest = sha256(bytes);
        let path = self.keep(&digest, bytes)?;
        Ok((digest, path))
    }

    /// Keep `bytes`, known to be the blob `digest`: written whole
    /// under a temporary name and renamed. Not synced: an entry that a crash
    /// left short fails its digest when read, and is pulled again.
    pub(crate) fn keep(&self, digest: &str, bytes: &[u8]) -> Result<PathBuf, DistributionError> {
        let path = self.path_of(digest)?;
        let dir = path.parent().expect("a blob has a directory");
        std::fs::create_dir_all(dir).map_err(|e| DistributionError::io(dir, e))?;
        let mut temp =
            tempfile::NamedTempFile::new_in(dir).map_err(|e| DistributionError::io(dir, e))?;
        std::io::Write::write_all(&mut temp, bytes).map_err(|e| DistributionError::io(&path, e))?;
        temp.persist(&path)
            .map_err(|e| DistributionError::io(&path, e.error))?;
        Ok(path)
    }

    /// The blob `descriptor` names, from the cache or else pulled from
    /// `remote` (None: offline), checked against its digest and size. At
    /// most `limit` bytes are read, whatever the registry sends.
    pub async fn blob(
        &self,
        remote: Option<&Remote>,
        reference: &ArtifactRef,
        descriptor: &OciDescriptor,
        what: &str,
        limit: u64,
    ) -> Result<(PathBuf, Vec<u8>), DistributionError> {
        let digest = descriptor.digest.as_str();
        let path = self.path_of(digest)?;
        let too_large = |size: u64| DistributionError::TooLarge {
            reference: reference.to_string(),
            what: what.to_string(),
            size,
            limit,
        };
        let declared = u64::try_from(descriptor.size).unwrap_or(u64::MAX);
        if declared > limit {
            return Err(too_large(declared));
        }
        // The client would fetch these itself, from wherever they point,
        // past the rules on which registries are reached and how.
        if descriptor
            .urls
            .as_ref()
            .is_some_and(|urls| !urls.is_empty())
        {
            return Err(DistributionError::WrongArtifact {
                reference: reference.to_string(),
                expected: "an artifact whose blobs are in its registry",
                reason: format!("its {what} names other places to download it from (`urls`)"),
            });
        }
        if let Some(bytes) = self.read(digest)? {
            // The same bytes may have come in as something larger: the
            // limit is this use's, and the size the descriptor's.
            if bytes.len() as u64 != declared {
                return Err(DistributionError::DigestMismatch {
                    reference: reference.to_string(),
                    what: what.to_string(),
                    expected: format!("{digest} ({declared} bytes)"),
                    actual: format!("{} bytes", bytes.len()),
                });
            }
            return Ok((path, bytes));
        }
        let Some(remote) = remote else {
            return Err(DistributionError::Unreachable {
                registry: reference.registry().to_string(),
                reason: format!("the {what} ({digest}) is not in the cache, and this is offline"),
            });
        };
        remote.authenticate(reference).await;
        let mut stream = remote
            .client
            .pull_blob_stream(reference.oci(), descriptor)
            .await
            .map_err(|e| remote.error("pull", &reference.to_string(), e))?;
        let mut bytes = Vec::with_capacity(declared.min(limit) as usize);
        // Written as it arrives, so that keeping it costs no second pass;
        // named by its digest only once the digest is checked.
        let dir = path.parent().expect("a blob has a directory");
        std::fs::create_dir_all(dir).map_err(|e| DistributionError::io(dir, e))?;
        let mut temp =
            tempfile::NamedTempFile::new_in(dir).map_err(|e| DistributionError::io(dir, e))?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                // The client checks the digest as the last bytes arrive.
                match e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<oci_client::errors::DigestError>())
                {
                    Some(oci_client::errors::DigestError::VerificationError {
                        expected,
                        actual,
                    }) => DistributionError::DigestMismatch {
                        reference: reference.to_string(),
                        what: what.to_string(),
                        expected: expected.clone(),
                        actual: actual.clone(),
                    },
                    _ => DistributionError::Unreachable {
                        registry: remote.registry().to_string(),
                        reason: format!("the {what} stopped part-way: {e}"),
                    },
                }
            })?;
            if (bytes.len() + chunk.len()) as u64 > declared {
                return Err(DistributionError::DigestMismatch {
                    reference: reference.to_string(),
                    what: what.to_string(),
                    expected: format!("{digest} ({declared} bytes)"),
                    actual: "more bytes than that".into(),
                });
            }
            bytes.extend_from_slice(&chunk);
            std::io::Write::write_all(&mut temp, &chunk)
                .map_err(|e| DistributionError::io(temp.path(), e))?;
            remote.progress.report(what, bytes.len() as u64, declared);
        }
        if (bytes.len() as u64) != declared {
            return Err(DistributionError::DigestMismatch {
                reference: reference.to_string(),
                what: what.to_string(),
                expected: format!("{digest} ({declared} bytes)"),
                actual: format!("{} bytes", bytes.len()),
            });
        }
        // The client's stream hashed every byte as it came and ends in an
        // error unless they match the descriptor's digest: checked, once.
        temp.persist(&path)
            .map_err(|e| DistributionError::io(&path, e.error))?;
        tracing::debug!(
            "pulled the {what} ({} bytes) into {}",
            bytes.len(),
            path.display()
        );
        Ok((path, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_blob_that_changed_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::new(dir.path());
        let (digest, path) = cache.put(b"component").unwrap();
        assert_eq!(digest, sha256(b"component"));
        assert_eq!(cache.read(&digest).unwrap().unwrap(), b"component");
        std::fs::write(&path, b"tampered").unwrap();
        assert!(cache.read(&digest).unwrap().is_none());
        assert!(!path.exists());
        assert!(cache.path_of("sha256:../../etc/passwd").is_err());
    }
}
