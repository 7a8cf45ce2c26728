//! Execution events: every one reaches every observer plugin, in order, and
//! the command line's progress display.
//!
//! Observers are called from one delivery task, so a slow observer delays
//! other observers' events but never an agent.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use paracle_contract::WitError;
use paracle_contract::{ChatResponse, Event, EventKind, FinishReason};
use paracle_project::Registry;
use paracle_runtime::CallObserver;
use paracle_runtime::PluginError;
use paracle_runtime::{Plugin, PluginKind};

use crate::clock;

/// Something that watches events as they are emitted, in the emitting task.
pub type Listener = Arc<dyn Fn(&Event) + Send + Sync>;

pub(crate) struct EventBus {
    sender: Mutex<Option<mpsc::UnboundedSender<Event>>>,
    delivery: Mutex<Option<JoinHandle<()>>>,
    listener: Option<Listener>,
}

impl EventBus {
    pub(crate) fn new(observers: Vec<Arc<Plugin>>, listener: Option<Listener>) -> Self {
        if observers.is_empty() {
            return EventBus {
                sender: Mutex::new(None),
                delivery: Mutex::new(None),
                listener,
            };
        }
        let (sender, mut receiver) = mpsc::unbounded_channel::<Event>();
        let delivery = tokio::spawn(async move {
            while let Some(event) = receiver.recv().await {
                for observer in &observers {
                    match observer.on_event(&event).await {
                        Ok(Ok(())) => {}
                        Ok(Err(error)) => {
                            tracing::warn!(
                                "observer: {}",
                                paracle_base::shown::line(&error.to_string())
                            )
                        }
                        Err(error) => {
                            tracing::warn!(
                                "observer: {}",
                                paracle_base::shown::line(&error.to_string())
                            )
                        }
                    }
                }
            }
        });
        EventBus {
            sender: Mutex::new(Some(sender)),
            delivery: Mutex::new(Some(delivery)),
            listener,
        }
    }

    pub(crate) fn emit(&self, event: Event) {
        if let Some(listener) = &self.listener {
            listener(&event);
        }
        if let Some(sender) = &*self.sender.lock().unwrap() {
            // The receiver lives until `close`; a send can only fail after it.
            let _ = sender.send(event);
        }
    }

    /// Wait until every observer has heard every event; later events reach
    /// only the listener.
    pub(crate) async fn close(&self) {
        self.sender.lock().unwrap().take();
        let delivery = self.delivery.lock().unwrap().take();
        if let Some(delivery) = delivery {
            let _ = delivery.await;
        }
    }
}

/// Where an event happened.
#[derive(Clone, Default)]
pub(crate) struct Scope {
    pub execution: Option<String>,
    pub phase: Option<String>,
    pub agent: Option<String>,
}

impl Scope {
    pub(crate) fn event(&self, kind: EventKind) -> Event {
        Event {
            kind,
            timestamp_ms: clock::now_ms(),
            execution_id: self.execution.clone(),
            phase: self.phase.clone(),
            agent: self.agent.clone(),
            plugin: None,
            duration_ms: None,
            success: None,
            data: "{}".into(),
        }
    }

    pub(crate) fn finished(
        &self,
        kind: EventKind,
        elapsed: Duration,
        success: bool,
        data: Value,
    ) -> Event {
        Event {
            duration_ms: Some(elapsed.as_millis() as u64),
            success: Some(success),
            data: data.to_string(),
            ..self.event(kind)
        }
    }
}

/// Turns an agent's provider and tool calls into events.
/// What an `llm-call` event says of a provider's answer.
pub fn llm_call_data(provider: &Plugin, result: Result<&ChatResponse, &WitError>) -> Value {
    match result {
        Ok(response) => json!({
            "model": response.model,
            "prompt_tokens": response.usage.prompt_tokens,
            "completion_tokens": response.usage.completion_tokens,
            "tool_calls": response.message.tool_calls.len(),
            "finish_reason": finish_reason(response.finish_reason),
            "digest": provider.digest(),
        }),
        Err(error) => {
            let error = PluginError::from_wit(provider.name(), error.clone());
            json!({
                "error": error.kind.to_string(),
                "message": error.message,
                "digest": provider.digest(),
            })
        }
    }
}

fn finish_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::Length => "length",
        FinishReason::ContentFilter => "content_filter",
    }
}

/// What a `tool-call` event says of a call.
pub fn tool_call_data(plugin: &Plugin, tool: &str) -> Value {
    json!({ "tool": tool, "digest": plugin.digest() })
}

pub(crate) struct AgentCalls {
    pub bus: Arc<EventBus>,
    pub scope: Scope,
}

impl CallObserver for AgentCalls {
    fn llm_call(
        &self,
        provider: &Plugin,
        elapsed: Duration,
        result: Result<&ChatResponse, &WitError>,
    ) {
        let data = llm_call_data(provider, result);
        let mut event = self
            .scope
            .finished(EventKind::LlmCall, elapsed, result.is_ok(), data);
        event.plugin = Some(provider.name().to_string());
        self.bus.emit(event);
    }

    fn tool_call(&self, plugin: &Plugin, tool: &str, elapsed: Duration, ok: bool) {
        let mut event = self.scope.finished(
            EventKind::ToolCall,
            elapsed,
            ok,
            tool_call_data(plugin, tool),
        );
        event.plugin = Some(plugin.name().to_string());
        self.bus.emit(event);
    }
}

/// Every observer plugin of the project that hears events. One that cannot
/// be loaded is left out with a warning: observers must not stop a run.
pub(crate) async fn observers(registry: &Registry) -> Vec<Arc<Plugin>> {
    registry
        .load_kind(PluginKind::Observer, |name| registry.hears_events(name))
        .await
}
