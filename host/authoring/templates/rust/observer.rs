//! `{{name}}`: a Paracle observer plugin. It hears every execution event
//! and counts them by kind; `paracle plugin call {{name}} report` shows the
//! counts. Events are notifications: an error here is logged by the host
//! and never stops a run.

use std::collections::BTreeMap;

use paracle_sdk::{json, Error, Event, EventKind, Observer, Plugin, PluginInfo, Value};

#[derive(Default)]
pub struct {{type}} {
    seen: BTreeMap<String, u64>,
}

impl Plugin for {{type}} {
    fn info() -> PluginInfo {
        PluginInfo::new("{{name}}", env!("CARGO_PKG_VERSION"), "Counts execution events")
    }

    fn init(_config: Value) -> Result<Self, Error> {
        Ok({{type}}::default())
    }
}

impl Observer for {{type}} {
    fn on_event(&mut self, event: Event) -> Result<(), Error> {
        *self.seen.entry(event.kind.name().to_string()).or_default() += 1;
        Ok(())
    }

    fn report(&self) -> Value {
        json!({"events": self.seen})
    }
}

paracle_sdk::export!(observer: {{type}});

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind) -> Event {
        Event {
            kind,
            timestamp_ms: 0,
            execution_id: None,
            phase: None,
            agent: None,
            plugin: None,
            duration_ms: None,
            success: None,
            data: "{}".into(),
        }
    }

    #[test]
    fn counts_events_by_kind() {
        let mut observer = {{type}}::init(Value::Null).unwrap();
        observer.on_event(event(EventKind::AgentStarted)).unwrap();
        observer.on_event(event(EventKind::AgentStarted)).unwrap();
        observer.on_event(event(EventKind::ToolCall)).unwrap();
        assert_eq!(
            observer.report(),
            json!({"events": {"agent-started": 2, "tool-call": 1}})
        );
    }
}
