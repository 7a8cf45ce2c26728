//! Sharing plugins and templates through OCI registries.
//!
//! A plugin travels in the CNCF Wasm artifact layout (`plugin`), a
//! template as files titled by path (`template`). Both are pulled through
//! [`Remote`] (plain HTTP only to loopback and to registries the user lists
//! as insecure), checked against every digest, kept in the content-addressed
//! [`BlobCache`], and signed with the same keys as plugin files: the
//! signature rides in the manifest's annotations and is checked against
//! the trust list before anything is used.

pub mod artifact;
pub mod cache;
mod error;
pub mod plugin;
pub mod reference;
pub mod remote;
pub mod template;

pub use cache::BlobCache;
pub use error::DistributionError;
pub use paracle_project::{RegistryDecl, UserConfig};
pub use reference::ArtifactRef;
pub use remote::{Access, Credentials, Progress, Remote};
