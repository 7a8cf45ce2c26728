//! Per-plugin call statistics: counts by outcome and a latency histogram that
//! can be merged across processes, so `paracle plugin stats` sums every
//! invocation.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{CallError, CallResult};

/// How one call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    Ok,
    /// The plugin answered with an error.
    PluginError,
    Trap,
    Limit,
    /// The host refused the request before the plugin saw it.
    Rejected,
    /// The plugin tried to reach something it was not granted.
    Denied,
}

impl CallOutcome {
    pub fn of<T>(result: &CallResult<T>) -> Self {
        match result {
            Ok(Ok(_)) => CallOutcome::Ok,
            Ok(Err(_)) => CallOutcome::PluginError,
            Err(error) => Self::of_error(error),
        }
    }

    pub fn of_plain<T>(result: &Result<T, CallError>) -> Self {
        match result {
            Ok(_) => CallOutcome::Ok,
            Err(error) => Self::of_error(error),
        }
    }

    fn of_error(error: &CallError) -> Self {
        match error {
            CallError::Trap { .. } | CallError::Instantiate { .. } => CallOutcome::Trap,
            CallError::InitRejected { .. } => CallOutcome::PluginError,
            CallError::Limit { .. } => CallOutcome::Limit,
            CallError::InvalidRequest { .. } => CallOutcome::Rejected,
            CallError::Denied { .. } => CallOutcome::Denied,
        }
    }
}

/// Latencies are bucketed with 16 linear steps per power of two of
/// nanoseconds: every bucket is within about 6% of the values it holds.
const SUB_BUCKETS: u64 = 16;

fn bucket_of(nanos: u64) -> u32 {
    if nanos < SUB_BUCKETS {
        return nanos as u32;
    }
    let exponent = 63 - nanos.leading_zeros() as u64; // floor(log2)
    let shift = exponent - 4; // 2^4 == SUB_BUCKETS
    let sub = (nanos >> shift) - SUB_BUCKETS;
    ((exponent - 3) * SUB_BUCKETS + sub) as u32
}

/// The middle of a bucket, in nanoseconds.
fn bucket_value(bucket: u32) -> u64 {
    let bucket = bucket as u64;
    if bucket < SUB_BUCKETS {
        return bucket;
    }
    let exponent = bucket / SUB_BUCKETS + 3;
    let sub = bucket % SUB_BUCKETS;
    let shift = exponent - 4;
    let low = (SUB_BUCKETS + sub) << shift;
    low + (1u64 << shift) / 2
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallStats {
    pub calls: u64,
    pub ok: u64,
    pub errors: u64,
    pub traps: u64,
    pub limits: u64,
    pub rejected: u64,
    pub denied: u64,
    pub total_nanos: u128,
    /// Bucket index to count; sparse.
    pub histogram: BTreeMap<u32, u64>,
}

impl CallStats {
    pub fn record(&mut self, outcome: CallOutcome, elapsed: Duration) {
        let nanos = self.count(outcome, elapsed);
        *self.histogram.entry(bucket_of(nanos)).or_default() += 1;
    }

    /// Count a call everywhere but in the histogram; its nanoseconds.
    fn count(&mut self, outcome: CallOutcome, elapsed: Duration) -> u64 {
        self.calls += 1;
        match outcome {
            CallOutcome::Ok => self.ok += 1,
            CallOutcome::PluginError => self.errors += 1,
            CallOutcome::Trap => self.traps += 1,
            CallOutcome::Limit => self.limits += 1,
            CallOutcome::Rejected => self.rejected += 1,
            CallOutcome::Denied => self.denied += 1,
        }
        let nanos = elapsed.as_nanos().min(u64::MAX as u128) as u64;
        self.total_nanos += nanos as u128;
        nanos
    }

    pub fn merge(&mut self, other: &CallStats) {
        self.calls += other.calls;
        self.ok += other.ok;
        self.errors += other.errors;
        self.traps += other.traps;
        self.limits += other.limits;
        self.rejected += other.rejected;
        self.denied += other.denied;
        self.total_nanos += other.total_nanos;
        for (bucket, count) in &other.histogram {
            *self.histogram.entry(*bucket).or_default() += count;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.calls == 0
    }

    /// All failures: the plugin's own errors, traps, limits, rejections and
    /// denials.
    pub fn failures(&self) -> u64 {
        self.errors + self.traps + self.limits + self.rejected + self.denied
    }

    pub fn mean(&self) -> Option<Duration> {
        (self.calls > 0)
            .then(|| Duration::from_nanos((self.total_nanos / self.calls as u128) as u64))
    }

    /// The latency below which `quantile` of the calls fall.
    pub fn percentile(&self, quantile: f64) -> Option<Duration> {
        let total: u64 = self.histogram.values().sum();
        if total == 0 {
            return None;
        }
        let rank = ((quantile * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (bucket, count) in &self.histogram {
            seen += count;
            if seen >= rank {
                return Some(Duration::from_nanos(bucket_value(*bucket)));
            }
        }
        None
    }
}

/// Buckets up to that of `u64::MAX` nanoseconds.
const BUCKETS: usize = ((64 - 3) * SUB_BUCKETS) as usize;

/// A plugin's statistics as its calls are counted. Every call ends here, so
/// the histogram is an array indexed by bucket rather than the sparse map of
/// [`CallStats`], which costs a tree search per call.
pub(crate) struct LiveStats {
    counts: CallStats,
    histogram: Box<[u64; BUCKETS]>,
}

impl Default for LiveStats {
    fn default() -> Self {
        LiveStats {
            counts: CallStats::default(),
            histogram: Box::new([0; BUCKETS]),
        }
    }
}

impl LiveStats {
    pub(crate) fn record(&mut self, outcome: CallOutcome, elapsed: Duration) {
        let nanos = self.counts.count(outcome, elapsed);
        self.histogram[bucket_of(nanos) as usize] += 1;
    }

    pub(crate) fn snapshot(&self) -> CallStats {
        let mut stats = self.counts.clone();
        stats.histogram = (0u32..)
            .zip(self.histogram.iter())
            .filter(|(_, count)| **count > 0)
            .map(|(bucket, count)| (bucket, *count))
            .collect();
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_statistics_read_as_the_sparse_ones() {
        let mut live = LiveStats::default();
        let mut sparse = CallStats::default();
        let outcomes = [CallOutcome::Ok, CallOutcome::Limit, CallOutcome::Denied];
        let spans = [0, 15, 16, 1_000, 123_456_789, u64::MAX];
        for (i, nanos) in spans.into_iter().enumerate() {
            let outcome = outcomes[i % outcomes.len()];
            live.record(outcome, Duration::from_nanos(nanos));
            sparse.record(outcome, Duration::from_nanos(nanos));
        }
        // The largest duration lands in the last bucket, so the array is
        // exactly long enough.
        assert_eq!(bucket_of(u64::MAX) as usize, BUCKETS - 1);
        assert_eq!(live.snapshot(), sparse);
    }

    #[test]
    fn buckets_stay_within_seven_percent() {
        for nanos in [1u64, 15, 16, 17, 100, 1_000, 12_345, 999_999, 1 << 40] {
            let back = bucket_value(bucket_of(nanos)) as f64;
            let error = (back - nanos as f64).abs() / nanos as f64;
            assert!(error <= 0.07, "{nanos} came back as {back}");
        }
    }

    #[test]
    fn percentiles_follow_the_distribution() {
        let mut stats = CallStats::default();
        for _ in 0..98 {
            stats.record(CallOutcome::Ok, Duration::from_micros(10));
        }
        stats.record(CallOutcome::Trap, Duration::from_millis(5));
        stats.record(CallOutcome::PluginError, Duration::from_millis(5));
        let p50 = stats.percentile(0.5).unwrap();
        let p99 = stats.percentile(0.99).unwrap();
        assert!(
            p50 > Duration::from_micros(9) && p50 < Duration::from_micros(11),
            "{p50:?}"
        );
        assert!(p99 > Duration::from_micros(4_600), "{p99:?}");
        assert_eq!(
            (stats.calls, stats.ok, stats.traps, stats.errors),
            (100, 98, 1, 1)
        );
    }

    #[test]
    fn merging_adds_counts_and_histograms() {
        let mut a = CallStats::default();
        a.record(CallOutcome::Ok, Duration::from_micros(3));
        let mut b = CallStats::default();
        b.record(CallOutcome::Limit, Duration::from_micros(3));
        a.merge(&b);
        assert_eq!(a.calls, 2);
        assert_eq!(a.limits, 1);
        assert_eq!(a.histogram.values().sum::<u64>(), 2);
    }
}
