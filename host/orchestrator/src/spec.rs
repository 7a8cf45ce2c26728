//! Agents and workflows as the user writes them in `.paracle/`, and as the
//! orchestrator runs them once inheritance is resolved and every reference
//! is checked.
//!
//! - `.paracle/agents/*.toml`: `[agents.NAME]` tables;
//! - `.paracle/workflows/NAME.toml`: a workflow, named after its file;
//! - `.paracle/config.toml`: `[orchestrator]` settings, and `[git]` for the
//!   git workflow.
//!
//! Every error names the file and the line it is about.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use paracle_base::strict_toml;
use paracle_policy::{Approvals, Approve};
use paracle_project::defaults;
use paracle_project::settings;
use paracle_project::Registry;
use paracle_runtime::{valid_name, PluginKind};

use crate::error::OrchestratorError;

/// How deep `parent` chains may go: an agent, its parent, and four more.
pub const MAX_INHERITANCE_DEPTH: usize = 5;

/// Where something was written, for error messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

fn spec_error(at: &Origin, message: impl Into<String>) -> OrchestratorError {
    OrchestratorError::Spec {
        file: at.file.clone(),
        line: at.line,
        message: message.into(),
    }
}

// ---- as written ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentsFile {
    #[serde(default)]
    agents: BTreeMap<String, Spanned<AgentDecl>>,
}

/// An agent as written: everything optional, so that a child can leave to
/// its parent what it does not set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentDecl {
    description: Option<String>,
    parent: Option<Spanned<String>>,
    adapter: Option<Spanned<String>>,
    provider: Option<Spanned<String>>,
    model: Option<String>,
    system_prompt: Option<String>,
    /// `PLUGIN` for all of a tool plugin's tools, `PLUGIN/TOOL` for one.
    tools: Option<Vec<Spanned<String>>>,
    /// A memory plugin, or `none`.
    memory: Option<Spanned<String>>,
    temperature: Option<f32>,
    max_tokens: Option<u32>,
    max_steps: Option<u32>,
    /// Settings for the adapter, merged key by key with the parent's.
    config: Option<toml::Table>,
    /// Which of its tool calls need a person's approval: `"ask"` for all,
    /// or a table keyed by `PLUGIN` or `PLUGIN/TOOL` (`*` for the rest).
    approve: Option<Spanned<ApproveDecl>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum ApproveDecl {
    All(Approve),
    Each(BTreeMap<String, Approve>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkflowDecl {
    #[serde(default)]
    description: String,
    /// What the agents are asked to do, unless a phase says otherwise or the
    /// run is started with its own input.
    #[serde(default)]
    task: String,
    phases: Vec<Spanned<PhaseDecl>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PhaseDecl {
    name: String,
    #[serde(default)]
    description: String,
    agents: Vec<Spanned<String>>,
    #[serde(default)]
    parallel: bool,
    #[serde(default)]
    requires_approval: bool,
    /// Glob patterns, relative to the run's workspace.
    #[serde(default)]
    artifacts: Vec<Spanned<String>>,
    /// How long one attempt of one agent may take, like `90s` or `5m`.
    timeout: Option<Spanned<String>>,
    #[serde(default)]
    retry: Option<Spanned<RetryDecl>>,
    #[serde(default)]
    optional: bool,
    /// This phase's task, instead of the workflow's.
    task: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryDecl {
    /// Attempts in all, the first included.
    attempts: u32,
    /// The wait before the second attempt; it doubles for each one after.
    #[serde(default)]
    backoff: Option<String>,
}

// ---- as run ----

/// An agent with its inheritance resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    pub name: String,
    pub description: String,
    pub adapter: String,
    pub provider: String,
    pub model: String,
    pub system_prompt: String,
    /// Tool plugins, each with the tools chosen from it (empty: all).
    pub tools: BTreeMap<String, BTreeSet<String>>,
    pub memory: Option<String>,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
    pub max_steps: u32,
    pub config: serde_json::Value,
    /// Approval settings of its own, by `*`, `PLUGIN` or `PLUGIN/TOOL`; the
    /// stricter of these and the plugin's own applies.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub approve: BTreeMap<String, Approve>,
}

impl Agent {
    /// What the agent's own settings ask of `plugin`'s tools.
    pub fn approvals_for(&self, plugin: &str) -> Approvals {
        let everything = self.approve.get("*").copied().unwrap_or_default();
        let all = everything.max(self.approve.get(plugin).copied().unwrap_or_default());
        let mut approvals = Approvals::all(all);
        for (key, approve) in &self.approve {
            if let Some((p, tool)) = key.split_once('/') {
                if p == plugin {
                    approvals.set(Some(tool), all.max(*approve));
                }
            }
        }
        approvals
    }

    /// The agent as its adapter receives it. Its memory namespace is its
    /// name, so that what it notes carries over from run to run.
    pub fn spec(&self) -> paracle_contract::AgentSpec {
        paracle_contract::AgentSpec {
            name: self.name.clone(),
            description: self.description.clone(),
            system_prompt: self.system_prompt.clone(),
            model: self.model.clone(),
            temperature: self.temperature,
            max_tokens: self.max_tokens,
            max_steps: self.max_steps,
            memory_namespace: self.name.clone(),
            config: self.config.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retry {
    pub attempts: u32,
    pub backoff_ms: u64,
}

impl Retry {
    /// The wait before attempt `attempt` (1-based): none before the first,
    /// then the backoff, doubling.
    pub fn delay_before(&self, attempt: u32) -> Duration {
        if attempt <= 1 {
            return Duration::ZERO;
        }
        let doublings = (attempt - 2).min(16);
        Duration::from_millis(self.backoff_ms.saturating_mul(1 << doublings))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    pub name: String,
    pub description: String,
    pub agents: Vec<String>,
    pub parallel: bool,
    pub requires_approval: bool,
    pub artifacts: Vec<String>,
    /// Per attempt of one agent; None means the project's default.
    pub timeout_ms: Option<u64>,
    pub retry: Retry,
    pub optional: bool,
    pub task: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workflow {
    pub name: String,
    pub description: String,
    pub task: String,
    pub phases: Vec<Phase>,
    /// The agents its phases use, resolved.
    pub agents: BTreeMap<String, Agent>,
}

impl Workflow {
    pub fn phase_index(&self, name: &str) -> Option<usize> {
        self.phases.iter().position(|p| p.name == name)
    }
}

/// Where the specs live.
pub fn agents_dir(state: &Path) -> PathBuf {
    state.join("agents")
}

pub fn workflows_dir(state: &Path) -> PathBuf {
    state.join("workflows")
}

fn read(file: &Path) -> Result<String, OrchestratorError> {
    std::fs::read_to_string(file).map_err(|source| OrchestratorError::Io {
        path: file.to_path_buf(),
        source,
    })
}

fn parse<T: serde::de::DeserializeOwned>(file: &Path, text: &str) -> Result<T, OrchestratorError> {
    strict_toml::parse(text).map_err(|error| OrchestratorError::Spec {
        file: file.to_path_buf(),
        line: error.line.unwrap_or(0),
        message: error.message,
    })
}

fn duration(text: &str, at: &Origin, what: &str) -> Result<Duration, OrchestratorError> {
    settings::parse_duration(text, what).map_err(|e| spec_error(at, e.to_string()))
}

fn toml_files(dir: &Path) -> Result<Vec<PathBuf>, OrchestratorError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(OrchestratorError::Io {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// One agent as declared, with where.
struct Declared {
    decl: AgentDecl,
    at: Origin,
    text: std::sync::Arc<String>,
}

impl Declared {
    fn origin_of(&self, span: std::ops::Range<usize>) -> Origin {
        Origin {
            file: self.at.file.clone(),
            line: strict_toml::line_of(&self.text, span.start),
        }
    }
}

/// Every agent and workflow of a project, as written.
pub struct Specs {
    agents: BTreeMap<String, Declared>,
    workflows: BTreeMap<String, PathBuf>,
}

impl Specs {
    pub fn read(state: &Path) -> Result<Self, OrchestratorError> {
        let mut agents: BTreeMap<String, Declared> = BTreeMap::new();
        for file in toml_files(&agents_dir(state))? {
            let text = std::sync::Arc::new(read(&file)?);
            let parsed: AgentsFile = parse(&file, &text)?;
            for (name, spanned) in parsed.agents {
                let at = Origin {
                    file: file.clone(),
                    line: strict_toml::line_of(&text, spanned.span().start),
                };
                if !valid_name(&name) {
                    return Err(spec_error(
                        &at,
                        format!("agent `{name}`: names are 1 to 64 lowercase letters, digits, `-` or `_`"),
                    ));
                }
                if let Some(first) = agents.get(&name) {
                    return Err(spec_error(
                        &at,
                        format!(
                            "agent `{name}` is defined twice; it is also defined at {}",
                            first.at
                        ),
                    ));
                }
                agents.insert(
                    name,
                    Declared {
                        decl: spanned.into_inner(),
                        at,
                        text: text.clone(),
                    },
                );
            }
        }
        let mut workflows = BTreeMap::new();
        for file in toml_files(&workflows_dir(state))? {
            let name = file
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            workflows.insert(name, file);
        }
        Ok(Specs { agents, workflows })
    }

    pub fn workflow_names(&self) -> impl Iterator<Item = &str> {
        self.workflows.keys().map(String::as_str)
    }

    pub fn agent_names(&self) -> impl Iterator<Item = &str> {
        self.agents.keys().map(String::as_str)
    }

    /// The workflow called `name`, with its agents resolved and every
    /// reference checked against the project's plugins.
    pub async fn workflow(
        &self,
        name: &str,
        registry: &Registry,
    ) -> Result<Workflow, OrchestratorError> {
        let Some(file) = self.workflows.get(name) else {
            let known: Vec<&str> = self.workflow_names().collect();
            return Err(OrchestratorError::UnknownWorkflow {
                name: name.to_string(),
                known: if known.is_empty() {
                    "there are none yet: write one in .paracle/workflows/, or run `paracle quickstart`".into()
                } else {
                    format!("known: {}", known.join(", "))
                },
            });
        };
        let text = read(file)?;
        let decl: WorkflowDecl = parse(file, &text)?;
        let at = |span: std::ops::Range<usize>| Origin {
            file: file.clone(),
            line: strict_toml::line_of(&text, span.start),
        };
        if decl.phases.is_empty() {
            return Err(spec_error(
                &Origin {
                    file: file.clone(),
                    line: 1,
                },
                "a workflow needs at least one `[[phases]]`",
            ));
        }
        let mut phases = Vec::new();
        let mut agents = BTreeMap::new();
        for spanned in &decl.phases {
            let phase_at = at(spanned.span());
            let phase = spanned.get_ref();
            if !valid_name(&phase.name) {
                return Err(spec_error(
                    &phase_at,
                    format!(
                        "phase `{}`: names are 1 to 64 lowercase letters, digits, `-` or `_`",
                        phase.name
                    ),
                ));
            }
            if phases.iter().any(|p: &Phase| p.name == phase.name) {
                return Err(spec_error(
                    &phase_at,
                    format!("phase `{}` appears twice", phase.name),
                ));
            }
            if phase.agents.is_empty() {
                return Err(spec_error(
                    &phase_at,
                    format!("phase `{}` has no agents", phase.name),
                ));
            }
            let mut names = Vec::new();
            for agent in &phase.agents {
                let agent_at = at(agent.span());
                let name = agent.get_ref();
                if names.contains(name) {
                    return Err(spec_error(
                        &agent_at,
                        format!("agent `{name}` is listed twice in phase `{}`", phase.name),
                    ));
                }
                if !agents.contains_key(name) {
                    let (resolved, tool_origins) = self.resolve(name, &agent_at)?;
                    self.check_references(name, &resolved, &tool_origins, registry)
                        .await?;
                    agents.insert(name.clone(), resolved);
                }
                names.push(name.clone());
            }
            for pattern in &phase.artifacts {
                globset::Glob::new(pattern.get_ref()).map_err(|e| {
                    spec_error(
                        &at(pattern.span()),
                        format!("artifact pattern `{}`: {e}", pattern.get_ref()),
                    )
                })?;
            }
            let timeout_ms = match &phase.timeout {
                Some(text) => {
                    Some(duration(text.get_ref(), &at(text.span()), "timeout")?.as_millis() as u64)
                }
                None => None,
            };
            let retry = match &phase.retry {
                Some(retry) => {
                    let retry_at = at(retry.span());
                    let retry = retry.get_ref();
                    if retry.attempts == 0 || retry.attempts > 20 {
                        return Err(spec_error(
                            &retry_at,
                            "retry attempts go from 1 (no retry) to 20",
                        ));
                    }
                    let backoff = match &retry.backoff {
                        Some(text) => humantime::parse_duration(text.trim()).map_err(|e| {
                            spec_error(
                                &retry_at,
                                format!("backoff `{text}` is not a duration ({e})"),
                            )
                        })?,
                        None => Duration::ZERO,
                    };
                    Retry {
                        attempts: retry.attempts,
                        backoff_ms: backoff.as_millis() as u64,
                    }
                }
                None => Retry {
                    attempts: 1,
                    backoff_ms: 0,
                },
            };
            phases.push(Phase {
                name: phase.name.clone(),
                description: phase.description.clone(),
                agents: names,
                parallel: phase.parallel,
                requires_approval: phase.requires_approval,
                artifacts: phase
                    .artifacts
                    .iter()
                    .map(|p| p.get_ref().clone())
                    .collect(),
                timeout_ms,
                retry,
                optional: phase.optional,
                task: phase.task.clone(),
            });
        }
        Ok(Workflow {
            name: name.to_string(),
            description: decl.description,
            task: decl.task,
            phases,
            agents,
        })
    }

    /// `name` with its parents folded in, child last, and where each of its
    /// tools was named.
    fn resolve(
        &self,
        name: &str,
        referenced_at: &Origin,
    ) -> Result<(Agent, BTreeMap<String, Origin>), OrchestratorError> {
        let mut chain: Vec<&Declared> = Vec::new();
        let mut names: Vec<String> = Vec::new();
        let mut current = name.to_string();
        let mut at = referenced_at.clone();
        loop {
            let Some(declared) = self.agents.get(&current) else {
                return Err(spec_error(&at, self.no_agent(&current)));
            };
            if names.contains(&current) {
                names.push(current);
                return Err(spec_error(
                    &at,
                    format!("inheritance cycle: {}", names.join(" -> ")),
                ));
            }
            names.push(current.clone());
            chain.push(declared);
            let Some(parent) = &declared.decl.parent else {
                break;
            };
            if chain.len() == MAX_INHERITANCE_DEPTH {
                return Err(spec_error(
                    &declared.origin_of(parent.span()),
                    format!(
                        "agent `{name}` inherits more than {MAX_INHERITANCE_DEPTH} levels deep"
                    ),
                ));
            }
            at = declared.origin_of(parent.span());
            current = parent.get_ref().clone();
        }
        // Fold from the oldest ancestor down, so that each child wins.
        let mut merged = AgentDecl::default();
        let mut tools: Vec<(String, Origin)> = Vec::new();
        let mut config = toml::Table::new();
        for declared in chain.iter().rev() {
            let d = declared.decl.clone();
            merged.description = d.description.or(merged.description);
            merged.adapter = d.adapter.or(merged.adapter);
            merged.provider = d.provider.or(merged.provider);
            merged.model = d.model.or(merged.model);
            merged.system_prompt = d.system_prompt.or(merged.system_prompt);
            merged.memory = d.memory.or(merged.memory);
            merged.temperature = d.temperature.or(merged.temperature);
            merged.max_tokens = d.max_tokens.or(merged.max_tokens);
            merged.max_steps = d.max_steps.or(merged.max_steps);
            merged.approve = d.approve.or(merged.approve);
            for tool in d.tools.unwrap_or_default() {
                if !tools.iter().any(|(t, _)| t == tool.get_ref()) {
                    tools.push((tool.get_ref().clone(), declared.origin_of(tool.span())));
                }
            }
            if let Some(child) = d.config {
                merge_tables(&mut config, child);
            }
        }
        let own = chain[0];
        if let Some(t) = merged.temperature {
            if !(0.0..=2.0).contains(&t) {
                return Err(spec_error(
                    &own.at,
                    format!("agent `{name}`: temperature {t} is outside 0 to 2"),
                ));
            }
        }
        let mut tool_map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (tool, _) in &tools {
            let (plugin, one) = match tool.split_once('/') {
                Some((plugin, tool)) => (plugin.to_string(), Some(tool.to_string())),
                None => (tool.clone(), None),
            };
            let entry = tool_map.entry(plugin).or_default();
            match one {
                // A whole plugin wins over single tools of it.
                None => entry.insert(String::new()),
                Some(one) => entry.insert(one),
            };
        }
        for chosen in tool_map.values_mut() {
            if chosen.contains("") {
                chosen.clear();
            }
        }
        let config = serde_json::to_value(config)
            .map_err(|e| spec_error(&own.at, format!("config: {e}")))?;
        let approve = match merged.approve {
            None => BTreeMap::new(),
            Some(decl) => {
                let span = decl.span();
                let approve = match decl.into_inner() {
                    ApproveDecl::All(all) => BTreeMap::from([("*".to_string(), all)]),
                    ApproveDecl::Each(each) => each,
                };
                for key in approve.keys() {
                    let plugin = key.split_once('/').map_or(key.as_str(), |(p, _)| p);
                    if key != "*" && !tool_map.contains_key(plugin) {
                        let at = chain
                            .iter()
                            .find(|d| d.decl.approve.as_ref().is_some_and(|a| a.span() == span))
                            .map_or(own.at.clone(), |d| d.origin_of(span.clone()));
                        return Err(spec_error(
                            &at,
                            format!(
                                "agent `{name}`: `approve` names `{key}`, which is not among its tools; use `*`, PLUGIN or PLUGIN/TOOL of its tools"
                            ),
                        ));
                    }
                }
                approve
            }
        };
        let memory = match merged.memory.as_ref().map(|m| m.get_ref().as_str()) {
            Some("none") => None,
            Some(memory) => Some(memory.to_string()),
            None => Some(defaults::DEFAULT_MEMORY.to_string()),
        };
        let agent = Agent {
            name: name.to_string(),
            description: merged.description.unwrap_or_default(),
            adapter: merged
                .adapter
                .map(Spanned::into_inner)
                .unwrap_or_else(|| defaults::DEFAULT_ADAPTER.to_string()),
            provider: merged
                .provider
                .map(Spanned::into_inner)
                .unwrap_or_else(|| defaults::DEFAULT_PROVIDER.to_string()),
            model: merged.model.unwrap_or_default(),
            system_prompt: merged.system_prompt.unwrap_or_default(),
            tools: tool_map,
            memory,
            temperature: merged.temperature,
            max_tokens: merged.max_tokens,
            max_steps: merged.max_steps.unwrap_or(8).max(1),
            config,
            approve,
        };
        Ok((agent, tools.into_iter().collect()))
    }

    fn no_agent(&self, name: &str) -> String {
        let known: Vec<&str> = self.agent_names().collect();
        if known.is_empty() {
            format!(
                "no agent `{name}`: define it as `[agents.{name}]` in a file in .paracle/agents/"
            )
        } else {
            format!("no agent `{name}` (known: {})", known.join(", "))
        }
    }

    /// Each plugin the agent names exists and is of the right kind, and each
    /// tool it names is offered. The error points at the line that names it,
    /// in the agent's own file or in the ancestor that named it.
    async fn check_references(
        &self,
        name: &str,
        agent: &Agent,
        tool_origins: &BTreeMap<String, Origin>,
        registry: &Registry,
    ) -> Result<(), OrchestratorError> {
        let check = |plugin: String, kind: PluginKind, key: &'static str, at: Origin| async move {
            let loaded = registry
                .get(&plugin)
                .await
                .map_err(|e| spec_error(&at, format!("agent `{name}`: {key} `{plugin}`: {e}")))?;
            if loaded.kind() != kind {
                return Err(spec_error(
                    &at,
                    format!(
                        "agent `{name}`: {key} `{plugin}` is a {} plugin, not a {kind} plugin",
                        loaded.kind()
                    ),
                ));
            }
            Ok(loaded)
        };
        let at_key = |key: &str| self.origin_of_key(name, key);
        check(
            agent.adapter.clone(),
            PluginKind::Adapter,
            "adapter",
            at_key("adapter"),
        )
        .await?;
        check(
            agent.provider.clone(),
            PluginKind::Provider,
            "provider",
            at_key("provider"),
        )
        .await?;
        if let Some(memory) = &agent.memory {
            check(
                memory.clone(),
                PluginKind::Memory,
                "memory",
                at_key("memory"),
            )
            .await?;
        }
        // Where a tool entry was written: `PLUGIN/TOOL` or, for the plugin
        // itself, the first entry that names it.
        let tool_at = |entry: &str| {
            tool_origins
                .get(entry)
                .or_else(|| {
                    tool_origins
                        .iter()
                        .find(|(k, _)| k.split('/').next() == Some(entry))
                        .map(|(_, at)| at)
                })
                .cloned()
                .unwrap_or_else(|| at_key("tools"))
        };
        for (plugin, chosen) in &agent.tools {
            let loaded = check(plugin.clone(), PluginKind::Tool, "tools", tool_at(plugin)).await?;
            for tool in chosen {
                if !loaded.tools().iter().any(|t| &t.name == tool) {
                    let offered: Vec<&str> =
                        loaded.tools().iter().map(|t| t.name.as_str()).collect();
                    return Err(spec_error(
                        &tool_at(&format!("{plugin}/{tool}")),
                        format!(
                            "agent `{name}`: `{plugin}` has no tool `{tool}` (it offers: {})",
                            offered.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The line that sets `key` for agent `name`: its own if it sets it, or
    /// the nearest ancestor's; the agent's header otherwise.
    fn origin_of_key(&self, name: &str, key: &str) -> Origin {
        let mut current = self.agents.get(name);
        let own = current.map(|d| d.at.clone());
        let mut depth = 0;
        while let Some(declared) = current {
            let d = &declared.decl;
            let span = match key {
                "adapter" => d.adapter.as_ref().map(Spanned::span),
                "provider" => d.provider.as_ref().map(Spanned::span),
                "memory" => d.memory.as_ref().map(Spanned::span),
                _ => None,
            };
            if let Some(span) = span {
                return declared.origin_of(span);
            }
            depth += 1;
            if depth > MAX_INHERITANCE_DEPTH {
                break;
            }
            current = d.parent.as_ref().and_then(|p| self.agents.get(p.get_ref()));
        }
        own.unwrap_or(Origin {
            file: PathBuf::new(),
            line: 0,
        })
    }
}

/// `child` into `base`, key by key; tables merge recursively and anything
/// else the child sets replaces the base's.
fn merge_tables(base: &mut toml::Table, child: toml::Table) {
    for (key, value) in child {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(mine)), toml::Value::Table(theirs)) => {
                merge_tables(mine, theirs)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_after_the_first_retry() {
        let retry = Retry {
            attempts: 4,
            backoff_ms: 100,
        };
        assert_eq!(retry.delay_before(1), Duration::ZERO);
        assert_eq!(retry.delay_before(2), Duration::from_millis(100));
        assert_eq!(retry.delay_before(3), Duration::from_millis(200));
        assert_eq!(retry.delay_before(4), Duration::from_millis(400));
    }

    #[test]
    fn child_config_wins_and_tables_merge() {
        let mut base: toml::Table = toml::from_str("a = 1\n[t]\nx = 1\ny = 2").unwrap();
        let child: toml::Table = toml::from_str("a = 2\n[t]\ny = 3").unwrap();
        merge_tables(&mut base, child);
        assert_eq!(base["a"].as_integer(), Some(2));
        assert_eq!(base["t"]["x"].as_integer(), Some(1));
        assert_eq!(base["t"]["y"].as_integer(), Some(3));
    }
}
