//! The host's own deadline on a call, behind the epoch deadline that stops
//! wasm: it catches a call that is stuck in host code instead, such as a guest
//! waiting on a WASI pollable that never fires.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::{Instant, Sleep};

use crate::person::{paused_since, PauseMark};

/// The call did not finish before its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimedOut;

pin_project_lite::pin_project! {
    /// `future`, bounded by `deadline`. Most calls finish in their first poll
    /// without yielding, so the timer is only armed, and boxed, once the call
    /// yields: that keeps a timer-wheel entry, and its size, off every call.
    pub(crate) struct Deadline<F> {
        #[pin]
        future: F,
        deadline: Instant,
        timer: Option<Pin<Box<Sleep>>>,
        // The time the call's task waited on a person, which does not count.
        pause: Option<PauseMark>,
    }
}

impl<F> Deadline<F> {
    pub(crate) fn new(future: F, deadline: Instant, pause: Option<PauseMark>) -> Self {
        Deadline {
            future,
            deadline,
            timer: None,
            pause,
        }
    }
}

impl<F: Future> Future for Deadline<F> {
    type Output = Result<F::Output, TimedOut>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        let pause = this.pause.as_ref();
        let deadline = *this.deadline + paused_since(pause);
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        loop {
            match timer.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) => {
                    // A person answered in the meantime: the time they took
                    // moves the deadline.
                    let moved = *this.deadline + paused_since(pause);
                    if moved <= timer.deadline() {
                        return Poll::Ready(Err(TimedOut));
                    }
                    timer.as_mut().reset(moved);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_ready_future_passes_through() {
        let deadline = Instant::now() + Duration::from_millis(10);
        assert_eq!(Deadline::new(async { 7 }, deadline, None).await, Ok(7));
    }

    #[tokio::test(start_paused = true)]
    async fn a_future_that_never_ends_times_out() {
        let deadline = Instant::now() + Duration::from_millis(10);
        let outcome = Deadline::new(std::future::pending::<()>(), deadline, None).await;
        assert_eq!(outcome, Err(TimedOut));
    }

    #[tokio::test(start_paused = true)]
    async fn a_future_that_yields_and_ends_in_time_passes() {
        let deadline = Instant::now() + Duration::from_millis(10);
        let slow = async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            "done"
        };
        assert_eq!(Deadline::new(slow, deadline, None).await, Ok("done"));
    }
}
