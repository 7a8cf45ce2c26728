//! OpenTelemetry for Paracle, off unless asked for.
//!
//! With `OTEL_EXPORTER_OTLP_ENDPOINT` set (or `[telemetry] endpoint` in the
//! project's config), a process sends over OTLP/HTTP:
//!
//! - spans: a run, its phases, each attempt of an agent, and the provider
//!   and tool calls agents make, with the GenAI semantic conventions
//!   (`gen_ai.*`: operation, model, token usage, finish reason) and the
//!   plugin's name, digest and outcome. One run is one trace, whatever
//!   process or machine worked on it: see `paracle_orchestrator::trace`.
//! - metrics: every plugin call, counted by plugin and outcome, its latency
//!   in a histogram, and the limits plugins hit.
//!
//! Spans are made from the orchestrator's events ([`Telemetry::on_event`])
//! and, on a worker, from its agent's calls ([`Telemetry::task_span`]).
//! Nothing a plugin wrote goes out: no prompt, answer, argument or error
//! message; names, digests, counts, durations and kinds of failure only.
//!
//! - `config`: where to send, from the environment and the config;
//! - `http`: the exporter's HTTP client (ureq, rustls);
//! - `spans`: events and calls turned into spans;
//! - `metrics`: plugin calls turned into metrics.

mod config;
mod http;
mod metrics;
mod spans;

use std::sync::Arc;

pub use config::{TelemetryConfig, TelemetryError};
pub use spans::TaskSpan;

use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SpanProcessor};

/// Spans and metrics on their way to an OTLP endpoint.
pub struct Telemetry {
    config: TelemetryConfig,
    spans: Arc<spans::Spans>,
    meters: SdkMeterProvider,
    metrics: Arc<metrics::PluginMetrics>,
}

impl Telemetry {
    /// Start sending to `config`'s endpoint. Nothing is sent until there
    /// is something to send; an endpoint that cannot be reached costs a
    /// warning per batch, never a run.
    pub fn start(config: TelemetryConfig) -> Result<Arc<Self>, TelemetryError> {
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(config.service_name.clone())
            .build();
        let span_exporter = {
            use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_http_client(http::Client::new(config.timeout))
                .with_endpoint(config.traces_endpoint())
                .with_timeout(config.timeout)
                .build()
                .map_err(|e| TelemetryError::Exporter(e.to_string()))?
        };
        let mut spans = BatchSpanProcessor::builder(span_exporter).build();
        spans.set_resource(&resource);
        let metric_exporter = {
            use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
            opentelemetry_otlp::MetricExporter::builder()
                .with_http()
                .with_http_client(http::Client::new(config.timeout))
                .with_endpoint(config.metrics_endpoint())
                .with_timeout(config.timeout)
                .build()
                .map_err(|e| TelemetryError::Exporter(e.to_string()))?
        };
        let meters = SdkMeterProvider::builder()
            .with_resource(resource)
            .with_reader(
                opentelemetry_sdk::metrics::PeriodicReader::builder(metric_exporter)
                    .with_interval(config.metrics_interval)
                    .build(),
            )
            .build();
        let metrics = Arc::new(metrics::PluginMetrics::new(&meters));
        let scope = opentelemetry::InstrumentationScope::builder("paracle")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        Ok(Arc::new(Telemetry {
            config,
            spans: Arc::new(spans::Spans::new(spans, scope)),
            meters,
            metrics,
        }))
    }

    /// Turn one of the orchestrator's events into spans: a run, a phase or
    /// an agent's attempt when it ends, a provider or tool call at once.
    pub fn on_event(&self, event: &paracle_contract::Event) {
        self.spans.on_event(event);
    }

    /// The span of one task on a worker, under the attempt whose W3C
    /// `traceparent` the task carried (a new trace when it carried none);
    /// the agent's calls become its children.
    pub fn task_span(&self, traceparent: Option<&str>, worker: &str, agent: &str) -> Arc<TaskSpan> {
        self.spans.task_span(traceparent, worker, agent)
    }

    /// Where it sends.
    pub fn config(&self) -> &TelemetryConfig {
        &self.config
    }

    /// Count every plugin call of this process from now on. Once per
    /// process; false when something else records calls already.
    pub fn record_plugin_calls(&self) -> bool {
        paracle_runtime::record_calls_with(self.metrics.clone())
    }

    /// Send what is still buffered, and stop. Called before the process
    /// exits, or the last spans are lost.
    pub fn shutdown(&self) {
        // Shutting down sends what is buffered first.
        if let Err(error) = self.spans.processor().shutdown() {
            tracing::warn!(
                "telemetry: spans not all sent to {} ({error}); is the collector up?",
                self.config.traces_endpoint()
            );
        }
        if let Err(error) = self.meters.shutdown() {
            tracing::warn!(
                "telemetry: metrics not all sent to {} ({error}); is the collector up?",
                self.config.metrics_endpoint()
            );
        }
    }
}
