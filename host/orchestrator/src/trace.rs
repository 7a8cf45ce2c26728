//! The ids that make one run one trace, however many processes and
//! machines take part: the trace id and the run's own span id follow from
//! the run's id, so every process that works on the run derives the same;
//! each attempt of an agent gets a fresh span id, carried in its
//! `agent-started` event and in the task a worker receives.

use sha2::{Digest, Sha256};

/// The W3C trace id of run `run`, 32 hex digits.
pub fn trace_id(run: &str) -> String {
    hex::encode(&Sha256::digest(format!("paracle trace\0{run}").as_bytes())[..16])
}

/// The span id of run `run` itself, the root of its trace, 16 hex digits.
pub fn run_span_id(run: &str) -> String {
    hex::encode(&Sha256::digest(format!("paracle run span\0{run}").as_bytes())[..8])
}

/// A fresh span id, 16 hex digits.
pub fn new_span_id() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the OS has randomness");
    // The all-zero id is invalid.
    bytes[0] |= 1;
    hex::encode(bytes)
}

/// The `traceparent` header (W3C Trace Context) of span `span` in run
/// `run`'s trace.
pub fn traceparent(run: &str, span: &str) -> String {
    format!("00-{}-{span}-01", trace_id(run))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_process_derives_the_same_ids_for_a_run() {
        assert_eq!(trace_id("r1"), trace_id("r1"));
        assert_ne!(trace_id("r1"), trace_id("r2"));
        assert_eq!(trace_id("r1").len(), 32);
        assert_eq!(run_span_id("r1").len(), 16);
        assert_ne!(new_span_id(), new_span_id());
        let header = traceparent("r1", &run_span_id("r1"));
        assert_eq!(header.split('-').count(), 4);
    }
}
