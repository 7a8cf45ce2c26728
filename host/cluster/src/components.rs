//! Plugin components in the object store, by digest. The coordinator puts
//! each one once; a worker takes it, checks that its bytes hash to the
//! digest the task names, whatever the store says of it, and keeps it in
//! its own cache.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use paracle_project::Component;
use tokio::io::AsyncReadExt;
use tokio::sync::OnceCell;

use crate::error::ClusterError;
use crate::lattice::Lattice;
use crate::wire::{component_object, sha256_hex, MAX_COMPONENT_BYTES};

/// The components this coordinator's tasks name: read once each, with
/// their signatures, and put in the store once each.
#[derive(Default)]
pub(crate) struct Sent(Mutex<HashMap<String, Noted>>);

struct Noted {
    signature: Option<String>,
    component: Arc<Component>,
    uploaded: Arc<OnceCell<()>>,
}

impl Sent {
    /// The signature of the component `digest`, read by `read` the first
    /// time it is named.
    pub(crate) fn note(
        &self,
        digest: &str,
        read: impl FnOnce() -> Result<Component, ClusterError>,
    ) -> Result<Option<String>, ClusterError> {
        if let Some(noted) = self.0.lock().unwrap().get(digest) {
            return Ok(noted.signature.clone());
        }
        let component = read()?;
        let signature = component.signature.clone();
        self.0
            .lock()
            .unwrap()
            .entry(digest.to_string())
            .or_insert(Noted {
                signature: signature.clone(),
                component: Arc::new(component),
                uploaded: Arc::default(),
            });
        Ok(signature)
    }

    /// Put the component `digest` in the store, once, unless it is there
    /// with its digest.
    pub(crate) async fn ensure(
        &self,
        lattice: &Lattice,
        plugin: &str,
        digest: &str,
    ) -> Result<(), ClusterError> {
        let (component, uploaded) = {
            let noted = self.0.lock().unwrap();
            let noted = noted
                .get(digest)
                .expect("a component is noted before it is sent");
            (noted.component.clone(), noted.uploaded.clone())
        };
        uploaded
            .get_or_try_init(|| upload(lattice, plugin, &component))
            .await
            .map(|_| ())
    }
}

async fn upload(
    lattice: &Lattice,
    plugin: &str,
    component: &Component,
) -> Result<(), ClusterError> {
    let failed = |message: String| ClusterError::Component {
        plugin: plugin.to_string(),
        message,
    };
    let name = component_object(&component.digest)
        .ok_or_else(|| failed(format!("`{}` is not a sha256 digest", component.digest)))?;
    let there = match lattice.components.info(name).await {
        Ok(info) => {
            info.size == component.bytes.len()
                && info.digest.as_deref() == Some(store_digest(name).as_str())
        }
        Err(_) => false,
    };
    if !there {
        let mut bytes: &[u8] = &component.bytes;
        lattice
            .components
            .put(name, &mut bytes)
            .await
            .map_err(|e| failed(format!("cannot put its component in the object store: {e}")))?;
    }
    Ok(())
}

/// The object store's own form of a sha256 given in hex: `SHA-256=` and
/// the bytes in URL-safe base64.
fn store_digest(hex_digest: &str) -> String {
    use base64::Engine;
    let bytes = hex::decode(hex_digest).unwrap_or_default();
    format!(
        "SHA-256={}",
        base64::engine::general_purpose::URL_SAFE.encode(bytes)
    )
}

/// A worker's copies of components, under their digests.
pub(crate) struct ComponentCache {
    dir: PathBuf,
}

impl ComponentCache {
    pub(crate) fn new(dir: PathBuf) -> Self {
        ComponentCache { dir }
    }

    /// The bytes of the component `digest`: from this cache, or else from
    /// the store. Either way they are hashed, and bytes that do not hash to
    /// `digest` are refused.
    pub(crate) async fn fetch(&self, lattice: &Lattice, digest: &str) -> Result<Vec<u8>, String> {
        let name =
            component_object(digest).ok_or_else(|| format!("`{digest}` is not a sha256 digest"))?;
        let cached = self.dir.join(format!("{name}.wasm"));
        if let Ok(bytes) = read_no_follow(&cached) {
            if sha256_hex(&bytes) == name {
                return Ok(bytes);
            }
        }
        let mut object = lattice
            .components
            .get(name)
            .await
            .map_err(|e| format!("component {digest} is not in the object store: {e}"))?;
        let size = object.info().size;
        if size > MAX_COMPONENT_BYTES {
            return Err(format!(
                "component {digest} is {size} bytes in the object store, over the limit of {MAX_COMPONENT_BYTES}"
            ));
        }
        let mut bytes = Vec::with_capacity(size);
        (&mut object)
            .take(MAX_COMPONENT_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| format!("cannot read component {digest} from the object store: {e}"))?;
        if bytes.len() > MAX_COMPONENT_BYTES {
            return Err(format!(
                "component {digest} is over the limit of {MAX_COMPONENT_BYTES} bytes"
            ));
        }
        let found = sha256_hex(&bytes);
        if found != name {
            return Err(format!(
                "the object store's component {digest} hashes to sha256:{found}; refused"
            ));
        }
        if std::fs::create_dir_all(&self.dir).is_ok() {
            if let Err(error) = paracle_base::atomic::write(&cached, &bytes) {
                tracing::warn!(
                    "cannot keep component {digest} in {}: {error}",
                    self.dir.display()
                );
            }
        }
        Ok(bytes)
    }
}

/// A cached file, not through a link.
fn read_no_follow(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}
