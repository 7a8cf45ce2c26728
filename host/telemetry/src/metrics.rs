//! Every plugin call as OpenTelemetry metrics: counted by plugin, kind and
//! outcome, its latency in a histogram, errors and limits counted apart.

use opentelemetry::metrics::{Counter, Histogram};
use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use paracle_runtime::{CallOutcome, CallRecorder, RecordedCall};

pub(crate) struct PluginMetrics {
    calls: Counter<u64>,
    errors: Counter<u64>,
    limits: Counter<u64>,
    duration: Histogram<f64>,
}

impl PluginMetrics {
    pub(crate) fn new(meters: &SdkMeterProvider) -> Self {
        use opentelemetry::metrics::MeterProvider;
        let meter = meters.meter("paracle");
        PluginMetrics {
            calls: meter
                .u64_counter("paracle.plugin.calls")
                .with_description("Plugin calls, by plugin, kind and outcome.")
                .build(),
            errors: meter
                .u64_counter("paracle.plugin.errors")
                .with_description("Plugin calls that did not succeed, by plugin and outcome.")
                .build(),
            limits: meter
                .u64_counter("paracle.plugin.limits")
                .with_description("Plugin calls stopped at one of the plugin's limits.")
                .build(),
            duration: meter
                .f64_histogram("paracle.plugin.call.duration")
                .with_unit("s")
                .with_description("How long plugin calls took.")
                .build(),
        }
    }
}

fn outcome_name(outcome: CallOutcome) -> &'static str {
    match outcome {
        CallOutcome::Ok => "ok",
        CallOutcome::PluginError => "plugin-error",
        CallOutcome::Trap => "trap",
        CallOutcome::Limit => "limit",
        CallOutcome::Rejected => "rejected",
        CallOutcome::Denied => "denied",
    }
}

impl CallRecorder for PluginMetrics {
    fn record(&self, call: &RecordedCall<'_>) {
        let plugin = KeyValue::new("paracle.plugin.name", call.plugin.to_string());
        let kind = KeyValue::new("paracle.plugin.kind", call.kind);
        let outcome = KeyValue::new("paracle.outcome", outcome_name(call.outcome));
        self.calls
            .add(1, &[plugin.clone(), kind.clone(), outcome.clone()]);
        self.duration
            .record(call.elapsed.as_secs_f64(), &[plugin.clone(), kind]);
        if call.outcome != CallOutcome::Ok {
            self.errors.add(1, &[plugin.clone(), outcome]);
        }
        if call.outcome == CallOutcome::Limit {
            self.limits.add(1, &[plugin]);
        }
    }
}
