//! A person who can be asked, at the moment a plugin needs something it was
//! not granted.
//!
//! Only a person answers. The caller puts one at hand for a call with
//! [`with_person`] around the call's future: the terminal's user for the
//! CLI, an MCP client's user (through elicitation) for the server. Nothing a
//! plugin or a model sends reaches this seam: the host asks when its own
//! check refuses, and applies the answer itself. A call with no person at
//! hand is denied, as it always was.
//!
//! The time spent waiting for an answer is not the plugin's: each call's
//! deadline (the epoch deadline in wasm and the host's own) moves by what
//! the person took, measured on a clock shared by the calls of one task, so
//! an adapter waiting on a tool that waits on a person is not timed out
//! either.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use paracle_policy::{Grant, NetGrant};
use serde::Serialize;

/// What a plugin wants and was not granted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Wanted {
    /// A network host and port, or an address (`net:`).
    Net { grant: NetGrant },
    /// A directory the plugin declared it needs, at `guest` in its sandbox.
    /// The person (or the policy answering for them) picks the host
    /// directory.
    Dir { guest: String, writable: bool },
    /// An environment variable the plugin declared it reads: the host's
    /// variable (`env:`) or the user's secret of that name (`secret:`).
    Variable { name: String },
}

impl Wanted {
    /// What it is, for a question or a log line.
    pub fn describe(&self) -> String {
        match self {
            Wanted::Net { grant } => format!("network access to {grant}"),
            Wanted::Dir { guest, writable } => format!(
                "a directory at {guest} ({})",
                if *writable { "read-write" } else { "read-only" }
            ),
            Wanted::Variable { name } => format!("the variable {name}"),
        }
    }
}

/// One question for a person.
#[derive(Debug, Clone, Serialize)]
pub struct PermissionRequest {
    pub plugin: String,
    pub digest: String,
    /// Who signed it, as its loader verified (`unsigned`, `signed by
    /// trusted key ...`).
    pub signer: Option<String>,
    pub wanted: Wanted,
    /// The plugin's own reason, from its info: plugin text, to be shown
    /// escaped.
    pub reason: Option<String>,
}

/// A person's answer, with the grant it gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// For this call only.
    Once(Grant),
    /// For this plugin from now on; whoever answered saves it as
    /// `plugin grant` would.
    Always(Grant),
    Deny,
}

/// A tool call whose approval setting is `ask`.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalRequest {
    pub plugin: String,
    pub digest: String,
    pub tool: String,
    /// The arguments as the caller sent them (already checked against the
    /// tool's schema), cut to 4 KiB for showing.
    pub arguments: String,
    /// How long they are in all: more than `arguments` when cut.
    pub arguments_bytes: usize,
    /// Who calls: `cli`, `mcp`, or the adapter running an agent.
    pub caller: String,
    pub agent: Option<String>,
    pub run: Option<String>,
    /// sha256 over the agent, plugin, tool and the whole arguments: the
    /// same call made again has the same key.
    pub key: String,
}

/// A person's decision on a tool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Approval {
    Approved,
    Refused,
    /// Nobody can decide now: the call is refused, and the decision comes
    /// later (a workflow's gate).
    Pending,
}

pub type Asking<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Whoever answers a plugin's requests for this call.
pub trait Person: Send + Sync {
    fn permit(&self, request: PermissionRequest) -> Asking<Answer>;
    fn approve(&self, request: ApprovalRequest) -> Asking<Approval>;
}

tokio::task_local! {
    static AT_HAND: AtHand;
}

/// The person at hand for the calls of one task, and the time they took.
#[derive(Clone)]
pub(crate) struct AtHand {
    person: Arc<dyn Person>,
    waited: PauseClock,
}

/// Run `future` with `person` at hand: the plugins it calls may ask them.
pub async fn with_person<F: Future>(person: Arc<dyn Person>, future: F) -> F::Output {
    AT_HAND
        .scope(
            AtHand {
                person,
                waited: PauseClock::default(),
            },
            future,
        )
        .await
}

/// The person at hand for the calling task, to put at hand again in a task
/// it spawns.
pub fn person_at_hand() -> Option<Arc<dyn Person>> {
    AT_HAND.try_with(|at_hand| at_hand.person.clone()).ok()
}

impl AtHand {
    /// The person at hand for the calling task, if any.
    pub(crate) fn current() -> Option<AtHand> {
        AT_HAND.try_with(Clone::clone).ok()
    }

    /// Ask, and count the wait, as it goes, as time every call of this task
    /// was paused.
    pub(crate) async fn permit(&self, request: PermissionRequest) -> Answer {
        let _waiting = self.waited.begin();
        self.person.permit(request).await
    }

    /// Ask whether a tool call may run, counting the wait as a pause.
    pub(crate) async fn approve(&self, request: ApprovalRequest) -> Approval {
        let _waiting = self.waited.begin();
        self.person.approve(request).await
    }

    pub(crate) fn clock(&self) -> PauseClock {
        self.waited.clone()
    }
}

/// How long a task's calls have waited on a person, counting a wait still
/// going on: a deadline that comes up while the person is thinking is
/// moved, not hit.
#[derive(Debug, Clone, Default)]
pub(crate) struct PauseClock(Arc<Mutex<Waits>>);

#[derive(Debug, Default)]
struct Waits {
    /// Waits that ended.
    done: Duration,
    /// When the waits going on now began, and how many there are: waits
    /// that overlap count once.
    ongoing: Option<(Instant, usize)>,
}

impl PauseClock {
    fn begin(&self) -> Waiting {
        let mut waits = self.0.lock().unwrap();
        waits.ongoing = Some(match waits.ongoing {
            Some((since, count)) => (since, count + 1),
            None => (Instant::now(), 1),
        });
        Waiting(self.clone())
    }

    fn total(&self) -> Duration {
        let waits = self.0.lock().unwrap();
        waits.done
            + waits
                .ongoing
                .map_or(Duration::ZERO, |(since, _)| since.elapsed())
    }

    /// A mark to measure later pauses from.
    pub(crate) fn mark(&self) -> PauseMark {
        PauseMark {
            clock: self.clone(),
            at: self.total(),
        }
    }
}

/// A wait going on; ends when dropped, answered or not.
struct Waiting(PauseClock);

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut waits = self.0 .0.lock().unwrap();
        if let Some((since, count)) = waits.ongoing {
            if count > 1 {
                waits.ongoing = Some((since, count - 1));
            } else {
                waits.done += since.elapsed();
                waits.ongoing = None;
            }
        }
    }
}

/// The pause clock as one call found it when it started.
#[derive(Debug, Clone)]
pub(crate) struct PauseMark {
    clock: PauseClock,
    at: Duration,
}

impl PauseMark {
    /// How long the person was waited on since the mark, a wait still going
    /// on included: for the host's own deadline, which must not fire on a
    /// call that waits for an answer.
    pub(crate) fn paused(&self) -> Duration {
        self.clock.total().saturating_sub(self.at)
    }

    /// The waits since the mark that have ended: for the epoch deadline,
    /// which fires only while wasm runs. A guest that runs while its
    /// question is pending (an HTTP request it did not wait on) is held to
    /// its own time; it gets the person's time only once they answered.
    pub(crate) fn paused_and_answered(&self) -> Duration {
        let done = self.clock.0.lock().unwrap().done;
        done.saturating_sub(self.at)
    }
}

/// The pause since the call started, or none when no person is at hand.
pub(crate) fn paused_since(mark: Option<&PauseMark>) -> Duration {
    mark.map_or(Duration::ZERO, PauseMark::paused)
}

/// The answered waits since the call started; see
/// [`PauseMark::paused_and_answered`].
pub(crate) fn answered_since(mark: Option<&PauseMark>) -> Duration {
    mark.map_or(Duration::ZERO, PauseMark::paused_and_answered)
}
