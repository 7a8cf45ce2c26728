//! `agent-runner`: the default adapter. A tool-calling agent loop: ask the
//! provider with the agent's tools, run the tool calls it asks for, feed the
//! results back, and stop at a final answer or at the step limit. Notes of
//! earlier tasks are recalled from memory and the answer is noted there.
//!
//! Config: `output_file` (an artifact path to write the answer to) and
//! `recall` (how many notes to recall, default 3).

use paracle_sdk::agent;
use paracle_sdk::{
    Adapter, AgentSpec, Artifact, ChatRequest, Error, Message, Outcome, Plugin, PluginInfo, Task,
    Usage, Value,
};

struct AgentRunner;

impl Plugin for AgentRunner {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "agent-runner",
            env!("CARGO_PKG_VERSION"),
            "A tool-calling agent loop with memory notes",
        )
        .author("Paracle")
        .license("Apache-2.0")
        .tags(&["agent", "adapter"])
    }

    fn init(_config: Value) -> Result<Self, Error> {
        Ok(AgentRunner)
    }
}

impl Adapter for AgentRunner {
    fn run_agent(&mut self, spec: AgentSpec, task: Task) -> Result<Outcome, Error> {
        let config: Value = serde_json::from_str(&spec.config).unwrap_or(Value::Null);
        let recall = config.get("recall").and_then(Value::as_u64).unwrap_or(3) as u32;
        let max_steps = spec.max_steps.max(1);

        let mut system = spec.system_prompt.clone();
        let notes = recall_notes(&spec.memory_namespace, &task.input, recall);
        if !notes.is_empty() {
            system.push_str("\n\nNotes from earlier tasks:\n");
            system.push_str(&notes);
        }
        let mut user = task.input.clone();
        if task.context.trim() != "{}" && !task.context.trim().is_empty() {
            user.push_str("\n\nContext:\n");
            user.push_str(&task.context);
        }
        let mut messages = Vec::new();
        if !system.is_empty() {
            messages.push(Message::system(system));
        }
        messages.push(Message::user(user));

        let tools = agent::list_tools();
        let mut usage = Usage::zero();
        let mut tool_calls = 0;
        for step in 1..=max_steps {
            let response = agent::chat(&ChatRequest {
                model: spec.model.clone(),
                messages: messages.clone(),
                tools: tools.clone(),
                temperature: spec.temperature,
                max_tokens: spec.max_tokens,
            })?;
            usage.add(&response.usage);
            let calls = response.message.tool_calls.clone();
            messages.push(response.message.clone());
            if calls.is_empty() {
                let output = response.message.content;
                note(&spec.memory_namespace, &task, &output);
                let artifacts = match config.get("output_file").and_then(Value::as_str) {
                    Some(path) => vec![Artifact {
                        path: path.to_string(),
                        content: output.clone(),
                    }],
                    None => Vec::new(),
                };
                return Ok(Outcome {
                    output,
                    artifacts,
                    usage,
                    steps: step,
                    tool_calls,
                });
            }
            for call in calls {
                tool_calls += 1;
                let arguments: Value = serde_json::from_str(&call.arguments).unwrap_or(Value::Null);
                let context = paracle_sdk::InvocationContext {
                    caller: String::new(),
                    run_id: None,
                    agent: Some(spec.name.clone()),
                };
                let result = match agent::invoke_tool(&call.name, &arguments, &context) {
                    Ok(value) => value.to_string(),
                    // The model sees the error and may try something else.
                    Err(error) => format!("error: {}", error.message()),
                };
                messages.push(Message::tool_result(call.id, result));
            }
        }
        Err(Error::internal(format!(
            "agent `{}` reached its step limit of {max_steps} without a final answer",
            spec.name
        )))
    }
}

fn recall_notes(namespace: &str, query: &str, limit: u32) -> String {
    if namespace.is_empty() || limit == 0 {
        return String::new();
    }
    match agent::memory_search(namespace, query, limit) {
        Ok(hits) => hits
            .iter()
            .map(|h| format!("- {}: {}\n", h.key, h.value))
            .collect(),
        Err(error) => {
            paracle_sdk::host::debug(format!("no notes recalled: {}", error.message()));
            String::new()
        }
    }
}

fn note(namespace: &str, task: &Task, output: &str) {
    if namespace.is_empty() {
        return;
    }
    let summary: String = output.chars().take(500).collect();
    if let Err(error) = agent::memory_put(
        namespace,
        &format!("task-{}", task.id),
        &format!("{} => {summary}", task.input),
    ) {
        paracle_sdk::host::debug(format!("note not kept: {}", error.message()));
    }
}

paracle_sdk::export!(adapter: AgentRunner);
