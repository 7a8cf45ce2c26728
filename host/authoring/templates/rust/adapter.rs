//! `{{name}}`: a Paracle adapter plugin, which runs an agent. It asks the
//! agent's model for an answer to the task, once, and returns it. The host
//! routes `agent::chat` to the provider the agent's spec names; tools and
//! memory are reached the same way (`agent::invoke_tool`,
//! `agent::memory_put`, ...), under the agent's grants and `max_steps`.

use paracle_sdk::{
    agent, ChatRequest, Error, Message, Outcome, Plugin, PluginInfo, Task, Usage, Value,
    Adapter, AgentSpec,
};

pub struct {{type}};

impl Plugin for {{type}} {
    fn info() -> PluginInfo {
        PluginInfo::new("{{name}}", env!("CARGO_PKG_VERSION"), "Answers a task in one model call")
    }

    fn init(_config: Value) -> Result<Self, Error> {
        Ok({{type}})
    }
}

/// The conversation the model sees: the agent's system prompt, then the task.
fn request_for(agent: &AgentSpec, task: &Task) -> ChatRequest {
    let mut messages = Vec::new();
    if !agent.system_prompt.is_empty() {
        messages.push(Message::system(agent.system_prompt.clone()));
    }
    messages.push(Message::user(task.input.clone()));
    ChatRequest {
        model: agent.model.clone(),
        messages,
        tools: Vec::new(),
        temperature: agent.temperature,
        max_tokens: agent.max_tokens,
    }
}

impl Adapter for {{type}} {
    fn run_agent(&mut self, agent: AgentSpec, task: Task) -> Result<Outcome, Error> {
        let response = agent::chat(&request_for(&agent, &task))?;
        let mut usage = Usage::zero();
        usage.add(&response.usage);
        Ok(Outcome {
            output: response.message.content,
            artifacts: Vec::new(),
            usage,
            steps: 1,
            tool_calls: 0,
        })
    }
}

paracle_sdk::export!(adapter: {{type}});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_with_the_system_prompt_then_the_task() {
        let agent = AgentSpec {
            name: "writer".into(),
            description: String::new(),
            system_prompt: "You write haiku.".into(),
            model: String::new(),
            temperature: Some(0.2),
            max_tokens: None,
            max_steps: 4,
            memory_namespace: "writer".into(),
            config: "{}".into(),
        };
        let task = Task {
            id: "t1".into(),
            input: "The sea".into(),
            context: "{}".into(),
        };
        let request = request_for(&agent, &task);
        assert_eq!(request.messages.len(), 2);
        assert_eq!(request.messages[1].content, "The sea");
        assert_eq!(request.temperature, Some(0.2));
    }
}
