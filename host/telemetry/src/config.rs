//! Where telemetry goes: the OpenTelemetry environment variables, which
//! win, else the project's `[telemetry]` table; off when neither names an
//! endpoint, or when `OTEL_SDK_DISABLED=true`.

use std::time::Duration;

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("the OTLP endpoint `{endpoint}` is not an http:// or https:// address ({source_var})")]
    BadEndpoint {
        endpoint: String,
        source_var: &'static str,
    },
    #[error("cannot set up the OTLP exporter: {0}")]
    Exporter(String),
}

/// Where spans and metrics go, and as which service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// The OTLP/HTTP base address; `/v1/traces` and `/v1/metrics` are added.
    pub endpoint: String,
    pub service_name: String,
    pub timeout: Duration,
    /// How often metrics are sent (and once more at shutdown).
    pub metrics_interval: Duration,
}

const DEFAULT_SERVICE: &str = "paracle";

impl TelemetryConfig {
    /// The settings from the environment, else from `configured` (the
    /// project's `[telemetry] endpoint`); None when telemetry is off.
    pub fn from_env_or(configured: Option<&str>) -> Result<Option<Self>, TelemetryError> {
        Self::from_lookup(|name| std::env::var(name).ok(), configured)
    }

    fn from_lookup(
        env: impl Fn(&str) -> Option<String>,
        configured: Option<&str>,
    ) -> Result<Option<Self>, TelemetryError> {
        let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        if set("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        let (endpoint, source_var) = match set("OTEL_EXPORTER_OTLP_ENDPOINT") {
            Some(endpoint) => (endpoint, "OTEL_EXPORTER_OTLP_ENDPOINT"),
            None => match configured {
                Some(endpoint) => (endpoint.to_string(), "[telemetry] endpoint"),
                None => return Ok(None),
            },
        };
        let endpoint = endpoint.trim().trim_end_matches('/').to_string();
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
            || endpoint.parse::<http::Uri>().is_err()
        {
            return Err(TelemetryError::BadEndpoint {
                endpoint,
                source_var,
            });
        }
        Ok(Some(TelemetryConfig {
            endpoint,
            service_name: set("OTEL_SERVICE_NAME").unwrap_or_else(|| DEFAULT_SERVICE.into()),
            timeout: Duration::from_secs(10),
            metrics_interval: Duration::from_secs(30),
        }))
    }

    pub fn traces_endpoint(&self) -> String {
        format!("{}/v1/traces", self.endpoint)
    }

    pub fn metrics_endpoint(&self) -> String {
        format!("{}/v1/metrics", self.endpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(
        vars: &[(&str, &str)],
        configured: Option<&str>,
    ) -> Result<Option<TelemetryConfig>, TelemetryError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TelemetryConfig::from_lookup(|name| vars.get(name).cloned(), configured)
    }

    #[test]
    fn telemetry_is_off_unless_an_endpoint_is_named() {
        assert!(from(&[], None).unwrap().is_none());
        assert!(from(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")], None)
            .unwrap()
            .is_none());
        let on = from(
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/")],
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(on.traces_endpoint(), "http://127.0.0.1:4318/v1/traces");
        assert_eq!(on.service_name, "paracle");
        // The environment wins over the config, and can turn it off.
        let env_wins = from(
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:1"),
                ("OTEL_SERVICE_NAME", "ci"),
            ],
            Some("http://b:2"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (env_wins.endpoint.as_str(), env_wins.service_name.as_str()),
            ("http://a:1", "ci")
        );
        assert!(from(&[("OTEL_SDK_DISABLED", "true")], Some("http://b:2"))
            .unwrap()
            .is_none());
        assert_eq!(
            from(&[], Some("http://b:2")).unwrap().unwrap().endpoint,
            "http://b:2"
        );
        let bad = from(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "127.0.0.1:4318")], None);
        assert!(bad.is_err_and(|e| e.to_string().contains("not an http://")));
    }
}
