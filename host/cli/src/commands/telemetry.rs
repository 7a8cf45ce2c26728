//! OpenTelemetry for a command, when `OTEL_EXPORTER_OTLP_ENDPOINT` or the
//! project's `[telemetry]` asks for it: started before the work, flushed
//! before the process exits.

use std::sync::Arc;

use anyhow::Result;
use paracle_telemetry::{Telemetry, TelemetryConfig};

/// Telemetry for this process, or None when nobody asked for it.
/// `configured` is the project's `[telemetry] endpoint`.
pub(super) fn start(configured: Option<&str>) -> Result<Option<Arc<Telemetry>>> {
    let Some(config) = TelemetryConfig::from_env_or(configured)? else {
        return Ok(None);
    };
    let telemetry = Telemetry::start(config)?;
    telemetry.record_plugin_calls();
    Ok(Some(telemetry))
}

/// Send what is still buffered. The exporter blocks while it sends, so it
/// does so off the async workers.
pub(super) async fn finish(telemetry: Option<Arc<Telemetry>>) {
    if let Some(telemetry) = telemetry {
        let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    }
}
