//! What the host stopped during a call on a plugin's behalf. Every
//! capability records here; the call reports it as its error whatever the
//! plugin made of the refusal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use paracle_policy::Limit;

/// Something the host stopped during a call (a capability denied, a limit
/// hit in host code), reported as the call's error whatever the plugin made
/// of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Incident {
    Denied {
        capability: String,
        reason: String,
        /// The grant that would allow it, such as `net:example.org:443`.
        grant: Option<String>,
    },
    Limit {
        limit: Limit,
        detail: String,
    },
}

/// The first incident of the current call, kept by the store and shared with
/// the tasks that carry its HTTP traffic. Every call checks it, and almost none has one, so
/// a flag spares the lock.
#[derive(Debug, Clone, Default)]
pub(crate) struct Incidents(Arc<IncidentSlot>);

#[derive(Debug, Default)]
struct IncidentSlot {
    recorded: AtomicBool,
    first: Mutex<Option<Incident>>,
}

impl Incidents {
    pub(crate) fn record(&self, incident: Incident) {
        let mut first = self.0.first.lock().unwrap();
        if first.is_none() {
            *first = Some(incident);
            self.0.recorded.store(true, Ordering::Release);
        }
    }

    pub(crate) fn take(&self) -> Option<Incident> {
        if !self.0.recorded.swap(false, Ordering::Acquire) {
            return None;
        }
        self.0.first.lock().unwrap().take()
    }
}
