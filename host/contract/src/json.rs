//! JSON forms of the contract's types, for the command line and for scripts.

use serde_json::{json, Map, Value};

use crate::v0_1::{
    ChatResponse, Event, EventKind, FinishReason, Message, ModelInfo, Outcome, PluginInfo, Role,
    SearchHit,
};

/// How deep JSON from a plugin may nest: far deeper than any honest answer,
/// and shallower than serde_json's own recursion limit (127 levels), so that
/// what passes this check parses everywhere after it, never overflowing a
/// stack and never failing halfway.
pub const MAX_JSON_DEPTH: usize = 64;

/// Whether `[` and `{` nest deeper than `max` in `text`, strings aside. It
/// reads the bytes once and builds nothing, so even a million brackets cost
/// only the scan.
pub fn nests_deeper_than(text: &str, max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for byte in text.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

pub fn info_json(info: &PluginInfo) -> Value {
    json!({
        "name": info.name,
        "version": info.version,
        "description": info.description,
        "author": info.author,
        "license": info.license,
        "tags": info.tags,
        "config_schema": info.config_schema.as_deref().and_then(|s| serde_json::from_str::<Value>(s).ok()),
        "requests": {
            "paths": info.requests.paths.iter().map(|p| json!({
                "guest_path": p.guest_path, "writable": p.writable, "reason": p.reason,
            })).collect::<Vec<_>>(),
            "hosts": info.requests.hosts,
            "env": info.requests.env,
        },
    })
}

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

pub fn message_json(message: &Message) -> Value {
    json!({
        "role": role_name(message.role),
        "content": message.content,
        "tool_calls": message.tool_calls.iter().map(|c| json!({
            "id": c.id,
            "name": c.name,
            "arguments": serde_json::from_str::<Value>(&c.arguments).unwrap_or_else(|_| Value::String(c.arguments.clone())),
        })).collect::<Vec<_>>(),
        "tool_call_id": message.tool_call_id,
    })
}

pub fn chat_response_json(response: &ChatResponse) -> Value {
    json!({
        "model": response.model,
        "message": message_json(&response.message),
        "finish_reason": match response.finish_reason {
            FinishReason::Stop => "stop",
            FinishReason::ToolCalls => "tool-calls",
            FinishReason::Length => "length",
            FinishReason::ContentFilter => "content-filter",
        },
        "usage": {"prompt_tokens": response.usage.prompt_tokens, "completion_tokens": response.usage.completion_tokens},
    })
}

pub fn model_json(model: &ModelInfo) -> Value {
    json!({"id": model.id, "description": model.description, "context_window": model.context_window})
}

pub fn hit_json(hit: &SearchHit) -> Value {
    json!({"key": hit.key, "value": hit.value, "score": hit.score})
}

pub fn outcome_json(outcome: &Outcome) -> Value {
    json!({
        "output": outcome.output,
        "artifacts": outcome.artifacts.iter().map(|a| json!({"path": a.path, "content": a.content})).collect::<Vec<_>>(),
        "usage": {"prompt_tokens": outcome.usage.prompt_tokens, "completion_tokens": outcome.usage.completion_tokens},
        "steps": outcome.steps,
        "tool_calls": outcome.tool_calls,
    })
}

const EVENT_KINDS: [(&str, EventKind); 10] = [
    ("execution-started", EventKind::ExecutionStarted),
    ("execution-finished", EventKind::ExecutionFinished),
    ("phase-started", EventKind::PhaseStarted),
    ("phase-finished", EventKind::PhaseFinished),
    ("agent-started", EventKind::AgentStarted),
    ("agent-finished", EventKind::AgentFinished),
    ("llm-call", EventKind::LlmCall),
    ("tool-call", EventKind::ToolCall),
    ("plugin-loaded", EventKind::PluginLoaded),
    ("plugin-error", EventKind::PluginError),
];

/// Why a JSON value is not an event; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EventFormError(String);

/// An event from its JSON form: `kind` is required; `timestamp_ms` defaults
/// to now; the rest is optional.
pub fn event_from_json(value: &Value) -> Result<Event, EventFormError> {
    parse_event(value).map_err(EventFormError)
}

fn parse_event(value: &Value) -> Result<Event, String> {
    let object = value.as_object().ok_or("an event must be a JSON object")?;
    const FIELDS: [&str; 9] = [
        "kind",
        "timestamp_ms",
        "execution_id",
        "phase",
        "agent",
        "plugin",
        "duration_ms",
        "success",
        "data",
    ];
    if let Some(unknown) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(format!(
            "unknown event field `{unknown}`; expected one of {}",
            FIELDS.join(", ")
        ));
    }
    let kind_name = object
        .get("kind")
        .and_then(Value::as_str)
        .ok_or("an event needs a `kind`")?;
    let kind = EVENT_KINDS
        .iter()
        .find(|(name, _)| *name == kind_name)
        .map(|(_, kind)| *kind)
        .ok_or_else(|| {
            format!(
                "unknown event kind `{kind_name}`; expected one of {}",
                EVENT_KINDS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
    let text = |key: &str| -> Result<Option<String>, String> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("`{key}` must be a string")),
        }
    };
    let number = |key: &str| -> Result<Option<u64>, String> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| format!("`{key}` must be a whole number")),
        }
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Ok(Event {
        kind,
        timestamp_ms: number("timestamp_ms")?.unwrap_or(now_ms),
        execution_id: text("execution_id")?,
        phase: text("phase")?,
        agent: text("agent")?,
        plugin: text("plugin")?,
        duration_ms: number("duration_ms")?,
        success: match object.get("success") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_bool().ok_or("`success` must be true or false")?),
        },
        data: object
            .get("data")
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new()))
            .to_string(),
    })
}
