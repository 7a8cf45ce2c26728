//! The worker's side: pull agent tasks from the work queue, run each in
//! this machine's sandbox as `run next` would (the same adapter, routes,
//! grants and limits), and publish the outcome. A worker holds no grant its
//! task does not carry, takes no component whose bytes do not hash to the
//! digest named, and refuses what it cannot give: a directory outside the
//! ones it shares, the `git` interface, a secret this machine lacks.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Component as PathPart, Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_nats::jetstream::AckKind;
use async_nats::HeaderMap;
use futures_util::StreamExt;
use paracle_contract::{ChatResponse, WitError};
use paracle_orchestrator::hygiene::hide_secrets;
use paracle_orchestrator::run::FailureKind;
use paracle_orchestrator::{llm_call_data, run_attempt, tool_call_data, RunGate};
use paracle_policy::restricted;
use paracle_project::signing::{Subject, TrustList};
use paracle_project::{defaults, Paths, SecretStore};
use paracle_runtime::{
    digest_of, AgentRoutes, CallObserver, Plugin, PluginSettings, Runtime, SecretSource, ToolChoice,
};
use paracle_telemetry::{TaskSpan, Telemetry};
use tokio::sync::Semaphore;

use crate::components::ComponentCache;
use crate::error::ClusterError;
use crate::lattice::Lattice;
use crate::wire::{
    self, decode, encode, PluginRef, Progress, ResultMessage, TaskMessage, WireOutcome, WireResult,
    MAX_MESSAGE_BYTES,
};

/// Plugins kept loaded between tasks.
const MAX_LOADED: usize = 256;

/// How a worker is set up.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// How it names itself in results and in runs' records.
    pub name: String,
    /// Tasks it runs at once.
    pub concurrency: usize,
    /// Directories that are the same here as on the coordinator (a shared
    /// file system): a task's directory grant must lie inside one.
    pub share: Vec<PathBuf>,
    /// Sets the ack wait of the workers' consumer; None keeps the one set.
    pub ack_wait: Option<Duration>,
    /// Environment variables of this machine a task may grant.
    pub allow_env: Vec<String>,
    /// Secrets of this machine's user a task may grant.
    pub allow_secrets: Vec<String>,
    /// Restricted addresses (loopback, private, link-local, metadata) on
    /// this machine's network a task may grant.
    pub allow_net: Vec<IpAddr>,
}

/// A task taken or finished, for a worker's caller to show.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum WorkerEvent {
    Taken {
        run: String,
        phase: String,
        agent: String,
        attempt: u32,
        delivered: u32,
    },
    Finished {
        run: String,
        phase: String,
        agent: String,
        attempt: u32,
        /// `succeeded`, `failed`, or `returned` (its result could not be
        /// kept, and the task goes back to the queue).
        status: &'static str,
        elapsed_ms: u64,
    },
}

/// Hears a worker's [`WorkerEvent`]s.
pub type WorkerListener = Arc<dyn Fn(WorkerEvent) + Send + Sync>;

/// What a worker did, for its caller to report.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WorkerTally {
    pub succeeded: u64,
    pub failed: u64,
}

/// A worker, connected, ready to take tasks.
pub struct Worker {
    lattice: Lattice,
    runtime: Arc<Runtime>,
    options: WorkerOptions,
    share: Vec<PathBuf>,
    /// This machine's per-user files and home: never granted, nor a
    /// directory that holds them.
    own: Vec<PathBuf>,
    trust: TrustList,
    secrets_file: PathBuf,
    secrets: OnceLock<Result<SecretStore, String>>,
    cache: ComponentCache,
    /// Plugins loaded for earlier tasks, by how they were asked for.
    plugins: tokio::sync::Mutex<HashMap<String, Arc<Plugin>>>,
    tally: Mutex<WorkerTally>,
    listener: Option<WorkerListener>,
    telemetry: Option<Arc<Telemetry>>,
}

impl Worker {
    /// A worker on `lattice`, with this machine's per-user files (`paths`:
    /// its trust list, secrets and caches) and `runtime`.
    pub fn new(
        lattice: Lattice,
        runtime: Arc<Runtime>,
        paths: &Paths,
        options: WorkerOptions,
    ) -> Result<Self, ClusterError> {
        let trust =
            TrustList::load(&paths.trust).map_err(|e| ClusterError::Worker(e.to_string()))?;
        let mut share = Vec::new();
        for dir in &options.share {
            let canonical = dir.canonicalize().map_err(|source| ClusterError::Io {
                path: dir.clone(),
                source,
            })?;
            share.push(canonical);
        }
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let own = [
            paths.user_config.parent().map(Path::to_path_buf),
            paths.cache.parent().map(Path::to_path_buf),
            home,
        ]
        .into_iter()
        .flatten()
        .map(|p| p.canonicalize().unwrap_or(p))
        .collect();
        Ok(Worker {
            lattice,
            runtime,
            share,
            own,
            trust,
            secrets_file: paths.secrets.clone(),
            secrets: OnceLock::new(),
            cache: ComponentCache::new(paths.cache.join("worker-components")),
            plugins: tokio::sync::Mutex::default(),
            tally: Mutex::default(),
            listener: None,
            telemetry: None,
            options,
        })
    }

    /// Tell `listener` of every task taken and finished.
    pub fn with_listener(mut self, listener: WorkerListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Trace each task under the attempt that sent it.
    pub fn with_telemetry(mut self, telemetry: Arc<Telemetry>) -> Self {
        self.telemetry = Some(telemetry);
        self
    }

    fn tell(&self, event: WorkerEvent) {
        if let Some(listener) = &self.listener {
            listener(event);
        }
    }

    pub fn name(&self) -> &str {
        &self.options.name
    }

    /// Take and run tasks until `stop` resolves; then finish the tasks
    /// under way and return what was done.
    pub async fn run(
        self: Arc<Self>,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<WorkerTally, ClusterError> {
        let consumer = self.lattice.workers_consumer(self.options.ack_wait).await?;
        let ack_wait = self.lattice.ack_wait().await;
        let slots = Arc::new(Semaphore::new(self.options.concurrency.max(1)));
        let mut running = tokio::task::JoinSet::new();
        tokio::pin!(stop);
        loop {
            let slot = tokio::select! {
                _ = &mut stop => break,
                slot = slots.clone().acquire_owned() => slot.expect("never closed"),
            };
            // One task per free slot: a worker never holds tasks it cannot
            // start, which other workers could be running.
            let fetched = tokio::select! {
                _ = &mut stop => break,
                fetched = async {
                    consumer
                        .batch()
                        .max_messages(1)
                        .expires(Duration::from_secs(5))
                        .messages()
                        .await
                } => fetched,
            };
            let mut batch = match fetched {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!("cannot ask NATS at {} for tasks: {error}", self.lattice.url);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let message = tokio::select! {
                _ = &mut stop => break,
                message = batch.next() => message,
            };
            let Some(Ok(message)) = message else { continue };
            let worker = self.clone();
            running.spawn(async move {
                let _slot = slot;
                worker.take(message, ack_wait).await;
            });
            while running.try_join_next().is_some() {}
        }
        while running.join_next().await.is_some() {}
        Ok(*self.tally.lock().unwrap())
    }

    /// Run one delivered task and publish what came of it; acknowledged
    /// only once its result is kept, so that a worker that dies before
    /// then leaves the task to another.
    async fn take(&self, message: async_nats::jetstream::Message, ack_wait: Duration) {
        let delivered = message
            .info()
            .map(|i| i.delivered.max(1) as u32)
            .unwrap_or(1);
        let started = Instant::now();
        let (message, acker) = message.split();
        let traceparent = message
            .headers
            .as_ref()
            .and_then(|h| h.get("traceparent"))
            .map(|v| v.as_str().to_string());
        let acker = Arc::new(acker);
        let task: TaskMessage = match decode(&message.payload, MAX_MESSAGE_BYTES) {
            Ok(task) => task,
            Err(error) => {
                tracing::warn!("a task was refused: {error}");
                self.refuse_unreadable(&message.payload, delivered, &error)
                    .await;
                let _ = acker.ack_with(AckKind::Term).await;
                return;
            }
        };
        let finished = |status: &'static str| WorkerEvent::Finished {
            run: task.run.clone(),
            phase: task.phase.clone(),
            agent: task.agent.clone(),
            attempt: task.attempt,
            status,
            elapsed_ms: started.elapsed().as_millis() as u64,
        };
        self.notify(
            &task.run,
            &Progress::Taken {
                key: task.key.clone(),
                worker: self.options.name.clone(),
                delivered,
            },
        )
        .await;
        // The coordinator hears who holds the task before anyone else does.
        let _ = self.lattice.client.flush().await;
        self.tell(WorkerEvent::Taken {
            run: task.run.clone(),
            phase: task.phase.clone(),
            agent: task.agent.clone(),
            attempt: task.attempt,
            delivered,
        });
        // Stopped when the task is done, however it ends: a worker whose
        // task went wrong must not keep it from the others.
        let heartbeat = AbortOnDrop({
            let acker = acker.clone();
            tokio::spawn(async move {
                let every = (ack_wait / 3).max(Duration::from_millis(100));
                loop {
                    tokio::time::sleep(every).await;
                    if acker.ack_with(AckKind::Progress).await.is_err() {
                        return;
                    }
                }
            })
        });
        let gate = Arc::new(RunGate::new(&task.decided));
        let span = self.telemetry.as_ref().map(|telemetry| {
            telemetry.task_span(traceparent.as_deref(), &self.options.name, &task.agent)
        });
        let attempted = paracle_runtime::with_person(
            gate.clone() as Arc<dyn paracle_runtime::Person>,
            self.attempt(&task, span.clone()),
        )
        .await;
        if let Some(span) = &span {
            span.end(match &attempted {
                Ok(_) => "ok",
                Err((kind, _)) => kind.as_str(),
            });
        }
        // This machine's secrets the task's plugins hold stay here, even if
        // a plugin repeats one.
        let secrets = self.granted_secret_values(&task);
        let attempted = attempted.map(|mut outcome| {
            hide_secrets(&mut outcome.output, &secrets);
            outcome
        });
        let result = match attempted {
            Ok(outcome) => {
                self.keep_outcome(&wire::outcome_object(&task.key, delivered), &outcome)
                    .await
            }
            Err((kind, mut message)) => {
                hide_secrets(&mut message, &secrets);
                Ok(WireResult::Failed { kind, message })
            }
        };
        let result = match result {
            Ok(result) => result,
            Err(error) => {
                // The outcome could not be kept: the task goes to a worker
                // (maybe this one) again.
                tracing::warn!("task of agent `{}`: {error}", task.agent);
                heartbeat.abort();
                let _ = acker
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                    .await;
                self.tell(finished("returned"));
                return;
            }
        };
        let succeeded = matches!(result, WireResult::Succeeded { .. });
        let reply = ResultMessage {
            key: task.key.clone(),
            worker: self.options.name.clone(),
            delivered,
            elapsed_ms: started.elapsed().as_millis() as u64,
            result,
            waiting: gate
                .waiting()
                .into_iter()
                .map(|mut call| {
                    hide_secrets(&mut call.arguments, &secrets);
                    call
                })
                .collect(),
        };
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", task.key.as_str());
        let subject = format!("{}.{}", wire::results_subject(&task.run), task.key);
        let published = match self
            .lattice
            .jetstream
            .publish_with_headers(subject, headers, encode(&reply).into())
            .await
        {
            Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        heartbeat.abort();
        match published {
            Ok(()) => {
                let _ = acker.double_ack().await;
                {
                    let mut tally = self.tally.lock().unwrap();
                    if succeeded {
                        tally.succeeded += 1;
                    } else {
                        tally.failed += 1;
                    }
                }
                self.tell(finished(if succeeded { "succeeded" } else { "failed" }));
            }
            Err(error) => {
                tracing::warn!(
                    "cannot publish the result of agent `{}`: {error}",
                    task.agent
                );
                let _ = acker
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                    .await;
                self.tell(finished("returned"));
            }
        }
    }

    /// The values of the secrets the task's plugins are granted.
    fn granted_secret_values(&self, task: &TaskMessage) -> Vec<(String, String)> {
        let mut names: Vec<&String> = task
            .tools
            .iter()
            .map(|t| &t.plugin)
            .chain([&task.adapter, &task.provider])
            .chain(task.memory.as_ref())
            .flat_map(|p| &p.grants.secrets)
            .collect();
        names.dedup();
        if names.is_empty() {
            return Vec::new();
        }
        let Some(Ok(store)) = self.secrets.get() else {
            return Vec::new();
        };
        store
            .values()
            .into_iter()
            .filter(|(name, _)| names.contains(&name))
            .collect()
    }

    /// A task this worker cannot read (another version of Paracle sent it,
    /// say) fails its attempt with a result that says so, when its key and
    /// run can be made out; otherwise the coordinator gives it up in time.
    async fn refuse_unreadable(&self, payload: &[u8], delivered: u32, error: &str) {
        let Ok(value) = decode::<serde_json::Value>(payload, MAX_MESSAGE_BYTES) else {
            return;
        };
        let (Some(key), Some(run)) = (
            value.get("key").and_then(|k| k.as_str()),
            value.get("run").and_then(|r| r.as_str()),
        ) else {
            return;
        };
        if key.len() != 32 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return;
        }
        let reply = ResultMessage {
            key: key.to_string(),
            worker: self.options.name.clone(),
            delivered,
            elapsed_ms: 0,
            result: WireResult::Failed {
                kind: FailureKind::Setup,
                message: format!(
                    "worker `{}` cannot read the task ({error}); is it the same version of paracle as the coordinator?",
                    self.options.name
                ),
            },
            waiting: Vec::new(),
        };
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", key);
        let subject = format!("{}.{key}", wire::results_subject(run));
        if let Ok(ack) = self
            .lattice
            .jetstream
            .publish_with_headers(subject, headers, encode(&reply).into())
            .await
        {
            let _ = ack.await;
        }
    }

    async fn notify(&self, run: &str, progress: &Progress) {
        let _ = self
            .lattice
            .client
            .publish(wire::progress_subject(run), encode(progress).into())
            .await;
    }

    /// Put an outcome in the outcomes bucket as `object`.
    async fn keep_outcome(
        &self,
        object: &str,
        outcome: &paracle_contract::Outcome,
    ) -> Result<WireResult, String> {
        let bytes = encode(&WireOutcome::from(outcome));
        let sha256 = wire::sha256_hex(&bytes);
        let mut reader: &[u8] = &bytes;
        self.lattice
            .outcomes
            .put(object, &mut reader)
            .await
            .map_err(|e| format!("cannot put the outcome in the object store: {e}"))?;
        Ok(WireResult::Succeeded {
            bytes: bytes.len() as u64,
            sha256,
        })
    }

    /// One attempt of the task's agent, in this machine's sandbox.
    async fn attempt(
        &self,
        task: &TaskMessage,
        span: Option<Arc<TaskSpan>>,
    ) -> Result<paracle_contract::Outcome, (FailureKind, String)> {
        let adapter = self.plugin(&task.adapter).await?;
        let provider = self.plugin(&task.provider).await?;
        let memory = match &task.memory {
            Some(memory) => Some(self.plugin(memory).await?),
            None => None,
        };
        let mut tools = Vec::new();
        for tool in &task.tools {
            tools.push(ToolChoice {
                plugin: self.plugin(&tool.plugin).await?,
                only: tool.only.clone(),
                approvals: tool.approvals.clone(),
            });
        }
        let routes = AgentRoutes::new(
            adapter.name(),
            Some(provider),
            tools,
            memory,
            Some(task.run.clone()),
            Some(task.agent.clone()),
        )
        .map_err(|e| (FailureKind::Setup, e.to_string()))?
        .observed(Arc::new(CallNotices {
            client: self.lattice.client.clone(),
            subject: wire::progress_subject(&task.run),
            key: task.key.clone(),
            span,
        }));
        run_attempt(
            &adapter,
            &task.agent,
            &task.spec.clone().into(),
            &task.task.clone().into(),
            task.attempt,
            Arc::new(routes),
            Duration::from_millis(task.timeout_ms),
        )
        .await
    }

    /// The plugin a task names, loaded as the coordinator set it up, after
    /// checking that this worker can give it what it is granted.
    async fn plugin(&self, wanted: &PluginRef) -> Result<Arc<Plugin>, (FailureKind, String)> {
        let refused = |message: String| {
            (
                FailureKind::Setup,
                format!(
                    "worker `{}` refused plugin `{}`: {message}",
                    self.options.name, wanted.name
                ),
            )
        };
        // Checked for every task, loaded or not: a directory may have been
        // swapped for a link since the last one.
        self.check_grants(wanted).map_err(refused)?;
        let key = String::from_utf8(encode(wanted)).expect("JSON is UTF-8");
        let mut plugins = self.plugins.lock().await;
        if let Some(plugin) = plugins.get(&key) {
            return Ok(plugin.clone());
        }
        let own = defaults::BUILTINS
            .iter()
            .find(|b| b.name == wanted.name && builtin_digest(b.bytes) == wanted.digest);
        let (bytes, signer) = match own {
            Some(builtin) => (
                builtin.bytes.to_vec(),
                "built into this paracle".to_string(),
            ),
            None => {
                let bytes = self
                    .cache
                    .fetch(&self.lattice, &wanted.digest)
                    .await
                    .map_err(refused)?;
                let verdict = self
                    .trust
                    .check_artifact(
                        &format!("plugin {} ({})", wanted.name, wanted.digest),
                        Subject::Plugin,
                        &wanted.digest,
                        wanted.signature.as_deref(),
                    )
                    .map_err(|e| refused(e.to_string()))?;
                (bytes, verdict.to_string())
            }
        };
        let secrets: Option<Arc<dyn SecretSource>> = if wanted.grants.secrets.is_empty() {
            None
        } else {
            let store = self
                .secrets
                .get_or_init(|| SecretStore::open(&self.secrets_file).map_err(|e| e.to_string()))
                .clone()
                .map_err(refused)?;
            Some(Arc::new(store))
        };
        let config = if wanted.config.trim().is_empty() {
            None
        } else {
            Some(
                serde_json::from_str(&wanted.config)
                    .map_err(|e| refused(format!("its config is not JSON: {e}")))?,
            )
        };
        let settings = PluginSettings {
            name: Some(wanted.name.clone()),
            config,
            grants: wanted.grants.clone(),
            limits: wanted.limits.clone(),
            isolation: wanted.isolation,
            git: None,
            secrets,
            signer: Some(signer),
            approvals: wanted.approvals.clone(),
        };
        let path = PathBuf::from(format!("<{} from the object store>", wanted.digest));
        let plugin = self
            .runtime
            .load_digested(&path, &bytes, wanted.digest.clone(), settings)
            .await
            .map_err(|e| refused(e.to_string()))?;
        if plugin.kind() != wanted.kind {
            return Err(refused(format!(
                "it is a {} plugin, not the {} plugin the task names",
                plugin.kind(),
                wanted.kind
            )));
        }
        let plugin = Arc::new(plugin);
        // Plugins set up for runs long over are let go now and then; a
        // task under way holds its own.
        if plugins.len() >= MAX_LOADED {
            plugins.clear();
        }
        plugins.insert(key, plugin.clone());
        Ok(plugin)
    }

    /// Whether this worker can give a plugin every grant it carries.
    fn check_grants(&self, wanted: &PluginRef) -> Result<(), String> {
        let grants = &wanted.grants;
        if grants.git {
            return Err("it is granted `git`, and a worker has no repository to give it".into());
        }
        if let Some(name) = grants
            .env
            .iter()
            .find(|n| !self.options.allow_env.contains(n))
        {
            return Err(format!(
                "its grant `env:{name}` would hand it this machine's value; start the worker with `--allow-env {name}` if it may"
            ));
        }
        if let Some(name) = grants
            .secrets
            .iter()
            .find(|n| !self.options.allow_secrets.contains(n))
        {
            return Err(format!(
                "its grant `secret:{name}` would hand it this machine's secret; start the worker with `--allow-secret {name}` if it may"
            ));
        }
        for net in &grants.net {
            if let Some(ip) = net.address() {
                if let Some(why) = restricted(ip) {
                    if !self.options.allow_net.contains(&ip) {
                        return Err(format!(
                            "its grant `net:{}` reaches a {why} address on this machine's network; start the worker with `--allow-net {ip}` if it may",
                            net
                        ));
                    }
                }
            }
        }
        for dir in &wanted.grants.dirs {
            let spec = format!(
                "dir:{}:{}:{}",
                dir.host.display(),
                dir.guest,
                if dir.writable { "rw" } else { "ro" }
            );
            if !dir.host.is_absolute()
                || dir
                    .host
                    .components()
                    .any(|p| matches!(p, PathPart::ParentDir))
            {
                return Err(format!("its grant `{spec}` is not an absolute path"));
            }
            if let Some(own) = self
                .own
                .iter()
                .find(|own| own.starts_with(&dir.host) || dir.host.starts_with(own))
            {
                return Err(format!(
                    "its grant `{spec}` reaches {}, this machine's own files",
                    own.display()
                ));
            }
            if !self.share.iter().any(|root| dir.host.starts_with(root)) {
                return Err(format!(
                    "its grant `{spec}` is outside the directories this worker shares; start the worker with `--share DIR` for a directory that is the coordinator's own (a shared file system)"
                ));
            }
            if !is_real_dir(&dir.host) {
                return Err(format!(
                    "its grant `{spec}` names no directory on this machine (or one reached through a link)"
                ));
            }
        }
        Ok(())
    }
}

/// A task aborted when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl AbortOnDrop {
    fn abort(&self) {
        self.0.abort();
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Whether `path` is a directory reached through no symbolic link.
fn is_real_dir(path: &Path) -> bool {
    let mut walked = PathBuf::new();
    for part in path.components() {
        walked.push(part);
        match std::fs::symlink_metadata(&walked) {
            Ok(meta) if meta.file_type().is_symlink() => return false,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

fn builtin_digest(bytes: &'static [u8]) -> String {
    static DIGESTS: OnceLock<Mutex<HashMap<usize, String>>> = OnceLock::new();
    let digests = DIGESTS.get_or_init(Mutex::default);
    digests
        .lock()
        .unwrap()
        .entry(bytes.as_ptr() as usize)
        .or_insert_with(|| digest_of(bytes))
        .clone()
}

/// Tells the coordinator of each call the agent makes, for its events.
struct CallNotices {
    client: async_nats::Client,
    subject: String,
    key: String,
    /// The task's span, when tracing is on: the calls are its children.
    span: Option<Arc<TaskSpan>>,
}

impl CallNotices {
    fn send(&self, progress: Progress) {
        let client = self.client.clone();
        let subject = self.subject.clone();
        tokio::spawn(async move {
            let _ = client.publish(subject, encode(&progress).into()).await;
        });
    }
}

impl CallObserver for CallNotices {
    fn llm_call(
        &self,
        provider: &Plugin,
        elapsed: Duration,
        result: Result<&ChatResponse, &WitError>,
    ) {
        if let Some(span) = &self.span {
            span.llm_call(provider, elapsed, result);
        }
        self.send(Progress::Call {
            key: self.key.clone(),
            llm: true,
            plugin: provider.name().to_string(),
            elapsed_ms: elapsed.as_millis() as u64,
            ok: result.is_ok(),
            data: llm_call_data(provider, result),
        });
    }

    fn tool_call(&self, plugin: &Plugin, tool: &str, elapsed: Duration, ok: bool) {
        if let Some(span) = &self.span {
            span.tool_call(plugin, tool, elapsed, ok);
        }
        self.send(Progress::Call {
            key: self.key.clone(),
            llm: false,
            plugin: plugin.name().to_string(),
            elapsed_ms: elapsed.as_millis() as u64,
            ok,
            data: tool_call_data(plugin, tool),
        });
    }
}
