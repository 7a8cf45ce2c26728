//! The project's set of plugins: those loaded explicitly (persisted in
//! `.paracle/registry.toml` with their digest, grants and limits), those
//! declared in `paracle.toml`, those dropped in `.paracle/plugins/` or in the
//! per-user plugins directory, and the built-in defaults, in that order of
//! precedence.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use paracle_base::{atomic, shown, strict_toml};
use paracle_contract::PluginInfo;
use paracle_policy::{Approvals, DirGrant, Grant, Grants, Limits, NetGrant};
use paracle_runtime::{
    digest_of, valid_name, CallStats, GitBackend, Isolation, LoadError, Plugin, PluginKind,
    PluginSettings, Runtime,
};

use crate::audit::{AuditAction, AuditLog, AuditRecord};
use crate::defaults::{self, BUILTINS};
use crate::error::RegistryError;
use crate::paths::Paths;
use crate::secrets::SecretStore;
use crate::settings::{self, GitSettings, Settings, DEFAULT_GIT_WORKFLOW};
use crate::signing::{Subject, TrustList, Verdict};

/// Where a plugin came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "path", rename_all = "kebab-case")]
pub enum Source {
    /// `paracle plugin load`.
    Loaded(PathBuf),
    /// `paracle plugin install`: the component in the blob cache.
    Installed(PathBuf),
    /// `[plugins.NAME]` in paracle.toml.
    ProjectConfig(PathBuf),
    /// `.paracle/plugins/`.
    PluginsDir(PathBuf),
    /// The per-user plugins directory.
    UserDir(PathBuf),
    /// Embedded in the binary.
    Builtin,
}

impl Source {
    pub fn describe(&self) -> String {
        match self {
            Source::Loaded(p) => format!("loaded from {}", p.display()),
            Source::Installed(p) => format!("installed ({})", p.display()),
            Source::ProjectConfig(p) => format!("paracle.toml ({})", p.display()),
            Source::PluginsDir(p) => format!("plugins directory ({})", p.display()),
            Source::UserDir(p) => format!("user plugins ({})", p.display()),
            Source::Builtin => "built in".to_string(),
        }
    }

    pub fn path(&self) -> Option<&Path> {
        match self {
            Source::Loaded(p)
            | Source::Installed(p)
            | Source::ProjectConfig(p)
            | Source::PluginsDir(p)
            | Source::UserDir(p) => Some(p),
            Source::Builtin => None,
        }
    }
}

/// One explicitly loaded plugin, as persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub name: String,
    pub path: PathBuf,
    pub digest: String,
    pub kind: PluginKind,
    pub version: String,
    pub loaded_at: String,
    /// The config passed to `init`, as JSON text.
    #[serde(default)]
    pub config: String,
    #[serde(default)]
    pub isolation: Isolation,
    #[serde(default)]
    pub grants: Grants,
    #[serde(default)]
    pub limits: Limits,
    /// Which of its tool calls need a person's approval.
    #[serde(default, skip_serializing_if = "Approvals::is_always")]
    pub approve: Approvals,
    /// What this version asked for, so that loading a new version can say
    /// what it asks for that this one did not.
    #[serde(default)]
    pub requests: Requests,
    /// For a plugin installed from a registry: where from, pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

impl Entry {
    /// The settings it was recorded with, to load it again as it was.
    pub fn settings(&self) -> PluginSettings {
        PluginSettings {
            name: Some(self.name.clone()),
            config: parse_json_config(&self.config),
            grants: self.grants.clone(),
            limits: self.limits.clone(),
            isolation: self.isolation,
            approvals: self.approve.clone(),
            git: None,
            secrets: None,
            signer: None,
        }
    }
}

/// Where an installed plugin came from: the lockfile half of its entry.
/// A later install of the same reference takes `manifest`, not whatever
/// the tag names now, until `plugin update`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    /// `oci://HOST/REPO:TAG`, as given to `plugin install`.
    pub reference: String,
    /// The digest of the artifact's manifest.
    pub manifest: String,
    /// The name the component gives itself, so that an update that serves
    /// another plugin under the same reference is refused.
    #[serde(default)]
    pub component: String,
    /// The signature that came with the artifact, checked again at every
    /// load against the trust list as it is then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// A plugin's requested capabilities, as recorded in the registry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Requests {
    pub dirs: Vec<RequestedDir>,
    pub hosts: Vec<String>,
    pub env: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestedDir {
    pub guest: String,
    pub writable: bool,
}

impl Requests {
    pub fn of(info: &PluginInfo) -> Self {
        let requests = &info.requests;
        Requests {
            dirs: requests
                .paths
                .iter()
                .map(|p| RequestedDir {
                    guest: p.guest_path.clone(),
                    writable: p.writable,
                })
                .collect(),
            hosts: requests.hosts.clone(),
            env: requests.env.clone(),
        }
    }

    /// What `self` asks for that `old` did not, one line each. Asking to write
    /// where `old` only read counts as new.
    pub fn added_since(&self, old: &Requests) -> Vec<String> {
        let mut added = Vec::new();
        for dir in &self.dirs {
            if !old
                .dirs
                .iter()
                .any(|o| o.guest == dir.guest && o.writable >= dir.writable)
            {
                added.push(format!(
                    "dir {} ({})",
                    dir.guest,
                    if dir.writable { "rw" } else { "ro" }
                ));
            }
        }
        added.extend(
            self.hosts
                .iter()
                .filter(|h| !old.hosts.contains(h))
                .map(|h| format!("net {h}")),
        );
        added.extend(
            self.env
                .iter()
                .filter(|e| !old.env.contains(e))
                .map(|e| format!("env {e}")),
        );
        added
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    version: u32,
    #[serde(default)]
    plugin: Vec<Entry>,
    /// What the operator set for built-in plugins, by name: a built-in
    /// has no entry of its own, but its limits and approvals are the
    /// operator's to change (an agent on a real model outlasts the default
    /// time limit of the built-in adapter).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    builtin: BTreeMap<String, BuiltinSettings>,
}

/// The limits and approvals an operator set for a built-in plugin; none
/// of its grants, which are part of what it is.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BuiltinSettings {
    #[serde(default)]
    limits: Limits,
    #[serde(default, skip_serializing_if = "Approvals::is_always")]
    approve: Approvals,
}

/// `paracle.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectConfig {
    #[serde(default)]
    plugins: BTreeMap<String, toml::Spanned<PluginDecl>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginDecl {
    path: PathBuf,
    #[serde(default)]
    config: Option<toml::Table>,
    #[serde(default)]
    isolation: Isolation,
    #[serde(default)]
    grants: GrantDecl,
    #[serde(default)]
    limits: Limits,
    /// `always`, `ask` or `never`, for all its tools or per tool.
    #[serde(default)]
    approve: Approvals,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantDecl {
    /// `HOST_DIR[:GUEST_PATH][:ro|rw]`, the host directory relative to the project.
    #[serde(default)]
    dirs: Vec<String>,
    /// `HOST[:PORT]`, as in `net:` grants.
    #[serde(default)]
    net: Vec<NetGrant>,
    #[serde(default)]
    env: Vec<String>,
    /// The user's secrets, by name, as in `secret:` grants.
    #[serde(default)]
    secrets: Vec<String>,
    /// The `git` interface on the project's repository.
    #[serde(default)]
    git: bool,
}

/// A plugin's component with what vouches for it, to send to a worker.
#[derive(Debug, Clone)]
pub struct Component {
    pub bytes: Cow<'static, [u8]>,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
    /// The signature that came with it (a file beside it, or its
    /// artifact's), for the receiver to check against its own trust list.
    pub signature: Option<String>,
    /// Embedded in this binary: a receiver takes its own copy when it has
    /// the same digest.
    pub builtin: bool,
}

/// A plugin the registry knows of, loaded or not.
#[derive(Debug, Clone)]
pub struct Known {
    pub name: String,
    pub source: Source,
    settings: PluginSettings,
    /// For explicitly loaded plugins: the digest pinned at load.
    pinned: Option<String>,
    /// For installed plugins: where from.
    origin: Option<Origin>,
}

const REGISTRY_VERSION: u32 = 1;

pub struct Registry {
    paths: Paths,
    runtime: Arc<Runtime>,
    /// The registry file with this process's changes.
    file: RegistryFile,
    /// The registry file as this process last read or wrote it: what its
    /// changes are made against when it saves them.
    file_as_read: RegistryFile,
    known: Vec<Known>,
    loaded: Mutex<HashMap<String, Arc<Plugin>>>,
    /// Plugins whose workspace grant points at a run's workspace.
    scoped: Mutex<HashMap<(String, PathBuf), Arc<Plugin>>>,
    trust: TrustList,
    /// What a `git` grant reaches: the repository that holds the project,
    /// as the host that opened the registry attached it.
    repository: Option<Arc<dyn GitBackend>>,
    /// `.paracle/config.toml`, read once, with the rest, at discovery.
    settings: Settings,
    secrets: OnceLock<Result<SecretStore, String>>,
    audit: AuditLog,
}

fn config_error(file: &Path, message: impl Into<String>) -> RegistryError {
    RegistryError::Config {
        file: file.to_path_buf(),
        message: message.into(),
    }
}

impl Registry {
    pub fn open(paths: Paths, runtime: Arc<Runtime>) -> Result<Self, RegistryError> {
        let file = read_registry(&paths.registry_file())?;
        let trust = TrustList::load(&paths.trust)?;
        let mut registry = Registry {
            runtime,
            file_as_read: file.clone(),
            file,
            known: Vec::new(),
            loaded: Mutex::new(HashMap::new()),
            scoped: Mutex::new(HashMap::new()),
            trust,
            repository: None,
            settings: Settings::default(),
            secrets: OnceLock::new(),
            audit: AuditLog::new(paths.audit_file()),
            paths,
        };
        registry.discover()?;
        Ok(registry)
    }

    /// What the signature of plugin `name` says; None for built-ins, which
    /// are part of this binary.
    pub fn signature(&self, name: &str) -> Result<Option<Verdict>, RegistryError> {
        let known = self.find(name)?;
        let Some(path) = known.source.path() else {
            return Ok(None);
        };
        // Loaded, it was checked against its pin: its digest stands for its
        // bytes, and a large component is not read and hashed again.
        if let Some(plugin) = self.loaded.lock().unwrap().get(name).cloned() {
            let digest = plugin.digest().to_string();
            return Ok(Some(match &known.origin {
                Some(origin) => self.trust.check_artifact(
                    &origin.reference,
                    Subject::Plugin,
                    &digest,
                    origin.signature.as_deref(),
                )?,
                None => self.trust.check_file(path, || digest)?,
            }));
        }
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Some(self.check_signature(
            known,
            path,
            &bytes,
            &digest_of(&bytes),
        )?))
    }

    /// Where plugin `name` was installed from, if it was.
    pub fn origin(&self, name: &str) -> Option<&Origin> {
        self.find(name).ok()?.origin.as_ref()
    }

    /// The operator's trust list, as read when the registry was opened.
    pub fn trust(&self) -> &TrustList {
        &self.trust
    }

    /// An installed plugin's signature is the one its artifact came with;
    /// a loaded one's is the file beside it.
    fn check_signature(
        &self,
        known: &Known,
        path: &Path,
        bytes: &[u8],
        digest: &str,
    ) -> Result<Verdict, RegistryError> {
        Ok(match &known.origin {
            Some(origin) => self.trust.check_artifact(
                &origin.reference,
                Subject::Plugin,
                digest,
                origin.signature.as_deref(),
            )?,
            None => self.trust.check(path, bytes)?,
        })
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The engine this registry loads into, to share with another registry
    /// (a scratch project that checks a template).
    pub fn shared_runtime(&self) -> Arc<Runtime> {
        self.runtime.clone()
    }

    /// Read the project's files again, after this process wrote them.
    /// Plugins already loaded keep the settings they were loaded with.
    pub fn rediscover(&mut self) -> Result<(), RegistryError> {
        self.discover()
    }

    fn discover(&mut self) -> Result<(), RegistryError> {
        let mut known: Vec<Known> = Vec::new();
        let mut add = |candidate: Known| {
            if !known.iter().any(|k| k.name == candidate.name) {
                known.push(candidate);
            }
        };
        for entry in &self.file.plugin {
            add(Known {
                name: entry.name.clone(),
                source: match entry.origin {
                    // By digest in this machine's cache, wherever the project
                    // was installed first: registry.toml travels with it.
                    Some(_) => Source::Installed(
                        self.paths.blobs.join("sha256").join(
                            entry
                                .digest
                                .strip_prefix("sha256:")
                                .filter(|hex| {
                                    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
                                })
                                // Not a digest: a name that finds no file.
                                .unwrap_or("not-a-digest"),
                        ),
                    ),
                    None => Source::Loaded(entry.path.clone()),
                },
                settings: entry.settings(),
                pinned: Some(entry.digest.clone()),
                origin: entry.origin.clone(),
            });
        }
        for declared in read_project_config(&self.paths)? {
            add(declared);
        }
        for (dir, source) in [
            (
                self.paths.plugins_dir(),
                Source::PluginsDir as fn(PathBuf) -> Source,
            ),
            (
                self.paths.user_plugins.clone(),
                Source::UserDir as fn(PathBuf) -> Source,
            ),
        ] {
            for path in wasm_files(&dir) {
                let name = path
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .replace('_', "-")
                    .to_lowercase();
                add(Known {
                    name: name.clone(),
                    source: source(path),
                    settings: PluginSettings {
                        name: Some(name),
                        ..Default::default()
                    },
                    pinned: None,
                    origin: None,
                });
            }
        }
        for builtin in BUILTINS {
            let mut grants = Grants {
                git: builtin.git,
                ..Grants::default()
            };
            if let Some((dir, guest)) = builtin.workdir {
                grants.dirs.push(DirGrant {
                    host: self.paths.state.join(dir),
                    guest: guest.to_string(),
                    writable: true,
                });
            }
            let set = self.file.builtin.get(builtin.name).cloned();
            let (limits, approvals) = set.map(|s| (s.limits, s.approve)).unwrap_or_default();
            add(Known {
                name: builtin.name.to_string(),
                source: Source::Builtin,
                settings: PluginSettings {
                    name: Some(builtin.name.to_string()),
                    grants,
                    limits,
                    approvals,
                    ..Default::default()
                },
                pinned: None,
                origin: None,
            });
        }
        // The git workflow's settings are its plugin's config; they win
        // over a config the plugin was given elsewhere.
        self.settings = settings::read_settings(&self.paths.state)?;
        if let Some(git) = &self.settings.git {
            if let Some(workflow) = known.iter_mut().find(|k| k.name == git.plugin) {
                let mut config = match workflow.settings.config.take() {
                    Some(serde_json::Value::Object(map)) => map,
                    _ => serde_json::Map::new(),
                };
                if let serde_json::Value::Object(settings) = git.plugin_config() {
                    config.extend(settings);
                }
                workflow.settings.config = Some(serde_json::Value::Object(config));
            }
        }
        known.sort_by(|a, b| a.name.cmp(&b.name));
        self.known = known;
        Ok(())
    }

    /// Reach the project's repository through `backend` when a plugin is
    /// granted `git`. Without it, such a plugin does not load.
    pub fn with_repository(mut self, backend: Arc<dyn GitBackend>) -> Self {
        self.repository = Some(backend);
        self
    }

    /// `.paracle/config.toml`, as read when the registry was opened.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The `[git]` table of `.paracle/config.toml`, if the git workflow is set up.
    pub fn git_settings(&self) -> Option<&GitSettings> {
        self.settings.git.as_ref()
    }

    /// Whether plugin `name` should hear execution events: every observer,
    /// except a git workflow that `[git]` does not name. That one would
    /// ignore them all, and loading it costs a compilation in a fresh cache.
    pub fn hears_events(&self, name: &str) -> bool {
        match &self.settings.git {
            Some(git) => name != DEFAULT_GIT_WORKFLOW || git.plugin == name,
            None => name != DEFAULT_GIT_WORKFLOW,
        }
    }

    /// `settings` with the repository a `git` grant reaches filled in.
    fn reaching_repository(
        &self,
        name: &str,
        mut settings: PluginSettings,
    ) -> Result<PluginSettings, RegistryError> {
        if settings.grants.git {
            let repository = self.repository.clone().ok_or_else(|| RegistryError::Invalid {
                name: name.to_string(),
                message: "it is granted `git`, but this host opened the project without its repository".into(),
            })?;
            settings.git = Some(repository);
        }
        if !settings.grants.secrets.is_empty() {
            settings.secrets = Some(Arc::new(self.secrets()?.clone()));
        } else if let Ok(store) = self.secrets() {
            // A person may allow a secret while the plugin runs.
            settings.secrets = Some(Arc::new(store.clone()));
        }
        Ok(settings)
    }

    /// Every plugin the project can use, loaded or not.
    pub fn known(&self) -> &[Known] {
        &self.known
    }

    /// The kind of plugin `name`, when it is known without loading it.
    pub fn kind_hint(&self, name: &str) -> Option<PluginKind> {
        if let Some(plugin) = self.loaded.lock().unwrap().get(name) {
            return Some(plugin.kind());
        }
        match &self.find(name).ok()?.source {
            Source::Builtin => defaults::builtin(name).map(|b| b.kind),
            Source::Loaded(_) => self
                .file
                .plugin
                .iter()
                .find(|e| e.name == name)
                .map(|e| e.kind),
            _ => None,
        }
    }

    /// Every plugin of `kind` whose name `wanted` accepts, loaded. One that
    /// cannot be loaded is left out with a warning, so that one broken
    /// plugin does not stop a run or a server. Plugins whose kind is known
    /// without loading them are loaded only if they are of `kind`.
    pub async fn load_kind(
        &self,
        kind: PluginKind,
        wanted: impl Fn(&str) -> bool,
    ) -> Vec<Arc<Plugin>> {
        let mut plugins = Vec::new();
        for known in &self.known {
            if !wanted(&known.name) || self.kind_hint(&known.name).is_some_and(|k| k != kind) {
                continue;
            }
            match self.get(&known.name).await {
                Ok(plugin) if plugin.kind() == kind => plugins.push(plugin),
                Ok(_) => {}
                Err(error) => tracing::warn!(
                    "{kind} plugin `{}` left out: {}",
                    known.name,
                    shown::line(&error.to_string())
                ),
            }
        }
        plugins
    }

    pub fn source_of(&self, name: &str) -> Result<&Source, RegistryError> {
        self.find(name).map(|k| &k.source)
    }

    /// Where plugin `name` comes from, in words: an installed one by the
    /// reference it was installed from.
    pub fn describe_source(&self, name: &str) -> Result<String, RegistryError> {
        let known = self.find(name)?;
        Ok(match &known.origin {
            Some(origin) => format!("installed from {}", origin.reference),
            None => known.source.describe(),
        })
    }

    fn find(&self, name: &str) -> Result<&Known, RegistryError> {
        self.known
            .iter()
            .find(|k| k.name == name)
            .ok_or_else(|| RegistryError::UnknownPlugin(name.to_string()))
    }

    /// The plugin called `name`, loaded on first use.
    pub async fn get(&self, name: &str) -> Result<Arc<Plugin>, RegistryError> {
        if let Some(plugin) = self.loaded.lock().unwrap().get(name) {
            return Ok(plugin.clone());
        }
        let known = self.find(name)?.clone();
        let plugin = Arc::new(self.load_known(&known).await?);
        self.loaded
            .lock()
            .unwrap()
            .insert(name.to_string(), plugin.clone());
        Ok(plugin)
    }

    /// The plugin called `name` as a run sees it: where it is granted the
    /// project's shared workspace, it gets `workspace` instead, so that runs
    /// do not write into each other's files. Other plugins are shared.
    pub async fn get_in_workspace(
        &self,
        name: &str,
        workspace: &Path,
    ) -> Result<Arc<Plugin>, RegistryError> {
        let shared = self.paths.workspace();
        let known = self.find(name)?;
        if !known.settings.grants.dirs.iter().any(|d| d.host == shared) {
            return self.get(name).await;
        }
        let key = (name.to_string(), workspace.to_path_buf());
        if let Some(plugin) = self.scoped.lock().unwrap().get(&key) {
            return Ok(plugin.clone());
        }
        let mut known = known.clone();
        for grant in &mut known.settings.grants.dirs {
            if grant.host == shared {
                grant.host = workspace.to_path_buf();
            }
        }
        let plugin = Arc::new(self.load_known(&known).await?);
        self.scoped.lock().unwrap().insert(key, plugin.clone());
        Ok(plugin)
    }

    /// Drop the copies of plugins made for `workspace`. A long-lived
    /// process (the MCP server) calls this when a run ends, or every run it
    /// served would keep its plugin instances alive.
    pub fn forget_workspace(&self, workspace: &Path) {
        self.scoped
            .lock()
            .unwrap()
            .retain(|(_, scoped), _| scoped != workspace);
    }

    async fn load_known(&self, known: &Known) -> Result<Plugin, RegistryError> {
        let (path, bytes) = match &known.source {
            Source::Builtin => {
                let builtin = defaults::builtin(&known.name).expect("builtins are known by name");
                for grant in &known.settings.grants.dirs {
                    std::fs::create_dir_all(&grant.host).map_err(|source| {
                        RegistryError::Write {
                            file: grant.host.clone(),
                            source,
                        }
                    })?;
                }
                (
                    PathBuf::from(format!("<built-in {}>", builtin.name)),
                    builtin.bytes.to_vec(),
                )
            }
            source => {
                let path = source
                    .path()
                    .expect("non-builtin sources have a path")
                    .to_path_buf();
                let bytes = match std::fs::read(&path) {
                    Ok(bytes) => bytes,
                    Err(error)
                        if error.kind() == std::io::ErrorKind::NotFound
                            && matches!(known.source, Source::Installed(_)) =>
                    {
                        let reference = known.origin.as_ref().map_or("", |o| o.reference.as_str());
                        let again = match reference.split_once('#') {
                            Some((template, _)) => format!("paracle template install {template}"),
                            None => format!("paracle plugin install {reference}"),
                        };
                        return Err(RegistryError::Invalid {
                            name: known.name.clone(),
                            message: format!(
                                "its component is not in this machine's cache; `{again}` pulls the pinned version again"
                            ),
                        });
                    }
                    Err(source) => return Err(LoadError::Read { path, source }.into()),
                };
                (path, bytes)
            }
        };
        // Hashed once, for the pin, the signature and the code cache.
        let found = digest_of(&bytes);
        if let Some(pinned) = &known.pinned {
            if &found != pinned {
                return Err(RegistryError::DigestMismatch {
                    name: known.name.clone(),
                    pinned: pinned.clone(),
                    found,
                });
            }
        }
        let mut settings = self.reaching_repository(&known.name, known.settings.clone())?;
        settings.signer = Some(if known.source == Source::Builtin {
            "built into this paracle".to_string()
        } else {
            let verdict = self.check_signature(known, &path, &bytes, &found);
            let record = AuditRecord::new(
                AuditAction::Signature,
                "trust-list",
                path.display().to_string(),
            )
            .plugin(&known.name, Some(&found));
            self.audit_quietly(match &verdict {
                Ok(verdict) => record.outcome("accepted").detail(verdict.to_string()),
                Err(error) => record.outcome("refused").detail(error.to_string()),
            });
            verdict?.to_string()
        });
        if !settings.grants.secrets.is_empty() {
            for name in &settings.grants.secrets {
                self.audit_quietly(
                    AuditRecord::new(AuditAction::SecretUse, "grant", format!("secret:{name}"))
                        .plugin(&known.name, Some(&found))
                        .outcome("handed-over"),
                );
            }
        }
        Ok(self
            .runtime
            .load_digested(&path, &bytes, found, settings)
            .await?)
    }

    /// The component of plugin `name`, as it would travel to another
    /// machine: its bytes, read again and checked against `digest` (the one
    /// the plugin was loaded with), and the signature that came with it.
    pub fn component(&self, name: &str, digest: &str) -> Result<Component, RegistryError> {
        let known = self.find(name)?;
        let (bytes, signature) = match &known.source {
            Source::Builtin => {
                let builtin = defaults::builtin(name).expect("builtins are known by name");
                (Cow::Borrowed(builtin.bytes), None)
            }
            source => {
                let path = source.path().expect("non-builtin sources have a path");
                let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                let signature = match &known.origin {
                    Some(origin) => origin.signature.clone(),
                    None => match std::fs::read_to_string(crate::signing::signature_path(path)) {
                        Ok(text) => Some(text),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                        Err(source) => {
                            return Err(LoadError::Read {
                                path: crate::signing::signature_path(path),
                                source,
                            }
                            .into())
                        }
                    },
                };
                (Cow::Owned(bytes), signature)
            }
        };
        let found = digest_of(&bytes);
        if found != digest {
            return Err(RegistryError::DigestMismatch {
                name: name.to_string(),
                pinned: digest.to_string(),
                found,
            });
        }
        Ok(Component {
            bytes,
            digest: found,
            signature,
            builtin: known.source == Source::Builtin,
        })
    }

    /// The user's secrets, read on first need.
    pub fn secrets(&self) -> Result<&SecretStore, RegistryError> {
        self.secrets
            .get_or_init(|| SecretStore::open(&self.paths.secrets).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|message| config_error(&self.paths.secrets, message.clone()))
    }

    /// The project's audit log.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// Record a call the sandbox refused (a capability not granted, a tool
    /// call not approved), when `error` is one.
    pub fn audit_denial(&self, error: &paracle_runtime::CallError) {
        if let paracle_runtime::CallError::Denied {
            plugin,
            capability,
            reason,
            ..
        } = error
        {
            let digest = self
                .loaded
                .lock()
                .unwrap()
                .get(plugin)
                .map(|p| p.digest().to_string());
            self.audit_quietly(
                AuditRecord::new(AuditAction::Denial, "sandbox", capability.as_str())
                    .plugin(plugin, digest.as_deref())
                    .outcome("deny")
                    .detail(shown::clipped(reason, 1024)),
            );
        }
    }

    /// Append to the audit log; a log that cannot be written is reported
    /// on stderr's log, and does not stop the work it records.
    pub fn audit_quietly(&self, record: AuditRecord) {
        if let Err(error) = self.audit.append(&record) {
            tracing::warn!("{error}");
        }
    }

    /// Load a plugin file and record it in the registry. Returns the plugin
    /// and the entry it replaced, if it was loaded before from the same file.
    pub async fn load_file(
        &mut self,
        path: &Path,
        settings: PluginSettings,
    ) -> Result<(Arc<Plugin>, Option<Entry>), RegistryError> {
        let path = std::fs::canonicalize(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let bytes = std::fs::read(&path).map_err(|source| LoadError::Read {
            path: path.clone(),
            source,
        })?;
        self.trust.check(&path, &bytes)?;
        let digest = digest_of(&bytes);
        self.record(path, &bytes, digest, settings, None).await
    }

    /// Load a component pulled from a registry, whose bytes are `bytes`
    /// (kept at `path` in the blob cache), and record it with its origin.
    /// Its signature is checked here, against the trust list, before it runs.
    pub async fn install(
        &mut self,
        path: &Path,
        bytes: &[u8],
        settings: PluginSettings,
        origin: Origin,
    ) -> Result<(Arc<Plugin>, Option<Entry>), RegistryError> {
        let digest = digest_of(bytes);
        self.trust.check_artifact(
            &origin.reference,
            Subject::Plugin,
            &digest,
            origin.signature.as_deref(),
        )?;
        self.record(path.to_path_buf(), bytes, digest, settings, Some(origin))
            .await
    }

    async fn record(
        &mut self,
        path: PathBuf,
        bytes: &[u8],
        digest: String,
        settings: PluginSettings,
        origin: Option<Origin>,
    ) -> Result<(Arc<Plugin>, Option<Entry>), RegistryError> {
        if let Some(name) = &settings.name {
            if !valid_name(name) {
                return Err(RegistryError::Invalid {
                    name: name.clone(),
                    message: "names are 1 to 64 lowercase letters, digits, `-` or `_`".into(),
                });
            }
        }
        let label = settings
            .name
            .clone()
            .unwrap_or_else(|| path.display().to_string());
        let mut origin = origin;
        if let Some(origin) = &mut origin {
            // Decided on what the component says of itself, asked of an
            // instance with nothing granted: before it runs with the grants
            // of what it would replace.
            let info = self
                .runtime
                .inspect(&path, bytes, digest.clone())
                .await?
                .info;
            let name = settings.name.clone().unwrap_or_else(|| info.name.clone());
            let previous = self.file.plugin.iter().find(|e| e.name == name);
            origin.component = info.name.clone();
            self.check_install(&name, &info, previous, origin)?;
        }
        let settings = self.reaching_repository(&label, settings)?;
        let plugin = self
            .runtime
            .load_digested(&path, bytes, digest, settings)
            .await?;
        let name = plugin.name().to_string();
        let previous = self.file.plugin.iter().find(|e| e.name == name).cloned();
        if let Some(previous) = &previous {
            let same_place = match (&previous.origin, &origin) {
                (Some(old), Some(new)) => old.reference == new.reference,
                (None, None) => previous.path == path,
                _ => false,
            };
            if !same_place {
                return Err(RegistryError::NameTaken {
                    name,
                    source_desc: match &previous.origin {
                        Some(old) => old.reference.clone(),
                        None => previous.path.display().to_string(),
                    },
                });
            }
        }
        let entry = Entry {
            name: name.clone(),
            path,
            digest: plugin.digest().to_string(),
            kind: plugin.kind(),
            version: plugin.info().version.clone(),
            loaded_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            config: plugin.config().to_string(),
            isolation: plugin.isolation(),
            grants: plugin.grants().clone(),
            limits: plugin.limits().clone(),
            approve: plugin.approvals().clone(),
            requests: Requests::of(plugin.info()),
            origin,
        };
        self.file.plugin.retain(|e| e.name != name);
        self.file.plugin.push(entry);
        self.file.plugin.sort_by(|a, b| a.name.cmp(&b.name));
        self.save()?;
        self.discover()?;
        let plugin = Arc::new(plugin);
        self.loaded.lock().unwrap().insert(name, plugin.clone());
        Ok((plugin, previous))
    }

    /// What an install may not do, whatever the registry served: take the
    /// name of a plugin from elsewhere (a built-in, `paracle.toml`, a plugins
    /// directory), put another plugin in place of the one installed from the
    /// same reference, or go back to an older version of it.
    fn check_install(
        &self,
        name: &str,
        info: &PluginInfo,
        previous: Option<&Entry>,
        origin: &Origin,
    ) -> Result<(), RegistryError> {
        let refuse = |message: String| {
            Err(RegistryError::Invalid {
                name: name.to_string(),
                message,
            })
        };
        if previous.is_none() {
            if let Ok(known) = self.find(name) {
                return refuse(format!(
                    "that name is taken by a plugin the project has ({}); install it under another with --name",
                    known.source.describe()
                ));
            }
        }
        let Some(old) = previous.and_then(|p| p.origin.as_ref().map(|o| (p, o))) else {
            return Ok(());
        };
        let (previous, old) = old;
        if old.reference != origin.reference {
            return Ok(());
        }
        if !old.component.is_empty() && old.component != info.name {
            return refuse(format!(
                "{} now serves another plugin (`{}`, not `{}`); install it under another name with --name if you mean to",
                origin.reference,
                shown::clipped(&info.name, 64),
                old.component
            ));
        }
        // Whoever signed what the operator granted things to must sign what
        // replaces it: a registry (or whoever took over a tag) cannot slip
        // in an unsigned component, or one signed by another key, under
        // the grants the signed one was given.
        let signer = |text: &Option<String>| {
            text.as_deref()
                .and_then(|t| t.lines().nth(1))
                .and_then(|l| l.strip_prefix("key "))
                .map(str::to_string)
        };
        let (was, now) = (signer(&old.signature), signer(&origin.signature));
        if let Some(was) = &was {
            if now.as_ref() != Some(was) {
                return refuse(format!(
                    "it was signed by {was}, and {} now serves one {}; `paracle plugin unload {name}` and install it again to accept it (it starts with no grants)",
                    origin.reference,
                    match &now {
                        Some(key) => format!("signed by {}", shown::clipped(key, 80)),
                        None => "that is not signed".into(),
                    }
                ));
            }
        }
        let version = |text: &str| semver::Version::parse(text).ok();
        if let (Some(new), Some(installed)) = (version(&info.version), version(&previous.version)) {
            if new < installed {
                return refuse(format!(
                    "{} serves version {new}, older than the {installed} installed; `paracle plugin unload {name}` first to go back to it",
                    origin.reference
                ));
            }
        }
        Ok(())
    }

    /// Whether the project still approves exactly `plugin`, loaded earlier
    /// (perhaps by another `Registry` of the same project): its name is
    /// pinned to the plugin's digest, with the same grants, limits,
    /// isolation and config, and the trust list still accepts it. A server
    /// may keep serving such a plugin, even while its file is being
    /// rebuilt; anything the operator changed is not kept.
    pub fn still_approves(&self, plugin: &Plugin) -> bool {
        let Some(known) = self.known.iter().find(|k| k.name == plugin.name()) else {
            return false;
        };
        let config = known
            .settings
            .config
            .clone()
            .unwrap_or_else(|| serde_json::json!({}));
        let same = known.pinned.as_deref() == Some(plugin.digest())
            && known.settings.grants == *plugin.grants()
            && known.settings.limits == *plugin.limits()
            && known.settings.approvals == *plugin.approvals()
            && known.settings.isolation == plugin.isolation()
            && serde_json::from_str::<serde_json::Value>(plugin.config()).ok() == Some(config);
        // The trust list as it is now: a key taken out of it, or
        // `require-signed`, applies to a plugin kept as well as to one loaded.
        let digest = || plugin.digest().to_string();
        let trusted = match (&known.origin, known.source.path()) {
            (Some(origin), _) => self
                .trust
                .check_artifact(
                    &origin.reference,
                    Subject::Plugin,
                    plugin.digest(),
                    origin.signature.as_deref(),
                )
                .is_ok(),
            (None, Some(path)) => self.trust.check_file(path, digest).is_ok(),
            (None, None) => true,
        };
        same && trusted
    }

    /// Serve `plugin`, loaded earlier on this registry's runtime, instead of
    /// loading its file again, if the project still approves exactly it
    /// ([`Registry::still_approves`]). Returns whether it was taken.
    pub fn adopt(&self, plugin: Arc<Plugin>) -> bool {
        if !self.runtime.made(&plugin) || !self.still_approves(&plugin) {
            return false;
        }
        self.loaded
            .lock()
            .unwrap()
            .entry(plugin.name().to_string())
            .or_insert(plugin);
        true
    }

    /// The registry's entry for plugin `name`, if it was loaded or installed
    /// explicitly.
    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.file.plugin.iter().find(|e| e.name == name)
    }

    /// Load a plugin's file again and pin its new digest, keeping its name,
    /// config, grants and limits.
    pub async fn reload(
        &mut self,
        name: &str,
    ) -> Result<(Arc<Plugin>, Option<Entry>), RegistryError> {
        let known = self.find(name)?.clone();
        match &known.source {
            Source::Builtin => Err(RegistryError::Builtin {
                name: name.to_string(),
                action: "reloaded",
            }),
            Source::Loaded(path) => {
                let path = path.clone();
                self.load_file(&path, known.settings.clone()).await
            }
            Source::Installed(_) => Err(RegistryError::Invalid {
                name: name.to_string(),
                message: "it was installed from a registry; take its newest version with `paracle plugin update`".into(),
            }),
            _ => {
                self.loaded.lock().unwrap().remove(name);
                Ok((self.get(name).await?, None))
            }
        }
    }

    /// Change the grants of an explicitly loaded plugin with `edit`, which
    /// returns what it changed. The plugin is started with the new grants
    /// before they are saved, so grants that do not work (a directory that is
    /// gone) change nothing.
    pub async fn update_grants<T>(
        &mut self,
        name: &str,
        edit: impl FnOnce(&mut Grants) -> Result<T, RegistryError>,
    ) -> Result<(Arc<Plugin>, T), RegistryError> {
        self.update_settings(name, "grants", Some("given other grants"), |settings| {
            edit(&mut settings.grants)
        })
        .await
    }

    /// Change the limits of an explicitly loaded plugin or a built-in, as
    /// `update_grants` does its grants.
    pub async fn update_limits<T>(
        &mut self,
        name: &str,
        edit: impl FnOnce(&mut Limits) -> Result<T, RegistryError>,
    ) -> Result<(Arc<Plugin>, T), RegistryError> {
        self.update_settings(name, "limits", None, |settings| edit(&mut settings.limits))
            .await
    }

    /// Change which tool calls of an explicitly loaded plugin or a built-in
    /// need a person's approval, as `update_grants` does its grants.
    pub async fn update_approvals<T>(
        &mut self,
        name: &str,
        edit: impl FnOnce(&mut Approvals) -> Result<T, RegistryError>,
    ) -> Result<(Arc<Plugin>, T), RegistryError> {
        self.update_settings(name, "approvals", None, |settings| {
            edit(&mut settings.approvals)
        })
        .await
    }

    /// `refused_to_builtins` names what a built-in cannot be (`given other
    /// grants`): what it reaches is part of what it is. Its limits and
    /// approvals are the operator's, kept in the registry file.
    async fn update_settings<T>(
        &mut self,
        name: &str,
        what: &'static str,
        refused_to_builtins: Option<&'static str>,
        edit: impl FnOnce(&mut PluginSettings) -> Result<T, RegistryError>,
    ) -> Result<(Arc<Plugin>, T), RegistryError> {
        let mut known = self.find(name)?.clone();
        let position = self.file.plugin.iter().position(|e| e.name == name);
        match (position, &known.source, refused_to_builtins) {
            (Some(_), _, _) | (None, Source::Builtin, None) => {}
            (None, Source::Builtin, Some(action)) => {
                return Err(RegistryError::Builtin {
                    name: name.to_string(),
                    action,
                })
            }
            (None, other, _) => {
                return Err(RegistryError::Invalid {
                    name: name.to_string(),
                    message: format!(
                        "its {what} come from {}; change them there",
                        other.describe()
                    ),
                })
            }
        }
        let changed = edit(&mut known.settings)?;
        let plugin = Arc::new(self.load_known(&known).await?);
        let settings = known.settings;
        match position {
            Some(position) => {
                let entry = &mut self.file.plugin[position];
                entry.grants = settings.grants;
                entry.limits = settings.limits;
                entry.approve = settings.approvals;
            }
            // A built-in has no entry: what the operator set of it is kept
            // under `[builtin.NAME]`, and nothing once it is back to what it
            // comes with, so that a later version's defaults apply.
            None if settings.limits == Limits::default() && settings.approvals.is_always() => {
                self.file.builtin.remove(name);
            }
            None => {
                self.file.builtin.insert(
                    name.to_string(),
                    BuiltinSettings {
                        limits: settings.limits,
                        approve: settings.approvals,
                    },
                );
            }
        }
        self.save()?;
        self.discover()?;
        self.loaded
            .lock()
            .unwrap()
            .insert(name.to_string(), plugin.clone());
        Ok((plugin, changed))
    }

    /// Forget an explicitly loaded plugin.
    pub fn unload(&mut self, name: &str) -> Result<Entry, RegistryError> {
        let known = self.find(name)?.clone();
        let Some(position) = self.file.plugin.iter().position(|e| e.name == name) else {
            return Err(match known.source {
                Source::Builtin => RegistryError::Builtin {
                    name: name.to_string(),
                    action: "unloaded",
                },
                other => RegistryError::Invalid {
                    name: name.to_string(),
                    message: format!(
                        "it is not loaded but discovered from {}; remove it there",
                        other.describe()
                    ),
                },
            });
        };
        let entry = self.file.plugin.remove(position);
        self.save()?;
        self.loaded.lock().unwrap().remove(name);
        self.discover()?;
        Ok(entry)
    }

    /// Put plugin `name`'s entry back to `earlier` (None: not recorded),
    /// as it was before this process changed it: the undo of a template
    /// install that failed part-way. Saved like any change, so that what
    /// other processes saved meanwhile is kept.
    pub fn restore(&mut self, name: &str, earlier: Option<Entry>) -> Result<(), RegistryError> {
        self.file.plugin.retain(|e| e.name != name);
        self.file.plugin.extend(earlier);
        self.save()?;
        self.loaded.lock().unwrap().remove(name);
        self.discover()
    }

    /// Write this process's changes to the registry file. The file is read
    /// again under the registry's lock and only the entries this process
    /// changed are written into it, so that what another process saved
    /// since it was read (a grant a person allowed to a running MCP server,
    /// a plugin loaded from another shell) is kept. An entry that another
    /// process changed too is not overwritten: nothing is saved, and the
    /// command can be run again on what is there now.
    ///
    /// When nothing is saved, this registry drops its unsaved changes and
    /// follows the file as it is, so that no later save writes a change
    /// its caller was told had failed.
    fn save(&mut self) -> Result<(), RegistryError> {
        let file = self.paths.registry_file();
        let attempt = lock_registry(&self.paths).and_then(|lock| {
            let on_disk = read_registry(&file)?;
            let saved = self
                .merged_into(on_disk.clone())
                .and_then(|merged| write_registry(&file, &merged).map(|()| merged));
            drop(lock);
            Ok((on_disk, saved))
        });
        let (now, outcome) = match attempt {
            Ok((_, Ok(merged))) => (merged, Ok(())),
            Ok((on_disk, Err(error))) => (on_disk, Err(error)),
            Err(error) => (self.file_as_read.clone(), Err(error)),
        };
        self.file_as_read = now.clone();
        self.file = now;
        if outcome.is_err() {
            // The error to report is the save's; a discovery that fails
            // fails again, and says why, when the registry is next opened.
            let _ = self.discover();
        }
        outcome
    }

    /// `on_disk` with this process's changes: those of the entries it
    /// changed that no other process changed since it read the file.
    fn merged_into(&self, mut on_disk: RegistryFile) -> Result<RegistryFile, RegistryError> {
        let by_name = |entries: &[Entry]| -> BTreeMap<String, Entry> {
            entries
                .iter()
                .map(|e| (e.name.clone(), e.clone()))
                .collect()
        };
        let mut plugins = by_name(&on_disk.plugin);
        merge_changes(
            &by_name(&self.file_as_read.plugin),
            &by_name(&self.file.plugin),
            &mut plugins,
        )?;
        on_disk.plugin = plugins.into_values().collect();
        merge_changes(
            &self.file_as_read.builtin,
            &self.file.builtin,
            &mut on_disk.builtin,
        )?;
        Ok(on_disk)
    }

    /// Whether `name` is a plugin the registry file records, whose grants
    /// can therefore be saved.
    pub fn records(&self, name: &str) -> bool {
        self.file.plugin.iter().any(|e| e.name == name)
    }

    /// Save `grant` for the explicitly loaded plugin `name` (as `plugin
    /// grant` would) without reloading anything: what a person allowed for
    /// a plugin that is running. The file is read again and rewritten
    /// whole, so that what another process saved since is kept. Returns
    /// whether anything changed.
    pub fn save_grant(
        paths: &Paths,
        name: &str,
        digest: &str,
        grant: Grant,
    ) -> Result<bool, RegistryError> {
        let file = paths.registry_file();
        let lock = lock_registry(paths)?;
        let mut registry = read_registry(&file)?;
        let Some(entry) = registry.plugin.iter_mut().find(|e| e.name == name) else {
            return Err(RegistryError::Invalid {
                name: name.to_string(),
                message: "it is not recorded in .paracle/registry.toml, so its grants cannot be saved there".into(),
            });
        };
        if entry.digest != digest {
            return Err(RegistryError::Invalid {
                name: name.to_string(),
                message: format!(
                    "the project now pins {} where the question was about {digest}; nothing was saved",
                    entry.digest
                ),
            });
        }
        if !entry.grants.add(grant) {
            return Ok(false);
        }
        write_registry(&file, &registry)?;
        drop(lock);
        Ok(true)
    }

    /// Add this process's call statistics to the project's totals.
    pub fn persist_stats(&self) -> Result<(), RegistryError> {
        let loaded = self.loaded.lock().unwrap();
        let fresh: Vec<(String, CallStats)> = loaded
            .iter()
            .map(|(n, p)| (n.clone(), p.stats()))
            .filter(|(_, s)| !s.is_empty())
            .collect();
        if fresh.is_empty() {
            return Ok(());
        }
        let file = self.paths.stats_file();
        let write_error = |source| RegistryError::Write {
            file: file.clone(),
            source,
        };
        std::fs::create_dir_all(&self.paths.state).map_err(write_error)?;
        // Several `paracle` processes may finish at once; the lock keeps one
        // from overwriting another's counts.
        let lock =
            std::fs::File::create(self.paths.state.join("stats.lock")).map_err(write_error)?;
        lock.lock().map_err(write_error)?;
        let mut totals = read_stats(&file)?;
        for (name, stats) in fresh {
            totals.entry(name).or_default().merge(&stats);
        }
        let text = serde_json::to_vec_pretty(&totals).expect("stats serialise");
        atomic::write(&file, &text).map_err(write_error)
    }

    /// The project's call statistics, per plugin, including this process's.
    pub fn stats(&self) -> Result<BTreeMap<String, CallStats>, RegistryError> {
        read_stats(&self.paths.stats_file())
    }
}

/// The recorded totals. A file that cannot be read is an error rather than
/// an empty start, so that saving never overwrites counts it failed to read.
fn read_stats(file: &Path) -> Result<BTreeMap<String, CallStats>, RegistryError> {
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(config_error(file, format!("cannot read: {e}"))),
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        config_error(
            file,
            format!("is not valid statistics ({e}); move it aside to start counting afresh"),
        )
    })
}

fn parse_json_config(text: &str) -> Option<serde_json::Value> {
    if text.trim().is_empty() {
        None
    } else {
        serde_json::from_str(text).ok()
    }
}

/// Hold the registry's lock, which every process writing the registry file
/// takes to read it again and write it, so that none loses another's change.
fn lock_registry(paths: &Paths) -> Result<std::fs::File, RegistryError> {
    let lock_file = paths.state.join("registry.lock");
    std::fs::create_dir_all(&paths.state)
        .and_then(|()| {
            std::fs::File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_file)
        })
        .and_then(|f| f.lock().map(|()| f))
        .map_err(|source| RegistryError::Write {
            file: lock_file,
            source,
        })
}

/// Bring this process's changes of registry entries, by name, (`before` to
/// `ours`) into the file as it is on disk (`theirs`).
fn merge_changes<T: PartialEq + Clone>(
    before: &BTreeMap<String, T>,
    ours: &BTreeMap<String, T>,
    theirs: &mut BTreeMap<String, T>,
) -> Result<(), RegistryError> {
    for name in before.keys().chain(ours.keys()) {
        let (was, now) = (before.get(name), ours.get(name));
        if now == was || now == theirs.get(name) {
            continue;
        }
        if theirs.get(name) != was {
            return Err(RegistryError::Invalid {
                name: name.clone(),
                message: "another paracle changed its entry in .paracle/registry.toml since this one read it, so nothing was saved; run the command again".into(),
            });
        }
        match now {
            Some(value) => theirs.insert(name.clone(), value.clone()),
            None => theirs.remove(name),
        };
    }
    Ok(())
}

/// `registry` as read (whose version `read_registry` checked) or made new.
fn write_registry(file: &Path, registry: &RegistryFile) -> Result<(), RegistryError> {
    let text = toml::to_string_pretty(registry).map_err(|e| config_error(file, e.to_string()))?;
    let header = "# Written by `paracle plugin load`, `install`, `grant`, `limit` and `approve`; edit with care.\n# An installed plugin's origin pins the artifact it came from.\n";
    atomic::write(file, format!("{header}{text}").as_bytes()).map_err(|source| {
        RegistryError::Write {
            file: file.to_path_buf(),
            source,
        }
    })
}

fn read_registry(file: &Path) -> Result<RegistryFile, RegistryError> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(RegistryFile {
                version: REGISTRY_VERSION,
                ..RegistryFile::default()
            })
        }
        Err(e) => return Err(config_error(file, format!("cannot read: {e}"))),
    };
    let registry: RegistryFile = strict_toml::parse(&text).map_err(|e| config_error(file, e))?;
    if registry.version != REGISTRY_VERSION {
        return Err(config_error(
            file,
            format!(
                "registry version {} is not supported (this paracle writes {REGISTRY_VERSION})",
                registry.version
            ),
        ));
    }
    for (name, set) in &registry.builtin {
        if defaults::builtin(name).is_none() {
            return Err(config_error(
                file,
                format!("[builtin.{name}]: this paracle has no built-in plugin `{name}`; remove the table"),
            ));
        }
        set.limits
            .validate()
            .map_err(|e| config_error(file, format!("[builtin.{name}]: {e}")))?;
    }
    Ok(registry)
}

fn read_project_config(paths: &Paths) -> Result<Vec<Known>, RegistryError> {
    let file = paths.project_config();
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(config_error(&file, format!("cannot read: {e}"))),
    };
    let config: ProjectConfig = strict_toml::parse(&text).map_err(|e| config_error(&file, e))?;
    let mut known = Vec::new();
    for (name, declared) in config.plugins {
        let line = strict_toml::line_of(&text, declared.span().start);
        let at = |message: String| {
            config_error(&file, format!("line {line}: plugin `{name}`: {message}"))
        };
        let declared = declared.into_inner();
        if !valid_name(&name) {
            return Err(at(
                "names are 1 to 64 lowercase letters, digits, `-` or `_`".into(),
            ));
        }
        declared.limits.validate().map_err(|e| at(e.to_string()))?;
        if let Some(bad) = declared
            .grants
            .env
            .iter()
            .chain(&declared.grants.secrets)
            .find(|name| !paracle_policy::valid_variable_name(name))
        {
            return Err(at(format!(
                "`{bad}` is not a variable's name: use letters, digits and `_`"
            )));
        }
        let mut grants = Grants {
            dirs: Vec::new(),
            net: declared.grants.net,
            env: declared.grants.env,
            secrets: declared.grants.secrets,
            git: declared.grants.git,
        };
        for spec in &declared.grants.dirs {
            let absolute = if Path::new(spec).is_absolute() {
                spec.clone()
            } else {
                paths.project.join(spec).display().to_string()
            };
            grants
                .dirs
                .push(DirGrant::parse(&absolute).map_err(|e| at(e.to_string()))?);
        }
        let config = match declared.config {
            Some(table) => {
                Some(serde_json::to_value(table).map_err(|e| at(format!("config: {e}")))?)
            }
            None => None,
        };
        let path = if declared.path.is_absolute() {
            declared.path
        } else {
            paths.project.join(declared.path)
        };
        known.push(Known {
            name: name.clone(),
            source: Source::ProjectConfig(path),
            settings: PluginSettings {
                name: Some(name),
                config,
                grants,
                limits: declared.limits,
                isolation: declared.isolation,
                approvals: declared.approve,
                git: None,
                secrets: None,
                signer: None,
            },
            pinned: None,
            origin: None,
        });
    }
    Ok(known)
}

fn wasm_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use paracle_contract::Capabilities;
    use paracle_policy::Approve;

    fn info(name: &str, version: &str) -> PluginInfo {
        PluginInfo {
            name: name.into(),
            version: version.into(),
            description: String::new(),
            author: String::new(),
            license: String::new(),
            tags: Vec::new(),
            config_schema: None,
            requests: Capabilities {
                paths: Vec::new(),
                hosts: Vec::new(),
                env: Vec::new(),
            },
        }
    }

    fn installed(version: &str, origin: &Origin) -> Entry {
        Entry {
            name: "words".into(),
            path: PathBuf::from("/nowhere"),
            digest: format!("sha256:{}", "0".repeat(64)),
            kind: PluginKind::Tool,
            version: version.into(),
            loaded_at: String::new(),
            config: String::new(),
            isolation: Isolation::Warm,
            grants: Grants::default(),
            limits: Limits::default(),
            approve: Approvals::default(),
            requests: Requests::default(),
            origin: Some(origin.clone()),
        }
    }

    /// A project with nothing in it, and a runtime without a cache.
    fn empty_project() -> (tempfile::TempDir, Paths, Arc<Runtime>) {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(
            dir.path(),
            &dir.path().join("home"),
            &dir.path().join("cache"),
        );
        (dir, paths, Arc::new(Runtime::new(None).unwrap()))
    }

    /// What the README tells users to do for an agent on a real model:
    /// `paracle plugin limit agent-runner timeout_ms=...`.
    #[tokio::test]
    async fn a_builtins_limits_and_approvals_are_the_operators_and_its_grants_are_not() {
        let (dir, paths, runtime) = empty_project();
        let mut registry = Registry::open(paths.clone(), runtime.clone()).unwrap();
        let (plugin, _) = registry
            .update_limits("agent-runner", |limits| {
                limits.set("timeout_ms=600000").unwrap();
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(plugin.limits().timeout_ms, 600_000);
        registry
            .update_approvals("text-tools", |approvals| {
                approvals.set(Some("count_vowels"), Approve::Ask);
                Ok(())
            })
            .await
            .unwrap();
        let error = registry
            .update_grants("agent-runner", |grants| {
                grants.env.push("HOME".into());
                Ok(())
            })
            .await
            .err()
            .expect("a built-in's grants are its own");
        assert!(error.to_string().contains("built-in"), "{error}");

        // Kept across processes, and nothing else of the built-ins changed.
        let registry = Registry::open(paths.clone(), runtime.clone()).unwrap();
        let runner = registry.get("agent-runner").await.unwrap();
        assert_eq!(runner.limits().timeout_ms, 600_000);
        assert_eq!(runner.limits().memory_mib, Limits::default().memory_mib);
        assert_eq!(
            registry.find("agent-runner").unwrap().source,
            Source::Builtin
        );
        let tools = registry.get("text-tools").await.unwrap();
        assert_eq!(tools.approvals().for_tool("count_vowels"), Approve::Ask);
        assert_eq!(tools.limits(), &Limits::default());
        assert!(registry.entry("agent-runner").is_none());

        // A grant a person saved for a loaded plugin keeps the table.
        let mut registry = registry;
        let words = load_words(&mut registry, dir.path()).await;
        let grant = Grant::parse("env:HOME").unwrap();
        assert!(Registry::save_grant(&paths, "words", words.digest(), grant).unwrap());
        let file = paths.registry_file();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("[builtin.agent-runner.limits]"), "{text}");
        assert!(text.contains("HOME"), "{text}");

        // Back to its defaults, a built-in leaves nothing behind.
        registry
            .update_approvals("text-tools", |approvals| {
                approvals.set(Some("count_vowels"), Approve::Always);
                Ok(())
            })
            .await
            .unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains("builtin.text-tools"), "{text}");

        // The file is as strict as the rest of it, and says where.
        for (from, to, said) in [
            ("timeout_ms", "timeout_mss", "timeout_mss"),
            (
                "timeout_ms = 600000",
                "timeout_ms = 0",
                "[builtin.agent-runner]",
            ),
            (
                "builtin.agent-runner",
                "builtin.agent-runnr",
                "no built-in plugin `agent-runnr`",
            ),
        ] {
            std::fs::write(&file, text.replace(from, to)).unwrap();
            let error = read_registry(&file).expect_err(to).to_string();
            assert!(
                error.contains(said) && error.contains("registry.toml"),
                "{error}"
            );
        }
    }

    /// text-tools' component loaded from a file under another name, `words`.
    async fn load_words(registry: &mut Registry, dir: &Path) -> Arc<Plugin> {
        load_words_as(registry, dir, "words").await
    }

    /// The built-in text-tools, loaded from a file as `name`.
    async fn load_words_as(registry: &mut Registry, dir: &Path, name: &str) -> Arc<Plugin> {
        let component = dir.join(format!("{name}.wasm"));
        std::fs::write(&component, defaults::builtin("text-tools").unwrap().bytes).unwrap();
        let settings = PluginSettings {
            name: Some(name.into()),
            ..PluginSettings::default()
        };
        registry.load_file(&component, settings).await.unwrap().0
    }

    /// Two processes with the registry open: a grant one of them saved
    /// (what an MCP server does once a person allows something) is kept
    /// when the other, which read the file before, saves a change of its
    /// own; and a change to the same plugin's entry is refused rather than
    /// written over it.
    #[tokio::test]
    async fn a_save_keeps_what_another_process_saved_since_the_file_was_read() {
        let (dir, paths, runtime) = empty_project();
        let mut registry = Registry::open(paths.clone(), runtime.clone()).unwrap();
        let words = load_words(&mut registry, dir.path()).await;
        let grant = |text: &str| Grant::parse(text).unwrap();
        let timeout = |ms: &'static str| {
            move |limits: &mut Limits| {
                limits.set(ms).unwrap();
                Ok(())
            }
        };

        let mut earlier = Registry::open(paths.clone(), runtime.clone()).unwrap();
        assert!(Registry::save_grant(&paths, "words", words.digest(), grant("env:HOME")).unwrap());
        earlier
            .update_limits("agent-runner", timeout("timeout_ms=600000"))
            .await
            .unwrap();
        let reopened = Registry::open(paths.clone(), runtime.clone()).unwrap();
        assert_eq!(reopened.entry("words").unwrap().grants.env, ["HOME"]);
        let runner = reopened.get("agent-runner").await.unwrap();
        assert_eq!(runner.limits().timeout_ms, 600_000);
        assert_eq!(
            earlier.entry("words").unwrap().grants.env,
            ["HOME"],
            "the saving process follows the file it wrote"
        );

        let mut earlier = Registry::open(paths.clone(), runtime.clone()).unwrap();
        assert!(Registry::save_grant(&paths, "words", words.digest(), grant("env:USER")).unwrap());
        let error = earlier
            .update_limits("words", timeout("timeout_ms=5000"))
            .await
            .err()
            .expect("an entry changed by another process is not written over");
        assert!(
            error.to_string().contains("run the command again"),
            "{error}"
        );
        let reopened = Registry::open(paths.clone(), runtime.clone()).unwrap();
        let entry = reopened.entry("words").unwrap();
        assert_eq!(entry.grants.env, ["HOME", "USER"]);
        assert_eq!(entry.limits, Limits::default());
        // The refused change is not kept to be written by a later save: the
        // registry follows the file, and the command run again succeeds.
        assert_eq!(earlier.entry("words").unwrap(), entry);
        earlier
            .update_limits("words", timeout("timeout_ms=5000"))
            .await
            .unwrap();
        let entry = Registry::open(paths.clone(), runtime.clone())
            .unwrap()
            .entry("words")
            .cloned()
            .unwrap();
        assert_eq!(entry.grants.env, ["HOME", "USER"]);
        assert_eq!(entry.limits.timeout_ms, 5000);

        // An undo (of a template install that failed) puts back what it
        // changed, and keeps what another process saved meanwhile.
        let mut undoing = Registry::open(paths.clone(), runtime.clone()).unwrap();
        load_words_as(&mut undoing, dir.path(), "letters").await;
        Registry::open(paths.clone(), runtime.clone())
            .unwrap()
            .update_limits("words", timeout("timeout_ms=7000"))
            .await
            .unwrap();
        undoing.restore("letters", None).unwrap();
        let reopened = Registry::open(paths.clone(), runtime).unwrap();
        assert!(reopened.entry("letters").is_none());
        assert_eq!(reopened.entry("words").unwrap().limits.timeout_ms, 7000);
    }

    /// A server watching the project reopens it and keeps a running plugin
    /// only while its settings are the same: a call that now needs approval
    /// is not made by the instance loaded before.
    #[tokio::test]
    async fn a_reopened_project_keeps_no_instance_whose_approvals_changed() {
        let (dir, paths, runtime) = empty_project();
        let mut registry = Registry::open(paths.clone(), runtime.clone()).unwrap();
        let words = load_words(&mut registry, dir.path()).await;
        let reopened = Registry::open(paths.clone(), runtime.clone()).unwrap();
        assert!(reopened.still_approves(&words));
        registry
            .update_approvals("words", |approvals| {
                approvals.set(Some("count_vowels"), Approve::Ask);
                Ok(())
            })
            .await
            .unwrap();
        let reopened = Registry::open(paths, runtime).unwrap();
        assert!(!reopened.still_approves(&words));
    }

    #[test]
    fn an_install_takes_no_name_and_neither_swaps_nor_downgrades_what_it_replaces() {
        let (_dir, paths, runtime) = empty_project();
        let registry = Registry::open(paths, runtime).unwrap();
        let origin = Origin {
            reference: "oci://registry.example/words:1".into(),
            manifest: format!("sha256:{}", "1".repeat(64)),
            component: "words".into(),
            signature: None,
        };
        let check = |name: &str, info: &PluginInfo, previous: Option<&Entry>| {
            registry
                .check_install(name, info, previous, &origin)
                .map_err(|e| e.to_string())
        };
        let error = check("mock-provider", &info("mock-provider", "1.0.0"), None).unwrap_err();
        assert!(
            error.contains("taken") && error.contains("built in"),
            "{error}"
        );
        assert!(check("words", &info("words", "1.0.0"), None).is_ok());

        let previous = installed("1.2.0", &origin);
        assert!(check("words", &info("words", "1.2.0"), Some(&previous)).is_ok());
        assert!(check("words", &info("words", "1.3.0"), Some(&previous)).is_ok());
        let error = check("words", &info("words", "1.1.9"), Some(&previous)).unwrap_err();
        assert!(error.contains("older"), "{error}");
        let error = check("words", &info("shell", "9.0.0"), Some(&previous)).unwrap_err();
        assert!(error.contains("another plugin"), "{error}");
        // Signed before: the same key, or refused.
        let signed = |key: &str| {
            Some(format!(
                "paracle-signature v1\nkey {key}\ndigest d\nsignature s\n"
            ))
        };
        let was_signed = Origin {
            signature: signed("ed25519:aa"),
            ..origin.clone()
        };
        let previous = installed("1.2.0", &was_signed);
        for (now, ok) in [
            (signed("ed25519:aa"), true),
            (signed("ed25519:bb"), false),
            (None, false),
        ] {
            let next = Origin {
                signature: now,
                ..origin.clone()
            };
            let result =
                registry.check_install("words", &info("words", "1.3.0"), Some(&previous), &next);
            assert_eq!(result.is_ok(), ok, "{result:?}");
        }
        // From another reference, it is another install: the caller refuses
        // the name as taken.
        let other = Origin {
            reference: "oci://elsewhere.example/words:1".into(),
            ..origin.clone()
        };
        assert!(registry
            .check_install("words", &info("words", "0.1.0"), Some(&previous), &other)
            .is_ok());
    }
}
