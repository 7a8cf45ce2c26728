//! Finding templates: each registry the user configured is listed (its
//! catalog, each repository's tags, each tag's manifest and metadata), and
//! what was seen is kept, so that a search works offline from the last
//! listing and says so.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use paracle_base::{atomic, shown};
use paracle_project::signing::{TrustList, Verdict};
use paracle_project::Paths;

use super::format::{Category, TemplateMeta};
use super::package::{self, Described};
use crate::cache::BlobCache;
use crate::error::DistributionError;
use crate::reference::{valid_repository, valid_tag, ArtifactRef};
use crate::remote::{Access, Remote};
use paracle_project::RegistryDecl;

/// Repositories and tags looked at per registry, at most.
const MAX_REPOSITORIES: usize = 1000;
const MAX_TAGS: usize = 100;

/// One version of one template, as a registry lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listing {
    /// The configured registry's name.
    pub registry: String,
    /// `oci://HOST/REPOSITORY:TAG`.
    pub reference: String,
    pub manifest: String,
    pub meta: TemplateMeta,
    /// The signature, kept so that whether it is trusted is decided by the
    /// trust list at search time, not when it was listed.
    pub signature: Option<String>,
    pub subject: String,
}

impl Listing {
    fn of(registry: &str, reference: &ArtifactRef, described: Described) -> Self {
        Listing {
            registry: registry.to_string(),
            reference: reference.to_string(),
            manifest: described.manifest.digest.clone(),
            meta: described.meta,
            signature: described.signature,
            subject: described.subject,
        }
    }

    /// What its signature says under `trust`; a bad one says why.
    pub fn verdict(&self, trust: &TrustList) -> Result<Verdict, String> {
        let shown = TrustList {
            policy: paracle_project::signing::Policy::AllowUnsigned,
            ..trust.clone()
        };
        shown
            .check_artifact(
                &self.reference,
                paracle_project::signing::Subject::Template,
                &self.subject,
                self.signature.as_deref(),
            )
            .map_err(|e| e.to_string())
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IndexFile {
    registry: String,
    location: String,
    seen_at: String,
    listings: Vec<Listing>,
}

/// A registry that could not be asked, and the listing used instead.
#[derive(Debug, Clone, Serialize)]
pub struct Stale {
    pub registry: String,
    /// Whether it did not answer at all (offline), rather than answered no.
    pub unreachable: bool,
    pub reason: String,
    /// When the listing used was made; None if there was none.
    pub seen_at: Option<String>,
}

/// Every template the configured registries hold, from each registry or
/// else from its last listing.
#[derive(Debug, Default, Serialize)]
pub struct Catalog {
    pub listings: Vec<Listing>,
    pub stale: Vec<Stale>,
}

fn index_file(paths: &Paths, registry: &str) -> PathBuf {
    paths.template_index.join(format!("{registry}.json"))
}

/// List every configured registry (`only`: just that one).
pub async fn catalog(
    paths: &Paths,
    access: &Access,
    only: Option<&str>,
) -> Result<Catalog, DistributionError> {
    let cache = BlobCache::new(&paths.blobs);
    let mut catalog = Catalog::default();
    if let Some(only) = only {
        if !access.config.registries.contains_key(only) {
            return Err(DistributionError::Template(format!(
                "no registry `{only}` in {}; add [registries.{only}] with location = \"HOST[:PORT]/NAMESPACE\"",
                access.config.file.display()
            )));
        }
    }
    for (name, decl) in &access.config.registries {
        if only.is_some_and(|o| o != name) {
            continue;
        }
        match list_registry(name, decl, access, &cache).await {
            Ok(listings) => {
                let file = index_file(paths, name);
                let index = IndexFile {
                    registry: name.clone(),
                    location: decl.location.clone(),
                    seen_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                        .to_string(),
                    listings,
                };
                let text = serde_json::to_vec_pretty(&index).expect("an index serialises");
                atomic::write(&file, &text).map_err(|e| DistributionError::io(&file, e))?;
                catalog.listings.extend(index.listings);
            }
            // A registry that cannot be listed (down, or without the catalog
            // API) leaves the others searchable; its last listing stands in.
            Err(error) => {
                let saved = read_index(&index_file(paths, name), &decl.location);
                catalog.stale.push(Stale {
                    registry: name.clone(),
                    unreachable: error.is_unreachable(),
                    reason: error.to_string(),
                    seen_at: saved.as_ref().map(|s| s.seen_at.clone()),
                });
                if let Some(saved) = saved {
                    catalog.listings.extend(saved.listings);
                }
            }
        }
    }
    Ok(catalog)
}

/// The last listing of a registry, if there is one for this location. A
/// damaged file counts as none: it is only a cache.
fn read_index(file: &Path, location: &str) -> Option<IndexFile> {
    let bytes = std::fs::read(file).ok()?;
    let index: IndexFile = serde_json::from_slice(&bytes).ok()?;
    (index.location == location).then_some(index)
}

async fn list_registry(
    name: &str,
    decl: &RegistryDecl,
    access: &Access,
    cache: &BlobCache,
) -> Result<Vec<Listing>, DistributionError> {
    let (host, namespace) = decl.split();
    let probe = ArtifactRef::from_parts(
        host,
        if namespace.is_empty() { "_" } else { namespace },
        "latest",
    );
    let remote = Remote::connect(&probe, access)?;
    remote.authenticate(&probe).await;
    let prefix = if namespace.is_empty() {
        String::new()
    } else {
        format!("{namespace}/")
    };
    let repositories = if decl.repositories.is_empty() {
        remote
            .client
            .catalog(probe.oci(), &remote.auth, Some(MAX_REPOSITORIES), None)
            .await
            .map_err(|e| match remote.error("list", &format!("oci://{host}"), e) {
                DistributionError::Refused { registry, reason, .. } => DistributionError::Refused {
                    registry,
                    action: "list",
                    reference: format!("oci://{host} (its catalog)"),
                    reason: format!(
                        "{reason}; a registry without the catalog API (GHCR, Docker Hub) is searched by naming its template repositories in `repositories = [...]` of [registries.{name}]"
                    ),
                },
                other => other,
            })?
            .repositories
    } else {
        decl.repositories
            .iter()
            .map(|r| format!("{prefix}{r}"))
            .collect()
    };
    let mut listings = Vec::new();
    for repository in repositories
        .iter()
        .take(MAX_REPOSITORIES)
        .filter(|r| r.starts_with(&prefix) && valid_repository(r))
    {
        let repo_ref = ArtifactRef::from_parts(host, repository, "latest");
        let tags = remote
            .client
            .list_tags(repo_ref.oci(), &remote.auth, Some(MAX_TAGS), None)
            .await
            .map_err(|e| remote.error("list", &repo_ref.unpinned(), e))?
            .tags;
        let last = repository.rsplit('/').next().unwrap_or_default();
        for tag in tags.iter().take(MAX_TAGS).filter(|t| valid_tag(t)) {
            let reference = ArtifactRef::from_parts(host, repository, tag);
            match package::describe(Some(&remote), cache, &reference, None).await {
                // A template is listed under its own name only, so that one
                // repository cannot pass for another's template.
                Ok(described) if described.meta.name == last => {
                    listings.push(Listing::of(name, &reference, described))
                }
                Ok(_) => tracing::warn!(
                    "{} left out: its template is not named `{last}`",
                    shown::clipped(&reference.to_string(), 200)
                ),
                // Plugins and other artifacts share registries with templates.
                Err(DistributionError::WrongArtifact { .. }) => {}
                Err(error) if error.is_unreachable() => return Err(error),
                Err(error) => tracing::warn!(
                    "{} left out: {}",
                    shown::clipped(&reference.to_string(), 200),
                    shown::clipped(&error.to_string(), 400)
                ),
            }
        }
    }
    Ok(listings)
}

/// How well `listing` matches `terms`: a name beats a tag beats the
/// description. Zero: no match.
fn score(listing: &Listing, terms: &[String]) -> u32 {
    let meta = &listing.meta;
    let description = meta.description.to_lowercase();
    terms
        .iter()
        .map(|term| {
            let mut points = 0;
            if meta.name == *term {
                points += 10;
            } else if meta.name.contains(term.as_str()) {
                points += 5;
            }
            if meta.tags.iter().any(|t| t == term) {
                points += 4;
            } else if meta.tags.iter().any(|t| t.contains(term.as_str())) {
                points += 2;
            }
            if description.contains(term.as_str()) {
                points += 1;
            }
            points
        })
        .sum()
}

/// The listings that match `query` (every one for an empty query), in
/// `category` and with `tag` when given, best first, newest version first.
pub fn rank(
    listings: &[Listing],
    query: &str,
    category: Option<Category>,
    tag: Option<&str>,
) -> Vec<Listing> {
    let terms: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
    let mut scored: Vec<(u32, &Listing)> = listings
        .iter()
        .filter(|l| category.is_none_or(|c| l.meta.category == c))
        .filter(|l| tag.is_none_or(|t| l.meta.tags.iter().any(|x| x == t)))
        .map(|l| (score(l, &terms), l))
        .filter(|(score, _)| terms.is_empty() || *score > 0)
        .collect();
    scored.sort_by(|(a, x), (b, y)| {
        b.cmp(a)
            .then_with(|| x.meta.name.cmp(&y.meta.name))
            .then_with(|| version(&y.meta).cmp(&version(&x.meta)))
    });
    scored.into_iter().map(|(_, l)| l.clone()).collect()
}

fn version(meta: &TemplateMeta) -> semver::Version {
    semver::Version::parse(&meta.version).unwrap_or(semver::Version::new(0, 0, 0))
}

/// The listing `id` names (a template's name), at `version` or else its
/// newest. More than one registry holding it is an error that lists them.
pub fn resolve<'c>(
    catalog: &'c Catalog,
    id: &str,
    wanted: Option<&str>,
) -> Result<&'c Listing, DistributionError> {
    let mut matching: Vec<&Listing> = catalog
        .listings
        .iter()
        .filter(|l| l.meta.name == id && wanted.is_none_or(|v| l.meta.version == v))
        .collect();
    let registries: std::collections::BTreeSet<&str> =
        matching.iter().map(|l| l.registry.as_str()).collect();
    if registries.len() > 1 {
        return Err(DistributionError::Template(format!(
            "template `{id}` is in more than one registry ({}); install it by reference, like `paracle template install oci://HOST/REPOSITORY:TAG`",
            registries.into_iter().collect::<Vec<_>>().join(", ")
        )));
    }
    matching.sort_by_key(|l| std::cmp::Reverse(version(&l.meta)));
    matching.first().copied().ok_or_else(|| {
        DistributionError::Template(match wanted {
            Some(v) => format!("no version {v} of template `{id}` in the configured registries; `paracle template search {id}` lists those there are"),
            None => format!("no template `{id}` in the configured registries, nor built in; `paracle template search` lists them"),
        })
    })
}
