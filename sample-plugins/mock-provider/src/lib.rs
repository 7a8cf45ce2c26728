//! `mock-provider`: a deterministic LLM provider, so that everything runs
//! offline. Replies come from a script in its config, or from built-in rules:
//!
//! - `responses`: a list of replies, chosen by how many assistant turns the
//!   conversation already has (the first reply answers the first turn);
//! - `rules`: `{ "match": "substring", "reply": "...", "tool_calls": [...] }`,
//!   tried in order against the last user message;
//! - otherwise: if the user names one of the offered tools, call it with
//!   arguments built from its schema; after tool results, summarise them;
//!   else echo the request.
//!
//! A reply is `{ "content": "...", "tool_calls": [{"name": "...", "arguments": {...}}] }`.
//! `delay_ms` makes every call wait, to simulate a slow backend.

use paracle_sdk::{
    json, ChatRequest, ChatResponse, Error, FinishReason, Message, ModelInfo, Plugin, PluginInfo,
    Provider, Role, ToolCall, ToolSpec, Usage, Value,
};

struct MockProvider {
    responses: Vec<Value>,
    rules: Vec<Value>,
    delay_ms: u64,
    model: String,
}

impl Plugin for MockProvider {
    fn info() -> PluginInfo {
        PluginInfo::new("mock-provider", env!("CARGO_PKG_VERSION"), "A deterministic, scriptable LLM for offline runs")
            .author("Paracle")
            .license("Apache-2.0")
            .tags(&["llm", "mock", "offline"])
            .config_schema(json!({
                "type": "object",
                "properties": {
                    "responses": {"type": "array", "items": {"$ref": "#/$defs/reply"}},
                    "rules": {"type": "array", "items": {
                        "type": "object",
                        "properties": {
                            "match": {"type": "string"},
                            "reply": {"type": "string"},
                            "tool_calls": {"type": "array"}
                        },
                        "required": ["match"]
                    }},
                    "delay_ms": {"type": "integer", "minimum": 0, "maximum": 600000},
                    "model": {"type": "string"}
                },
                "additionalProperties": false,
                "$defs": {"reply": {"oneOf": [
                    {"type": "string"},
                    {"type": "object", "properties": {"content": {"type": "string"}, "tool_calls": {"type": "array"}}, "additionalProperties": false}
                ]}}
            }))
    }

    fn init(config: Value) -> Result<Self, Error> {
        let list = |key: &str| {
            config
                .get(key)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        Ok(MockProvider {
            responses: list("responses"),
            rules: list("rules"),
            delay_ms: config.get("delay_ms").and_then(Value::as_u64).unwrap_or(0),
            model: config
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or("mock-1")
                .to_string(),
        })
    }
}

impl Provider for MockProvider {
    fn list_models(&mut self) -> Result<Vec<ModelInfo>, Error> {
        Ok(vec![ModelInfo {
            id: self.model.clone(),
            description: "Deterministic replies from a script".into(),
            context_window: Some(32_768),
        }])
    }

    fn chat(&mut self, request: ChatRequest) -> Result<ChatResponse, Error> {
        if request.messages.is_empty() {
            return Err(Error::invalid_input("the request has no messages"));
        }
        if !request.model.is_empty() && request.model != self.model {
            return Err(Error::not_found(format!(
                "no model `{}`; this provider serves `{}`",
                request.model, self.model
            )));
        }
        if self.delay_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(self.delay_ms));
        }
        let (content, calls) = self.reply(&request)?;
        let tool_calls: Vec<ToolCall> = calls
            .into_iter()
            .enumerate()
            .map(|(i, (name, arguments))| ToolCall {
                id: format!("call_{}_{i}", turn(&request)),
                name,
                arguments: arguments.to_string(),
            })
            .collect();
        let finish_reason = if tool_calls.is_empty() {
            FinishReason::Stop
        } else {
            FinishReason::ToolCalls
        };
        let prompt_tokens: usize = request.messages.iter().map(|m| tokens(&m.content)).sum();
        let mut message = Message::assistant(content);
        let completion_tokens = tokens(&message.content) + tool_calls.len() * 8;
        message.tool_calls = tool_calls;
        Ok(ChatResponse {
            model: self.model.clone(),
            message,
            finish_reason,
            usage: Usage {
                prompt_tokens: prompt_tokens as u32,
                completion_tokens: completion_tokens as u32,
            },
        })
    }
}

type Reply = (String, Vec<(String, Value)>);

fn tokens(text: &str) -> usize {
    text.split_whitespace().count()
}

/// How many assistant turns the conversation already holds.
fn turn(request: &ChatRequest) -> usize {
    request
        .messages
        .iter()
        .filter(|m| m.role == Role::Assistant)
        .count()
}

fn last_user(request: &ChatRequest) -> &str {
    request
        .messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map(|m| m.content.as_str())
        .unwrap_or("")
}

fn parse_reply(value: &Value) -> Result<Reply, Error> {
    if let Some(text) = value.as_str() {
        return Ok((text.to_string(), Vec::new()));
    }
    let content = value
        .get("content")
        .or_else(|| value.get("reply"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut calls = Vec::new();
    for call in value
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = call
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid_input("a scripted tool call has no `name`"))?;
        calls.push((
            name.to_string(),
            call.get("arguments").cloned().unwrap_or_else(|| json!({})),
        ));
    }
    Ok((content, calls))
}

impl MockProvider {
    fn reply(&self, request: &ChatRequest) -> Result<Reply, Error> {
        if let Some(scripted) = self.responses.get(turn(request)) {
            return parse_reply(scripted);
        }
        let user = last_user(request);
        for rule in &self.rules {
            let pattern = rule.get("match").and_then(Value::as_str).unwrap_or("");
            if user.to_lowercase().contains(&pattern.to_lowercase()) {
                return parse_reply(rule);
            }
        }
        Ok(default_reply(request))
    }
}

fn default_reply(request: &ChatRequest) -> Reply {
    let last = request.messages.last().expect("checked non-empty");
    if last.role == Role::Tool {
        let results: Vec<&str> = request
            .messages
            .iter()
            .rev()
            .take_while(|m| m.role == Role::Tool)
            .map(|m| m.content.as_str())
            .collect();
        let summary: Vec<&str> = results.into_iter().rev().collect();
        return (
            format!("Done. Tool results: {}", summary.join("; ")),
            Vec::new(),
        );
    }
    let user = last_user(request);
    let wanted: Vec<&ToolSpec> = request
        .tools
        .iter()
        .filter(|t| user.contains(t.name.as_str()))
        .collect();
    if !wanted.is_empty() {
        let calls = wanted
            .iter()
            .map(|t| (t.name.clone(), arguments_for(t, user)))
            .collect();
        return (String::new(), calls);
    }
    let system = request
        .messages
        .iter()
        .find(|m| m.role == Role::System)
        .map(|m| m.content.as_str());
    let reply = match system {
        Some(system) if !system.is_empty() => format!("[{}] {}", first_words(system, 6), user),
        _ => format!("Mock reply to: {user}"),
    };
    (reply, Vec::new())
}

fn first_words(text: &str, n: usize) -> String {
    text.split_whitespace()
        .take(n)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Arguments that satisfy a simple object schema: the user's text for
/// required strings, zero for numbers, false for booleans.
fn arguments_for(tool: &ToolSpec, user: &str) -> Value {
    let schema: Value = serde_json::from_str(&tool.input_schema).unwrap_or(Value::Null);
    let mut arguments = serde_json::Map::new();
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let text = user
        .split_once(tool.name.as_str())
        .map(|(_, rest)| rest.trim_start_matches([':', ' ']).trim())
        .filter(|r| !r.is_empty())
        .unwrap_or(user);
    for name in required {
        let kind = schema
            .pointer(&format!("/properties/{name}/type"))
            .and_then(Value::as_str)
            .unwrap_or("string");
        let value = match kind {
            "integer" | "number" => json!(0),
            "boolean" => json!(false),
            "array" => json!([]),
            "object" => json!({}),
            _ => json!(text),
        };
        arguments.insert(name.to_string(), value);
    }
    Value::Object(arguments)
}

paracle_sdk::export!(provider: MockProvider);
