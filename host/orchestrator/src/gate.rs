//! The person at hand for a phase that nobody is watching: a tool call
//! whose approval setting is `ask` is refused for now and noted, and the
//! phase stops at a gate as a phase approval does; `run approve` or `run
//! reject` decides the noted calls, and the agents that made them run
//! again, finding their calls decided. Requests for grants are refused, as
//! they are with no person at all.

use std::collections::HashMap;
use std::sync::Mutex;

use paracle_runtime::{Answer, Approval, ApprovalRequest, Asking, PermissionRequest, Person};

use crate::run::{CallDecision, GatedCall};

pub struct RunGate {
    decided: HashMap<String, bool>,
    waiting: Mutex<Vec<GatedCall>>,
}

impl RunGate {
    /// A gate that knows the decisions already taken on `calls`.
    pub fn new(calls: &[GatedCall]) -> Self {
        RunGate {
            decided: calls
                .iter()
                .filter_map(|c| match c.decision {
                    CallDecision::Approved => Some((c.key.clone(), true)),
                    CallDecision::Rejected => Some((c.key.clone(), false)),
                    CallDecision::Pending => None,
                })
                .collect(),
            waiting: Mutex::default(),
        }
    }

    /// The calls that were refused for want of a decision, once each.
    pub fn waiting(&self) -> Vec<GatedCall> {
        std::mem::take(&mut *self.waiting.lock().unwrap())
    }
}

impl Person for RunGate {
    fn permit(&self, _request: PermissionRequest) -> Asking<Answer> {
        Box::pin(std::future::ready(Answer::Deny))
    }

    fn approve(&self, request: ApprovalRequest) -> Asking<Approval> {
        let approval = match self.decided.get(&request.key) {
            Some(true) => Approval::Approved,
            Some(false) => Approval::Refused,
            None => {
                let mut waiting = self.waiting.lock().unwrap();
                if !waiting.iter().any(|c| c.key == request.key) {
                    waiting.push(GatedCall {
                        key: request.key,
                        agent: request.agent.unwrap_or_default(),
                        plugin: request.plugin,
                        tool: request.tool,
                        arguments: request.arguments,
                        decision: CallDecision::Pending,
                    });
                }
                Approval::Pending
            }
        };
        Box::pin(std::future::ready(approval))
    }
}
