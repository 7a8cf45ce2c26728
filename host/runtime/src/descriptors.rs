//! Descriptors of the host process that plugins hold: the files they open
//! and the sockets they make. Each is the process's own, so each instance
//! may hold a few of each kind, and all plugins together leave the host a
//! reserve for its own files (the registry, statistics, run state, a memory
//! plugin's files), which must never fail because a plugin hoarded.
//!
//! An instance's descriptors are known by their resource-table entries. The
//! count of one instance is brought up to date when it makes a new one, and
//! dropped with its store, so the process-wide count can run ahead of what
//! is really open, never behind it.

use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use wasmtime::component::ResourceTable;

use paracle_policy::Limit;

use crate::incident::Incident;

/// Descriptors the host keeps for itself below the process's limit.
pub const HOST_RESERVE: usize = 256;

/// Descriptors all plugins of the process hold, as their stores last
/// counted them.
static HELD: AtomicUsize = AtomicUsize::new(0);

/// The most descriptors plugins may hold together: the process's soft
/// open-file limit, less the host's reserve. Read once, after the command
/// line raised the limit.
fn budget() -> usize {
    static BUDGET: OnceLock<usize> = OnceLock::new();
    *BUDGET.get_or_init(|| {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit only writes `limit`.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0
            || limit.rlim_cur == libc::RLIM_INFINITY
        {
            return usize::MAX;
        }
        usize::try_from(limit.rlim_cur)
            .unwrap_or(usize::MAX)
            .saturating_sub(HOST_RESERVE)
    })
}

/// The descriptors of one kind that one instance holds.
pub(crate) struct Held {
    reps: Vec<u32>,
    cap: usize,
    what: &'static str,
    /// Whether a table entry is one of these (an entry freed and reused for
    /// something else no longer counts).
    holds: fn(&dyn Any) -> bool,
}

impl Held {
    pub(crate) fn new(cap: usize, what: &'static str, holds: fn(&dyn Any) -> bool) -> Self {
        Held {
            reps: Vec::new(),
            cap,
            what,
            holds,
        }
    }

    /// Whether one more may be made now; if not, the limit the call fails
    /// with.
    pub(crate) fn admit(&mut self, table: &mut ResourceTable) -> Result<(), Incident> {
        let before = self.reps.len();
        let holds = self.holds;
        self.reps
            .retain(|&rep| table.get_any_mut(rep).is_ok_and(|entry| holds(entry)));
        self.reps.sort_unstable();
        self.reps.dedup();
        HELD.fetch_sub(before - self.reps.len(), Ordering::Relaxed);
        if self.reps.len() >= self.cap {
            return Err(Incident::Limit {
                limit: Limit::Handles,
                detail: format!("held more than {} {} at once", self.cap, self.what),
            });
        }
        let held = HELD.load(Ordering::Relaxed);
        if held >= budget() {
            return Err(Incident::Limit {
                limit: Limit::Handles,
                detail: format!(
                    "plugins hold {held} of the process's open files, and the host keeps the last {HOST_RESERVE} for itself"
                ),
            });
        }
        Ok(())
    }

    /// Count the table entry `rep` just made.
    pub(crate) fn push(&mut self, rep: u32) {
        self.reps.push(rep);
        HELD.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        HELD.fetch_sub(self.reps.len(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_string(entry: &dyn Any) -> bool {
        entry.is::<String>()
    }

    #[test]
    fn an_instance_is_held_to_its_cap_and_all_of_them_to_the_budget() {
        let mut table = ResourceTable::new();
        let mut held = Held::new(2, "strings", is_string);
        let a = table.push(String::from("a")).unwrap();
        held.admit(&mut table).unwrap();
        held.push(a.rep());
        let b = table.push(String::from("b")).unwrap();
        held.push(b.rep());
        let refused = held.admit(&mut table);
        assert!(
            matches!(&refused, Err(Incident::Limit { detail, .. }) if detail.contains("2 strings")),
            "{refused:?}"
        );
        // A freed entry no longer counts.
        table.delete(a).unwrap();
        held.admit(&mut table).unwrap();
        drop(held);

        // Past the budget, every instance is refused until some are freed.
        let mut other = Held::new(10, "strings", is_string);
        let spare = budget().saturating_sub(HELD.load(Ordering::Relaxed));
        HELD.fetch_add(spare, Ordering::Relaxed);
        let refused = other.admit(&mut table);
        HELD.fetch_sub(spare, Ordering::Relaxed);
        assert!(
            matches!(&refused, Err(Incident::Limit { detail, .. }) if detail.contains("keeps the last")),
            "{refused:?}"
        );
        other.admit(&mut table).unwrap();
    }
}
