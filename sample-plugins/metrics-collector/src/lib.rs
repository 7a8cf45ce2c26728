//! `metrics-collector`: an observer that aggregates the events it hears:
//! counts per kind, successes and failures, and durations (count, total, min,
//! max, mean) per kind, agent and plugin.

use std::collections::BTreeMap;

use paracle_sdk::{json, Error, Event, Observer, Plugin, PluginInfo, Value};

#[derive(Default)]
struct Durations {
    count: u64,
    total_ms: u64,
    min_ms: u64,
    max_ms: u64,
}

impl Durations {
    fn add(&mut self, ms: u64) {
        self.min_ms = if self.count == 0 {
            ms
        } else {
            self.min_ms.min(ms)
        };
        self.max_ms = self.max_ms.max(ms);
        self.count += 1;
        self.total_ms += ms;
    }

    fn to_json(&self) -> Value {
        json!({
            "count": self.count,
            "total_ms": self.total_ms,
            "min_ms": self.min_ms,
            "max_ms": self.max_ms,
            "mean_ms": if self.count == 0 { 0.0 } else { self.total_ms as f64 / self.count as f64 },
        })
    }
}

#[derive(Default)]
struct MetricsCollector {
    events: u64,
    counts: BTreeMap<&'static str, u64>,
    succeeded: BTreeMap<&'static str, u64>,
    failed: BTreeMap<&'static str, u64>,
    durations: BTreeMap<&'static str, Durations>,
    by_agent: BTreeMap<String, Durations>,
    by_plugin: BTreeMap<String, Durations>,
    first_ms: Option<u64>,
    last_ms: Option<u64>,
}

impl Plugin for MetricsCollector {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "metrics-collector",
            env!("CARGO_PKG_VERSION"),
            "Aggregates execution events: counts and durations per kind",
        )
        .author("Paracle")
        .license("Apache-2.0")
        .tags(&["metrics", "observer"])
    }

    fn init(_config: Value) -> Result<Self, Error> {
        Ok(MetricsCollector::default())
    }
}

impl Observer for MetricsCollector {
    fn on_event(&mut self, event: Event) -> Result<(), Error> {
        let kind = event.kind.name();
        self.events += 1;
        *self.counts.entry(kind).or_default() += 1;
        match event.success {
            Some(true) => *self.succeeded.entry(kind).or_default() += 1,
            Some(false) => *self.failed.entry(kind).or_default() += 1,
            None => {}
        }
        if let Some(ms) = event.duration_ms {
            self.durations.entry(kind).or_default().add(ms);
            if let Some(agent) = &event.agent {
                self.by_agent.entry(agent.clone()).or_default().add(ms);
            }
            if let Some(plugin) = &event.plugin {
                self.by_plugin.entry(plugin.clone()).or_default().add(ms);
            }
        }
        self.first_ms = Some(
            self.first_ms
                .map_or(event.timestamp_ms, |f| f.min(event.timestamp_ms)),
        );
        self.last_ms = Some(
            self.last_ms
                .map_or(event.timestamp_ms, |l| l.max(event.timestamp_ms)),
        );
        Ok(())
    }

    fn report(&self) -> Value {
        json!({
            "events": self.events,
            "counts": self.counts,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "durations": durations(self.durations.iter().map(|(k, d)| (k.to_string(), d))),
            "by_agent": durations(self.by_agent.iter().map(|(k, d)| (k.clone(), d))),
            "by_plugin": durations(self.by_plugin.iter().map(|(k, d)| (k.clone(), d))),
            "span_ms": match (self.first_ms, self.last_ms) { (Some(f), Some(l)) => l - f, _ => 0 },
        })
    }
}

fn durations<'a>(entries: impl Iterator<Item = (String, &'a Durations)>) -> Value {
    Value::Object(entries.map(|(k, d)| (k, d.to_json())).collect())
}

paracle_sdk::export!(observer: MetricsCollector);
