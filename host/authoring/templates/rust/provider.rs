//! `{{name}}`: a Paracle provider plugin (an LLM backend). This one echoes
//! the last user message; a real one sends the request to a model, over
//! `paracle_sdk::http` to a host the operator grants.

use paracle_sdk::{
    ChatRequest, ChatResponse, Error, FinishReason, Message, ModelInfo, Plugin, PluginInfo,
    Provider, Role, Usage, Value,
};

const MODEL: &str = "echo-1";

pub struct {{type}};

impl Plugin for {{type}} {
    fn info() -> PluginInfo {
        PluginInfo::new("{{name}}", env!("CARGO_PKG_VERSION"), "Echoes the last user message")
    }

    fn init(_config: Value) -> Result<Self, Error> {
        Ok({{type}})
    }
}

impl Provider for {{type}} {
    fn list_models(&mut self) -> Result<Vec<ModelInfo>, Error> {
        Ok(vec![ModelInfo {
            id: MODEL.into(),
            description: "Answers with what it was told".into(),
            context_window: Some(8192),
        }])
    }

    fn chat(&mut self, request: ChatRequest) -> Result<ChatResponse, Error> {
        let said = request
            .messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map(|m| m.content.as_str())
            .unwrap_or_default();
        let reply = format!("You said: {said}");
        let prompt_chars: usize = request.messages.iter().map(|m| m.content.len()).sum();
        Ok(ChatResponse {
            model: MODEL.into(),
            usage: Usage {
                // About four characters a token.
                prompt_tokens: (prompt_chars / 4) as u32,
                completion_tokens: (reply.len() / 4) as u32,
            },
            message: Message::assistant(reply),
            finish_reason: FinishReason::Stop,
        })
    }
}

paracle_sdk::export!(provider: {{type}});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_the_last_user_message() {
        let mut plugin = {{type}}::init(Value::Null).unwrap();
        let request = ChatRequest {
            model: String::new(),
            messages: vec![Message::system("Be brief."), Message::user("hello")],
            tools: Vec::new(),
            temperature: None,
            max_tokens: None,
        };
        let response = plugin.chat(request).unwrap();
        assert_eq!(response.message.content, "You said: hello");
        assert_eq!(response.finish_reason, FinishReason::Stop);
    }
}
