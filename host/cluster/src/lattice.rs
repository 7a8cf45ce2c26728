//! The NATS side: one connection, and the JetStream streams, consumer and
//! buckets coordinators and workers share, made by whoever comes first.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, object_store, stream};

use crate::error::ClusterError;
use crate::wire::{
    COMPONENTS_BUCKET, JOURNAL_PREFIX, JOURNAL_STREAM, OUTCOMES_BUCKET, RESULTS_PREFIX,
    RESULTS_STREAM, TASKS_STREAM, TASKS_SUBJECT, WORKERS_CONSUMER,
};

/// How long a worker may go without word on a task it holds before the
/// task goes to another worker: a worker that runs one says so every third
/// of this, so only a dead or stuck one misses it.
pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);

/// A task delivered this many times (each worker that held it died) is
/// given up, and its attempt fails.
pub(crate) const MAX_DELIVER: i64 = 5;

/// How long outcomes and the dispatch journal are kept for a coordinator
/// that is down to find.
const KEPT_FOR: Duration = Duration::from_secs(7 * 24 * 3600);

/// How long a message id is remembered, so that a task sent again by a
/// coordinator picking up after a crash is not queued twice.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(3600);

/// A connection to NATS, with JetStream's streams and buckets ready.
#[derive(Clone)]
pub struct Lattice {
    pub(crate) client: async_nats::Client,
    pub(crate) jetstream: jetstream::Context,
    pub(crate) url: String,
    pub(crate) results: stream::Stream,
    pub(crate) tasks: stream::Stream,
    pub(crate) components: object_store::ObjectStore,
    pub(crate) outcomes: object_store::ObjectStore,
    pub(crate) journal: stream::Stream,
}

impl Lattice {
    /// Connect to the NATS server at `url`, within `timeout`, and make the
    /// streams and buckets that are not there yet. A server that cannot be
    /// reached, or runs without JetStream, is an error that says so.
    pub async fn connect(url: &str, name: &str, timeout: Duration) -> Result<Self, ClusterError> {
        let unreachable = |message: String| ClusterError::Unreachable {
            url: url.to_string(),
            message,
        };
        let options = async_nats::ConnectOptions::new()
            .name(name)
            .connection_timeout(timeout)
            .request_timeout(Some(Duration::from_secs(10)));
        // The first connection is tried once: a wrong address is said at
        // once, not retried forever.
        let client = tokio::time::timeout(timeout, options.connect(url))
            .await
            .map_err(|_| {
                unreachable(format!(
                    "no answer within {}",
                    humantime::format_duration(timeout)
                ))
            })?
            .map_err(|e| unreachable(e.to_string()))?;
        let jetstream = jetstream::new(client.clone());
        let setup = |what: &str, error: String| ClusterError::Setup {
            url: url.to_string(),
            what: what.to_string(),
            message: error,
        };
        let tasks = jetstream
            .get_or_create_stream(stream::Config {
                name: TASKS_STREAM.to_string(),
                description: Some("Paracle agent tasks waiting for a worker".into()),
                subjects: vec![TASKS_SUBJECT.to_string()],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                duplicate_window: DUPLICATE_WINDOW,
                ..Default::default()
            })
            .await
            .map_err(|e| setup(TASKS_STREAM, jetstream_hint(e.to_string())))?;
        let results = jetstream
            .get_or_create_stream(stream::Config {
                name: RESULTS_STREAM.to_string(),
                description: Some("Paracle agent outcomes, per run".into()),
                subjects: vec![format!("{RESULTS_PREFIX}.>")],
                retention: stream::RetentionPolicy::Limits,
                storage: stream::StorageType::File,
                max_age: KEPT_FOR,
                duplicate_window: DUPLICATE_WINDOW,
                ..Default::default()
            })
            .await
            .map_err(|e| setup(RESULTS_STREAM, jetstream_hint(e.to_string())))?;
        let components = object_bucket(&jetstream, COMPONENTS_BUCKET, Duration::ZERO)
            .await
            .map_err(|e| setup(COMPONENTS_BUCKET, e))?;
        let outcomes = object_bucket(&jetstream, OUTCOMES_BUCKET, KEPT_FOR)
            .await
            .map_err(|e| setup(OUTCOMES_BUCKET, e))?;
        // One message per agent's subject, the last kept: what a key-value
        // bucket is, on any JetStream server.
        let journal = jetstream
            .get_or_create_stream(stream::Config {
                name: JOURNAL_STREAM.to_string(),
                description: Some("Which attempt of each agent a Paracle coordinator sent".into()),
                subjects: vec![format!("{JOURNAL_PREFIX}.>")],
                retention: stream::RetentionPolicy::Limits,
                storage: stream::StorageType::File,
                max_messages_per_subject: 1,
                max_age: KEPT_FOR,
                ..Default::default()
            })
            .await
            .map_err(|e| setup(JOURNAL_STREAM, jetstream_hint(e.to_string())))?;
        Ok(Lattice {
            client,
            jetstream,
            url: url.to_string(),
            results,
            tasks,
            components,
            outcomes,
            journal,
        })
    }

    /// The consumer workers pull tasks from, made with `ack_wait` if it is
    /// not there; `set` changes the ack wait of one that is.
    pub(crate) async fn workers_consumer(
        &self,
        ack_wait: Option<Duration>,
    ) -> Result<consumer::PullConsumer, ClusterError> {
        let config = consumer::pull::Config {
            durable_name: Some(WORKERS_CONSUMER.to_string()),
            description: Some("Paracle workers".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: ack_wait.unwrap_or(DEFAULT_ACK_WAIT),
            max_deliver: MAX_DELIVER,
            ..Default::default()
        };
        let made = match ack_wait {
            Some(_) => self
                .tasks
                .create_consumer(config)
                .await
                .map_err(|e| e.to_string()),
            None => self
                .tasks
                .get_or_create_consumer(WORKERS_CONSUMER, config)
                .await
                .map_err(|e| e.to_string()),
        };
        made.map_err(|message| ClusterError::Setup {
            url: self.url.clone(),
            what: WORKERS_CONSUMER.to_string(),
            message,
        })
    }

    /// How long the workers' consumer waits for word on a task, as set.
    pub(crate) async fn ack_wait(&self) -> Duration {
        match self.tasks.clone().consumer_info(WORKERS_CONSUMER).await {
            Ok(info) => info.config.ack_wait,
            Err(_) => DEFAULT_ACK_WAIT,
        }
    }

    /// The server's address, as given.
    pub fn url(&self) -> &str {
        &self.url
    }
}

async fn object_bucket(
    jetstream: &jetstream::Context,
    bucket: &str,
    max_age: Duration,
) -> Result<object_store::ObjectStore, String> {
    if let Ok(store) = jetstream.get_object_store(bucket).await {
        return Ok(store);
    }
    jetstream
        .create_object_store(object_store::Config {
            bucket: bucket.to_string(),
            max_age,
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(|e| jetstream_hint(e.to_string()))
}

/// A JetStream error, with what to do when the server runs without it.
fn jetstream_hint(message: String) -> String {
    if message.to_lowercase().contains("not enabled") || message.contains("no responders") {
        format!("{message}; is JetStream on? Start the server with `nats-server -js`")
    } else {
        message
    }
}
