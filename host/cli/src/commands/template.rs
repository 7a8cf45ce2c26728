//! `paracle template ...`: find, install and publish templates.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Subcommand;
use serde_json::{json, Value};

use super::output::{print_json, print_table};
use super::project::open;
use super::share::{self, LoginTo, RegistryArgs};
use paracle_base::shown;
use paracle_distribution::template::builtin::{self, BUILTIN};
use paracle_distribution::template::{format, index, install, package, Category, Listing};
use paracle_distribution::{Access, ArtifactRef, BlobCache};
use paracle_project::signing::TrustList;
use paracle_project::Registry;

#[derive(Subcommand)]
pub(super) enum TemplateCommand {
    /// Search the registries in your config (and the built-in templates) by
    /// name, tags and description. Offline, it searches the last listing.
    Search {
        /// Words to look for; none lists every template.
        #[arg(default_value = "")]
        query: String,
        /// Only agent, workflow, plugin or integration templates.
        #[arg(long)]
        category: Option<String>,
        /// Only templates with this tag.
        #[arg(long)]
        tag: Option<String>,
        /// Only this registry of your config.
        #[arg(long)]
        registry: Option<String>,
        #[command(flatten)]
        login: RegistryArgs,
        #[arg(long)]
        json: bool,
    },
    /// Install a template into the project: NAME[@VERSION] from your
    /// registries, a built-in one (webapp, analytics, ml), or oci://REF.
    Install {
        id: String,
        /// Overwrite spec files you have changed, and plugins it installed
        /// before at another version (they start again with no grants).
        #[arg(long)]
        force: bool,
        /// Look NAME up only in this registry of your config.
        #[arg(long)]
        registry: Option<String>,
        #[command(flatten)]
        login: RegistryArgs,
        #[arg(long)]
        json: bool,
    },
    /// Check the template in PATH strictly and publish it to REF (default:
    /// NAME:VERSION under the namespace of the registry in your config).
    Publish {
        path: PathBuf,
        reference: Option<String>,
        /// Which registry of your config, when there are several.
        #[arg(long)]
        registry: Option<String>,
        /// Sign it with this secret key (from `paracle plugin keygen`).
        #[arg(long, value_name = "KEY_FILE")]
        sign_key: Option<PathBuf>,
        #[command(flatten)]
        login: RegistryArgs,
        #[arg(long)]
        json: bool,
    },
    /// The templates installed in this project: from where, at which digest.
    List {
        #[arg(long)]
        json: bool,
    },
}

pub(super) async fn run(project: &Path, command: TemplateCommand) -> Result<()> {
    let mut registry = open(project)?;
    match command {
        TemplateCommand::Search {
            query,
            category,
            tag,
            registry: only,
            login,
            json,
        } => {
            let access = share::access(
                registry.paths(),
                &login,
                LoginTo::Configured(only.as_deref()),
            )?;
            search(
                &registry,
                &access,
                &query,
                category.as_deref(),
                tag.as_deref(),
                only.as_deref(),
                json,
            )
            .await
        }
        TemplateCommand::Install {
            id,
            force,
            registry: only,
            login,
            json,
        } => {
            let host = if id.contains('/') {
                Some(ArtifactRef::parse(&id)?.registry().to_string())
            } else {
                None
            };
            let login_to = match &host {
                Some(host) => LoginTo::Host(host),
                None => LoginTo::Configured(only.as_deref()),
            };
            let access = share::access(registry.paths(), &login, login_to)?;
            install_template(&mut registry, &access, &id, only.as_deref(), force, json).await
        }
        TemplateCommand::Publish {
            path,
            reference,
            registry: target,
            sign_key,
            login,
            json,
        } => {
            let host = reference
                .as_deref()
                .map(ArtifactRef::parse)
                .transpose()?
                .map(|r| r.registry().to_string());
            let login_to = match &host {
                Some(host) => LoginTo::Host(host),
                None => LoginTo::Configured(target.as_deref()),
            };
            let access = share::access(registry.paths(), &login, login_to)?;
            publish(
                &registry,
                &access,
                &path,
                reference.as_deref(),
                target.as_deref(),
                sign_key.as_deref(),
                json,
            )
            .await
        }
        TemplateCommand::List { json } => list(&registry, json),
    }
}

fn signature_of(listing: &Listing, trust: &TrustList) -> String {
    if listing.registry == BUILTIN {
        return "built in".into();
    }
    match listing.verdict(trust) {
        Ok(verdict) => verdict.to_string(),
        Err(error) => format!("BAD SIGNATURE: {error}"),
    }
}

async fn search(
    registry: &Registry,
    access: &Access,
    query: &str,
    category: Option<&str>,
    tag: Option<&str>,
    only: Option<&str>,
    as_json: bool,
) -> Result<()> {
    let category = category
        .map(|c| {
            Category::parse(c).ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown category `{c}`; choose agent, workflow, plugin or integration"
                )
            })
        })
        .transpose()?;
    let mut catalog = index::catalog(registry.paths(), access, only).await?;
    if only.is_none() {
        catalog.listings.extend(builtin::listings());
    }
    let found = index::rank(&catalog.listings, query, category, tag);
    let trust = registry.trust();
    if as_json {
        let results: Vec<Value> = found
            .iter()
            .map(|l| {
                json!({
                    "name": l.meta.name,
                    "version": l.meta.version,
                    "category": l.meta.category.as_str(),
                    "author": l.meta.author,
                    "tags": l.meta.tags,
                    "description": l.meta.description,
                    "paracle_version": l.meta.paracle_version,
                    "registry": l.registry,
                    "reference": l.reference,
                    "manifest": l.manifest,
                    "signature": signature_of(l, trust),
                    "trusted": l.registry == BUILTIN || matches!(l.verdict(trust), Ok(paracle_project::signing::Verdict::Trusted { .. })),
                })
            })
            .collect();
        print_json(&json!({"results": results, "offline": catalog.stale}));
        return Ok(());
    }
    for stale in &catalog.stale {
        report_stale(stale);
    }
    if access.config.registries.is_empty() && only.is_none() {
        eprintln!(
            "note: no registries in {}; add [registries.NAME] with location = \"HOST[:PORT]/NAMESPACE\" to search one",
            access.config.file.display()
        );
    }
    if found.is_empty() {
        println!("No templates match.");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|l| {
            vec![
                l.meta.name.clone(),
                l.meta.version.clone(),
                l.meta.category.as_str().to_string(),
                l.meta.author.clone(),
                l.meta.tags.join(","),
                signature_of(l, trust),
                l.meta.description.clone(),
            ]
        })
        .collect();
    print_table(
        &[
            "name",
            "version",
            "category",
            "author",
            "tags",
            "signature",
            "description",
        ],
        &rows,
    );
    println!("Install one with `paracle template install NAME[@VERSION]`.");
    Ok(())
}

async fn install_template(
    registry: &mut Registry,
    access: &Access,
    id: &str,
    only: Option<&str>,
    force: bool,
    as_json: bool,
) -> Result<()> {
    let paths = registry.paths().clone();
    let cache = BlobCache::new(&paths.blobs);
    let trust = registry.trust().clone();
    let (name, version) = match id.split_once('@') {
        Some((name, version)) if !id.contains('/') => (name, Some(version)),
        _ => (id, None),
    };
    let mut stale = Vec::new();
    let (files, provenance) = if id.contains('/') {
        let reference = ArtifactRef::parse(id)?;
        fetched(package::fetch(access, &cache, &trust, &reference, None).await?)
    } else if builtin::is_builtin(name) {
        if version.is_some_and(|v| v != format::PARACLE_VERSION) {
            bail!(
                "built-in template `{name}` is version {} only",
                format::PARACLE_VERSION
            );
        }
        (
            builtin::builtin(name, name)?,
            install::Provenance {
                source: format!("{BUILTIN}:{name}"),
                manifest: None,
                verdict: None,
            },
        )
    } else {
        let catalog = index::catalog(&paths, access, only).await?;
        if !as_json {
            for stale in &catalog.stale {
                report_stale(stale);
            }
        }
        stale = catalog.stale.clone();
        let listing = index::resolve(&catalog, name, version)?;
        let reference = ArtifactRef::parse(&listing.reference)?;
        fetched(package::fetch(access, &cache, &trust, &reference, Some(&listing.manifest)).await?)
    };
    let label = provenance.source.clone();
    let from_registry = ArtifactRef::parse(&label)
        .ok()
        .map(|r| r.registry().to_string());
    let checked = install::check(
        &files,
        &label,
        from_registry.as_deref(),
        &paths,
        registry.shared_runtime(),
        access,
    )
    .await?;
    let installed = install::install(registry, &files, checked, provenance, force).await?;
    let next: Vec<String> = installed
        .workflows
        .iter()
        .map(|w| format!("paracle run start {w} && paracle run next"))
        .collect();
    if as_json {
        print_json(&json!({
            "name": installed.meta.name,
            "version": installed.meta.version,
            "source": installed.provenance.source,
            "manifest": installed.provenance.manifest,
            "signature": installed.provenance.verdict,
            "written": installed.written,
            "unchanged": installed.unchanged,
            "offline": stale,
            "plugins": installed.plugins.iter().map(|p| json!({
                "name": p.name(),
                "digest": p.digest(),
                "signature": registry.signature(p.name()).ok().flatten(),
                "requests": super::grant::requests_vs_grants(p).iter().map(|l| l.trim().to_string()).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "workflows": installed.workflows,
            "next": next,
        }));
        return Ok(());
    }
    println!(
        "Installed template `{}` {} from {}",
        installed.meta.name, installed.meta.version, installed.provenance.source
    );
    if let Some(manifest) = &installed.provenance.manifest {
        println!("  manifest {manifest}");
    }
    if let Some(verdict) = &installed.provenance.verdict {
        println!("  {verdict}");
    }
    for file in &installed.written {
        println!("  wrote {}", file.display());
    }
    for file in &installed.unchanged {
        println!("  kept {} (unchanged)", file.display());
    }
    for plugin in &installed.plugins {
        println!(
            "  installed plugin `{}` ({})",
            plugin.name(),
            plugin.digest()
        );
        let requests = super::grant::requests_vs_grants(plugin);
        for line in requests {
            println!("  {}", shown::line(&line));
        }
    }
    if !installed.plugins.is_empty() {
        println!(
            "  (nothing was granted; `paracle plugin grant NAME GRANT` grants what you decide)"
        );
    }
    match next.first() {
        Some(first) => println!("Next: {first}"),
        None => println!("Next: `paracle workflow list` shows the project's workflows"),
    }
    Ok(())
}

/// A registry that could not be listed, and what stands in for it.
fn report_stale(stale: &index::Stale) {
    let what = if stale.unreachable {
        format!("offline: registry `{}` cannot be reached", stale.registry)
    } else {
        format!("warning: registry `{}` cannot be listed", stale.registry)
    };
    match &stale.seen_at {
        Some(seen) => eprintln!(
            "{what} ({}); using what it listed at {seen}",
            shown::line(&stale.reason)
        ),
        None => eprintln!(
            "{what} ({}), and it was never listed here",
            shown::line(&stale.reason)
        ),
    }
}

fn fetched(template: package::FetchedTemplate) -> (format::TemplateFiles, install::Provenance) {
    (
        template.files,
        install::Provenance {
            source: template.reference.unpinned(),
            manifest: Some(template.described.manifest.digest.clone()),
            verdict: Some(template.verdict),
        },
    )
}

async fn publish(
    registry: &Registry,
    access: &Access,
    path: &Path,
    reference: Option<&str>,
    target: Option<&str>,
    sign_key: Option<&Path>,
    as_json: bool,
) -> Result<()> {
    let mut files = format::read_dir(path)?;
    format::check_compatible(&files.meta, &path.display().to_string())?;
    if let Some(key) = sign_key {
        // The plugins it carries are checked as they will be published:
        // signed with the same key.
        package::sign_carried_plugins(&mut files, key)?;
    }
    let reference = match reference {
        Some(reference) => ArtifactRef::parse(reference)?,
        None => default_reference(access, target, &files.meta)?,
    };
    install::check(
        &files,
        &path.display().to_string(),
        None,
        registry.paths(),
        registry.shared_runtime(),
        access,
    )
    .await?;
    let published = package::publish(&files, &reference, sign_key, access).await?;
    if as_json {
        print_json(&json!(published));
        return Ok(());
    }
    println!(
        "Published template `{}` {} to {}",
        files.meta.name, files.meta.version, published.reference
    );
    println!(
        "  manifest {} ({} files)",
        published.manifest, published.files
    );
    match &published.signed_by {
        Some(key) => println!("  signed by {key}"),
        None => eprintln!(
            "warning: published unsigned; hosts that require signatures will refuse it (pass --sign-key KEY_FILE)"
        ),
    }
    println!(
        "Find it with `paracle template search {}`.",
        files.meta.name
    );
    Ok(())
}

/// NAME:VERSION under the namespace of the registry `target` names, or of
/// the only (or `default`) one.
fn default_reference(
    access: &Access,
    target: Option<&str>,
    meta: &format::TemplateMeta,
) -> Result<ArtifactRef> {
    let registries = &access.config.registries;
    let decl = match target {
        Some(name) => registries.get(name).ok_or_else(|| {
            anyhow::anyhow!("no registry `{name}` in {}", access.config.file.display())
        })?,
        None if registries.len() == 1 => registries.values().next().expect("one"),
        None => match registries.get("default") {
            Some(decl) => decl,
            None if registries.is_empty() => bail!(
                "no registry to publish to: give a reference (oci://HOST/REPOSITORY:TAG), or add [registries.NAME] with location = \"HOST[:PORT]/NAMESPACE\" to {}",
                access.config.file.display()
            ),
            None => bail!(
                "{} names several registries; pick one with --registry, or give a reference",
                access.config.file.display()
            ),
        },
    };
    let (host, namespace) = decl.split();
    let repository = if namespace.is_empty() {
        meta.name.clone()
    } else {
        format!("{namespace}/{}", meta.name)
    };
    Ok(ArtifactRef::parse(&format!(
        "{host}/{repository}:{}",
        meta.version
    ))?)
}

fn list(registry: &Registry, as_json: bool) -> Result<()> {
    let records = install::installed(registry.paths())?;
    if as_json {
        print_json(&json!(records));
        return Ok(());
    }
    if records.is_empty() {
        println!("No templates installed; `paracle template search` finds some.");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.version.clone(),
                r.source.clone(),
                r.manifest.clone().unwrap_or_else(|| "-".into()),
                r.signature.clone(),
                r.plugins.join(","),
                r.installed_at.clone(),
            ]
        })
        .collect();
    print_table(
        &[
            "name",
            "version",
            "from",
            "digest",
            "signature",
            "plugins",
            "installed",
        ],
        &rows,
    );
    Ok(())
}
