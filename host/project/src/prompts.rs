//! Asking a person when a plugin is denied something it could be granted.
//!
//! [`Gatekeeper`] is the runtime's [`Person`]: it turns what a plugin wants
//! into the grant that would allow it, refuses without asking what the
//! operator's `[prompts]` policy forbids, asks through an [`Asker`] (a
//! terminal, an MCP client's elicitation) one question at a time under the
//! policy's timeout, saves an "always" answer as `plugin grant` would, and
//! writes every decision to the audit log. A plugin or a model never reaches
//! this: only the host's own refusals start a question, and only the person
//! behind the asker answers it.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use paracle_policy::{restricted, DirGrant, Grant, NetGrant};
use paracle_runtime::{
    Answer, Approval, ApprovalRequest, Asking, PermissionRequest, Person, Wanted,
};

use crate::audit::{AuditAction, AuditLog, AuditRecord};
use crate::paths::Paths;
use crate::registry::Registry;
use crate::secrets::SecretStore;

/// Kinds of network destination a person may be asked to allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetScope {
    /// Host names, and addresses on the internet.
    Public,
    Loopback,
    /// RFC 1918, fc00::/7, carrier-grade NAT.
    Private,
    LinkLocal,
}

/// Which directories may be asked for: only ever the project directory,
/// read-only, mapped where the plugin declared it wants one. A writable
/// directory is never offered by a question: the project holds `.paracle/`,
/// whose files say what every plugin is granted; the operator grants one
/// with `plugin grant`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DirScope {
    None,
    Read,
}

/// `[prompts]` in the per-user `config.toml`: what a person may be asked for
/// at all. Everything else is denied without a question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PromptPolicy {
    /// Whether to ask at all.
    pub ask: bool,
    /// How long a question waits for its answer; unanswered, it is a denial.
    pub timeout_secs: u64,
    /// Destinations that may be asked for. Cloud metadata addresses,
    /// multicast, broadcast and unspecified ones never are.
    pub net: Vec<NetScope>,
    pub dirs: DirScope,
    /// Host environment variables a plugin declares.
    pub env: bool,
    /// The user's secrets, by the name a plugin declares.
    pub secrets: bool,
    /// Whether MCP clients' users are asked, through elicitation. The
    /// client passes the question on and the answer back: turn this off
    /// where clients are not trusted to do that faithfully.
    pub mcp: bool,
}

impl Default for PromptPolicy {
    fn default() -> Self {
        PromptPolicy {
            ask: true,
            timeout_secs: 120,
            net: vec![NetScope::Public],
            dirs: DirScope::Read,
            env: true,
            secrets: true,
            mcp: true,
        }
    }
}

impl PromptPolicy {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.max(1))
    }

    /// Whether a person may be asked for `grant`; the reason when not.
    fn allows_net(&self, grant: &NetGrant) -> Result<(), String> {
        let scope = match grant.address() {
            None => NetScope::Public,
            Some(ip) => match restricted(ip) {
                None => NetScope::Public,
                Some("loopback") => NetScope::Loopback,
                Some("private") | Some("shared (carrier-grade NAT)") => NetScope::Private,
                Some("link-local") => NetScope::LinkLocal,
                Some(other) => return Err(format!("{other} addresses are never asked for")),
            },
        };
        if self.net.contains(&scope) {
            Ok(())
        } else {
            Err(format!(
                "{} destinations are not in `[prompts] net` of the per-user config",
                scope_name(scope)
            ))
        }
    }
}

fn scope_name(scope: NetScope) -> &'static str {
    match scope {
        NetScope::Public => "public",
        NetScope::Loopback => "loopback",
        NetScope::Private => "private",
        NetScope::LinkLocal => "link-local",
    }
}

/// A person's choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Choice {
    Once,
    Always,
    Deny,
}

/// One question, as the asker shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Question {
    pub plugin: String,
    pub digest: String,
    pub signer: String,
    /// What it wants, in words.
    pub wants: String,
    /// The grant an answer gives, as `plugin grant` takes it.
    pub grant: String,
    /// The plugin's own reason: its text, to be shown escaped.
    pub reason: Option<String>,
    /// Whether "always" can be saved: only for plugins the registry file
    /// records.
    pub can_save: bool,
    pub timeout_secs: u64,
}

/// A tool call for a person to approve, as the asker shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CallQuestion {
    pub plugin: String,
    pub digest: String,
    pub tool: String,
    /// The arguments, as the caller (perhaps a model) wrote them: shown
    /// escaped. Cut to 4 KiB.
    pub arguments: String,
    /// Their whole length: more than `arguments` when they were cut.
    pub arguments_bytes: usize,
    pub caller: String,
    pub agent: Option<String>,
    pub run: Option<String>,
    pub timeout_secs: u64,
}

/// How a question reaches a person.
pub trait Asker: Send + Sync {
    /// Who answers, for the audit log: `terminal:USER`, `mcp:CLIENT`.
    fn who(&self) -> String;
    /// Put `question` to the person; `None` when they gave no answer.
    fn ask(&self, question: Question) -> Asking<Option<Choice>>;
    /// Whether the tool call may run; `None` when they gave no answer.
    fn approve(&self, question: CallQuestion) -> Asking<Option<bool>>;
}

/// Refusals remembered across questions: who refused, which plugin, what.
#[derive(Debug, Default)]
pub struct Refusals(Mutex<HashSet<(String, String, String)>>);

/// The runtime's [`Person`] for one project and one asker. Cheap to clone.
#[derive(Clone)]
pub struct Gatekeeper(Arc<Gate>);

struct Gate {
    asker: Arc<dyn Asker>,
    policy: PromptPolicy,
    paths: Paths,
    audit: AuditLog,
    secrets: Option<SecretStore>,
    /// What a person refused, not asked again: in this process, or across
    /// the gatekeepers that share it (an MCP server's calls).
    refused: Arc<Refusals>,
    /// One question at a time: a terminal has one person at it.
    asking: tokio::sync::Mutex<()>,
}

impl Gatekeeper {
    pub fn new(registry: &Registry, policy: PromptPolicy, asker: Arc<dyn Asker>) -> Self {
        Gatekeeper::remembering(registry, policy, asker, Arc::default())
    }

    /// The same, remembering refusals in `refused`, which other
    /// gatekeepers share (an MCP server makes one per call).
    pub fn remembering(
        registry: &Registry,
        policy: PromptPolicy,
        asker: Arc<dyn Asker>,
        refused: Arc<Refusals>,
    ) -> Self {
        Gatekeeper(Arc::new(Gate {
            asker,
            policy,
            paths: registry.paths().clone(),
            audit: registry.audit().clone(),
            secrets: registry.secrets().ok().cloned(),
            refused,
            asking: tokio::sync::Mutex::new(()),
        }))
    }
}

impl Gate {
    fn record(&self, record: AuditRecord) {
        if let Err(error) = self.audit.append(&record) {
            tracing::warn!("{error}");
        }
    }

    /// The grant that would give what is wanted, or why none may be
    /// offered.
    fn grant_for(&self, wanted: &Wanted) -> Result<Grant, String> {
        match wanted {
            Wanted::Net { grant } => {
                self.policy.allows_net(grant)?;
                Ok(Grant::Net(grant.clone()))
            }
            Wanted::Dir { guest, writable } => {
                if *writable {
                    return Err("a writable directory is never offered by a question; grant one with `paracle plugin grant`".into());
                }
                if self.policy.dirs == DirScope::None {
                    return Err("directories are not offered under `[prompts] dirs`".into());
                }
                let project = std::fs::canonicalize(&self.paths.project)
                    .map_err(|e| format!("the project directory cannot be opened: {e}"))?;
                if let Some(why) = too_wide(&project, &self.paths) {
                    return Err(format!(
                        "the project directory {} {why}, so it is never offered",
                        project.display()
                    ));
                }
                Ok(Grant::Dir(DirGrant {
                    host: project,
                    guest: guest.clone(),
                    writable: *writable,
                }))
            }
            Wanted::Variable { name } => {
                let secret = self.secrets.as_ref().is_some_and(|s| s.contains(name));
                if secret && self.policy.secrets {
                    Ok(Grant::Secret(name.clone()))
                } else if !secret && self.policy.env && std::env::var_os(name).is_some() {
                    Ok(Grant::Env(name.clone()))
                } else if secret {
                    Err("secrets are not offered under `[prompts] secrets`".into())
                } else {
                    Err(format!(
                        "there is no secret or environment variable `{name}` to give"
                    ))
                }
            }
        }
    }

    async fn decide(&self, request: PermissionRequest) -> Answer {
        let PermissionRequest {
            plugin,
            digest,
            signer,
            wanted,
            reason,
        } = request;
        let audit = |action, who: &str, what: &str| {
            AuditRecord::new(action, who, what).plugin(&plugin, Some(&digest))
        };
        let grant = match self.grant_for(&wanted) {
            Ok(grant) => grant,
            Err(why) => {
                let what = wanted.describe();
                if self.note_refusal(&plugin, &what) {
                    self.record(
                        audit(AuditAction::Denial, "policy", &what)
                            .outcome("deny")
                            .detail(why),
                    );
                }
                return Answer::Deny;
            }
        };
        let spec = grant.spec();
        let who = self.asker.who();
        if !self.policy.ask {
            if self.note_refusal(&plugin, &spec) {
                self.record(
                    audit(AuditAction::Denial, "policy", &spec)
                        .outcome("deny")
                        .detail("`[prompts] ask = false`"),
                );
            }
            return Answer::Deny;
        }
        let key = (who.clone(), plugin.clone(), spec.clone());
        let refused = || self.refused.0.lock().unwrap().contains(&key);
        if refused() {
            return Answer::Deny;
        }
        let _one_at_a_time = self.asking.lock().await;
        // Refused while this question waited its turn.
        if refused() {
            return Answer::Deny;
        }
        let can_save = registry_records(&self.paths, &plugin);
        let question = Question {
            plugin: plugin.clone(),
            digest: digest.clone(),
            signer: signer.unwrap_or_else(|| "unknown".into()),
            wants: wanted.describe(),
            grant: spec.clone(),
            reason,
            can_save,
            timeout_secs: self.policy.timeout().as_secs(),
        };
        let choice = tokio::time::timeout(self.policy.timeout(), self.asker.ask(question)).await;
        let (answer, outcome) = match choice {
            Ok(Some(Choice::Once)) => (Answer::Once(grant.clone()), "once"),
            Ok(Some(Choice::Always)) if can_save => {
                match Registry::save_grant(&self.paths, &plugin, &digest, grant.clone()) {
                    Ok(_) => (Answer::Always(grant.clone()), "always"),
                    Err(error) => {
                        tracing::warn!(
                            "the grant could not be saved, so it holds for this call only: {error}"
                        );
                        (Answer::Once(grant.clone()), "once")
                    }
                }
            }
            Ok(Some(Choice::Always)) => (Answer::Once(grant.clone()), "once"),
            Ok(Some(Choice::Deny)) => (Answer::Deny, "deny"),
            Ok(None) => (Answer::Deny, "no-answer"),
            Err(_) => (Answer::Deny, "timeout"),
        };
        // Only a person's no is remembered: a question nobody answered is
        // asked again next time.
        if outcome == "deny" {
            self.refused.0.lock().unwrap().insert(key.clone());
        }
        self.record(audit(AuditAction::Prompt, &who, &spec).outcome(outcome));
        if outcome == "always" {
            self.record(audit(AuditAction::Grant, &who, &spec).detail("saved from a prompt"));
        }
        if let (Grant::Secret(name), Answer::Once(_) | Answer::Always(_)) = (&grant, &answer) {
            self.record(
                audit(AuditAction::SecretUse, &who, &format!("secret:{name}"))
                    .outcome("handed-over"),
            );
        }
        answer
    }

    async fn decide_call(&self, request: ApprovalRequest) -> Approval {
        let question = CallQuestion {
            plugin: request.plugin.clone(),
            digest: request.digest.clone(),
            tool: request.tool.clone(),
            arguments: request.arguments.clone(),
            arguments_bytes: request.arguments_bytes,
            caller: request.caller.clone(),
            agent: request.agent.clone(),
            run: request.run.clone(),
            timeout_secs: self.policy.timeout().as_secs(),
        };
        let _one_at_a_time = self.asking.lock().await;
        let who = self.asker.who();
        let decided =
            tokio::time::timeout(self.policy.timeout(), self.asker.approve(question)).await;
        let (approval, outcome) = match decided {
            Ok(Some(true)) => (Approval::Approved, "approved"),
            Ok(Some(false)) => (Approval::Refused, "refused"),
            Ok(None) => (Approval::Refused, "no-answer"),
            Err(_) => (Approval::Refused, "timeout"),
        };
        let mut record = AuditRecord::new(
            AuditAction::Approval,
            who,
            format!("tool {}/{}", request.plugin, request.tool),
        )
        .plugin(&request.plugin, Some(&request.digest))
        .outcome(outcome)
        .detail(format!("call {}", request.key));
        if let Some(agent) = &request.agent {
            record = record.detail(format!("call {} by agent {agent}", request.key));
        }
        self.record(record);
        approval
    }

    /// Remember a refusal by the policy; whether it is new.
    fn note_refusal(&self, plugin: &str, what: &str) -> bool {
        self.refused.0.lock().unwrap().insert((
            "policy".to_string(),
            plugin.to_string(),
            what.to_string(),
        ))
    }
}

impl Person for Gatekeeper {
    fn permit(&self, request: PermissionRequest) -> Asking<Answer> {
        let gate = self.0.clone();
        Box::pin(async move { gate.decide(request).await })
    }

    fn approve(&self, request: ApprovalRequest) -> Asking<Approval> {
        let gate = self.0.clone();
        Box::pin(async move { gate.decide_call(request).await })
    }
}

/// Why `dir` is too much for one keystroke, if it is: the root, or a
/// directory that holds the user's home or Paracle's per-user files (the
/// secrets and the trust list).
fn too_wide(dir: &Path, paths: &Paths) -> Option<&'static str> {
    if dir.parent().is_none() {
        return Some("is the root");
    }
    let holds = |inside: Option<&Path>| {
        inside
            .and_then(|p| std::fs::canonicalize(p).ok())
            .is_some_and(|p| p.starts_with(dir))
    };
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    if holds(home.as_deref()) {
        return Some("holds your home directory");
    }
    if holds(paths.user_config.parent()) {
        return Some("holds Paracle's per-user files");
    }
    None
}

fn registry_records(paths: &Paths, plugin: &str) -> bool {
    let Ok(text) = std::fs::read_to_string(paths.registry_file()) else {
        return false;
    };
    let Ok(file) = toml::from_str::<toml::Value>(&text) else {
        return false;
    };
    file.get("plugin")
        .and_then(|p| p.as_array())
        .is_some_and(|entries| {
            entries
                .iter()
                .any(|e| e.get("name").and_then(|n| n.as_str()) == Some(plugin))
        })
}
