//! Where a phase's agents run. The orchestrator hands an [`Executor`] the
//! phase's jobs and how many may run at once, and records each one as it
//! comes back; everything else (retries within a job aside: timeouts, gates,
//! bundles, metrics, the git workflow's commits) stays with the
//! orchestrator. [`LocalPool`] runs them as tasks of this process; an
//! executor that sends them to other machines implements the same trait.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::job::{Finished, Job};

/// Runs a phase's jobs.
pub trait Executor: Send + Sync {
    /// Start `jobs`, at most `workers` at once.
    fn start(&self, jobs: Vec<Job>, workers: usize) -> Box<dyn Running>;
}

/// Jobs started by an [`Executor`]. Dropping it stops those still running.
pub trait Running: Send {
    /// The next job to finish; None when every job has come back, or when
    /// the executor lost the rest.
    fn next(&mut self) -> Pin<Box<dyn Future<Output = Option<Finished>> + Send + '_>>;
}

/// Runs jobs as tasks of this process, under a semaphore of `workers`.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalPool;

impl Executor for LocalPool {
    fn start(&self, jobs: Vec<Job>, workers: usize) -> Box<dyn Running> {
        let permits = Arc::new(Semaphore::new(workers.max(1)));
        let mut tasks = JoinSet::new();
        for job in jobs {
            let permits = permits.clone();
            tasks.spawn(async move {
                let _permit = permits
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed");
                job.run().await
            });
        }
        Box::new(LocalTasks { tasks })
    }
}

struct LocalTasks {
    tasks: JoinSet<Finished>,
}

impl Running for LocalTasks {
    fn next(&mut self) -> Pin<Box<dyn Future<Output = Option<Finished>> + Send + '_>> {
        Box::pin(async move {
            while let Some(joined) = self.tasks.join_next().await {
                match joined {
                    Ok(finished) => return Some(finished),
                    // A panic in the host's own task: the agent is unknown;
                    // the orchestrator fails every agent it still has running.
                    Err(error) => tracing::error!("an agent task failed: {error}"),
                }
            }
            None
        })
    }
}
