//! `.paracle/config.toml`, read once into [`Settings`]: the orchestrator's
//! `[orchestrator]` table, and `[git]`, whose presence turns the git workflow
//! on (the host passes it to the git-workflow plugin as its config). Strict:
//! an unknown key is an error that names the file and the line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use paracle_base::{atomic, strict_toml};
use paracle_runtime::valid_name;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use toml::Spanned;

/// Why `.paracle/config.toml` could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{}:{line}: {message}", .file.display())]
    Invalid {
        file: PathBuf,
        line: usize,
        message: String,
    },

    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{0}")]
    Write(String),
}

/// A duration setting that is not one; the message says how to write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadDuration(String);

/// Parse a duration as users write it (`90s`, `5m`, `1h`); zero is refused.
pub fn parse_duration(text: &str, what: &str) -> Result<Duration, BadDuration> {
    let parsed = humantime::parse_duration(text.trim()).map_err(|e| {
        BadDuration(format!(
            "{what} `{text}` is not a duration ({e}); write it like `90s`, `5m` or `1h`"
        ))
    })?;
    if parsed.is_zero() {
        return Err(BadDuration(format!("{what} must be more than zero")));
    }
    Ok(parsed)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    orchestrator: OrchestratorDecl,
    git: Option<GitDecl>,
    #[serde(default)]
    executor: ExecutorDecl,
    #[serde(default)]
    telemetry: TelemetryDecl,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TelemetryDecl {
    /// An OTLP/HTTP collector, `http://HOST:4318`; the
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` variable wins over it.
    endpoint: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecutorDecl {
    /// `local` (the default) or `nats`.
    kind: Option<Spanned<String>>,
    /// The NATS server the workers pull from, `nats://HOST:PORT`.
    nats: Option<Spanned<String>>,
}

/// Where `run next` runs a phase's agents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExecutorKind {
    /// In this process.
    #[default]
    Local,
    /// On workers, over NATS JetStream.
    Nats,
}

/// The `[executor]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutorSettings {
    pub kind: ExecutorKind,
    pub nats: Option<String>,
}

/// Whether `url` names a NATS server the way the client takes it.
pub fn valid_nats_url(url: &str) -> bool {
    ["nats://", "tls://"].iter().any(|scheme| {
        url.strip_prefix(scheme)
            .is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace))
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GitDecl {
    plugin: Option<Spanned<String>>,
    base_branch: Spanned<String>,
    #[serde(default = "yes")]
    auto_commit: bool,
    #[serde(default)]
    auto_merge: bool,
    #[serde(default)]
    auto_cleanup: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrchestratorDecl {
    /// 4 when not set.
    max_parallel_agents: Option<Spanned<usize>>,
    /// For phases that set no timeout.
    agent_timeout: Option<Spanned<String>>,
    /// A file a phase writes that is larger than this is flagged in its
    /// hygiene report.
    hygiene_max_file_kib: Option<Spanned<u64>>,
}

pub const DEFAULT_MAX_PARALLEL_AGENTS: usize = 4;

/// The project's settings, from `.paracle/config.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    pub max_parallel_agents: usize,
    pub agent_timeout: Duration,
    /// Files a phase writes larger than this are flagged by its hygiene
    /// report.
    #[serde(default = "default_hygiene_max_file_kib")]
    pub hygiene_max_file_kib: u64,
    /// None until `paracle git init-workflow` writes a `[git]` table.
    pub git: Option<GitSettings>,
    #[serde(default)]
    pub executor: ExecutorSettings,
    /// `[telemetry] endpoint`: where OpenTelemetry goes; off when None.
    #[serde(default)]
    pub telemetry_endpoint: Option<String>,
}

pub const DEFAULT_AGENT_TIMEOUT: Duration = Duration::from_secs(600);
pub const DEFAULT_HYGIENE_MAX_FILE_KIB: u64 = 1024;

fn default_hygiene_max_file_kib() -> u64 {
    DEFAULT_HYGIENE_MAX_FILE_KIB
}

impl Default for Settings {
    /// The settings of a project without `.paracle/config.toml`.
    fn default() -> Self {
        Settings {
            max_parallel_agents: DEFAULT_MAX_PARALLEL_AGENTS,
            agent_timeout: DEFAULT_AGENT_TIMEOUT,
            hygiene_max_file_kib: DEFAULT_HYGIENE_MAX_FILE_KIB,
            git: None,
            executor: ExecutorSettings::default(),
            telemetry_endpoint: None,
        }
    }
}

/// Where the settings live, in the project's state directory.
pub fn config_file(state: &Path) -> PathBuf {
    state.join("config.toml")
}

/// A setting refused at the line `span` starts on.
fn invalid(
    file: &Path,
    text: &str,
    span: std::ops::Range<usize>,
    message: impl Into<String>,
) -> SettingsError {
    SettingsError::Invalid {
        file: file.to_path_buf(),
        line: strict_toml::line_of(text, span.start),
        message: message.into(),
    }
}

/// Read `.paracle/config.toml` from the state directory `state`; a project
/// without one has the defaults.
pub fn read_settings(state: &Path) -> Result<Settings, SettingsError> {
    let file = config_file(state);
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => return Err(SettingsError::Io { path: file, source }),
    };
    let config: ConfigFile = strict_toml::parse(&text).map_err(|error| SettingsError::Invalid {
        file: file.clone(),
        line: error.line.unwrap_or(0),
        message: error.message,
    })?;
    let decl = config.orchestrator;
    let max_parallel_agents = match &decl.max_parallel_agents {
        Some(n) if *n.get_ref() == 0 => {
            return Err(invalid(
                &file,
                &text,
                n.span(),
                "max_parallel_agents must be at least 1",
            ))
        }
        Some(n) => *n.get_ref(),
        None => DEFAULT_MAX_PARALLEL_AGENTS,
    };
    let agent_timeout = match &decl.agent_timeout {
        Some(written) => parse_duration(written.get_ref(), "agent_timeout")
            .map_err(|e| invalid(&file, &text, written.span(), e.to_string()))?,
        None => DEFAULT_AGENT_TIMEOUT,
    };
    let hygiene_max_file_kib = match &decl.hygiene_max_file_kib {
        Some(n) if *n.get_ref() == 0 => {
            return Err(invalid(
                &file,
                &text,
                n.span(),
                "hygiene_max_file_kib must be at least 1",
            ))
        }
        Some(n) => *n.get_ref(),
        None => DEFAULT_HYGIENE_MAX_FILE_KIB,
    };
    let git = match config.git {
        None => None,
        Some(git) => {
            let plugin = match git.plugin {
                Some(name) if !valid_name(name.get_ref()) => {
                    return Err(invalid(
                        &file,
                        &text,
                        name.span(),
                        format!("`{}` is not a plugin name", name.get_ref()),
                    ))
                }
                Some(name) => name.into_inner(),
                None => DEFAULT_GIT_WORKFLOW.to_string(),
            };
            if git.base_branch.get_ref().trim().is_empty() {
                return Err(invalid(
                    &file,
                    &text,
                    git.base_branch.span(),
                    "base_branch is empty; name the branch executions start from",
                ));
            }
            Some(GitSettings {
                plugin,
                base_branch: git.base_branch.into_inner(),
                auto_commit: git.auto_commit,
                auto_merge: git.auto_merge,
                auto_cleanup: git.auto_cleanup,
            })
        }
    };
    let executor = read_executor(&config.executor, &file, &text)?;
    let telemetry_endpoint = match config.telemetry.endpoint {
        Some(endpoint)
            if !(endpoint.get_ref().starts_with("http://")
                || endpoint.get_ref().starts_with("https://")) =>
        {
            return Err(invalid(
                &file,
                &text,
                endpoint.span(),
                format!(
                    "`{}` is not an OTLP/HTTP address; write it like `http://127.0.0.1:4318`",
                    endpoint.get_ref()
                ),
            ))
        }
        Some(endpoint) => Some(endpoint.into_inner()),
        None => None,
    };
    Ok(Settings {
        max_parallel_agents,
        agent_timeout,
        hygiene_max_file_kib,
        git,
        executor,
        telemetry_endpoint,
    })
}

fn read_executor(
    decl: &ExecutorDecl,
    file: &Path,
    text: &str,
) -> Result<ExecutorSettings, SettingsError> {
    let nats = match &decl.nats {
        Some(url) if !valid_nats_url(url.get_ref()) => {
            return Err(invalid(
                file,
                text,
                url.span(),
                format!(
                    "`{}` is not a NATS server's address; write it like `nats://127.0.0.1:4222`",
                    url.get_ref()
                ),
            ))
        }
        Some(url) => Some(url.get_ref().clone()),
        None => None,
    };
    let kind = match &decl.kind {
        None => ExecutorKind::Local,
        Some(kind) => match kind.get_ref().as_str() {
            "local" => ExecutorKind::Local,
            "nats" if nats.is_none() => {
                return Err(invalid(
                    file,
                    text,
                    kind.span(),
                    "kind = \"nats\" needs the server too: `nats = \"nats://HOST:4222\"`",
                ))
            }
            "nats" => ExecutorKind::Nats,
            other => {
                return Err(invalid(
                    file,
                    text,
                    kind.span(),
                    format!("executor kind `{other}` is not `local` or `nats`"),
                ))
            }
        },
    };
    Ok(ExecutorSettings { kind, nats })
}

/// The plugin that runs the git workflow unless `[git] plugin` names another.
pub const DEFAULT_GIT_WORKFLOW: &str = "git-workflow";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitSettings {
    /// The plugin that runs the workflow; it must export `git-workflow`.
    pub plugin: String,
    pub base_branch: String,
    pub auto_commit: bool,
    pub auto_merge: bool,
    pub auto_cleanup: bool,
}

impl GitSettings {
    /// The config the workflow plugin's `init` receives.
    pub fn plugin_config(&self) -> Value {
        json!({
            "base_branch": self.base_branch,
            "auto_commit": self.auto_commit,
            "auto_merge": self.auto_merge,
            "auto_cleanup": self.auto_cleanup,
        })
    }
}

/// Write `settings` as the `[git]` table of `config_file`, keeping every
/// other table, comment and key as written.
pub fn write_git(config_file: &Path, settings: &GitSettings) -> Result<PathBuf, SettingsError> {
    write_git_table(config_file, settings).map_err(SettingsError::Write)
}

fn write_git_table(config_file: &Path, settings: &GitSettings) -> Result<PathBuf, String> {
    let text = match std::fs::read_to_string(config_file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", config_file.display())),
    };
    let mut document: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| format!("{} is not valid TOML: {e}", config_file.display()))?;
    let mut table = toml_edit::Table::new();
    let blank_line = if text.is_empty() { "" } else { "\n" };
    table.decor_mut().set_prefix(format!(
        "{blank_line}# The git workflow: a branch and a worktree per execution (paracle git init-workflow).\n"
    ));
    if settings.plugin != DEFAULT_GIT_WORKFLOW {
        table["plugin"] = toml_edit::value(settings.plugin.as_str());
    }
    table["base_branch"] = toml_edit::value(settings.base_branch.as_str());
    table["auto_commit"] = toml_edit::value(settings.auto_commit);
    table["auto_merge"] = toml_edit::value(settings.auto_merge);
    table["auto_cleanup"] = toml_edit::value(settings.auto_cleanup);
    match document.get_mut("git").and_then(|item| item.as_table_mut()) {
        // Rewritten in place, so that its comments and position stay.
        Some(existing) => {
            for (key, value) in table.iter() {
                existing[key] = value.clone();
            }
            if settings.plugin == DEFAULT_GIT_WORKFLOW {
                existing.remove("plugin");
            }
        }
        None => {
            document.insert("git", toml_edit::Item::Table(table));
        }
    }
    if let Some(parent) = config_file.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    atomic::write(config_file, document.to_string().as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", config_file.display()))?;
    Ok(config_file.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Settings, SettingsError> {
        let state = tempfile::tempdir().unwrap();
        std::fs::write(config_file(state.path()), text).unwrap();
        read_settings(state.path())
    }

    #[test]
    fn executor_and_telemetry_tables_are_read_strictly() {
        let settings = read(
            "[executor]\nkind = \"nats\"\nnats = \"nats://10.0.0.5:4222\"\n\n[telemetry]\nendpoint = \"http://127.0.0.1:4318\"\n",
        )
        .unwrap();
        assert_eq!(settings.executor.kind, ExecutorKind::Nats);
        assert_eq!(
            settings.executor.nats.as_deref(),
            Some("nats://10.0.0.5:4222")
        );
        assert_eq!(
            settings.telemetry_endpoint.as_deref(),
            Some("http://127.0.0.1:4318")
        );
        assert_eq!(read("").unwrap().executor.kind, ExecutorKind::Local);
        for (text, line, says) in [
            ("[executor]\nkind = \"nats\"\n", 2, "needs the server"),
            (
                "[executor]\nkind = \"lattice\"\n",
                2,
                "not `local` or `nats`",
            ),
            (
                "[executor]\nnats = \"10.0.0.5:4222\"\n",
                2,
                "not a NATS server",
            ),
            (
                "[telemetry]\nendpoint = \"127.0.0.1:4318\"\n",
                2,
                "not an OTLP/HTTP address",
            ),
            ("[telemetry]\nheaders = \"x\"\n", 2, "headers"),
        ] {
            let error = read(text).unwrap_err().to_string();
            assert!(
                error.contains(&format!("config.toml:{line}:")) && error.contains(says),
                "{text}: {error}"
            );
        }
    }
}
