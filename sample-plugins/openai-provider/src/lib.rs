//! `openai-provider`: a provider for OpenAI-compatible chat-completions APIs
//! (OpenAI itself, and the Ollama, vLLM and llama.cpp servers), over
//! `wasi:http`. Its config:
//!
//! - `base_url`: the API root, `https://api.openai.com/v1` by default; the
//!   plugin posts to `{base_url}/chat/completions` and lists
//!   `{base_url}/models`;
//! - `model`: the model used when a request names none;
//! - `api_key_env`: the environment variable holding the API key,
//!   `OPENAI_API_KEY` by default, or `""` for servers without keys.
//!
//! Nothing is reachable until the operator grants it: the host of
//! `base_url` with `net:HOST[:PORT]` (for a server on this machine, its
//! address, such as `net:127.0.0.1:11434`), and the key's variable with
//! `env:NAME`.

use paracle_sdk::http::Request;
use paracle_sdk::{
    json, ChatRequest, ChatResponse, Error, FinishReason, Message, ModelInfo, Plugin, PluginInfo,
    Provider, Role, ToolCall, Usage, Value,
};

const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
const DEFAULT_KEY_VARIABLE: &str = "OPENAI_API_KEY";

struct OpenAiProvider {
    base_url: String,
    model: String,
    key_variable: String,
}

impl Plugin for OpenAiProvider {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "openai-provider",
            env!("CARGO_PKG_VERSION"),
            "Chat models behind an OpenAI-compatible API (OpenAI, Ollama, vLLM, llama.cpp)",
        )
        .author("Paracle")
        .license("Apache-2.0")
        .tags(&["llm", "http", "openai"])
        .request_host("api.openai.com:443")
        .request_env(DEFAULT_KEY_VARIABLE)
        .config_schema(json!({
            "type": "object",
            "properties": {
                "base_url": {"type": "string", "pattern": "^https?://"},
                "model": {"type": "string"},
                "api_key_env": {"type": "string"}
            },
            "additionalProperties": false
        }))
    }

    fn init(config: Value) -> Result<Self, Error> {
        let text = |key: &str, default: &str| {
            config
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or(default)
                .to_string()
        };
        Ok(OpenAiProvider {
            base_url: text("base_url", DEFAULT_BASE_URL)
                .trim_end_matches('/')
                .to_string(),
            model: text("model", ""),
            key_variable: text("api_key_env", DEFAULT_KEY_VARIABLE),
        })
    }
}

impl Provider for OpenAiProvider {
    fn list_models(&mut self) -> Result<Vec<ModelInfo>, Error> {
        let reply = self.send(Request::get(format!("{}/models", self.base_url)))?;
        let models = reply["data"]
            .as_array()
            .ok_or_else(|| unexpected("the model list has no `data` array"))?;
        Ok(models
            .iter()
            .filter_map(|m| m["id"].as_str())
            .map(|id| ModelInfo {
                id: id.to_string(),
                description: String::new(),
                context_window: None,
            })
            .collect())
    }

    fn chat(&mut self, request: ChatRequest) -> Result<ChatResponse, Error> {
        if request.messages.is_empty() {
            return Err(Error::invalid_input("the request has no messages"));
        }
        let model = if request.model.is_empty() {
            &self.model
        } else {
            &request.model
        };
        if model.is_empty() {
            return Err(Error::invalid_input(
                "no model: name one in the request or set `model` in this plugin's config",
            ));
        }
        let mut body = json!({
            "model": model,
            "messages": request.messages.iter().map(wire_message).collect::<Vec<_>>(),
        });
        if !request.tools.is_empty() {
            body["tools"] = request
                .tools
                .iter()
                .map(|tool| {
                    let parameters: Value = serde_json::from_str(&tool.input_schema)
                        .unwrap_or_else(|_| json!({"type": "object"}));
                    json!({"type": "function", "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": parameters,
                    }})
                })
                .collect();
        }
        if let Some(temperature) = request.temperature {
            body["temperature"] = json!(temperature);
        }
        if let Some(max_tokens) = request.max_tokens {
            body["max_tokens"] = json!(max_tokens);
        }
        let url = format!("{}/chat/completions", self.base_url);
        let reply = self.send(Request::post(url).json(&body))?;
        read_completion(&reply, model)
    }
}

impl OpenAiProvider {
    /// Send with the API key, if there is one, and read a JSON answer.
    fn send(&self, mut request: Request) -> Result<Value, Error> {
        let key = (!self.key_variable.is_empty())
            .then(|| std::env::var(&self.key_variable).ok())
            .flatten();
        if let Some(key) = &key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        let response = request.send()?;
        match response.status {
            401 | 403 if key.is_none() && !self.key_variable.is_empty() => {
                Err(Error::Denied(format!(
                    "the server answered {} and no API key was sent: the variable `{}` is not visible to this plugin; set it and grant it with `env:{}`, or set `api_key_env` in the config",
                    response.status, self.key_variable, self.key_variable
                )))
            }
            _ => response.error_for_status()?.json(),
        }
    }
}

fn unexpected(what: &str) -> Error {
    Error::Unavailable(format!("unexpected answer from the server: {what}"))
}

fn wire_message(message: &Message) -> Value {
    match message.role {
        Role::System => json!({"role": "system", "content": message.content}),
        Role::User => json!({"role": "user", "content": message.content}),
        Role::Tool => json!({
            "role": "tool",
            "tool_call_id": message.tool_call_id.clone().unwrap_or_default(),
            "content": message.content,
        }),
        Role::Assistant => {
            let mut wire = json!({"role": "assistant", "content": message.content});
            if !message.tool_calls.is_empty() {
                if message.content.is_empty() {
                    wire["content"] = Value::Null;
                }
                wire["tool_calls"] = message
                    .tool_calls
                    .iter()
                    .map(|call| {
                        json!({"id": call.id, "type": "function", "function": {
                            "name": call.name,
                            "arguments": call.arguments,
                        }})
                    })
                    .collect();
            }
            wire
        }
    }
}

fn read_completion(reply: &Value, asked_model: &str) -> Result<ChatResponse, Error> {
    let choice = &reply["choices"][0];
    let wire = choice
        .get("message")
        .ok_or_else(|| unexpected("no `choices[0].message`"))?;
    let mut tool_calls = Vec::new();
    for (index, call) in wire["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let function = &call["function"];
        let name = function["name"]
            .as_str()
            .ok_or_else(|| unexpected("a tool call without a function name"))?;
        // Arguments are JSON text on the wire; some servers send an object.
        let arguments = match &function["arguments"] {
            Value::String(text) => text.clone(),
            Value::Null => "{}".to_string(),
            other => other.to_string(),
        };
        tool_calls.push(ToolCall {
            id: call["id"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("call_{index}")),
            name: name.to_string(),
            arguments,
        });
    }
    let finish_reason = match choice["finish_reason"].as_str() {
        Some("length") => FinishReason::Length,
        Some("content_filter") => FinishReason::ContentFilter,
        Some("tool_calls") | Some("function_call") => FinishReason::ToolCalls,
        _ if !tool_calls.is_empty() => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    };
    let count = |key: &str| {
        reply["usage"][key]
            .as_u64()
            .unwrap_or(0)
            .min(u32::MAX as u64) as u32
    };
    let mut message = Message::assistant(wire["content"].as_str().unwrap_or(""));
    message.tool_calls = tool_calls;
    Ok(ChatResponse {
        model: reply["model"].as_str().unwrap_or(asked_model).to_string(),
        message,
        finish_reason,
        usage: Usage {
            prompt_tokens: count("prompt_tokens"),
            completion_tokens: count("completion_tokens"),
        },
    })
}

paracle_sdk::export!(provider: OpenAiProvider);
