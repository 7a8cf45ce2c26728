//! The contract's types, with constructors for the common cases.

use serde_json::Value;

pub use crate::bindings::adapter::paracle::plugin::host::LogLevel;
pub use crate::bindings::adapter::paracle::plugin::types::{
    AgentSpec, Artifact, Capabilities, ChatRequest, ChatResponse, Error, Event, EventKind,
    FinishReason, HealthStatus, InvocationContext, Message, ModelInfo, Outcome, PathRequest,
    PluginInfo, Role, SearchHit, Task, ToolCall, ToolSpec, Usage,
};

impl PluginInfo {
    /// Info with the given name, version and description, and everything else
    /// empty: no capabilities asked for.
    pub fn new(name: &str, version: &str, description: &str) -> Self {
        PluginInfo {
            name: name.to_string(),
            version: version.to_string(),
            description: description.to_string(),
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

    pub fn author(mut self, author: &str) -> Self {
        self.author = author.to_string();
        self
    }

    pub fn license(mut self, license: &str) -> Self {
        self.license = license.to_string();
        self
    }

    pub fn tags(mut self, tags: &[&str]) -> Self {
        self.tags = tags.iter().map(|t| t.to_string()).collect();
        self
    }

    /// The JSON Schema that the host checks the plugin's config against.
    pub fn config_schema(mut self, schema: Value) -> Self {
        self.config_schema = Some(schema.to_string());
        self
    }

    /// Ask for a directory, seen by the plugin at `guest_path`.
    pub fn request_path(mut self, guest_path: &str, writable: bool, reason: &str) -> Self {
        self.requests.paths.push(PathRequest {
            guest_path: guest_path.to_string(),
            writable,
            reason: reason.to_string(),
        });
        self
    }

    /// Ask for outbound access to `host` or `host:port`.
    pub fn request_host(mut self, host: &str) -> Self {
        self.requests.hosts.push(host.to_string());
        self
    }

    /// Ask for an environment variable.
    pub fn request_env(mut self, name: &str) -> Self {
        self.requests.env.push(name.to_string());
        self
    }
}

impl EventKind {
    /// The kind's name as the contract spells it, for example
    /// `agent-started`.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::ExecutionStarted => "execution-started",
            EventKind::ExecutionFinished => "execution-finished",
            EventKind::PhaseStarted => "phase-started",
            EventKind::PhaseFinished => "phase-finished",
            EventKind::AgentStarted => "agent-started",
            EventKind::AgentFinished => "agent-finished",
            EventKind::LlmCall => "llm-call",
            EventKind::ToolCall => "tool-call",
            EventKind::PluginLoaded => "plugin-loaded",
            EventKind::PluginError => "plugin-error",
        }
    }
}

impl HealthStatus {
    pub fn ready() -> Self {
        HealthStatus {
            ready: true,
            message: String::new(),
        }
    }

    pub fn not_ready(message: impl Into<String>) -> Self {
        HealthStatus {
            ready: false,
            message: message.into(),
        }
    }
}

impl ToolSpec {
    pub fn new(name: &str, description: &str, input_schema: Value) -> Self {
        ToolSpec {
            name: name.to_string(),
            description: description.to_string(),
            input_schema: input_schema.to_string(),
        }
    }
}

impl Message {
    fn plain(role: Role, content: impl Into<String>) -> Self {
        Message {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    pub fn system(content: impl Into<String>) -> Self {
        Self::plain(Role::System, content)
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self::plain(Role::User, content)
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Self::plain(Role::Assistant, content)
    }

    /// The result of the tool call `call_id`, to send back to the model.
    pub fn tool_result(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Message {
            tool_call_id: Some(call_id.into()),
            ..Self::plain(Role::Tool, content)
        }
    }
}

impl Usage {
    pub fn zero() -> Self {
        Usage {
            prompt_tokens: 0,
            completion_tokens: 0,
        }
    }

    pub fn add(&mut self, other: &Usage) {
        self.prompt_tokens = self.prompt_tokens.saturating_add(other.prompt_tokens);
        self.completion_tokens = self
            .completion_tokens
            .saturating_add(other.completion_tokens);
    }
}

impl Error {
    /// The error's message, whatever its variant.
    pub fn message(&self) -> &str {
        match self {
            Error::InvalidInput(m)
            | Error::NotFound(m)
            | Error::Denied(m)
            | Error::Timeout(m)
            | Error::Unavailable(m)
            | Error::Internal(m) => m,
        }
    }

    pub fn invalid_input(message: impl Into<String>) -> Self {
        Error::InvalidInput(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Error::NotFound(message.into())
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal(message.into())
    }
}

impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Self {
        Error::InvalidInput(format!("invalid JSON: {error}"))
    }
}
