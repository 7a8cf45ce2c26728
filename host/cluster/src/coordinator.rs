//! The coordinator's side: an [`Executor`] that sends each attempt of a
//! phase's agents to the workers, as a task on the work queue, and waits
//! for its result. The retries, the timeouts, the artifacts, the gate and
//! the run's state stay with the orchestrator, as for agents run here.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use futures_util::StreamExt;
use paracle_contract::Outcome;
use paracle_orchestrator::run::{FailureKind, GatedCall, Placement, PlacementStatus};
use paracle_orchestrator::{
    Attempt, Attempted, Attempts, CallEventKind, Executor, Finished, Job, Running,
};
use paracle_project::Registry;
use paracle_runtime::{ApprovalRequest, Plugin};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, OnceCell, Semaphore};
use tokio::task::JoinSet;

use crate::components::Sent;
use crate::error::ClusterError;
use crate::lattice::Lattice;
use crate::wire::{
    self, decode, encode, PluginRef, Progress, ResultMessage, TaskMessage, ToolRef, WireOutcome,
    WireResult, MAX_MESSAGE_BYTES, MAX_OUTCOME_BYTES, TASKS_SUBJECT,
};

/// Past a task's timeout and the ack wait, how long the coordinator waits
/// for a worker that took it before it counts the worker as gone.
const GRACE: Duration = Duration::from_secs(10);

/// How often a waiting attempt looks in the results stream itself, in case
/// a result went by while the connection was down.
const LOOK_AGAIN: Duration = Duration::from_secs(5);

/// How long a task may wait for a worker before the coordinator says so.
const NO_WORKER_WARNING: Duration = Duration::from_secs(30);

/// The longest ack wait the coordinator believes, whatever the consumer
/// says.
const MAX_ACK_WAIT: Duration = Duration::from_secs(3600);

/// How long reading an outcome from the object store may take.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Tool calls one result may hold for approval.
const MAX_HELD_CALLS: usize = 64;

/// A name a worker or plugin gives, as it is kept and shown: escaped, and
/// cut short.
fn clip(text: &str) -> String {
    paracle_base::shown::clipped(text, 128)
}

/// Sends a phase's agents to the workers of a NATS lattice.
pub struct NatsExecutor {
    shared: Arc<Shared>,
}

struct Shared {
    lattice: Lattice,
    sent: Sent,
}

impl NatsExecutor {
    /// Connect to NATS at `url`. An unreachable server is an error now,
    /// before any run is touched.
    pub async fn connect(url: &str, timeout: Duration) -> Result<Self, ClusterError> {
        let lattice = Lattice::connect(url, "paracle-coordinator", timeout).await?;
        Ok(NatsExecutor::on(lattice))
    }

    pub fn on(lattice: Lattice) -> Self {
        NatsExecutor {
            shared: Arc::new(Shared {
                lattice,
                sent: Sent::default(),
            }),
        }
    }
}

impl Executor for NatsExecutor {
    fn start<'a>(&'a self, workers: usize, registry: &'a Registry) -> Box<dyn Running + 'a> {
        Box::new(NatsRunning {
            shared: self.shared.clone(),
            registry,
            permits: Arc::new(Semaphore::new(workers.max(1))),
            router: Arc::new(OnceCell::new()),
            tasks: JoinSet::new(),
        })
    }

    fn reaches_person(&self) -> bool {
        false
    }
}

struct NatsRunning<'a> {
    shared: Arc<Shared>,
    registry: &'a Registry,
    /// The phase's cap on agents at once, across all workers: a task is
    /// sent only when one of these is free.
    permits: Arc<Semaphore>,
    router: Arc<OnceCell<Arc<Router>>>,
    tasks: JoinSet<Finished>,
}

impl Running for NatsRunning<'_> {
    fn spawn(&mut self, job: Job) {
        let person = paracle_runtime::person_at_hand();
        let plan = match self.plan(&job) {
            Ok(plan) => plan,
            Err(error) => {
                let name = job.name().to_string();
                self.tasks.spawn(async move {
                    Finished::lost(&name, FailureKind::Setup, error.to_string())
                });
                return;
            }
        };
        let shared = self.shared.clone();
        let permits = self.permits.clone();
        let router = self.router.clone();
        self.tasks.spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let work = async {
                let name = job.name().to_string();
                let router = match router
                    .get_or_try_init(|| Router::start(&shared.lattice, job.run_id()))
                    .await
                {
                    Ok(router) => router.clone(),
                    Err(error) => {
                        return Finished::lost(&name, FailureKind::Setup, error.to_string())
                    }
                };
                for (plugin, digest) in &plan.uploads {
                    if let Err(error) = shared.sent.ensure(&shared.lattice, plugin, digest).await {
                        return Finished::lost(&name, FailureKind::Setup, error.to_string());
                    }
                }
                job.run_with(Remote {
                    shared: shared.clone(),
                    router,
                    plan,
                    picked_up: None,
                    placements: Vec::new(),
                })
                .await
            };
            match person {
                Some(person) => paracle_runtime::with_person(person, work).await,
                None => work.await,
            }
        });
    }

    fn next(&mut self) -> Pin<Box<dyn Future<Output = Option<Finished>> + Send + '_>> {
        Box::pin(async move {
            while let Some(joined) = self.tasks.join_next().await {
                match joined {
                    Ok(finished) => return Some(finished),
                    Err(error) => tracing::error!("an agent's task failed: {error}"),
                }
            }
            None
        })
    }
}

/// What one agent's tasks name, and the components to put in the store
/// before the first is sent.
struct Plan {
    adapter: PluginRef,
    provider: PluginRef,
    memory: Option<PluginRef>,
    tools: Vec<ToolRef>,
    /// Plugin names and the digests of their components.
    uploads: Vec<(String, String)>,
}

impl NatsRunning<'_> {
    fn plan(&self, job: &Job) -> Result<Plan, ClusterError> {
        let mut uploads = Vec::new();
        let mut refer = |plugin: &Arc<Plugin>| -> Result<PluginRef, ClusterError> {
            let signature = self.shared.sent.note(plugin.digest(), || {
                self.registry
                    .component(plugin.name(), plugin.digest())
                    .map_err(|e| ClusterError::Component {
                        plugin: plugin.name().to_string(),
                        message: e.to_string(),
                    })
            })?;
            uploads.push((plugin.name().to_string(), plugin.digest().to_string()));
            Ok(PluginRef {
                name: plugin.name().to_string(),
                digest: plugin.digest().to_string(),
                kind: plugin.kind(),
                config: plugin.config().to_string(),
                grants: plugin.grants().clone(),
                limits: plugin.limits().clone(),
                isolation: plugin.isolation(),
                approvals: plugin.approvals().clone(),
                signature,
            })
        };
        let reaches = job.reaches();
        let adapter = refer(job.adapter())?;
        let provider = refer(&reaches.provider)?;
        let memory = reaches.memory.as_ref().map(&mut refer).transpose()?;
        let mut tools = Vec::new();
        for choice in &reaches.tools {
            tools.push(ToolRef {
                plugin: refer(&choice.plugin)?,
                only: choice.only.clone(),
                approvals: choice.approvals.clone(),
            });
        }
        Ok(Plan {
            adapter,
            provider,
            memory,
            tools,
            uploads,
        })
    }
}

/// Which attempt of an agent was sent, under which key: kept in NATS, so
/// that a coordinator that died while it waited picks the attempt up.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Dispatched {
    attempt: u32,
    key: String,
}

/// The journal's subject for an agent of a phase of a run.
fn journal_key(job: &Job) -> String {
    format!(
        "{}.{}",
        wire::JOURNAL_PREFIX,
        wire::token(&format!(
            "{}\0{}\0{}\0{}",
            job.run_id(),
            job.phase(),
            job.name(),
            job.prior_attempts()
        ))
    )
}

fn new_key() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS has randomness");
    hex::encode(bytes)
}

/// The attempts of one job, each a task for the workers.
struct Remote {
    shared: Arc<Shared>,
    router: Arc<Router>,
    plan: Plan,
    /// The attempt a coordinator before this one sent, to pick up.
    picked_up: Option<Dispatched>,
    placements: Vec<Placement>,
}

impl Attempts for Remote {
    fn started(&mut self, job: &Job) -> Pin<Box<dyn Future<Output = u32> + Send + '_>> {
        let resumed = job.resumed();
        let key = journal_key(job);
        Box::pin(async move {
            if !resumed {
                return 0;
            }
            let entry = self
                .shared
                .lattice
                .journal
                .get_last_raw_message_by_subject(&key)
                .await
                .ok();
            let dispatched: Option<Dispatched> =
                entry.and_then(|message| decode(&message.payload, MAX_MESSAGE_BYTES).ok());
            let attempt = dispatched.as_ref().map_or(0, |d| d.attempt);
            self.picked_up = dispatched;
            attempt
        })
    }

    fn attempt<'a>(
        &'a mut self,
        job: &'a Job,
        attempt: &'a Attempt,
    ) -> Pin<Box<dyn Future<Output = Attempted> + Send + 'a>> {
        Box::pin(self.attempt_remotely(job, attempt))
    }

    fn placements(&mut self) -> Vec<Placement> {
        std::mem::take(&mut self.placements)
    }
}

impl Remote {
    async fn attempt_remotely(&mut self, job: &Job, attempt: &Attempt) -> Attempted {
        let span_id = attempt.span_id.as_str();
        let attempt = attempt.number;
        let lattice = &self.shared.lattice;
        let setup = |message: String| Err((FailureKind::Setup, message));
        let (key, picked_up) = match self.picked_up.take() {
            Some(dispatched) if dispatched.attempt == attempt => (dispatched.key, true),
            _ => (new_key(), false),
        };
        let mut notices = self.router.wait(&key);
        let _waiting = Unwait {
            router: self.router.clone(),
            key: key.clone(),
        };
        if picked_up {
            // Its result may have come while this coordinator was down.
            if let Some(result) = self.router.look_up(lattice, job.run_id(), &key).await {
                return self.settle(job, attempt, &key, result).await;
            }
        } else {
            let entry = encode(&Dispatched {
                attempt,
                key: key.clone(),
            });
            let noted = match lattice
                .jetstream
                .publish(journal_key(job), entry.into())
                .await
            {
                Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
                Err(error) => Err(error.to_string()),
            };
            if let Err(error) = noted {
                return setup(format!(
                    "cannot note the task in NATS at {}: {error}",
                    lattice.url
                ));
            }
        }
        let task = TaskMessage {
            key: key.clone(),
            run: job.run_id().to_string(),
            phase: job.phase().to_string(),
            agent: job.name().to_string(),
            attempt,
            timeout_ms: job.timeout().as_millis() as u64,
            adapter: self.plan.adapter.clone(),
            provider: self.plan.provider.clone(),
            memory: self.plan.memory.clone(),
            tools: self.plan.tools.clone(),
            spec: job.spec().into(),
            task: job.task().into(),
            decided: job.decided_calls().to_vec(),
        };
        let mut headers = HeaderMap::new();
        // The worker's spans belong to this attempt's, in the run's trace.
        headers.insert(
            "traceparent",
            paracle_orchestrator::trace::traceparent(job.run_id(), span_id).as_str(),
        );
        // A task sent again under the same key (a coordinator picking up
        // after a crash) is dropped by JetStream as a duplicate.
        headers.insert("Nats-Msg-Id", key.as_str());
        let sent = lattice
            .jetstream
            .publish_with_headers(TASKS_SUBJECT, headers, encode(&task).into())
            .await;
        match sent {
            Ok(ack) => {
                if let Err(error) = ack.await {
                    return setup(format!(
                        "NATS at {} did not keep the task: {error}",
                        lattice.url
                    ));
                }
            }
            Err(error) => {
                return setup(format!(
                    "cannot send the task to NATS at {}: {error}",
                    lattice.url
                ))
            }
        }

        let sent_at = Instant::now();
        let ack_wait = self.router.ack_wait;
        // However the notices go, a task is given up once every delivery it
        // may have had could have run out its time.
        let last_chance = tokio::time::Instant::now()
            + (job.timeout() + ack_wait) * crate::lattice::MAX_DELIVER as u32
            + GRACE;
        let mut holder: Option<(String, u32)> = None;
        let mut deadline: Option<tokio::time::Instant> = None;
        let mut warned = false;
        let mut look_again = tokio::time::interval(LOOK_AGAIN);
        look_again.tick().await;
        loop {
            let give_up =
                tokio::time::sleep_until(deadline.map_or(last_chance, |at| at.min(last_chance)));
            tokio::select! {
                notice = notices.recv() => match notice {
                    Some(Notice::Taken { worker, delivered }) => {
                        // Only a later delivery moves the task on; a notice
                        // sent again changes nothing.
                        let delivered = delivered.min(crate::lattice::MAX_DELIVER as u32);
                        if holder.as_ref().is_some_and(|(_, seen)| delivered <= *seen) {
                            continue;
                        }
                        let worker = clip(&worker);
                        if let Some((before, _)) = holder.replace((worker.clone(), delivered)) {
                            // Delivered again: the worker that held it went.
                            self.placements.push(Placement {
                                attempt,
                                worker: before,
                                status: PlacementStatus::Interrupted,
                            });
                        } else if delivered > 1 {
                            self.placements.push(Placement {
                                attempt,
                                worker: "an unknown worker".into(),
                                status: PlacementStatus::Interrupted,
                            });
                        }
                        deadline = Some(tokio::time::Instant::now() + job.timeout() + ack_wait + GRACE);
                    }
                    Some(Notice::Call { llm, plugin, elapsed_ms, ok, data }) => {
                        let Some(mut data) = call_data(llm, &data) else { continue };
                        // Made on a worker, which traces it itself.
                        let worker = holder.as_ref().map_or("", |(worker, _)| worker.as_str());
                        data.insert("worker".into(), serde_json::Value::from(worker));
                        let data = serde_json::Value::Object(data);
                        let plugin = clip(&plugin);
                        let kind = if llm { CallEventKind::Llm } else { CallEventKind::Tool };
                        job.emit_call(kind, &plugin, Duration::from_millis(elapsed_ms), ok, data);
                    }
                    Some(Notice::Result(result)) => return self.settle(job, attempt, &key, *result).await,
                    None => return setup("the coordinator stopped listening for results".into()),
                },
                _ = look_again.tick() => {
                    if let Some(result) = self.router.look_up(lattice, job.run_id(), &key).await {
                        return self.settle(job, attempt, &key, result).await;
                    }
                    if holder.is_none() && !warned && sent_at.elapsed() >= NO_WORKER_WARNING {
                        warned = true;
                        tracing::warn!(
                            "no worker has taken agent `{}`'s task for {}s; is `paracle worker --nats {}` running?",
                            job.name(),
                            NO_WORKER_WARNING.as_secs(),
                            lattice.url
                        );
                    }
                }
                _ = give_up => {
                    let Some((worker, _)) = holder.take() else {
                        return Err((
                            FailureKind::Interrupted,
                            format!(
                                "no worker took the task in {}; is `paracle worker --nats {}` running?",
                                humantime::format_duration(Duration::from_secs(sent_at.elapsed().as_secs())),
                                lattice.url
                            ),
                        ));
                    };
                    self.placements.push(Placement {
                        attempt,
                        worker: worker.clone(),
                        status: PlacementStatus::Interrupted,
                    });
                    return Err((
                        FailureKind::Interrupted,
                        format!(
                            "worker `{worker}` stopped answering, and no other worker took the task up (it is given up after {} deliveries)",
                            crate::lattice::MAX_DELIVER
                        ),
                    ));
                }
            }
        }
    }

    /// What a worker's result comes to, with its outcome read from the
    /// object store and checked against the digest the result names.
    async fn settle(
        &mut self,
        job: &Job,
        attempt: u32,
        key: &str,
        result: ResultMessage,
    ) -> Attempted {
        if result.key != key {
            return Err((
                FailureKind::Error,
                "a result for another task came under this one's subject; it was not taken".into(),
            ));
        }
        let worker = clip(&result.worker);
        let delivered = result
            .delivered
            .clamp(1, crate::lattice::MAX_DELIVER as u32);
        if delivered > 1
            && !self
                .placements
                .iter()
                .any(|p| p.attempt == attempt && p.status == PlacementStatus::Interrupted)
        {
            for _ in 1..delivered {
                self.placements.push(Placement {
                    attempt,
                    worker: "an unknown worker".into(),
                    status: PlacementStatus::Interrupted,
                });
            }
        }
        forward_to_gate(job, result.waiting).await;
        let outcome = match result.result {
            WireResult::Failed { kind, message } => {
                let message: String = message.chars().take(4096).collect();
                Err((kind, format!("on worker `{worker}`: {message}")))
            }
            WireResult::Succeeded { bytes, sha256 } => self
                .outcome(&wire::outcome_object(key, result.delivered), bytes, &sha256)
                .await
                .map_err(|message| {
                    (
                        FailureKind::Error,
                        format!("the outcome worker `{worker}` sent: {message}"),
                    )
                }),
        };
        self.placements.push(Placement {
            attempt,
            worker,
            status: if outcome.is_ok() {
                PlacementStatus::Succeeded
            } else {
                PlacementStatus::Failed
            },
        });
        outcome
    }

    async fn outcome(&self, object: &str, bytes: u64, sha256: &str) -> Result<Outcome, String> {
        if bytes > MAX_OUTCOME_BYTES as u64 {
            return Err(format!(
                "{bytes} bytes, over the limit of {MAX_OUTCOME_BYTES}"
            ));
        }
        tokio::time::timeout(READ_TIMEOUT, self.read_outcome(object, bytes, sha256))
            .await
            .map_err(|_| {
                format!(
                    "reading it from the object store took over {}s",
                    READ_TIMEOUT.as_secs()
                )
            })?
    }

    async fn read_outcome(
        &self,
        object: &str,
        bytes: u64,
        sha256: &str,
    ) -> Result<Outcome, String> {
        let mut object = self
            .shared
            .lattice
            .outcomes
            .get(object)
            .await
            .map_err(|e| format!("not in the object store: {e}"))?;
        if object.info().size as u64 != bytes {
            return Err(format!(
                "the object store holds {} bytes, not the {bytes} the result names",
                object.info().size
            ));
        }
        let mut content = Vec::with_capacity(bytes as usize);
        (&mut object)
            .take(bytes + 1)
            .read_to_end(&mut content)
            .await
            .map_err(|e| format!("cannot read it from the object store: {e}"))?;
        if wire::sha256_hex(&content) != sha256 {
            return Err("its bytes do not hash to the sha256 the result names".into());
        }
        let outcome: WireOutcome = decode(&content, MAX_OUTCOME_BYTES)?;
        Ok(outcome.into())
    }
}

/// Tool calls a worker held for a person's approval go to the phase's
/// gate, as calls held here do.
async fn forward_to_gate(job: &Job, waiting: Vec<GatedCall>) {
    let Some(person) = paracle_runtime::person_at_hand() else {
        return;
    };
    for call in waiting.into_iter().take(MAX_HELD_CALLS) {
        let request = ApprovalRequest {
            plugin: clip(&call.plugin),
            digest: String::new(),
            tool: clip(&call.tool),
            arguments_bytes: call.arguments.len(),
            arguments: paracle_base::shown::clipped(&call.arguments, 4096),
            caller: job.adapter().name().to_string(),
            // Whatever the worker says, the call is this agent's.
            agent: Some(job.name().to_string()),
            run: Some(job.run_id().to_string()),
            key: clip(&call.key),
        };
        person.approve(request).await;
    }
}

/// What a waiting attempt hears of its task.
enum Notice {
    Taken {
        worker: String,
        delivered: u32,
    },
    Call {
        llm: bool,
        plugin: String,
        elapsed_ms: u64,
        ok: bool,
        data: serde_json::Value,
    },
    Result(Box<ResultMessage>),
}

/// Hands what workers publish about a run's tasks to the attempts waiting
/// on them, by key.
struct Router {
    waiting: Mutex<HashMap<String, mpsc::UnboundedSender<Notice>>>,
    ack_wait: Duration,
    _listening: tokio::task::JoinHandle<()>,
}

impl Router {
    async fn start(lattice: &Lattice, run: &str) -> Result<Arc<Router>, ClusterError> {
        let nats = |e: async_nats::SubscribeError| ClusterError::Nats {
            url: lattice.url.clone(),
            message: e.to_string(),
        };
        let mut results = lattice
            .client
            .subscribe(format!("{}.>", wire::results_subject(run)))
            .await
            .map_err(nats)?;
        let mut progress = lattice
            .client
            .subscribe(wire::progress_subject(run))
            .await
            .map_err(nats)?;
        // The subscriptions are in place once the server has seen them, and
        // only then may a task be sent.
        lattice
            .client
            .flush()
            .await
            .map_err(|e| ClusterError::Nats {
                url: lattice.url.clone(),
                message: e.to_string(),
            })?;
        let ack_wait = lattice.ack_wait().await.min(MAX_ACK_WAIT);
        Ok(Arc::new_cyclic(|router: &std::sync::Weak<Router>| {
            let router = router.clone();
            let listening = tokio::spawn(async move {
                loop {
                    let (key, notice) = tokio::select! {
                        Some(message) = results.next() => {
                            match decode::<ResultMessage>(&message.payload, MAX_MESSAGE_BYTES) {
                                Ok(result) => (result.key.clone(), Notice::Result(Box::new(result))),
                                Err(error) => {
                                    tracing::warn!("a result on {} was refused: {error}", message.subject);
                                    continue;
                                }
                            }
                        }
                        Some(message) = progress.next() => {
                            match decode::<Progress>(&message.payload, MAX_MESSAGE_BYTES) {
                                Ok(Progress::Taken { key, worker, delivered }) => (key, Notice::Taken { worker, delivered }),
                                Ok(Progress::Call { key, llm, plugin, elapsed_ms, ok, data }) => {
                                    (key, Notice::Call { llm, plugin, elapsed_ms, ok, data })
                                }
                                Err(_) => continue,
                            }
                        }
                        else => return,
                    };
                    let Some(router) = router.upgrade() else {
                        return;
                    };
                    let sender = router.waiting.lock().unwrap().get(&key).cloned();
                    if let Some(sender) = sender {
                        let _ = sender.send(notice);
                    }
                }
            });
            Router {
                waiting: Mutex::default(),
                ack_wait,
                _listening: listening,
            }
        }))
    }

    /// Hear what comes of task `key`.
    fn wait(&self, key: &str) -> mpsc::UnboundedReceiver<Notice> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.waiting.lock().unwrap().insert(key.to_string(), sender);
        receiver
    }

    /// The result of task `key`, if the results stream holds one.
    async fn look_up(&self, lattice: &Lattice, run: &str, key: &str) -> Option<ResultMessage> {
        let subject = format!("{}.{key}", wire::results_subject(run));
        let message = lattice
            .results
            .get_last_raw_message_by_subject(&subject)
            .await
            .ok()?;
        decode::<ResultMessage>(&message.payload, MAX_MESSAGE_BYTES)
            .ok()
            .filter(|result| result.key == key)
    }
}

/// Stops a task's notices when its attempt is over.
struct Unwait {
    router: Arc<Router>,
    key: String,
}

impl Drop for Unwait {
    fn drop(&mut self) {
        self.router.waiting.lock().unwrap().remove(&self.key);
    }
}

/// What a call notice from a worker may say, rebuilt from its known fields
/// with their sizes bounded; None for a notice that is not an object.
fn call_data(
    llm: bool,
    data: &serde_json::Value,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    let fields = data.as_object()?;
    let mut kept = serde_json::Map::new();
    let texts: &[&str] = if llm {
        &["model", "finish_reason", "digest", "error"]
    } else {
        &["tool", "digest"]
    };
    for name in texts {
        if let Some(text) = fields.get(*name).and_then(|v| v.as_str()) {
            kept.insert(name.to_string(), clip(text).into());
        }
    }
    for name in ["prompt_tokens", "completion_tokens", "tool_calls"] {
        if let Some(n) = fields.get(name).and_then(|v| v.as_u64()) {
            kept.insert(name.to_string(), n.into());
        }
    }
    Some(kept)
}

impl Drop for Router {
    fn drop(&mut self) {
        self._listening.abort();
    }
}
