//! `paracle plugin new`, `plugin build` and `plugin dev`: a plugin
//! project from nothing, built with the author's toolchain and loaded into
//! the project, again on every change.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use serde_json::json;

use super::output::print_json;
use super::project::open;
use paracle_authoring::{
    self as authoring, Built, Language, PluginManifest, ScaffoldKind, ScaffoldRequest,
    SourceWatcher,
};
use paracle_base::shown;
use paracle_policy::{Grant, Grants};
use paracle_project::{Registry, Source};
use paracle_runtime::PluginSettings;

#[derive(Args)]
pub(super) struct NewArgs {
    /// The plugin's name: lowercase letters, digits, `-` or `_`.
    name: String,
    /// tool, provider, memory, observer, adapter or git-workflow.
    #[arg(long)]
    kind: String,
    /// rust (every kind), python or js (tool, provider and memory).
    #[arg(long, default_value = "rust")]
    lang: String,
    /// Where to write it (default: ./NAME). It must not exist, or be empty.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Rust: the `plugins-sdk` directory of a Paracle checkout (default: the
    /// one this binary was built from).
    #[arg(long)]
    sdk: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(super) struct BuildArgs {
    /// The plugin project (default: the current directory).
    path: Option<PathBuf>,
    /// On the first load only: grant a capability (repeatable), as for
    /// `plugin load`. Later builds keep the plugin's grants.
    #[arg(long = "grant", value_name = "GRANT")]
    grants: Vec<String>,
    #[arg(long)]
    json: bool,
}

pub(super) fn new(args: NewArgs) -> Result<()> {
    let kind = ScaffoldKind::parse(&args.kind).ok_or_else(|| {
        anyhow!(
            "no kind `{}`; use tool, provider, memory, observer, adapter or git-workflow",
            args.kind
        )
    })?;
    let language = Language::parse(&args.lang)
        .ok_or_else(|| anyhow!("no language `{}`; use rust, python or js", args.lang))?;
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    let done = authoring::scaffold(&ScaffoldRequest {
        name: args.name,
        kind,
        language,
        dir,
        sdk: args.sdk,
    })?;
    if args.json {
        print_json(&serde_json::to_value(&done)?);
        return Ok(());
    }
    println!(
        "Wrote a {} {} plugin in {} ({} files)",
        language.name(),
        kind.name(),
        done.dir.display(),
        done.files.len()
    );
    if !done.missing.is_empty() {
        println!("\nFirst install what its build needs:");
        for missing in &done.missing {
            println!("  {:<24} {}", missing.tool, missing.install);
        }
    }
    println!("\nBuild it and load it into the project in that directory:");
    println!("  cd {} && {}", done.dir.display(), done.build_command);
    println!("Its test:   {}", done.test_command);
    println!("Rebuild and reload on every change: paracle plugin dev");
    Ok(())
}

fn project_dir(path: Option<PathBuf>) -> Result<(PathBuf, PluginManifest)> {
    let dir = path.unwrap_or_else(|| PathBuf::from("."));
    let dir = std::fs::canonicalize(&dir)
        .with_context(|| format!("cannot open the plugin project {}", dir.display()))?;
    let manifest = PluginManifest::read(&dir)?;
    Ok((dir, manifest))
}

/// Run the build, its lines on stderr as they come.
async fn run_build(dir: &Path, manifest: &PluginManifest) -> Result<Built> {
    let (dir, manifest) = (dir.to_path_buf(), manifest.clone());
    eprintln!("building {}: {}", manifest.name, manifest.build.join(" "));
    let built = tokio::task::spawn_blocking(move || {
        authoring::build(&dir, &manifest, |line| {
            eprintln!("  {}", shown::line(line));
        })
    })
    .await
    .context("the build's thread stopped")??;
    Ok(built)
}

/// What a build made the registry hold.
struct Loaded {
    digest: String,
    previous: Option<String>,
    version: String,
}

/// Load what was built: the first time under the manifest's name (with
/// `grants`), afterwards as a reload of the same file, which pins the new
/// digest: the author built it, so the author accepts it.
async fn load_built(
    registry: &mut Registry,
    manifest: &PluginManifest,
    built: &Built,
    grants: &[String],
) -> Result<Loaded> {
    let output = std::fs::canonicalize(&built.output)
        .with_context(|| format!("cannot open {}", built.output.display()))?;
    let existing = registry.entry(&manifest.name).map(|e| e.path.clone());
    let (plugin, previous) = match existing {
        Some(path) if path == output => registry.reload(&manifest.name).await?,
        Some(path) => bail!(
            "the project already has a plugin named `{}`, loaded from {}; unload it with `paracle plugin unload {}`, or rename this one in paracle-plugin.toml",
            manifest.name,
            path.display(),
            manifest.name
        ),
        None => {
            match registry.source_of(&manifest.name) {
                Ok(Source::Builtin) => eprintln!(
                    "note: `{}` is also the name of a built-in plugin; this one takes its place in this project",
                    manifest.name
                ),
                Ok(_) => bail!(
                    "the project already has a plugin named `{}` ({}); rename this one in paracle-plugin.toml",
                    manifest.name,
                    registry.describe_source(&manifest.name)?
                ),
                Err(_) => {}
            }
            let mut granted = Grants::default();
            for spec in grants {
                granted.add(Grant::parse(spec)?);
            }
            let settings = PluginSettings {
                name: Some(manifest.name.clone()),
                grants: granted,
                ..PluginSettings::default()
            };
            registry.load_file(&output, settings).await?
        }
    };
    Ok(Loaded {
        digest: plugin.digest().to_string(),
        previous: previous.map(|p| p.digest),
        version: plugin.info().version.clone(),
    })
}

pub(super) async fn build(project: &Path, args: BuildArgs) -> Result<()> {
    let (dir, manifest) = project_dir(args.path)?;
    let built = run_build(&dir, &manifest).await?;
    let mut registry = open(project)?;
    let loaded = load_built(&mut registry, &manifest, &built, &args.grants).await?;
    if args.json {
        print_json(&json!({
            "name": manifest.name,
            "output": built.output,
            "build_seconds": built.elapsed.as_secs_f64(),
            "digest": loaded.digest,
            "previous_digest": loaded.previous,
            "version": loaded.version,
        }));
        return Ok(());
    }
    println!(
        "Built {} in {:.1} s and loaded it as `{}` {}",
        built.output.display(),
        built.elapsed.as_secs_f64(),
        manifest.name,
        shown::line(&loaded.version)
    );
    println!("  digest {}", loaded.digest);
    if let Some(previous) = loaded.previous.filter(|p| *p != loaded.digest) {
        println!("  (was {previous}; the new digest is pinned because you built it)");
    }
    Ok(())
}

/// One line of `plugin dev`'s story: text on a terminal, JSON lines with
/// `--json`.
fn tell(as_json: bool, event: serde_json::Value, text: String) {
    if as_json {
        println!("{event}");
    } else {
        println!("{text}");
    }
}

pub(super) async fn dev(project: &Path, args: BuildArgs) -> Result<()> {
    let (dir, manifest) = project_dir(args.path)?;
    let as_json = args.json;
    let mut watcher = SourceWatcher::new(&dir, &manifest.watch)?;
    let mut serving: Option<String> = None;
    let mut changed: Vec<PathBuf> = Vec::new();
    loop {
        if !changed.is_empty() {
            let files: Vec<String> = changed.iter().map(|p| p.display().to_string()).collect();
            tell(
                as_json,
                json!({"event": "changed", "files": files}),
                format!("changed: {}; rebuilding", shown::line(&files.join(", "))),
            );
        }
        match build_once(project, &dir, &manifest, &args.grants).await {
            Ok((built, loaded)) => {
                let text = match &serving {
                    Some(old) if *old == loaded.digest => {
                        format!("built in {:.1} s; unchanged ({})", built.elapsed.as_secs_f64(), loaded.digest)
                    }
                    Some(old) => format!(
                        "built in {:.1} s; reloaded `{}` {}: the new digest {} is pinned because you are running `plugin dev` (was {old})",
                        built.elapsed.as_secs_f64(),
                        manifest.name,
                        shown::line(&loaded.version),
                        loaded.digest
                    ),
                    None => format!(
                        "built in {:.1} s; loaded `{}` {} ({})",
                        built.elapsed.as_secs_f64(),
                        manifest.name,
                        shown::line(&loaded.version),
                        loaded.digest
                    ),
                };
                tell(
                    as_json,
                    json!({
                        "event": "loaded",
                        "name": manifest.name,
                        "digest": loaded.digest,
                        "previous_digest": serving,
                        "build_seconds": built.elapsed.as_secs_f64(),
                    }),
                    text,
                );
                serving = Some(loaded.digest);
            }
            Err(error) => {
                let keeping = match &serving {
                    Some(digest) => format!("the previous version ({digest}) keeps serving"),
                    None => "nothing is loaded yet".to_string(),
                };
                tell(
                    as_json,
                    json!({"event": "failed", "error": format!("{error:#}"), "serving": serving}),
                    format!("error: {error:#}\n{keeping}; waiting for a change"),
                );
            }
        }
        tell(
            as_json,
            json!({"event": "watching", "patterns": manifest.watch}),
            format!(
                "watching {} for changes (Ctrl-C stops)",
                manifest.watch.join(", ")
            ),
        );
        let (returned, next) = tokio::task::spawn_blocking(move || {
            let next = watcher.next_change();
            (watcher, next)
        })
        .await?;
        watcher = returned;
        changed = next.ok_or_else(|| anyhow!("the file watcher stopped"))?;
    }
}

/// A build and a load on a registry opened for the occasion: the registry
/// file is read again each time, so grants changed meanwhile with
/// `plugin grant` are kept.
async fn build_once(
    project: &Path,
    dir: &Path,
    manifest: &PluginManifest,
    grants: &[String],
) -> Result<(Built, Loaded)> {
    let built = run_build(dir, manifest).await?;
    let mut registry = open(project)?;
    let loaded = load_built(&mut registry, manifest, &built, grants).await?;
    Ok((built, loaded))
}
