//! The instances of one plugin: at most `max_instances` exist at once, idle
//! ones wait warm in the pool, and a caller that finds every place taken
//! waits for one to come back.
//!
//! One mutex guards the whole state, so a warm call takes the lock once to
//! check out and once to check in, and wakes nobody when nobody waits.

use std::sync::Mutex;

use tokio::sync::Notify;

pub(crate) struct InstancePool<I> {
    state: Mutex<PoolState<I>>,
    returned: Notify,
    max_instances: usize,
}

struct PoolState<I> {
    idle: Vec<I>,
    /// Instances that exist, idle or checked out, plus places reserved for
    /// instances being created.
    live: usize,
    /// Callers waiting for a place.
    waiting: usize,
}

/// What a checkout found: a warm instance, or a free place to create one in.
pub(crate) enum Checkout<'p, I> {
    Warm(I, Place<'p, I>),
    Empty(Place<'p, I>),
}

/// One of the plugin's places for an instance, held for as long as the
/// instance is out of the pool. Dropping it frees the place, so an instance
/// that failed, or whose creation failed, never leaks one.
pub(crate) struct Place<'p, I> {
    pool: &'p InstancePool<I>,
}

impl<I> Drop for Place<'_, I> {
    fn drop(&mut self) {
        let mut state = self.pool.state.lock().unwrap();
        state.live -= 1;
        self.pool.wake_one(&state);
    }
}

impl<I> InstancePool<I> {
    pub(crate) fn new(max_instances: usize) -> Self {
        InstancePool {
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                live: 0,
                waiting: 0,
            }),
            returned: Notify::new(),
            max_instances: max_instances.max(1),
        }
    }

    pub(crate) async fn check_out(&self) -> Checkout<'_, I> {
        loop {
            // Made before the state is read, so a return that happens between
            // the read and the await still wakes this caller.
            let returned = self.returned.notified();
            {
                let mut state = self.state.lock().unwrap();
                if let Some(instance) = state.idle.pop() {
                    return Checkout::Warm(instance, Place { pool: self });
                }
                if state.live < self.max_instances {
                    state.live += 1;
                    return Checkout::Empty(Place { pool: self });
                }
                state.waiting += 1;
            }
            returned.await;
            self.state.lock().unwrap().waiting -= 1;
        }
    }

    /// Put a healthy instance back for the next call; its place stays taken.
    pub(crate) fn check_in(&self, instance: I, place: Place<'_, I>) {
        let mut state = self.state.lock().unwrap();
        state.idle.push(instance);
        self.wake_one(&state);
        drop(state);
        // The instance keeps the place: it is still live, only idle.
        std::mem::forget(place);
    }

    fn wake_one(&self, state: &PoolState<I>) {
        if state.waiting > 0 {
            self.returned.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    fn counts<I>(pool: &InstancePool<I>) -> (usize, usize) {
        let state = pool.state.lock().unwrap();
        (state.idle.len(), state.live)
    }

    #[tokio::test]
    async fn a_returned_instance_is_reused() {
        let pool = InstancePool::new(2);
        let Checkout::Empty(place) = pool.check_out().await else {
            panic!("a new pool has no idle instance");
        };
        pool.check_in(7, place);
        assert_eq!(counts(&pool), (1, 1));
        let Checkout::Warm(instance, place) = pool.check_out().await else {
            panic!("the returned instance should be reused");
        };
        assert_eq!(instance, 7);
        drop(place);
        assert_eq!(counts(&pool), (0, 0), "a dropped place is freed");
    }

    #[tokio::test]
    async fn a_full_pool_makes_callers_wait_for_a_place() {
        let pool = Arc::new(InstancePool::<u32>::new(1));
        let Checkout::Empty(place) = pool.check_out().await else {
            panic!("a new pool has no idle instance");
        };
        let waiter = tokio::spawn({
            let pool = pool.clone();
            async move { matches!(pool.check_out().await, Checkout::Warm(9, _)) }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "the only place is taken");
        pool.check_in(9, place);
        assert!(
            waiter.await.unwrap(),
            "the waiter gets the returned instance"
        );
    }

    #[tokio::test]
    async fn a_failed_instance_frees_its_place_for_a_waiter() {
        let pool = Arc::new(InstancePool::<u32>::new(1));
        let Checkout::Empty(place) = pool.check_out().await else {
            panic!("a new pool has no idle instance");
        };
        let waiter = tokio::spawn({
            let pool = pool.clone();
            async move { matches!(pool.check_out().await, Checkout::Empty(_)) }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(place);
        assert!(
            waiter.await.unwrap(),
            "the waiter may create a new instance"
        );
    }
}
