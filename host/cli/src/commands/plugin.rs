//! `paracle plugin ...`

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::author::{self, BuildArgs, NewArgs};
use super::grant::{self, requests_vs_grants};
use super::output::{duration, plugin_json, print_json, print_table, stats_json};
use super::project::open;
use super::share::{self, LoginTo, RegistryArgs};
use paracle_base::shown;
use paracle_contract::json::{
    chat_response_json, event_from_json, hit_json, info_json, model_json, outcome_json,
};
use paracle_contract::{AgentSpec, ChatRequest, InvocationContext, Message, Task};
use paracle_distribution::plugin::{InstallOptions, SignWith};
use paracle_distribution::{self as distribution, ArtifactRef};
use paracle_policy::{Grant, Grants, Limits};
use paracle_project::defaults;
use paracle_project::{Entry, Registry, Requests, Source};
use paracle_runtime::{
    AgentRoutes, CallResult, CallStats, Isolation, Plugin, PluginKind, PluginSettings,
};

#[derive(Subcommand)]
pub(super) enum PluginCommand {
    /// Write a new plugin project: Rust (every kind), Python or JavaScript
    /// (tool, provider, memory), with its build and one test.
    New(NewArgs),
    /// Build the plugin project (paracle-plugin.toml) with its toolchain,
    /// and load what it built into the project (again: pin the new digest).
    Build(BuildArgs),
    /// Build and load the plugin project, then again on every change to its
    /// sources; a failed build leaves the loaded version serving.
    Dev(BuildArgs),
    /// Load a plugin component and record it in the project's registry.
    Load(LoadArgs),
    /// Install a plugin from an OCI registry: pulled, checked against every
    /// digest and its signature, pinned in .paracle/registry.toml, loaded.
    Install(InstallArgs),
    /// Take the newest version of an installed plugin: what its tag names now.
    Update {
        name: String,
        #[command(flatten)]
        registry: RegistryArgs,
        #[arg(long)]
        json: bool,
    },
    /// Push a plugin component to an OCI registry, in the standard layout of
    /// Wasm components there, with its signature.
    Publish {
        /// The component, built with `--target wasm32-wasip2`.
        file: PathBuf,
        /// Where to: oci://HOST/REPOSITORY:TAG.
        reference: String,
        /// Sign it with this secret key (from `paracle plugin keygen`).
        /// Without it, FILE.sig is used if there is one.
        #[arg(long, value_name = "KEY_FILE")]
        sign_key: Option<PathBuf>,
        #[command(flatten)]
        registry: RegistryArgs,
        #[arg(long)]
        json: bool,
    },
    /// List the plugins the project can use.
    List {
        /// Only plugins of this kind: provider, tool, memory, observer or adapter.
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show a plugin's info, tools, grants and limits.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Ask plugins whether they can serve calls (all of them by default).
    Health {
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Load a plugin's file again and pin its new digest.
    Reload {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Call statistics: calls, errors, traps and latency.
    Stats {
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Grant a loaded plugin more: dir:HOST_DIR[:GUEST_PATH][:ro|rw], net:HOST[:PORT], env:NAME, secret:NAME or git.
    Grant {
        name: String,
        #[arg(required = true, value_name = "GRANT")]
        grants: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Take grants back from a loaded plugin: dir:PATH (guest or host path), net:HOST[:PORT], env:NAME, secret:NAME or git.
    Revoke {
        name: String,
        #[arg(required = true, value_name = "GRANT")]
        grants: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Which tool calls of a loaded plugin need a person's approval:
    /// `always` (run), `ask` (wait for a person at the terminal or MCP
    /// client; a workflow stops at a gate) or `never` (refuse), for all its
    /// tools or for TOOL.
    Approve {
        name: String,
        #[arg(required = true, num_args = 1..=2, value_name = "[TOOL] always|ask|never")]
        setting: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Change a loaded plugin's limits: NAME=VALUE for memory_mib, timeout_ms,
    /// fuel (a number, or `none`), max_instances, max_output_kib, max_log_kib
    /// or max_response_kib.
    Limit {
        name: String,
        #[arg(required = true, value_name = "NAME=VALUE")]
        limits: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Make an ed25519 key pair for signing plugins; the secret goes to --out.
    Keygen {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Sign a plugin file: writes FILE.sig beside it.
    Sign {
        file: PathBuf,
        /// The secret key file from `paracle plugin keygen`.
        #[arg(long, value_name = "KEY_FILE")]
        key: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Remove a loaded plugin from the registry.
    Unload {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Call a plugin by hand. What ARGS mean depends on its kind:
    ///
    ///   tool:     [TOOL [ARGUMENTS_JSON]]      (no TOOL lists the tools)
    ///   provider: [MESSAGE]                    (no MESSAGE lists the models)
    ///   memory:   put NS KEY VALUE | get NS KEY | delete NS KEY | keys NS [PREFIX] | search NS QUERY
    ///   observer: [EVENT_JSON]...              (then prints the report)
    ///   adapter:  TASK                         (runs an agent on the task)
    #[command(verbatim_doc_comment)]
    Call(CallArgs),
}

#[derive(Args)]
pub(super) struct LoadArgs {
    /// The component, built with `--target wasm32-wasip2`.
    file: PathBuf,
    /// Register it under this name instead of the one in its info.
    #[arg(long)]
    name: Option<String>,
    /// Grant a capability (repeatable): dir:HOST_DIR[:GUEST_PATH][:ro|rw]
    /// (read-only at /data by default), net:HOST[:PORT] (outbound HTTP; an IP
    /// address also for sockets), env:NAME, secret:NAME, or git (the `git` interface on the
    /// project's repository). Nothing is granted otherwise.
    #[arg(long = "grant", value_name = "GRANT")]
    grants: Vec<String>,
    /// The plugin's config: a JSON object, or @FILE to read it from a file.
    #[arg(long)]
    config: Option<String>,
    /// `warm` reuses instances between calls; `fresh` starts one per call.
    #[arg(long, value_parser = ["warm", "fresh"], default_value = "warm")]
    isolation: String,
    /// Linear memory limit, in MiB.
    #[arg(long)]
    memory_mib: Option<u64>,
    /// Wall-clock limit per call, in milliseconds.
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// Most instances alive at once.
    #[arg(long)]
    max_instances: Option<u32>,
    /// Bytes one call may return, in KiB.
    #[arg(long)]
    max_output_kib: Option<u64>,
    /// Bytes one call may log, in KiB.
    #[arg(long)]
    max_log_kib: Option<u64>,
    /// Bytes of one HTTP response body, in KiB.
    #[arg(long)]
    max_response_kib: Option<u64>,
    /// Fuel per call, a deterministic budget of wasm work (none by default).
    #[arg(long)]
    fuel: Option<u64>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(super) struct InstallArgs {
    /// oci://HOST/REPOSITORY:TAG, or ...@sha256:DIGEST (`oci://` may be left out).
    reference: String,
    /// Register it under this name instead of the one in its info.
    #[arg(long)]
    name: Option<String>,
    /// Grant a capability (repeatable), as for `plugin load`. Nothing is
    /// granted otherwise; installing again keeps the grants it had and adds
    /// these.
    #[arg(long = "grant", value_name = "GRANT")]
    grants: Vec<String>,
    /// The plugin's config: a JSON object, or @FILE to read it from a file.
    #[arg(long)]
    config: Option<String>,
    #[command(flatten)]
    registry: RegistryArgs,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(super) struct CallArgs {
    name: String,
    args: Vec<String>,
    /// Provider and adapter: the model to ask for.
    #[arg(long)]
    model: Option<String>,
    /// Provider and adapter: a system prompt.
    #[arg(long)]
    system: Option<String>,
    /// Memory search: the most hits to return.
    #[arg(long, default_value_t = 5)]
    limit: u32,
    /// Adapter: the provider plugin to route to.
    #[arg(long, default_value = defaults::DEFAULT_PROVIDER)]
    provider: String,
    /// Adapter: tool plugins to route to (repeatable; default text-tools).
    #[arg(long = "tool")]
    tools: Vec<String>,
    /// Adapter: the memory plugin to route to (`none` for no memory).
    #[arg(long, default_value = defaults::DEFAULT_MEMORY)]
    memory: String,
    /// Adapter: the most provider round-trips.
    #[arg(long, default_value_t = 8)]
    max_steps: u32,
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(project: &Path, command: PluginCommand) -> Result<()> {
    // Signing touches files only; it needs no engine.
    match &command {
        PluginCommand::Keygen { out, json } => return super::trust::keygen(out, *json),
        PluginCommand::Publish {
            file,
            reference,
            sign_key,
            registry,
            json,
        } => {
            return publish(
                project,
                file,
                reference,
                sign_key.as_deref(),
                registry,
                *json,
            )
            .await
        }
        PluginCommand::Sign { file, key, json } => return super::trust::sign(file, key, *json),
        _ => {}
    }
    // The author's commands open the registry themselves, around builds.
    let command = match command {
        PluginCommand::New(args) => return author::new(args),
        PluginCommand::Build(args) => return author::build(project, args).await,
        PluginCommand::Dev(args) => return author::dev(project, args).await,
        other => other,
    };
    let mut registry = open(project)?;
    let result = dispatch(&mut registry, command).await;
    if let Err(error) = registry.persist_stats() {
        eprintln!("warning: statistics not saved: {error}");
    }
    result
}

async fn dispatch(registry: &mut Registry, command: PluginCommand) -> Result<()> {
    match command {
        PluginCommand::Load(args) => load(registry, args).await,
        PluginCommand::Install(args) => install(registry, args).await,
        PluginCommand::Update {
            name,
            registry: login,
            json,
        } => {
            let host = registry
                .origin(&name)
                .and_then(|o| ArtifactRef::parse(&o.reference).ok())
                .map(|r| r.registry().to_string())
                .unwrap_or_default();
            let access = share::access(registry.paths(), &login, LoginTo::Host(&host))?;
            let started = std::time::Instant::now();
            let installed = distribution::plugin::update(registry, &access, &name).await?;
            print_installed(registry, &installed, started, json)
        }
        PluginCommand::List { kind, json } => list(registry, kind.as_deref(), json).await,
        PluginCommand::Show { name, json } => show(registry, &name, json).await,
        PluginCommand::Health { name, json } => health(registry, name.as_deref(), json).await,
        PluginCommand::Reload { name, json } => reload(registry, &name, json).await,
        PluginCommand::Stats { name, json } => stats(registry, name.as_deref(), json).await,
        PluginCommand::Grant { name, grants, json } => {
            grant::change(registry, &name, grant::Change::Grant, &grants, json).await
        }
        PluginCommand::Revoke { name, grants, json } => {
            grant::change(registry, &name, grant::Change::Revoke, &grants, json).await
        }
        PluginCommand::Limit { name, limits, json } => {
            grant::limit(registry, &name, &limits, json).await
        }
        PluginCommand::Approve {
            name,
            setting,
            json,
        } => grant::approve(registry, &name, &setting, json).await,
        PluginCommand::Unload { name, json } => unload(registry, &name, json),
        PluginCommand::Keygen { .. }
        | PluginCommand::Sign { .. }
        | PluginCommand::Publish { .. }
        | PluginCommand::New(_)
        | PluginCommand::Build(_)
        | PluginCommand::Dev(_) => {
            unreachable!("handled before the registry opens")
        }
        PluginCommand::Call(args) => {
            let telemetry =
                super::telemetry::start(registry.settings().telemetry_endpoint.as_deref())?;
            let result = super::asking::with_terminal(registry, call(registry, args)).await;
            super::telemetry::finish(telemetry).await;
            let result = result?;
            if let Err(error) = &result {
                if let Some(error) = error.downcast_ref::<paracle_runtime::CallError>() {
                    registry.audit_denial(error);
                }
            }
            result
        }
    }
}

fn read_config(spec: &str) -> Result<Value> {
    let text = match spec.strip_prefix('@') {
        Some(file) => std::fs::read_to_string(file)
            .with_context(|| format!("cannot read config file `{file}`"))?,
        None => spec.to_string(),
    };
    let value: Value = serde_json::from_str(&text).context("--config is not valid JSON")?;
    if !value.is_object() {
        bail!("--config must be a JSON object, like '{{\"key\": \"value\"}}'");
    }
    Ok(value)
}

async fn load(registry: &mut Registry, args: LoadArgs) -> Result<()> {
    let mut grants = Grants::default();
    for spec in &args.grants {
        grants.add(Grant::parse(spec)?);
    }
    let defaults = Limits::default();
    let limits = Limits {
        memory_mib: args.memory_mib.unwrap_or(defaults.memory_mib),
        timeout_ms: args.timeout_ms.unwrap_or(defaults.timeout_ms),
        max_instances: args.max_instances.unwrap_or(defaults.max_instances),
        max_output_kib: args.max_output_kib.unwrap_or(defaults.max_output_kib),
        max_log_kib: args.max_log_kib.unwrap_or(defaults.max_log_kib),
        max_response_kib: args.max_response_kib.unwrap_or(defaults.max_response_kib),
        fuel: args.fuel,
    };
    let settings = PluginSettings {
        name: args.name.clone(),
        config: args.config.as_deref().map(read_config).transpose()?,
        grants,
        limits,
        isolation: if args.isolation == "fresh" {
            Isolation::Fresh
        } else {
            Isolation::Warm
        },
        ..PluginSettings::default()
    };
    let started = std::time::Instant::now();
    let (plugin, previous) = registry.load_file(&args.file, settings).await?;
    let source = registry.describe_source(plugin.name())?;
    let added = newly_requested(&plugin, previous.as_ref());
    if args.json {
        let mut value = plugin_json(&plugin, &source);
        value["replaced"] = json!(previous
            .as_ref()
            .map(|p| json!({"digest": p.digest, "version": p.version})));
        value["new_requests"] = json!(added);
        value["elapsed_ms"] = json!(started.elapsed().as_secs_f64() * 1e3);
        print_json(&value);
        return Ok(());
    }
    let info = plugin.info();
    match &previous {
        Some(old) if old.digest != plugin.digest() => println!(
            "Reloaded {} plugin `{}` {} (was {}, {})",
            plugin.kind(),
            plugin.name(),
            shown::line(&info.version),
            shown::line(&old.version),
            short(&old.digest)
        ),
        Some(_) => println!(
            "Loaded {} plugin `{}` {} again (unchanged)",
            plugin.kind(),
            plugin.name(),
            shown::line(&info.version)
        ),
        None => println!(
            "Loaded {} plugin `{}` {}",
            plugin.kind(),
            plugin.name(),
            shown::line(&info.version)
        ),
    }
    println!("  digest {}", plugin.digest());
    print_requests(&plugin, &added);
    Ok(())
}

/// What a plugin asks for against what it is granted, and what it asks for
/// that the version it replaced did not.
fn print_requests(plugin: &Plugin, added: &[String]) {
    let requests = requests_vs_grants(plugin);
    if requests.is_empty() {
        println!("  asks for no capabilities");
    } else {
        println!("  asks for:");
        for line in requests {
            println!("  {}", shown::line(&line));
        }
    }
    for request in added {
        println!("  newly asks for {}", shown::line(request));
    }
}

async fn install(registry: &mut Registry, args: InstallArgs) -> Result<()> {
    let reference = ArtifactRef::parse(&args.reference)?;
    let access = share::access(
        registry.paths(),
        &args.registry,
        LoginTo::Host(reference.registry()),
    )?;
    let options = InstallOptions {
        name: args.name.clone(),
        grants: args
            .grants
            .iter()
            .map(|spec| Grant::parse(spec))
            .collect::<Result<_, _>>()?,
        config: args.config.as_deref().map(read_config).transpose()?,
    };
    let started = std::time::Instant::now();
    let installed =
        distribution::plugin::install(registry, &access, &reference, options, false).await?;
    print_installed(registry, &installed, started, args.json)
}

fn print_installed(
    registry: &Registry,
    installed: &distribution::plugin::Installed,
    started: std::time::Instant,
    as_json: bool,
) -> Result<()> {
    let plugin = &installed.plugin;
    let fetched = &installed.fetched;
    let source = registry.describe_source(plugin.name())?;
    let signature = registry.signature(plugin.name())?;
    let added = newly_requested(plugin, installed.previous.as_ref());
    if as_json {
        let mut value = plugin_json(plugin, &source);
        value["reference"] = json!(fetched.reference.to_string());
        value["manifest"] = json!(fetched.manifest.digest);
        value["from_pin"] = json!(installed.pinned);
        value["signature"] = json!(signature);
        value["replaced"] = json!(installed
            .previous
            .as_ref()
            .map(|p| json!({"digest": p.digest, "version": p.version})));
        value["new_requests"] = json!(added);
        value["requests"] = json!(requests_vs_grants(plugin)
            .iter()
            .map(|l| l.trim())
            .collect::<Vec<_>>());
        value["elapsed_ms"] = json!(started.elapsed().as_secs_f64() * 1e3);
        print_json(&value);
        return Ok(());
    }
    println!(
        "Installed {} plugin `{}` {} from {}",
        plugin.kind(),
        plugin.name(),
        shown::line(&plugin.info().version),
        fetched.reference
    );
    println!(
        "  manifest {}{}",
        fetched.manifest.digest,
        if installed.pinned {
            " (the pin in .paracle/registry.toml; `paracle plugin update` takes a newer one)"
        } else {
            " (pinned in .paracle/registry.toml)"
        }
    );
    println!("  digest {}", plugin.digest());
    if let Some(signature) = signature {
        println!("  {signature}");
    }
    if let Some(old) = &installed.previous {
        if old.digest != plugin.digest() {
            println!(
                "  replaces {} ({})",
                shown::line(&old.version),
                short(&old.digest)
            );
        }
    }
    print_requests(plugin, &added);
    Ok(())
}

async fn publish(
    project: &Path,
    file: &Path,
    reference: &str,
    sign_key: Option<&Path>,
    login: &RegistryArgs,
    as_json: bool,
) -> Result<()> {
    let reference = ArtifactRef::parse(reference)?;
    let registry = open(project)?;
    let access = share::access(registry.paths(), login, LoginTo::Host(reference.registry()))?;
    let sign = match sign_key {
        Some(key) => SignWith::Key(key),
        None => SignWith::ExistingFile,
    };
    let published =
        distribution::plugin::publish(registry.runtime(), file, &reference, sign, &access).await?;
    if as_json {
        print_json(&json!(published));
        return Ok(());
    }
    println!("Published {} to {}", file.display(), published.reference);
    println!("  manifest {}", published.manifest);
    println!(
        "  component {} ({} bytes)",
        published.component, published.size
    );
    match &published.signed_by {
        Some(key) => println!("  signed by {key}"),
        None => eprintln!(
            "warning: published unsigned; hosts that require signatures will refuse it (pass --sign-key KEY_FILE)"
        ),
    }
    println!("Install it elsewhere with:");
    println!("  paracle plugin install {}", published.pinned);
    Ok(())
}

/// What a plugin asks for that the version it replaced did not.
fn newly_requested(plugin: &Plugin, previous: Option<&Entry>) -> Vec<String> {
    previous
        .map(|old| Requests::of(plugin.info()).added_since(&old.requests))
        .unwrap_or_default()
}

fn short(digest: &str) -> &str {
    let hex = digest.trim_start_matches("sha256:");
    &hex[..hex.len().min(12)]
}

async fn list(registry: &Registry, kind: Option<&str>, as_json: bool) -> Result<()> {
    let kind: Option<PluginKind> = kind.map(str::parse).transpose()?;
    let mut rows = Vec::new();
    let mut values = Vec::new();
    for known in registry.known() {
        let plugin = match registry.get(&known.name).await {
            Ok(plugin) => plugin,
            Err(error) => {
                if kind.is_none() {
                    rows.push(vec![
                        known.name.clone(),
                        "?".into(),
                        "?".into(),
                        registry.describe_source(&known.name)?,
                        format!("cannot load: {error}"),
                    ]);
                    values.push(json!({"name": known.name, "source": known.source, "error": error.to_string()}));
                }
                continue;
            }
        };
        if kind.is_some_and(|k| k != plugin.kind()) {
            continue;
        }
        rows.push(vec![
            plugin.name().to_string(),
            plugin.kind().to_string(),
            plugin.info().version.clone(),
            registry.describe_source(&known.name)?,
            plugin.info().description.clone(),
        ]);
        values.push(json!({
            "name": plugin.name(),
            "kind": plugin.kind().as_str(),
            "version": plugin.info().version,
            "description": plugin.info().description,
            "digest": plugin.digest(),
            "source": known.source,
            "origin": registry.origin(&known.name),
        }));
    }
    if as_json {
        print_json(&Value::Array(values));
    } else {
        print_table(&["name", "kind", "version", "source", "description"], &rows);
    }
    Ok(())
}

async fn show(registry: &Registry, name: &str, as_json: bool) -> Result<()> {
    let plugin = registry.get(name).await?;
    let source = registry.describe_source(name)?;
    let signature = registry.signature(name)?;
    if as_json {
        let mut value = plugin_json(&plugin, &source);
        value["signature"] = json!(signature);
        value["requests"] = json!(requests_vs_grants(&plugin)
            .iter()
            .map(|l| l.trim())
            .collect::<Vec<_>>());
        print_json(&value);
        return Ok(());
    }
    let info = plugin.info();
    println!(
        "{} {} ({} plugin)",
        plugin.name(),
        shown::line(&info.version),
        plugin.kind()
    );
    println!("  {}", shown::line(&info.description));
    if !info.author.is_empty() || !info.license.is_empty() {
        println!(
            "  author: {}  license: {}",
            shown::line(&info.author),
            shown::line(&info.license)
        );
    }
    if !info.tags.is_empty() {
        println!("  tags: {}", shown::line(&info.tags.join(", ")));
    }
    println!("  source: {source}");
    println!("  digest: {}", plugin.digest());
    match &signature {
        Some(verdict) => println!("  signature: {verdict}"),
        None => println!("  signature: built into paracle"),
    }
    println!("  isolation: {:?}", plugin.isolation());
    println!("  limits: {}", plugin.limits().describe());
    let grants = plugin.grants();
    if *grants == Grants::default() {
        println!("  grants: none");
    } else {
        println!("  grants:");
        for dir in &grants.dirs {
            println!("    dir {}", dir.describe());
        }
        for host in &grants.net {
            println!("    net {host}");
        }
        for var in &grants.env {
            println!("    env {var}");
        }
        for name in &grants.secrets {
            println!("    secret {name}");
        }
        if grants.git {
            println!("    git");
        }
    }
    if !plugin.approvals().is_always() {
        println!(
            "  tool calls need approval: {}",
            plugin.approvals().describe()
        );
    }
    let requests = requests_vs_grants(&plugin);
    if !requests.is_empty() {
        println!("  requests:");
        for line in requests {
            println!("  {}", shown::line(&line));
        }
    }
    if plugin.config() != "{}" {
        println!("  config: {}", shown::line(plugin.config()));
    }
    for tool in plugin.tools() {
        println!("  tool {}: {}", tool.name, shown::line(&tool.description));
    }
    Ok(())
}

async fn health(registry: &Registry, name: Option<&str>, as_json: bool) -> Result<()> {
    let names: Vec<String> = match name {
        Some(name) => vec![name.to_string()],
        None => registry.known().iter().map(|k| k.name.clone()).collect(),
    };
    let mut rows = Vec::new();
    let mut values = Vec::new();
    let mut unhealthy = Vec::new();
    for name in names {
        let (ready, message) = match registry.get(&name).await {
            Ok(plugin) => match plugin.health().await {
                Ok(status) => (status.ready, status.message),
                Err(error) => (false, error.to_string()),
            },
            Err(error) => (false, error.to_string()),
        };
        if !ready {
            unhealthy.push(name.clone());
        }
        rows.push(vec![
            name.clone(),
            if ready {
                "ready".into()
            } else {
                "NOT READY".into()
            },
            message.clone(),
        ]);
        values.push(json!({"name": name, "ready": ready, "message": message}));
    }
    if as_json {
        print_json(&Value::Array(values));
    } else {
        print_table(&["name", "health", "message"], &rows);
    }
    if !unhealthy.is_empty() {
        bail!("not ready: {}", unhealthy.join(", "));
    }
    Ok(())
}

async fn reload(registry: &mut Registry, name: &str, as_json: bool) -> Result<()> {
    let (plugin, previous) = registry.reload(name).await?;
    let added = newly_requested(&plugin, previous.as_ref());
    let changed = previous
        .as_ref()
        .is_some_and(|p| p.digest != plugin.digest());
    if as_json {
        print_json(&json!({
            "name": plugin.name(),
            "digest": plugin.digest(),
            "previous_digest": previous.as_ref().map(|p| &p.digest),
            "changed": changed,
            "new_requests": added,
            "info": info_json(plugin.info()),
        }));
        return Ok(());
    }
    println!(
        "Reloaded `{}` {} ({})",
        plugin.name(),
        shown::line(&plugin.info().version),
        if changed { "new version" } else { "unchanged" }
    );
    println!("  digest {}", plugin.digest());
    for request in added {
        println!("  newly asks for {}", shown::line(&request));
    }
    Ok(())
}

async fn stats(registry: &Registry, name: Option<&str>, as_json: bool) -> Result<()> {
    let all = registry.stats()?;
    if let Some(name) = name {
        registry.source_of(name)?;
    }
    let selected: Vec<(&String, &CallStats)> = all
        .iter()
        .filter(|(n, _)| name.is_none_or(|wanted| wanted == n.as_str()))
        .collect();
    if as_json {
        let map: serde_json::Map<String, Value> = selected
            .iter()
            .map(|(n, s)| ((*n).clone(), stats_json(s)))
            .collect();
        print_json(&Value::Object(map));
        return Ok(());
    }
    if selected.is_empty() {
        println!(
            "No calls recorded yet{}.",
            name.map(|n| format!(" for `{n}`")).unwrap_or_default()
        );
        return Ok(());
    }
    let rows: Vec<Vec<String>> = selected
        .iter()
        .map(|(n, s)| {
            vec![
                (*n).clone(),
                s.calls.to_string(),
                s.failures().to_string(),
                s.traps.to_string(),
                s.limits.to_string(),
                duration(s.mean()),
                duration(s.percentile(0.5)),
                duration(s.percentile(0.99)),
            ]
        })
        .collect();
    print_table(
        &[
            "plugin", "calls", "errors", "traps", "limits", "mean", "p50", "p99",
        ],
        &rows,
    );
    Ok(())
}

fn unload(registry: &mut Registry, name: &str, as_json: bool) -> Result<()> {
    let entry = registry.unload(name)?;
    let now = registry.source_of(name).ok().map(Source::describe);
    if as_json {
        print_json(&json!({"unloaded": entry.name, "path": entry.path, "now_resolves_to": now}));
    } else {
        println!("Unloaded `{}` ({})", entry.name, entry.path.display());
        if let Some(now) = now {
            println!("  `{}` now resolves to the {now} plugin", entry.name);
        }
    }
    Ok(())
}

/// A call's answer, or the one-line error that explains it.
fn settled<T>(result: CallResult<T>) -> Result<T> {
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(error.into()),
        Err(error) => Err(error.into()),
    }
}

fn parse_json_arg(text: &str, what: &str) -> Result<Value> {
    serde_json::from_str(text).with_context(|| {
        format!("{what}: not valid JSON (quote it as one argument, like '{{\"text\": \"hi\"}}')")
    })
}

async fn call(registry: &Registry, args: CallArgs) -> Result<()> {
    let plugin = registry.get(&args.name).await?;
    let output = match plugin.kind() {
        PluginKind::Tool => call_tool(&plugin, &args).await?,
        PluginKind::Provider => call_provider(&plugin, &args).await?,
        PluginKind::Memory => call_memory(&plugin, &args).await?,
        PluginKind::Observer => call_observer(&plugin, &args).await?,
        PluginKind::Adapter => call_adapter(registry, &plugin, &args).await?,
    };
    if args.json {
        print_json(&output.json);
    } else {
        println!("{}", shown::block(&output.text));
    }
    Ok(())
}

struct CallOutput {
    json: Value,
    text: String,
}

impl CallOutput {
    fn json(json: Value) -> Self {
        let text = match &json {
            Value::String(s) => s.clone(),
            other => serde_json::to_string_pretty(other).expect("JSON values serialise"),
        };
        CallOutput { json, text }
    }
}

fn cli_context() -> InvocationContext {
    InvocationContext {
        caller: "cli".into(),
        run_id: None,
        agent: None,
    }
}

async fn call_tool(plugin: &Plugin, args: &CallArgs) -> Result<CallOutput> {
    match args.args.as_slice() {
        [] => {
            let tools: Vec<Value> = plugin
                .tools()
                .iter()
                .map(|t| json!({"name": t.name, "description": t.description, "input_schema": serde_json::from_str::<Value>(&t.input_schema).unwrap_or(Value::Null)}))
                .collect();
            let text = plugin
                .tools()
                .iter()
                .map(|t| format!("{}: {}", t.name, t.description))
                .collect::<Vec<_>>()
                .join("\n");
            Ok(CallOutput {
                json: Value::Array(tools),
                text,
            })
        }
        [tool, rest @ ..] => {
            if rest.len() > 1 {
                bail!("a tool takes one JSON argument object; quote it as a single argument");
            }
            let arguments = match rest.first() {
                Some(text) => parse_json_arg(text, "the tool arguments")?,
                None => json!({}),
            };
            let output = settled(plugin.invoke_tool(tool, &arguments, &cli_context()).await)?;
            Ok(CallOutput::json(output.to_value()))
        }
    }
}

async fn call_provider(plugin: &Plugin, args: &CallArgs) -> Result<CallOutput> {
    if args.args.is_empty() {
        let models = settled(plugin.list_models().await)?;
        let text = models
            .iter()
            .map(|m| format!("{}: {}", m.id, m.description))
            .collect::<Vec<_>>()
            .join("\n");
        return Ok(CallOutput {
            json: Value::Array(models.iter().map(model_json).collect()),
            text,
        });
    }
    let mut messages = Vec::new();
    if let Some(system) = &args.system {
        messages.push(Message {
            role: paracle_contract::Role::System,
            content: system.clone(),
            tool_calls: vec![],
            tool_call_id: None,
        });
    }
    messages.push(Message {
        role: paracle_contract::Role::User,
        content: args.args.join(" "),
        tool_calls: vec![],
        tool_call_id: None,
    });
    let request = ChatRequest {
        model: args.model.clone().unwrap_or_default(),
        messages,
        tools: Vec::new(),
        temperature: None,
        max_tokens: None,
    };
    let response = settled(plugin.chat(&request).await)?;
    Ok(CallOutput {
        text: response.message.content.clone(),
        json: chat_response_json(&response),
    })
}

async fn call_memory(plugin: &Plugin, args: &CallArgs) -> Result<CallOutput> {
    let a: Vec<&str> = args.args.iter().map(String::as_str).collect();
    Ok(match a.as_slice() {
        ["put", ns, key, value] => {
            settled(plugin.memory_put(ns, key, value).await)?;
            CallOutput { json: json!({"stored": key}), text: format!("stored `{key}` in `{ns}`") }
        }
        ["get", ns, key] => match settled(plugin.memory_get(ns, key).await)? {
            Some(value) => CallOutput { json: json!({"key": key, "value": value}), text: value },
            None => bail!("no key `{key}` in namespace `{ns}`"),
        },
        ["delete", ns, key] => {
            let existed = settled(plugin.memory_delete(ns, key).await)?;
            CallOutput {
                json: json!({"deleted": existed}),
                text: if existed { format!("deleted `{key}`") } else { format!("no key `{key}` in `{ns}`") },
            }
        }
        ["keys", ns] | ["keys", ns, _] => {
            let prefix = a.get(2).copied().unwrap_or("");
            let keys = settled(plugin.memory_keys(ns, prefix).await)?;
            CallOutput { text: keys.join("\n"), json: json!(keys) }
        }
        ["search", ns, query @ ..] if !query.is_empty() => {
            let hits = settled(plugin.memory_search(ns, &query.join(" "), args.limit).await)?;
            let text = hits.iter().map(|h| format!("{:.3}  {}: {}", h.score, h.key, h.value)).collect::<Vec<_>>().join("\n");
            CallOutput { json: Value::Array(hits.iter().map(hit_json).collect()), text }
        }
        _ => bail!("usage: put NS KEY VALUE | get NS KEY | delete NS KEY | keys NS [PREFIX] | search NS QUERY"),
    })
}

async fn call_observer(plugin: &Plugin, args: &CallArgs) -> Result<CallOutput> {
    for (i, text) in args.args.iter().enumerate() {
        let value = parse_json_arg(text, &format!("event {}", i + 1))?;
        let event = event_from_json(&value).map_err(|e| anyhow!("event {}: {e}", i + 1))?;
        settled(plugin.on_event(&event).await)?;
    }
    let report = settled(plugin.report().await)?;
    Ok(CallOutput::json(report))
}

async fn call_adapter(registry: &Registry, plugin: &Plugin, args: &CallArgs) -> Result<CallOutput> {
    if args.args.is_empty() {
        bail!(
            "give the agent a task, like: paracle plugin call {} \"count the vowels in banana\"",
            plugin.name()
        );
    }
    let provider = registry.get(&args.provider).await?;
    let tool_names: Vec<String> = if args.tools.is_empty() {
        defaults::DEFAULT_TOOLS
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        args.tools.clone()
    };
    let mut tools = Vec::new();
    for name in &tool_names {
        tools.push(registry.get(name).await?.into());
    }
    let memory = if args.memory == "none" {
        None
    } else {
        Some(registry.get(&args.memory).await?)
    };
    let routes = AgentRoutes::new(
        plugin.name(),
        Some(provider),
        tools,
        memory,
        None,
        Some("cli".into()),
    )
    .map_err(|e| anyhow!(e))?;
    let agent = AgentSpec {
        name: "cli".into(),
        description: "An agent started from the command line".into(),
        system_prompt: args.system.clone().unwrap_or_default(),
        model: args.model.clone().unwrap_or_default(),
        temperature: None,
        max_tokens: None,
        max_steps: args.max_steps,
        memory_namespace: "cli".into(),
        config: "{}".into(),
    };
    let task_id = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    );
    let task = Task {
        id: task_id,
        input: args.args.join(" "),
        context: "{}".into(),
    };
    let outcome = settled(plugin.run_agent(&agent, &task, Arc::new(routes)).await)?;
    Ok(CallOutput {
        text: outcome.output.clone(),
        json: outcome_json(&outcome),
    })
}
