//! Spans, made whole when what they stand for ends: from the
//! orchestrator's events on the process that runs a phase, and from an
//! agent's calls on the worker that runs it. Ids follow
//! `paracle_orchestrator::trace`, so the pieces from every process fit.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::InstrumentationScope;
use opentelemetry::{KeyValue, Value as OtelValue};
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, SpanData, SpanEvents, SpanLinks, SpanProcessor,
};
use paracle_contract::{ChatResponse, Event, EventKind, WitError};
use paracle_orchestrator::{llm_call_data, tool_call_data, trace};
use paracle_runtime::{CallObserver, Plugin};
use serde_json::Value;

/// Where finished spans go, and the phases and attempts still open.
pub(crate) struct Spans {
    processor: BatchSpanProcessor,
    scope: InstrumentationScope,
    open: OpenSpans,
}

/// Phases and agent attempts that have started and not yet ended.
#[derive(Default)]
struct OpenSpans {
    phases: Mutex<HashMap<(String, String), Opened>>,
    agents: Mutex<HashMap<(String, String, String), Opened>>,
}

#[derive(Clone)]
struct Opened {
    span: SpanId,
    start: SystemTime,
    attributes: Vec<KeyValue>,
}

/// One span, ready to send.
struct Made {
    trace: TraceId,
    span: SpanId,
    parent: Option<(SpanId, bool)>,
    name: String,
    kind: SpanKind,
    start: SystemTime,
    end: SystemTime,
    attributes: Vec<KeyValue>,
    ok: bool,
}

fn at_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn span_id(hex: &str) -> Option<SpanId> {
    SpanId::from_hex(hex)
        .ok()
        .filter(|id| *id != SpanId::INVALID)
}

fn new_span_id() -> SpanId {
    span_id(&trace::new_span_id()).expect("fresh span ids are valid")
}

/// A name from the data of an event, as an attribute: plugins choose
/// model and tool names, so only a short run of plain characters is sent,
/// never free text a plugin could fill with a prompt or a secret.
fn text(data: &Value, key: &str) -> Option<String> {
    let raw = data.get(key).and_then(Value::as_str)?;
    let plain: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._:/@+-".contains(*c))
        .take(128)
        .collect();
    Some(if plain.is_empty() && !raw.is_empty() {
        "unnamed".into()
    } else {
        plain
    })
}

fn number(data: &Value, key: &str) -> Option<i64> {
    data.get(key).and_then(Value::as_i64)
}

/// The `gen_ai.*` and `paracle.*` attributes of a provider call, from what
/// its `llm-call` event (or a worker's notice) says.
fn llm_attributes(plugin: &str, data: &Value) -> (String, Vec<KeyValue>) {
    let model = text(data, "model").unwrap_or_default();
    let mut attributes = vec![
        KeyValue::new("gen_ai.operation.name", "chat"),
        KeyValue::new("gen_ai.provider.name", plugin.to_string()),
        KeyValue::new("paracle.plugin.name", plugin.to_string()),
    ];
    if let Some(digest) = text(data, "digest") {
        attributes.push(KeyValue::new("paracle.plugin.digest", digest));
    }
    if !model.is_empty() {
        attributes.push(KeyValue::new("gen_ai.response.model", model.clone()));
    }
    if let Some(tokens) = number(data, "prompt_tokens") {
        attributes.push(KeyValue::new("gen_ai.usage.input_tokens", tokens));
    }
    if let Some(tokens) = number(data, "completion_tokens") {
        attributes.push(KeyValue::new("gen_ai.usage.output_tokens", tokens));
    }
    if let Some(reason) = text(data, "finish_reason") {
        attributes.push(KeyValue::new(
            "gen_ai.response.finish_reasons",
            OtelValue::Array(vec![opentelemetry::StringValue::from(reason)].into()),
        ));
    }
    let outcome = text(data, "error").unwrap_or_else(|| "ok".into());
    if outcome != "ok" {
        attributes.push(KeyValue::new("error.type", outcome.clone()));
    }
    attributes.push(KeyValue::new("paracle.outcome", outcome));
    let name = if model.is_empty() {
        "chat".to_string()
    } else {
        format!("chat {model}")
    };
    (name, attributes)
}

fn tool_attributes(plugin: &str, data: &Value, ok: bool) -> (String, Vec<KeyValue>) {
    let tool = text(data, "tool").unwrap_or_default();
    let mut attributes = vec![
        KeyValue::new("gen_ai.operation.name", "execute_tool"),
        KeyValue::new("gen_ai.tool.name", tool.clone()),
        KeyValue::new("paracle.plugin.name", plugin.to_string()),
        KeyValue::new("paracle.outcome", if ok { "ok" } else { "error" }),
    ];
    if let Some(digest) = text(data, "digest") {
        attributes.push(KeyValue::new("paracle.plugin.digest", digest));
    }
    (format!("execute_tool {tool}"), attributes)
}

impl Spans {
    pub(crate) fn new(processor: BatchSpanProcessor, scope: InstrumentationScope) -> Self {
        Spans {
            processor,
            scope,
            open: OpenSpans::default(),
        }
    }

    pub(crate) fn processor(&self) -> &BatchSpanProcessor {
        &self.processor
    }

    fn send(&self, made: Made) {
        let (parent_span_id, parent_span_is_remote) =
            made.parent.unwrap_or((SpanId::INVALID, false));
        self.processor.on_end(SpanData {
            span_context: SpanContext::new(
                made.trace,
                made.span,
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id,
            parent_span_is_remote,
            span_kind: made.kind,
            name: Cow::Owned(made.name),
            start_time: made.start,
            end_time: made.end.max(made.start),
            attributes: made.attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: if made.ok {
                Status::Ok
            } else {
                Status::error("failed")
            },
            instrumentation_scope: self.scope.clone(),
        });
    }

    /// See [`crate::Telemetry::on_event`].
    pub(crate) fn on_event(&self, event: &Event) {
        let Some(run) = event.execution_id.clone() else {
            return;
        };
        let Ok(trace) = TraceId::from_hex(&trace::trace_id(&run)) else {
            return;
        };
        let data: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
        let end = at_ms(event.timestamp_ms);
        let start = end - Duration::from_millis(event.duration_ms.unwrap_or(0));
        let ok = event.success.unwrap_or(true);
        let run_span = span_id(&trace::run_span_id(&run)).expect("run span ids are valid");
        let phase = event.phase.clone().unwrap_or_default();
        let agent = event.agent.clone().unwrap_or_default();
        let phase_key = (run.clone(), phase.clone());
        let agent_key = (run.clone(), phase.clone(), agent.clone());
        let base = [KeyValue::new("paracle.run.id", run.clone())];
        match event.kind {
            EventKind::ExecutionFinished => {
                let workflow = text(&data, "workflow").unwrap_or_default();
                let mut attributes = base.to_vec();
                attributes.push(KeyValue::new("paracle.workflow", workflow.clone()));
                attributes.push(KeyValue::new(
                    "paracle.outcome",
                    text(&data, "status").unwrap_or_default(),
                ));
                self.send(Made {
                    trace,
                    span: run_span,
                    parent: None,
                    name: format!("run {workflow}"),
                    kind: SpanKind::Internal,
                    start,
                    end,
                    attributes,
                    ok,
                });
            }
            EventKind::PhaseStarted => {
                let mut attributes = base.to_vec();
                attributes.push(KeyValue::new("paracle.phase", phase.clone()));
                self.open.phases.lock().unwrap().insert(
                    phase_key,
                    Opened {
                        span: new_span_id(),
                        start: end,
                        attributes,
                    },
                );
            }
            EventKind::PhaseFinished => {
                let Some(opened) = self.open.phases.lock().unwrap().remove(&phase_key) else {
                    return;
                };
                let mut attributes = opened.attributes;
                attributes.push(KeyValue::new(
                    "paracle.outcome",
                    text(&data, "status").unwrap_or_default(),
                ));
                for key in ["succeeded", "failed"] {
                    if let Some(n) = number(&data, key) {
                        attributes.push(KeyValue::new(format!("paracle.agents.{key}"), n));
                    }
                }
                self.send(Made {
                    trace,
                    span: opened.span,
                    parent: Some((run_span, false)),
                    name: format!("phase {phase}"),
                    kind: SpanKind::Internal,
                    start: opened.start,
                    end,
                    attributes,
                    ok,
                });
            }
            EventKind::AgentStarted => {
                let Some(span) = text(&data, "span_id").and_then(|s| span_id(&s)) else {
                    return;
                };
                let mut attributes = base.to_vec();
                attributes.extend([
                    KeyValue::new("gen_ai.operation.name", "invoke_agent"),
                    KeyValue::new("gen_ai.agent.name", agent.clone()),
                    KeyValue::new("paracle.phase", phase.clone()),
                    KeyValue::new("paracle.attempt", number(&data, "attempt").unwrap_or(1)),
                ]);
                if let Some(adapter) = &event.plugin {
                    attributes.push(KeyValue::new("paracle.plugin.name", adapter.clone()));
                }
                self.open.agents.lock().unwrap().insert(
                    agent_key,
                    Opened {
                        span,
                        start: end,
                        attributes,
                    },
                );
            }
            EventKind::AgentFinished => {
                let Some(opened) = self.open.agents.lock().unwrap().remove(&agent_key) else {
                    return;
                };
                let mut attributes = opened.attributes;
                if let Some(tokens) = number(&data, "prompt_tokens") {
                    attributes.push(KeyValue::new("gen_ai.usage.input_tokens", tokens));
                }
                if let Some(tokens) = number(&data, "completion_tokens") {
                    attributes.push(KeyValue::new("gen_ai.usage.output_tokens", tokens));
                }
                for key in ["steps", "tool_calls"] {
                    if let Some(n) = number(&data, key) {
                        attributes.push(KeyValue::new(format!("paracle.{key}"), n));
                    }
                }
                let outcome = text(&data, "failure").unwrap_or_else(|| "ok".into());
                if outcome != "ok" {
                    attributes.push(KeyValue::new("error.type", outcome.clone()));
                }
                attributes.push(KeyValue::new("paracle.outcome", outcome));
                let parent = self
                    .open
                    .phases
                    .lock()
                    .unwrap()
                    .get(&phase_key)
                    .map_or(run_span, |p| p.span);
                self.send(Made {
                    trace,
                    span: opened.span,
                    parent: Some((parent, false)),
                    name: format!("invoke_agent {agent}"),
                    kind: SpanKind::Internal,
                    start: opened.start,
                    end,
                    attributes,
                    ok,
                });
            }
            EventKind::LlmCall | EventKind::ToolCall => {
                // Calls made on a worker are traced there.
                if !data.is_object() || data.get("worker").is_some() {
                    return;
                }
                let Some(parent) = self
                    .open
                    .agents
                    .lock()
                    .unwrap()
                    .get(&agent_key)
                    .map(|a| a.span)
                else {
                    return;
                };
                let plugin = event.plugin.clone().unwrap_or_default();
                let (name, attributes) = if event.kind == EventKind::LlmCall {
                    llm_attributes(&plugin, &data)
                } else {
                    tool_attributes(&plugin, &data, ok)
                };
                self.send(Made {
                    trace,
                    span: new_span_id(),
                    parent: Some((parent, false)),
                    name,
                    kind: SpanKind::Client,
                    start,
                    end,
                    attributes,
                    ok,
                });
            }
            _ => {}
        }
    }

    /// See [`crate::Telemetry::task_span`].
    pub(crate) fn task_span(
        self: &Arc<Self>,
        traceparent: Option<&str>,
        worker: &str,
        agent: &str,
    ) -> Arc<TaskSpan> {
        let parent = traceparent.and_then(parse_traceparent);
        let trace = parent.map_or_else(
            || {
                TraceId::from_hex(&format!("{}{}", trace::new_span_id(), trace::new_span_id()))
                    .expect("fresh trace ids are valid")
            },
            |(trace, _)| trace,
        );
        Arc::new(TaskSpan {
            spans: self.clone(),
            trace,
            span: new_span_id(),
            parent: parent.map(|(_, span)| span),
            start: SystemTime::now(),
            attributes: vec![
                KeyValue::new("gen_ai.operation.name", "invoke_agent"),
                KeyValue::new("gen_ai.agent.name", agent.to_string()),
                KeyValue::new("paracle.worker", worker.to_string()),
            ],
            name: format!("run_agent {agent} on {worker}"),
        })
    }
}

/// `00-TRACE-SPAN-FLAGS`, as W3C Trace Context writes it.
fn parse_traceparent(header: &str) -> Option<(TraceId, SpanId)> {
    let mut parts = header.trim().split('-');
    let (version, trace, span, _flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "00" || trace.len() != 32 || span.len() != 16 {
        return None;
    }
    let trace = TraceId::from_hex(trace)
        .ok()
        .filter(|t| *t != TraceId::INVALID)?;
    Some((trace, span_id(span)?))
}

/// A task on a worker, as a span; the agent's calls are its children.
pub struct TaskSpan {
    spans: Arc<Spans>,
    trace: TraceId,
    span: SpanId,
    parent: Option<SpanId>,
    start: SystemTime,
    attributes: Vec<KeyValue>,
    name: String,
}

impl TaskSpan {
    /// The task ended: `outcome` is `ok` or the kind of failure.
    pub fn end(&self, outcome: &str) {
        let mut attributes = self.attributes.clone();
        if outcome != "ok" {
            attributes.push(KeyValue::new("error.type", outcome.to_string()));
        }
        attributes.push(KeyValue::new("paracle.outcome", outcome.to_string()));
        self.spans.send(Made {
            trace: self.trace,
            span: self.span,
            parent: self.parent.map(|p| (p, true)),
            name: self.name.clone(),
            kind: SpanKind::Consumer,
            start: self.start,
            end: SystemTime::now(),
            attributes,
            ok: outcome == "ok",
        });
    }

    fn child(&self, name: String, attributes: Vec<KeyValue>, elapsed: Duration, ok: bool) {
        let end = SystemTime::now();
        self.spans.send(Made {
            trace: self.trace,
            span: new_span_id(),
            parent: Some((self.span, false)),
            name,
            kind: SpanKind::Client,
            start: end - elapsed,
            end,
            attributes,
            ok,
        });
    }
}

impl CallObserver for TaskSpan {
    fn llm_call(
        &self,
        provider: &Plugin,
        elapsed: Duration,
        result: Result<&ChatResponse, &WitError>,
    ) {
        let (name, attributes) = llm_attributes(provider.name(), &llm_call_data(provider, result));
        self.child(name, attributes, elapsed, result.is_ok());
    }

    fn tool_call(&self, plugin: &Plugin, tool: &str, elapsed: Duration, ok: bool) {
        let (name, attributes) = tool_attributes(plugin.name(), &tool_call_data(plugin, tool), ok);
        self.child(name, attributes, elapsed, ok);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_is_read_as_w3c_writes_it() {
        let header = trace::traceparent("run-1", &trace::run_span_id("run-1"));
        let (trace_id, span) = parse_traceparent(&header).unwrap();
        assert_eq!(trace_id.to_string(), trace::trace_id("run-1"));
        assert_eq!(span.to_string(), trace::run_span_id("run-1"));
        for bad in [
            "",
            "00-abc-def-01",
            "01-00000000000000000000000000000001-0000000000000001-01",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad}");
        }
        let zero = format!("00-{}-{}-01", "0".repeat(32), "1".repeat(16));
        assert!(parse_traceparent(&zero).is_none());
    }
}
