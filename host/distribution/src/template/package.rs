//! Templates as OCI artifacts: the metadata is the config blob (and, for
//! listings, annotations on the manifest), each file a layer titled with
//! its path, as ORAS lays out files, so that a search reads the metadata
//! without downloading the files.

use std::collections::BTreeMap;
use std::path::Path;

use oci_client::manifest::{OciDescriptor, OciImageManifest};
use serde::Serialize;

use paracle_base::shown;
use paracle_project::signing::{self, Subject, TrustList, Verdict};

use super::format::{self, check_meta, FileKind, TemplateFiles, TemplateMeta, MAX_FILES};
use crate::artifact::{self, Blob, Manifest};
use crate::cache::{sha256, BlobCache};
use crate::error::DistributionError;
use crate::plugin::WASM_LAYER_MEDIA_TYPE;
use crate::reference::ArtifactRef;
use crate::remote::{Access, Remote};

pub const TEMPLATE_ARTIFACT_TYPE: &str = "application/vnd.paracle.template.v1";
pub const TEMPLATE_CONFIG_MEDIA_TYPE: &str = "application/vnd.paracle.template.config.v1+json";
pub const TEMPLATE_FILE_MEDIA_TYPE: &str = "application/vnd.paracle.template.file.v1";
pub const CATEGORY_ANNOTATION: &str = "dev.paracle.template.category";
pub const TAGS_ANNOTATION: &str = "dev.paracle.template.tags";
pub const PARACLE_VERSION_ANNOTATION: &str = "dev.paracle.template.paracle-version";
/// template.yaml as JSON is small.
const MAX_CONFIG: u64 = 256 << 10;
/// All of a template's files together.
const MAX_TEMPLATE: u64 = 1 << 30;

/// A layer's annotation `key`.
fn annotation<'m>(layer: &'m OciDescriptor, key: &str) -> Option<&'m str> {
    layer.annotations.as_ref()?.get(key).map(String::as_str)
}

/// What a template's signature covers: the digest of its config and of
/// every file with its path (and of a carried plugin's signature), in
/// order. The manifest's own annotations are not covered; what is shown
/// and used comes from the config.
pub fn subject_digest(manifest: &OciImageManifest) -> String {
    let mut text = format!(
        "paracle template v1\nconfig {} {}\n",
        manifest.config.media_type, manifest.config.digest
    );
    for layer in &manifest.layers {
        let title = annotation(layer, artifact::TITLE_ANNOTATION).unwrap_or_default();
        // A carried plugin's own signature is covered too, so that a
        // registry cannot strip it from a template that stays signed.
        let signature = annotation(layer, artifact::SIGNATURE_ANNOTATION)
            .map(|s| sha256(s.as_bytes()))
            .unwrap_or_default();
        text.push_str(&format!(
            "layer {} {} {title} {signature}\n",
            layer.media_type, layer.digest
        ));
    }
    sha256(text.as_bytes())
}

/// Sign each plugin `template` carries with `key`, in place of the
/// signature it came with.
pub fn sign_carried_plugins(
    template: &mut TemplateFiles,
    key: &Path,
) -> Result<(), DistributionError> {
    let mut signatures = Vec::new();
    for (path, bytes) in &template.files {
        if FileKind::of(path) == Ok(FileKind::Plugin) {
            let signed = signing::sign_digest(key, Subject::Plugin, &sha256(bytes))?;
            signatures.push((format!("{path}.sig"), signed.text.into_bytes()));
        }
    }
    for (path, text) in signatures {
        template.files.retain(|(p, _)| *p != path);
        template.files.push((path, text));
    }
    template.files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct PublishedTemplate {
    pub reference: String,
    pub pinned: String,
    pub manifest: String,
    pub files: usize,
    pub signed_by: Option<String>,
}

/// Push `template` to `reference`, signed with `key` when given. Its
/// embedded plugins are signed with the same key (or keep the `.sig` file
/// that came with them).
pub async fn publish(
    template: &TemplateFiles,
    reference: &ArtifactRef,
    key: Option<&Path>,
    access: &Access,
) -> Result<PublishedTemplate, DistributionError> {
    let mut layers = Vec::new();
    for (path, bytes) in &template.files {
        let kind = FileKind::of(path).map_err(DistributionError::Template)?;
        let mut annotations =
            BTreeMap::from([(artifact::TITLE_ANNOTATION.to_string(), path.clone())]);
        let media_type = match kind {
            FileKind::PluginSignature => continue,
            FileKind::Plugin => {
                let digest = sha256(bytes);
                let signature = match key {
                    Some(key) => Some(signing::sign_digest(key, Subject::Plugin, &digest)?.text),
                    None => match template.file(&format!("{path}.sig")) {
                        Some(text) => {
                            let text = String::from_utf8_lossy(text).to_string();
                            // A signature that does not verify is not published.
                            TrustList::default().check_artifact(
                                path,
                                Subject::Plugin,
                                &digest,
                                Some(&text),
                            )?;
                            Some(text)
                        }
                        None => None,
                    },
                };
                if let Some(signature) = signature {
                    annotations.insert(artifact::SIGNATURE_ANNOTATION.to_string(), signature);
                }
                WASM_LAYER_MEDIA_TYPE
            }
            _ => TEMPLATE_FILE_MEDIA_TYPE,
        };
        layers.push(Blob::new(media_type, bytes.clone(), Some(annotations)));
    }
    let meta = &template.meta;
    let config = Blob::new(
        TEMPLATE_CONFIG_MEDIA_TYPE,
        serde_json::to_vec(meta).expect("metadata serialises"),
        None,
    );
    let mut annotations = BTreeMap::from([
        (artifact::TITLE_ANNOTATION.to_string(), meta.name.clone()),
        (
            artifact::VERSION_ANNOTATION.to_string(),
            meta.version.clone(),
        ),
        (
            artifact::DESCRIPTION_ANNOTATION.to_string(),
            meta.description.clone(),
        ),
        (
            artifact::AUTHORS_ANNOTATION.to_string(),
            meta.author.clone(),
        ),
        (
            artifact::CREATED_ANNOTATION.to_string(),
            humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        ),
        (
            CATEGORY_ANNOTATION.to_string(),
            meta.category.as_str().to_string(),
        ),
        (TAGS_ANNOTATION.to_string(), meta.tags.join(",")),
        (
            PARACLE_VERSION_ANNOTATION.to_string(),
            meta.paracle_version.clone(),
        ),
    ]);
    let unsigned = OciImageManifest {
        config: config.descriptor.clone(),
        layers: layers.iter().map(|l| l.descriptor.clone()).collect(),
        ..OciImageManifest::default()
    };
    let signed_by = match key {
        Some(key) => {
            let signature =
                signing::sign_digest(key, Subject::Template, &subject_digest(&unsigned))?;
            annotations.insert(artifact::SIGNATURE_ANNOTATION.to_string(), signature.text);
            Some(signature.key)
        }
        None => None,
    };
    let remote = Remote::connect(reference, access)?;
    let manifest = artifact::push(
        &remote,
        reference,
        &config,
        &layers,
        Some(TEMPLATE_ARTIFACT_TYPE),
        annotations,
    )
    .await?;
    Ok(PublishedTemplate {
        reference: reference.to_string(),
        pinned: reference.at_digest(&manifest).to_string(),
        manifest,
        files: layers.len(),
        signed_by,
    })
}

/// A template's manifest and metadata, without its files.
#[derive(Debug, Clone)]
pub struct Described {
    pub manifest: Manifest,
    pub meta: TemplateMeta,
    pub signature: Option<String>,
    /// What the signature must cover.
    pub subject: String,
}

/// The manifest and metadata of the template at `reference`.
pub async fn describe(
    remote: Option<&Remote>,
    cache: &BlobCache,
    reference: &ArtifactRef,
    pinned: Option<&str>,
) -> Result<Described, DistributionError> {
    let manifest = artifact::fetch_manifest(remote, cache, reference, pinned).await?;
    if manifest.parsed.config.media_type != TEMPLATE_CONFIG_MEDIA_TYPE {
        return Err(DistributionError::WrongArtifact {
            reference: reference.to_string(),
            expected: "a Paracle template",
            reason: format!(
                "its config is `{}`, not `{TEMPLATE_CONFIG_MEDIA_TYPE}`",
                manifest.parsed.config.media_type
            ),
        });
    }
    let (_, config) = cache
        .blob(
            remote,
            reference,
            &manifest.parsed.config,
            "metadata",
            MAX_CONFIG,
        )
        .await?;
    let label = reference.to_string();
    let meta: TemplateMeta = serde_json::from_slice(&config).map_err(|e| {
        DistributionError::Template(format!("{label}: its metadata is not a template's: {e}"))
    })?;
    check_meta(&meta, |_| DistributionError::Template(format!("{label}: ")))?;
    let signature = manifest.signature(reference)?;
    let subject = subject_digest(&manifest.parsed);
    Ok(Described {
        manifest,
        meta,
        signature,
        subject,
    })
}

/// A template pulled in full, its signature checked under the trust policy.
#[derive(Debug, Clone)]
pub struct FetchedTemplate {
    pub reference: ArtifactRef,
    pub described: Described,
    pub verdict: Verdict,
    pub files: TemplateFiles,
}

/// Pull the template at `reference` (at `pinned` when given): its
/// signature is checked before any file is downloaded, and every file's
/// place, size and digest before it is kept.
pub async fn fetch(
    access: &Access,
    cache: &BlobCache,
    trust: &TrustList,
    reference: &ArtifactRef,
    pinned: Option<&str>,
) -> Result<FetchedTemplate, DistributionError> {
    let remote = Remote::connect(reference, access)?;
    remote.authenticate(reference).await;
    let described = describe(Some(&remote), cache, reference, pinned).await?;
    let label = reference.to_string();
    format::check_compatible(&described.meta, &label)?;
    let verdict = trust.check_artifact(
        &label,
        Subject::Template,
        &described.subject,
        described.signature.as_deref(),
    )?;
    let layers = &described.manifest.parsed.layers;
    if layers.len() > MAX_FILES {
        return Err(DistributionError::Template(format!(
            "{label}: it holds {} files, more than {MAX_FILES}",
            layers.len()
        )));
    }
    // The whole list is checked before one byte of a file is pulled: each
    // title has its place, each size its limit, each component is one the
    // metadata carries, and the total has a budget.
    let mut total: u64 = 0;
    for layer in layers {
        let title = annotation(layer, artifact::TITLE_ANNOTATION).unwrap_or_default();
        let kind = FileKind::of(title).map_err(|m| {
            DistributionError::Template(format!("{label}: {}", shown::clipped(&m, 300)))
        })?;
        let size = u64::try_from(layer.size).unwrap_or(u64::MAX);
        if size > kind.limit() {
            return Err(DistributionError::TooLarge {
                reference: label.clone(),
                what: format!("file `{title}`"),
                size,
                limit: kind.limit(),
            });
        }
        total = total.saturating_add(size);
        if kind == FileKind::Plugin
            && !described
                .meta
                .plugins
                .iter()
                .any(|d| d.file.is_some() && d.embedded_path() == title)
        {
            return Err(DistributionError::Template(format!(
                "{label}: `{title}` is not a plugin its metadata lists"
            )));
        }
    }
    if total > MAX_TEMPLATE {
        return Err(DistributionError::TooLarge {
            reference: label.clone(),
            what: "the files".into(),
            size: total,
            limit: MAX_TEMPLATE,
        });
    }
    let mut files = Vec::new();
    for layer in layers {
        let title = annotation(layer, artifact::TITLE_ANNOTATION)
            .unwrap_or_default()
            .to_string();
        let kind = FileKind::of(&title)
            .map_err(|m| DistributionError::Template(format!("{label}: {m}")))?;
        let expected_type = match kind {
            FileKind::Plugin => WASM_LAYER_MEDIA_TYPE,
            FileKind::PluginSignature => {
                return Err(DistributionError::Template(format!(
                    "{label}: `{title}`: a signature is an annotation, not a file"
                )))
            }
            _ => TEMPLATE_FILE_MEDIA_TYPE,
        };
        if layer.media_type != expected_type || files.iter().any(|(p, _)| *p == title) {
            return Err(DistributionError::Template(format!(
                "{label}: `{title}` is a `{}` layer, or appears twice; a template's are `{expected_type}`",
                shown::clipped(&layer.media_type, 100)
            )));
        }
        let (_, bytes) = cache
            .blob(Some(&remote), reference, layer, &title, kind.limit())
            .await?;
        if kind == FileKind::Plugin {
            if let Some(signature) = annotation(layer, artifact::SIGNATURE_ANNOTATION) {
                if signature.len() > artifact::MAX_SIGNATURE {
                    return Err(DistributionError::TooLarge {
                        reference: label.clone(),
                        what: format!("signature of `{title}`"),
                        size: signature.len() as u64,
                        limit: artifact::MAX_SIGNATURE as u64,
                    });
                }
                files.push((format!("{title}.sig"), signature.as_bytes().to_vec()));
            }
        }
        files.push((title, bytes));
    }
    let files = TemplateFiles {
        meta: described.meta.clone(),
        meta_text: None,
        files,
    };
    files.check_files(Path::new(&label))?;
    Ok(FetchedTemplate {
        reference: reference.clone(),
        described,
        verdict,
        files,
    })
}
