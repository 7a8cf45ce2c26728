//! Every plugin call told to one process-wide recorder (OpenTelemetry's
//! metrics, when they are on). Off, it costs a call one atomic load: no
//! recorder is installed, and none can be but once.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::stats::CallOutcome;

/// One call that ended, as the recorder hears it.
#[derive(Debug, Clone, Copy)]
pub struct RecordedCall<'a> {
    pub plugin: &'a str,
    pub digest: &'a str,
    /// `provider`, `tool`, `adapter`, `observer` or `memory`.
    pub kind: &'static str,
    pub outcome: CallOutcome,
    pub elapsed: Duration,
}

/// Hears every plugin call of the process as it ends.
pub trait CallRecorder: Send + Sync {
    fn record(&self, call: &RecordedCall<'_>);
}

static RECORDER: OnceLock<Arc<dyn CallRecorder>> = OnceLock::new();

/// Tell `recorder` of every plugin call from now on. False when one was
/// installed before: there is one per process.
pub fn record_calls_with(recorder: Arc<dyn CallRecorder>) -> bool {
    RECORDER.set(recorder).is_ok()
}

pub(crate) fn recorder() -> Option<&'static Arc<dyn CallRecorder>> {
    RECORDER.get()
}
