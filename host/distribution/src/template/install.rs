//! Checking a template in a scratch project, and installing it into the
//! real one: its specs and README written (never over a file the user
//! changed, unless forced), its plugins installed pinned and granted
//! nothing, and a record of what came from where.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use paracle_base::{atomic, strict_toml};
use paracle_orchestrator::spec::Specs;
use paracle_project::signing::Verdict;
use paracle_project::{Entry, Origin, Paths, Registry};
use paracle_runtime::{Plugin, PluginSettings, Runtime};

use super::format::{FileKind, TemplateFiles, TemplateMeta};
use crate::cache::{sha256, BlobCache};
use crate::error::DistributionError;
use crate::plugin;
use crate::reference::ArtifactRef;
use crate::remote::Access;

/// Where a template comes from, for the record and for messages.
#[derive(Debug, Clone)]
pub struct Provenance {
    /// `oci://...`, a directory, or `built-in`.
    pub source: String,
    pub manifest: Option<String>,
    pub verdict: Option<Verdict>,
}

/// A plugin a checked template needs, ready to install.
#[derive(Debug, Clone)]
struct ReadyPlugin {
    name: String,
    path: PathBuf,
    bytes: Vec<u8>,
    origin: Origin,
}

/// A template checked in a scratch project: its plugins load, and every
/// workflow, with the agents it names, resolves against them.
#[derive(Debug)]
pub struct Checked {
    plugins: Vec<ReadyPlugin>,
    pub workflows: Vec<String>,
}

/// Check `template` as it would be installed: in a scratch project with
/// this project's per-user settings, so that nothing is written into the
/// project, and errors name the template's own files (`label` is where it
/// came from; `from_registry`, the registry it was pulled from).
pub async fn check(
    template: &TemplateFiles,
    label: &str,
    from_registry: Option<&str>,
    paths: &Paths,
    runtime: Arc<Runtime>,
    access: &Access,
) -> Result<Checked, DistributionError> {
    let scratch =
        tempfile::tempdir().map_err(|e| DistributionError::io(std::env::temp_dir(), e))?;
    let scratch_paths = Paths {
        project: scratch.path().to_path_buf(),
        state: scratch.path().join(".paracle"),
        ..paths.clone()
    };
    let state = scratch_paths.state.clone();
    let relabel = |message: String| {
        message.replace(
            &format!("{}/", state.display()),
            &format!("{}/", label.trim_end_matches('/')),
        )
    };
    for (path, bytes) in &template.files {
        if matches!(
            FileKind::of(path).map_err(DistributionError::Template)?,
            FileKind::Agents | FileKind::Workflow
        ) {
            let target = state.join(path);
            atomic::write(&target, bytes).map_err(|e| DistributionError::io(&target, e))?;
        }
    }
    let mut registry = Registry::open(scratch_paths, runtime)?;
    let cache = BlobCache::new(&paths.blobs);
    let mut plugins = Vec::new();
    for dep in &template.meta.plugins {
        let ready = match (&dep.reference, &dep.file) {
            (Some(reference), _) => {
                let reference = ArtifactRef::parse(reference)?;
                // A template from one registry does not get to send this host
                // to a service on this machine, or to one it reaches over
                // plain HTTP: only its own registry may be such a one.
                let plain =
                    reference.is_loopback() || access.config.is_insecure(reference.registry());
                if plain && from_registry.is_some_and(|own| own != reference.registry()) {
                    return Err(DistributionError::Template(format!(
                        "{label}: plugin `{}` is on {}, a registry on this machine or reached over plain HTTP; a template may name such a registry only when it comes from it",
                        dep.name,
                        reference.registry()
                    )));
                }
                let fetched = plugin::fetch(access, &cache, &reference, None)
                    .await
                    .map_err(|e| {
                        DistributionError::Template(format!("{label}: plugin `{}`: {e}", dep.name))
                    })?;
                ReadyPlugin {
                    name: dep.name.clone(),
                    origin: fetched.origin(),
                    path: fetched.path,
                    bytes: fetched.bytes,
                }
            }
            (None, _) => {
                let file = dep.embedded_path();
                let bytes = template
                    .file(&file)
                    .expect("checked: embedded plugins are there")
                    .to_vec();
                let signature = template
                    .file(&format!("{file}.sig"))
                    .map(|s| String::from_utf8_lossy(s).to_string());
                let (digest, path) = cache.put(&bytes)?;
                ReadyPlugin {
                    name: dep.name.clone(),
                    origin: Origin {
                        reference: format!("{}#{file}", unpinned_label(label)),
                        manifest: digest,
                        component: String::new(),
                        signature,
                    },
                    path,
                    bytes,
                }
            }
        };
        registry
            .install(
                &ready.path,
                &ready.bytes,
                PluginSettings {
                    name: Some(ready.name.clone()),
                    ..PluginSettings::default()
                },
                ready.origin.clone(),
            )
            .await
            .map_err(|e| {
                DistributionError::Template(format!(
                    "{label}: plugin `{}` does not load: {}",
                    ready.name,
                    relabel(e.to_string())
                ))
            })?;
        plugins.push(ready);
    }
    let specs =
        Specs::read(&state).map_err(|e| DistributionError::Template(relabel(e.to_string())))?;
    let workflows: Vec<String> = specs.workflow_names().map(str::to_string).collect();
    for name in &workflows {
        specs
            .workflow(name, &registry)
            .await
            .map_err(|e| DistributionError::Template(relabel(e.to_string())))?;
    }
    Ok(Checked { plugins, workflows })
}

/// Whether two installs came from the same template: the same repository
/// (any tag), or the same built-in or directory.
fn same_source(a: &str, b: &str) -> bool {
    match (ArtifactRef::parse(a), ArtifactRef::parse(b)) {
        (Ok(a), Ok(b)) => a.registry() == b.registry() && a.repository() == b.repository(),
        _ => a == b,
    }
}

/// The template's repository, without tag or digest, so that the plugins it
/// carries keep their place from one version of it to the next; a label
/// that is not a reference, as it is.
fn unpinned_label(label: &str) -> String {
    ArtifactRef::parse(label).map_or_else(|_| label.to_string(), |r| r.repository_ref())
}

const RECORD_VERSION: u32 = 1;

/// `.paracle/templates.toml`: the templates installed, and what each wrote.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordFile {
    version: u32,
    #[serde(default)]
    template: Vec<Record>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub name: String,
    pub version: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    pub signature: String,
    pub installed_at: String,
    #[serde(default)]
    pub plugins: Vec<String>,
    #[serde(default)]
    pub files: Vec<WrittenFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrittenFile {
    /// Relative to the project.
    pub path: PathBuf,
    pub digest: String,
}

/// The templates installed into the project.
pub fn installed(paths: &Paths) -> Result<Vec<Record>, DistributionError> {
    Ok(read_records(&paths.templates_file())?.template)
}

fn read_records(file: &Path) -> Result<RecordFile, DistributionError> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(RecordFile {
                version: RECORD_VERSION,
                template: Vec::new(),
            })
        }
        Err(e) => return Err(DistributionError::io(file, e)),
    };
    let records: RecordFile =
        strict_toml::parse(&text).map_err(|e| DistributionError::file(file, e))?;
    if records.version != RECORD_VERSION {
        return Err(DistributionError::file(
            file,
            format!(
                "version {} is not supported (this paracle writes {RECORD_VERSION})",
                records.version
            ),
        ));
    }
    Ok(records)
}

/// What installing a template did.
pub struct InstalledTemplate {
    pub meta: TemplateMeta,
    pub provenance: Provenance,
    /// Files written, relative to the project.
    pub written: Vec<PathBuf>,
    /// Files that were there already with the same content.
    pub unchanged: Vec<PathBuf>,
    pub plugins: Vec<Arc<Plugin>>,
    pub workflows: Vec<String>,
}

/// Where a template's file goes in the project, relative to it; None for
/// plugins, which are installed rather than written.
fn target_of(meta: &TemplateMeta, relative: &str) -> Option<PathBuf> {
    let state = PathBuf::from(".paracle");
    match FileKind::of(relative).ok()? {
        FileKind::Agents | FileKind::Workflow => Some(state.join(relative)),
        FileKind::Readme => Some(state.join("templates").join(&meta.name).join(relative)),
        FileKind::Plugin | FileKind::PluginSignature => None,
    }
}

/// Install a checked template into the project. Files the user changed
/// since (or that were never this template's) are not overwritten unless
/// `force`; then nothing is written at all.
pub async fn install(
    registry: &mut Registry,
    template: &TemplateFiles,
    checked: Checked,
    provenance: Provenance,
    force: bool,
) -> Result<InstalledTemplate, DistributionError> {
    let paths = registry.paths().clone();
    let record_file = paths.templates_file();
    let mut records = read_records(&record_file)?;
    let previous = records
        .template
        .iter()
        .find(|r| r.name == template.meta.name)
        .cloned();
    let mut plan = Vec::new();
    let mut unchanged = Vec::new();
    let mut clashes = Vec::new();
    for (relative, bytes) in &template.files {
        let Some(target) = target_of(&template.meta, relative) else {
            continue;
        };
        let absolute = paths.project.join(&target);
        refuse_linked_dirs(&paths.project, &target)?;
        match read_plain(&absolute)? {
            None => plan.push((target, bytes, None)),
            Some(existing) if existing == *bytes => unchanged.push(target),
            Some(existing) => {
                let ours = previous.as_ref().is_some_and(|p| {
                    same_source(&p.source, &provenance.source)
                        && p.files
                            .iter()
                            .any(|f| f.path == target && f.digest == sha256(&existing))
                });
                if !ours {
                    clashes.push(target.display().to_string());
                }
                plan.push((target, bytes, Some(existing)));
            }
        }
    }
    if !clashes.is_empty() && !force {
        return Err(DistributionError::Template(format!(
            "{} already {} with other content; edit {} yourself, or pass --force to overwrite",
            clashes.join(", "),
            if clashes.len() == 1 {
                "exists"
            } else {
                "exist"
            },
            if clashes.len() == 1 { "it" } else { "them" },
        )));
    }
    // Every plugin's place is decided before anything is written: one that
    // would take another plugin's name, or replace a version the operator
    // granted things to, stops the install here.
    let mut installs = Vec::new();
    for ready in checked.plugins {
        let settings = match registry.entry(&ready.name) {
            Some(entry)
                if entry.origin.as_ref().map(|o| &o.reference) == Some(&ready.origin.reference) =>
            {
                if entry.digest == sha256(&ready.bytes) {
                    // The same component: the operator's grants stay.
                    entry.settings()
                } else if force {
                    PluginSettings {
                        name: Some(ready.name.clone()),
                        ..PluginSettings::default()
                    }
                } else {
                    return Err(DistributionError::Template(format!(
                        "plugin `{}` is installed at another version ({}); pass --force to replace it with the template's, which starts with no grants",
                        ready.name, entry.digest
                    )));
                }
            }
            _ if registry.known().iter().any(|k| k.name == ready.name) => {
                return Err(DistributionError::Template(format!(
                    "the template's plugin `{}` would take the name of the project's plugin {}; remove that one first, or install the template into another project",
                    ready.name,
                    registry.describe_source(&ready.name)?
                )));
            }
            _ => PluginSettings {
                name: Some(ready.name.clone()),
                ..PluginSettings::default()
            },
        };
        installs.push((ready, settings));
    }
    let recorded: Vec<(String, Option<Entry>)> = installs
        .iter()
        .map(|(ready, _)| (ready.name.clone(), registry.entry(&ready.name).cloned()))
        .collect();
    // Put everything back as it was: an install that fails part-way leaves
    // the project's files and its plugins as it found them. The registry
    // file is saved again rather than written back whole, so that what
    // another process saved to it meanwhile is kept.
    let undo = |registry: &mut Registry,
                installed: &[Arc<Plugin>],
                written: &[(PathBuf, Option<Vec<u8>>)]| {
        for (target, previous) in written {
            let absolute = paths.project.join(target);
            let restored = match previous {
                Some(bytes) => atomic::write(&absolute, bytes),
                None => std::fs::remove_file(&absolute),
            };
            if let Err(error) = restored {
                tracing::warn!("{}: not restored: {error}", absolute.display());
            }
        }
        let ours = recorded
            .iter()
            .filter(|(name, _)| installed.iter().any(|p| p.name() == name));
        for (name, entry) in ours {
            if let Err(error) = registry.restore(name, entry.clone()) {
                tracing::warn!("plugin `{name}`: not put back in the registry: {error}");
            }
        }
    };
    let mut plugins = Vec::new();
    for (ready, settings) in installs {
        match registry
            .install(&ready.path, &ready.bytes, settings, ready.origin)
            .await
        {
            Ok((plugin, _)) => plugins.push(plugin),
            Err(error) => {
                undo(registry, &plugins, &[]);
                return Err(error.into());
            }
        }
    }
    let mut done: Vec<(PathBuf, Option<Vec<u8>>)> = Vec::new();
    for (target, bytes, previous) in plan {
        let absolute = paths.project.join(&target);
        if let Err(error) = atomic::write(&absolute, bytes) {
            undo(registry, &plugins, &done);
            return Err(DistributionError::io(&absolute, error));
        }
        done.push((target, previous));
    }
    let written: Vec<PathBuf> = done.into_iter().map(|(target, _)| target).collect();
    let record = Record {
        name: template.meta.name.clone(),
        version: template.meta.version.clone(),
        source: provenance.source.clone(),
        manifest: provenance.manifest.clone(),
        signature: provenance
            .verdict
            .as_ref()
            .map_or_else(|| "built in".to_string(), |v| v.to_string()),
        installed_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        plugins: plugins.iter().map(|p| p.name().to_string()).collect(),
        files: template
            .files
            .iter()
            .filter_map(|(relative, bytes)| {
                target_of(&template.meta, relative).map(|path| WrittenFile {
                    path,
                    digest: sha256(bytes),
                })
            })
            .collect(),
    };
    records.version = RECORD_VERSION;
    records.template.retain(|r| r.name != record.name);
    records.template.push(record);
    records.template.sort_by(|a, b| a.name.cmp(&b.name));
    let text = toml::to_string_pretty(&records).expect("records serialise");
    atomic::write(
        &record_file,
        format!("# Written by `paracle template install`: what each template wrote.\n{text}")
            .as_bytes(),
    )
    .map_err(|e| DistributionError::io(&record_file, e))?;
    registry.rediscover()?;
    Ok(InstalledTemplate {
        meta: template.meta.clone(),
        provenance,
        written,
        unchanged,
        plugins,
        workflows: checked.workflows,
    })
}

/// Refuse to write `target` (relative to `project`) through a directory that
/// is a symbolic link: `.paracle/agents` pointing elsewhere would send the
/// template's files there.
fn refuse_linked_dirs(project: &Path, target: &Path) -> Result<(), DistributionError> {
    let mut dir = project.to_path_buf();
    let parents: Vec<_> = target
        .parent()
        .into_iter()
        .flat_map(|p| p.components())
        .collect();
    for part in parents {
        dir.push(part);
        match std::fs::symlink_metadata(&dir) {
            Ok(meta) if meta.file_type().is_symlink() || !meta.is_dir() => {
                return Err(DistributionError::file(
                    &dir,
                    "is not a directory (a symbolic link, say); move it aside to install the template",
                ))
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(DistributionError::io(&dir, e)),
        }
    }
    Ok(())
}

/// A file's bytes, or None if there is none. A link where a spec would go
/// is refused, not followed.
fn read_plain(path: &Path) -> Result<Option<Vec<u8>>, DistributionError> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(DistributionError::io(path, e)),
        Ok(meta) if !meta.is_file() => Err(DistributionError::file(
            path,
            "is not a regular file; move it aside to install the template",
        )),
        Ok(_) => std::fs::read(path)
            .map(Some)
            .map_err(|e| DistributionError::io(path, e)),
    }
}
