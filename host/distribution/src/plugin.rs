//! Plugins in registries, in the layout the CNCF's Wasm OCI artifact
//! specification gives (and `wkg`, wasmtime and Spin use): a config of
//! type `application/vnd.wasm.config.v0+json` and one `application/wasm`
//! layer holding the component as it is. Our signature rides in the
//! manifest's annotations, so other tools pull the plain component.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::json;

use paracle_policy::Grant;
use paracle_project::signing::{self, Subject, TrustList};
use paracle_project::{Origin, Registry};
use paracle_runtime::{digest_of, Plugin, PluginSettings, Runtime, World};

use crate::artifact::{self, Blob, Manifest};
use crate::cache::BlobCache;
use crate::error::DistributionError;
use crate::reference::ArtifactRef;
use crate::remote::{Access, Remote};

pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// Older tools' names for the same, accepted when pulling.
const LEGACY_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v1+json";
const LEGACY_LAYER_MEDIA_TYPE: &str = "application/vnd.wasm.content.layer.v1+wasm";
pub const KIND_ANNOTATION: &str = "dev.paracle.plugin.kind";
/// The largest component pulled.
pub const MAX_COMPONENT: u64 = 256 << 20;

/// A plugin pushed to a registry.
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    pub reference: String,
    /// The reference by digest, for a lockfile or a template.
    pub pinned: String,
    pub manifest: String,
    pub component: String,
    pub size: u64,
    /// The key that signed it, if one did.
    pub signed_by: Option<String>,
}

/// Where a signature for a push comes from.
#[derive(Debug, Clone, Copy)]
pub enum SignWith<'a> {
    /// Sign with this secret key.
    Key(&'a Path),
    /// Use `FILE.sig` beside the component if there is one; else unsigned.
    ExistingFile,
}

/// Push the component at `file` to `reference`. It must be a Paracle plugin
/// this host can link, with info within its caps: a registry should not
/// hold what no host can run.
pub async fn publish(
    runtime: &Runtime,
    file: &Path,
    reference: &ArtifactRef,
    sign: SignWith<'_>,
    access: &Access,
) -> Result<Published, DistributionError> {
    let bytes = std::fs::read(file).map_err(|e| DistributionError::io(file, e))?;
    let digest = digest_of(&bytes);
    // Inspected, not started: publishing runs none of its code with a
    // config or grants, and a plugin that needs them publishes all the same.
    let plugin = runtime
        .inspect(file, &bytes, digest.clone())
        .await
        .map_err(|e| DistributionError::file(file, format!("is not a Paracle plugin: {e}")))?;
    let signature = match sign {
        SignWith::Key(key) => Some(signing::sign_digest(key, Subject::Plugin, &digest)?),
        SignWith::ExistingFile => match TrustList::default().check(file, &bytes)? {
            signing::Verdict::Unsigned => None,
            signing::Verdict::Trusted { key, .. } | signing::Verdict::Untrusted { key } => {
                let path = signing::signature_path(file);
                let text =
                    std::fs::read_to_string(&path).map_err(|e| DistributionError::io(&path, e))?;
                Some(signing::SignatureText { text, key })
            }
        },
    };
    let size = bytes.len() as u64;
    let file_name = file
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| format!("{}.wasm", plugin.info.name));
    let layer = Blob::new(
        WASM_LAYER_MEDIA_TYPE,
        bytes,
        Some(BTreeMap::from([(
            artifact::TITLE_ANNOTATION.to_string(),
            file_name,
        )])),
    );
    let config = Blob::new(
        WASM_CONFIG_MEDIA_TYPE,
        wasm_config(&plugin.world, &digest, &layer),
        None,
    );
    let info = &plugin.info;
    let mut annotations = BTreeMap::from([
        (artifact::TITLE_ANNOTATION.to_string(), info.name.clone()),
        (
            artifact::VERSION_ANNOTATION.to_string(),
            info.version.clone(),
        ),
        (
            artifact::DESCRIPTION_ANNOTATION.to_string(),
            info.description.clone(),
        ),
        (artifact::CREATED_ANNOTATION.to_string(), now()),
        (KIND_ANNOTATION.to_string(), plugin.kind.to_string()),
    ]);
    if let Some(signature) = &signature {
        annotations.insert(
            artifact::SIGNATURE_ANNOTATION.to_string(),
            signature.text.clone(),
        );
    }
    let remote = Remote::connect(reference, access)?;
    let manifest = artifact::push(&remote, reference, &config, &[layer], None, annotations).await?;
    Ok(Published {
        reference: reference.to_string(),
        pinned: reference.at_digest(&manifest).to_string(),
        manifest,
        component: digest,
        size,
        signed_by: signature.map(|s| s.key),
    })
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// The config the CNCF layout asks for: what the component is, for tools
/// that list components without pulling them.
fn wasm_config(world: &World, digest: &str, layer: &Blob) -> Vec<u8> {
    debug_assert_eq!(layer.descriptor.digest, digest);
    serde_json::to_vec(&json!({
        "created": now(),
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [digest],
        "component": {
            "exports": world.exports,
            "imports": world.imports,
            "target": null,
        },
    }))
    .expect("the config serialises")
}

/// A component pulled from a registry (or found in the cache).
#[derive(Debug, Clone)]
pub struct Fetched {
    pub reference: ArtifactRef,
    pub manifest: Manifest,
    /// The component in the blob cache.
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub signature: Option<String>,
}

impl Fetched {
    /// What the registry records of where it came from.
    pub fn origin(&self) -> Origin {
        Origin {
            reference: self.reference.unpinned(),
            manifest: self.manifest.digest.clone(),
            component: String::new(),
            signature: self.signature.clone(),
        }
    }
}

/// Pull the component `reference` names, by the `pinned` manifest digest
/// when given, checking every digest on the way.
pub async fn fetch(
    access: &Access,
    cache: &BlobCache,
    reference: &ArtifactRef,
    pinned: Option<&str>,
) -> Result<Fetched, DistributionError> {
    tracing::debug!("reaching {}", reference.registry());
    let remote = Remote::connect(reference, access)?;
    remote.authenticate(reference).await;
    let manifest = artifact::fetch_manifest(Some(&remote), cache, reference, pinned).await?;
    let wrong = |reason: String| DistributionError::WrongArtifact {
        reference: reference.to_string(),
        expected: "a Wasm component artifact",
        reason,
    };
    let config_type = manifest.parsed.config.media_type.as_str();
    if config_type != WASM_CONFIG_MEDIA_TYPE && config_type != LEGACY_CONFIG_MEDIA_TYPE {
        return Err(wrong(format!(
            "its config is `{config_type}`, not `{WASM_CONFIG_MEDIA_TYPE}`"
        )));
    }
    let [layer] = manifest.parsed.layers.as_slice() else {
        return Err(wrong(format!(
            "it has {} layers; a component artifact has one",
            manifest.parsed.layers.len()
        )));
    };
    if layer.media_type != WASM_LAYER_MEDIA_TYPE && layer.media_type != LEGACY_LAYER_MEDIA_TYPE {
        return Err(wrong(format!(
            "its layer is `{}`, not `{WASM_LAYER_MEDIA_TYPE}`",
            layer.media_type
        )));
    }
    let signature = manifest.signature(reference)?;
    let (path, bytes) = cache
        .blob(Some(&remote), reference, layer, "component", MAX_COMPONENT)
        .await?;
    Ok(Fetched {
        reference: reference.clone(),
        manifest,
        path,
        bytes,
        signature,
    })
}

/// What `install` did.
pub struct Installed {
    pub plugin: std::sync::Arc<Plugin>,
    pub fetched: Fetched,
    /// The entry it replaced, if the same reference was installed before.
    pub previous: Option<paracle_project::Entry>,
    /// Whether the manifest came from the lockfile's pin.
    pub pinned: bool,
}

/// What the operator says on `plugin install`, beyond the reference.
#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    /// Register it under this name. Installing again keeps the name it had.
    pub name: Option<String>,
    /// Granted on top of what it was granted before, if anything.
    pub grants: Vec<Grant>,
    /// Replaces its config when given.
    pub config: Option<serde_json::Value>,
}

/// Install the plugin `reference` names into the project. A reference
/// installed before is taken at the digest the project pinned, unless
/// `update` asks for what its tag names now; a reference with a digest is
/// taken at that digest. Installing again keeps the name, grants, config and
/// limits it had, with `options` added.
pub async fn install(
    registry: &mut Registry,
    access: &Access,
    reference: &ArtifactRef,
    options: InstallOptions,
    update: bool,
) -> Result<Installed, DistributionError> {
    let cache = BlobCache::new(&registry.paths().blobs);
    let existing = registry
        .known()
        .iter()
        .filter_map(|k| registry.entry(&k.name))
        .find(|e| {
            e.origin
                .as_ref()
                .is_some_and(|o| o.reference == reference.unpinned())
                && options.name.as_ref().is_none_or(|n| *n == e.name)
        })
        .cloned();
    let pin = match (&existing, reference.digest(), update) {
        (_, Some(_), _) | (_, None, true) | (None, None, false) => None,
        (Some(entry), None, false) => entry.origin.as_ref().map(|o| o.manifest.clone()),
    };
    let fetched = match fetch(access, &cache, reference, pin.as_deref()).await {
        Err(DistributionError::Unreachable { registry, reason })
            if pin.is_none() && reference.digest().is_none() =>
        {
            return Err(DistributionError::NotPinnedOffline {
                reference: reference.to_string(),
                registry,
                reason,
            })
        }
        other => other?,
    };
    let mut settings = match &existing {
        Some(entry) => entry.settings(),
        None => PluginSettings {
            name: options.name.clone(),
            ..PluginSettings::default()
        },
    };
    for grant in options.grants {
        settings.grants.add(grant);
    }
    if let Some(config) = options.config {
        settings.config = Some(config);
    }
    tracing::debug!("installing {}", fetched.reference);
    let (plugin, previous) = registry
        .install(&fetched.path, &fetched.bytes, settings, fetched.origin())
        .await?;
    tracing::debug!("installed {}", fetched.reference);
    Ok(Installed {
        plugin,
        fetched,
        previous,
        pinned: pin.is_some(),
    })
}

/// Take the newest version of installed plugin `name`: what its tag names
/// now, keeping its settings.
pub async fn update(
    registry: &mut Registry,
    access: &Access,
    name: &str,
) -> Result<Installed, DistributionError> {
    registry.source_of(name)?;
    let origin = registry
        .origin(name)
        .cloned()
        .ok_or_else(|| DistributionError::NotInstalled {
            name: name.to_string(),
        })?;
    if let Some((template, _)) = origin.reference.split_once('#') {
        return Err(DistributionError::CameWithTemplate {
            name: name.to_string(),
            template: template.to_string(),
        });
    }
    let reference = ArtifactRef::parse(&origin.reference)?;
    let options = InstallOptions {
        name: Some(name.to_string()),
        ..InstallOptions::default()
    };
    install(registry, access, &reference, options, true).await
}
