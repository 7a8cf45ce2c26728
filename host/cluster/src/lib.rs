//! Agents run beyond one machine, on workers, over NATS JetStream.
//!
//! A coordinator (`run next --executor nats`) sends each attempt of a
//! phase's agents as a task to a work-queue stream, with the digests of the
//! plugins it needs and how the operator set them up; the components go to
//! a JetStream object store by digest. Workers (`paracle worker`) pull the
//! tasks, run each agent in their own sandbox, put the outcome in the
//! object store and publish a result. Retries, timeouts, gates, artifacts,
//! bundles and the run's state stay with the coordinator, which writes the
//! artifacts into the run's workspace itself.
//!
//! - [`Lattice`]: the connection, and the streams and buckets both sides use;
//! - [`NatsExecutor`]: the orchestrator's `Executor` over the lattice;
//! - [`Worker`]: the loop that takes tasks and runs them;
//! - `wire`: what crosses the wire, and its bounds;
//! - `components`: components by digest, checked by whoever takes them.

mod components;
mod coordinator;
mod error;
mod lattice;
mod wire;
mod worker;

pub use coordinator::NatsExecutor;
pub use error::ClusterError;
pub use lattice::{Lattice, DEFAULT_ACK_WAIT};
pub use worker::{Worker, WorkerEvent, WorkerListener, WorkerOptions, WorkerTally};
