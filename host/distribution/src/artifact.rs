//! Manifests: pulled (by digest when one is pinned, from the cache when it
//! is there), checked against their digest, and pushed.

use std::collections::BTreeMap;

use bytes::Bytes;
use oci_client::manifest::{
    OciDescriptor, OciImageManifest, IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE,
};

use crate::cache::{sha256, BlobCache};
use crate::error::DistributionError;
use crate::reference::ArtifactRef;
use crate::remote::Remote;

/// The signature of what an artifact holds, in the text of a signature file.
pub const SIGNATURE_ANNOTATION: &str = "dev.paracle.signature";
pub const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";
pub const VERSION_ANNOTATION: &str = "org.opencontainers.image.version";
pub const DESCRIPTION_ANNOTATION: &str = "org.opencontainers.image.description";
pub const AUTHORS_ANNOTATION: &str = "org.opencontainers.image.authors";
pub const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";

/// Manifests are small; one this large is not one we wrote or can use.
pub(crate) const MAX_MANIFEST: u64 = 4 << 20;
/// A signature annotation is a few hundred bytes.
pub(crate) const MAX_SIGNATURE: usize = 4096;

/// A manifest, checked against its digest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub digest: String,
    pub parsed: OciImageManifest,
}

impl Manifest {
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.parsed
            .annotations
            .as_ref()?
            .get(key)
            .map(String::as_str)
    }

    /// The signature the artifact carries, if any, bounded in size.
    pub fn signature(&self, reference: &ArtifactRef) -> Result<Option<String>, DistributionError> {
        match self.annotation(SIGNATURE_ANNOTATION) {
            None => Ok(None),
            Some(text) if text.len() > MAX_SIGNATURE => Err(DistributionError::TooLarge {
                reference: reference.to_string(),
                what: "signature".into(),
                size: text.len() as u64,
                limit: MAX_SIGNATURE as u64,
            }),
            Some(text) => Ok(Some(text.to_string())),
        }
    }
}

/// The manifest of `reference`: the `pinned` digest when given (a lockfile
/// entry), else the digest in the reference, else what its tag names now.
/// A digest that is known is taken from the cache without asking the
/// registry; `remote` None means offline.
pub async fn fetch_manifest(
    remote: Option<&Remote>,
    cache: &BlobCache,
    reference: &ArtifactRef,
    pinned: Option<&str>,
) -> Result<Manifest, DistributionError> {
    let wanted = pinned.or(reference.digest()).map(str::to_string);
    if let Some(digest) = &wanted {
        if let Some(bytes) = cache.read(digest)? {
            return parse(reference, digest.clone(), &bytes);
        }
    }
    let Some(remote) = remote else {
        return Err(DistributionError::Unreachable {
            registry: reference.registry().to_string(),
            reason: format!(
                "`{reference}` is not in the cache{}, and this is offline",
                if wanted.is_some() {
                    ""
                } else {
                    " by a pinned digest"
                }
            ),
        });
    };
    let target = match &wanted {
        Some(digest) => reference.at_digest(digest),
        None => reference.clone(),
    };
    let (bytes, header_digest) = remote
        .client
        .pull_manifest_raw(
            target.oci(),
            &remote.auth,
            &[OCI_IMAGE_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE],
        )
        .await
        .map_err(|e| match remote.error("pull", &reference.to_string(), e) {
            DistributionError::DigestMismatch {
                reference,
                expected,
                actual,
                ..
            } => DistributionError::DigestMismatch {
                reference,
                what: "manifest".into(),
                expected,
                actual,
            },
            other => other,
        })?;
    if bytes.len() as u64 > MAX_MANIFEST {
        return Err(DistributionError::TooLarge {
            reference: reference.to_string(),
            what: "manifest".into(),
            size: bytes.len() as u64,
            limit: MAX_MANIFEST,
        });
    }
    let actual = sha256(&bytes);
    let expected = wanted.unwrap_or(header_digest);
    if actual != expected {
        return Err(DistributionError::DigestMismatch {
            reference: reference.to_string(),
            what: "manifest".into(),
            expected,
            actual,
        });
    }
    cache.keep(&actual, &bytes)?;
    parse(reference, actual, &bytes)
}

fn parse(
    reference: &ArtifactRef,
    digest: String,
    bytes: &[u8],
) -> Result<Manifest, DistributionError> {
    let parsed: OciImageManifest =
        serde_json::from_slice(bytes).map_err(|e| DistributionError::WrongArtifact {
            reference: reference.to_string(),
            expected: "an OCI image manifest",
            reason: e.to_string(),
        })?;
    Ok(Manifest { digest, parsed })
}

/// A blob to push, with its descriptor.
pub(crate) struct Blob {
    pub descriptor: OciDescriptor,
    pub data: Bytes,
}

impl Blob {
    pub(crate) fn new(
        media_type: &str,
        data: impl Into<Bytes>,
        annotations: Option<BTreeMap<String, String>>,
    ) -> Self {
        let data = data.into();
        Blob {
            descriptor: OciDescriptor {
                media_type: media_type.to_string(),
                digest: sha256(&data),
                size: data.len() as i64,
                annotations,
                ..OciDescriptor::default()
            },
            data,
        }
    }
}

/// Push `config`, `layers` and a manifest naming them to `reference`, a tag.
/// Returns the manifest's digest.
pub(crate) async fn push(
    remote: &Remote,
    reference: &ArtifactRef,
    config: &Blob,
    layers: &[Blob],
    artifact_type: Option<&str>,
    annotations: BTreeMap<String, String>,
) -> Result<String, DistributionError> {
    if reference.digest().is_some() || reference.tag().is_none() {
        return Err(DistributionError::BadReference {
            reference: reference.to_string(),
            reason: "publish to a tag, like oci://HOST/REPOSITORY:1.0.0, not a digest".into(),
        });
    }
    let manifest = OciImageManifest {
        schema_version: 2,
        media_type: Some(OCI_IMAGE_MEDIA_TYPE.to_string()),
        config: config.descriptor.clone(),
        layers: layers.iter().map(|l| l.descriptor.clone()).collect(),
        subject: None,
        artifact_type: artifact_type.map(str::to_string),
        annotations: Some(annotations),
    };
    let body = serde_json::to_vec(&manifest).expect("a manifest serialises");
    remote.authenticate(reference).await;
    let refused = |e| remote.error("push", &reference.to_string(), e);
    for blob in layers.iter().chain(std::iter::once(config)) {
        let exists = remote
            .client
            .blob_exists(reference.oci(), &blob.descriptor.digest)
            .await
            .map_err(refused)?;
        if !exists {
            remote
                .client
                .push_blob(reference.oci(), blob.data.clone(), &blob.descriptor.digest)
                .await
                .map_err(refused)?;
        }
    }
    remote
        .client
        .push_manifest_raw(
            reference.oci(),
            body.clone(),
            http::HeaderValue::from_static(OCI_IMAGE_MEDIA_TYPE),
        )
        .await
        .map_err(refused)?;
    Ok(sha256(&body))
}
