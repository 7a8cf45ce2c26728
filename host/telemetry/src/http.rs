//! The exporter's HTTP client: ureq, blocking, over rustls with ring. The
//! OpenTelemetry SDK exports from threads of its own, so a blocking send
//! holds up no async task.

use std::time::Duration;

use bytes::Bytes;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};

/// A collector's answer larger than this is cut off: it only acknowledges.
const MAX_ANSWER_BYTES: u64 = 1 << 20;

#[derive(Debug)]
pub(crate) struct Client {
    agent: ureq::Agent,
}

impl Client {
    pub(crate) fn new(timeout: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            // The exporter reads the status itself.
            .http_status_as_error(false)
            .build()
            .new_agent();
        Client { agent }
    }
}

#[async_trait::async_trait]
impl HttpClient for Client {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = request.map(|body| body.to_vec());
        let mut response = self.agent.run(request)?;
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_vec()?;
        let (parts, _) = response.into_parts();
        Ok(Response::from_parts(parts, Bytes::from(body)))
    }
}
