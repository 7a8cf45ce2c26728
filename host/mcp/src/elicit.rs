//! Asking the client's user: a plugin's request for a grant becomes an
//! `elicitation/create` form with one choice, sent to the client that made
//! the call, if it declared the capability. Its user answers in the
//! client's own UI; the model never sees the question.

use std::sync::Arc;

use rmcp::model::{ElicitRequestParams, ElicitationAction, ElicitationSchema};
use rmcp::service::{ElicitationMode, Peer, RoleServer};
use serde_json::json;

use paracle_project::{
    Asker, CallQuestion, Choice, Gatekeeper, PromptPolicy, Question, Refusals, Registry,
};
use paracle_runtime::{Asking, Person};

/// The person behind `peer`, when the client can be asked.
pub(crate) fn client_person(
    peer: &Peer<RoleServer>,
    registry: &Registry,
    policy: &PromptPolicy,
    refused: &Arc<Refusals>,
) -> Option<Arc<dyn Person>> {
    if !policy.mcp
        || !peer
            .supported_elicitation_modes()
            .contains(&ElicitationMode::Form)
    {
        return None;
    }
    let client = peer
        .peer_info()
        .map(|info| info.client_info.name.clone())
        .unwrap_or_else(|| "unnamed".into());
    let asker = Arc::new(ClientUser {
        peer: peer.clone(),
        client,
    });
    Some(Arc::new(Gatekeeper::remembering(
        registry,
        policy.clone(),
        asker,
        refused.clone(),
    )))
}

struct ClientUser {
    peer: Peer<RoleServer>,
    client: String,
}

impl Asker for ClientUser {
    fn who(&self) -> String {
        // The client names itself: kept short and on one line for the log.
        format!(
            "mcp:{}",
            paracle_base::shown::clipped(&paracle_base::shown::line(&self.client), 128)
        )
    }

    fn ask(&self, question: Question) -> Asking<Option<Choice>> {
        let peer = self.peer.clone();
        Box::pin(async move {
            let mut choices = vec!["once", "deny"];
            if question.can_save {
                choices.insert(1, "always");
            }
            let schema: ElicitationSchema = serde_json::from_value(json!({
                "type": "object",
                "properties": {
                    "answer": {
                        "type": "string",
                        "title": "Allow?",
                        "description": "once: for this call only; always: saved as a grant for this plugin; deny: refuse it",
                        "enum": choices,
                    }
                },
                "required": ["answer"],
            }))
            .expect("a fixed schema is valid");
            let mut message = format!(
                "Plugin `{}` ({}, {}) asks for {}; the grant is {}.",
                paracle_base::shown::line(&question.plugin),
                question.digest,
                paracle_base::shown::line(&question.signer),
                paracle_base::shown::line(&question.wants),
                paracle_base::shown::line(&question.grant)
            );
            if let Some(reason) = question.reason.as_deref().filter(|r| !r.is_empty()) {
                message.push_str(&format!(
                    " Its reason: {}",
                    paracle_base::shown::clipped(&paracle_base::shown::line(reason), 256)
                ));
            }
            let result = elicit(&peer, message, schema, question.timeout_secs).await?;
            match result.action {
                ElicitationAction::Accept => {
                    let answer = result.content.as_ref()?.get("answer")?.as_str()?;
                    match answer {
                        "once" => Some(Choice::Once),
                        "always" if question.can_save => Some(Choice::Always),
                        "deny" => Some(Choice::Deny),
                        _ => None,
                    }
                }
                ElicitationAction::Decline => Some(Choice::Deny),
                _ => None,
            }
        })
    }

    fn approve(&self, question: CallQuestion) -> Asking<Option<bool>> {
        let peer = self.peer.clone();
        Box::pin(async move {
            let schema: ElicitationSchema = serde_json::from_value(json!({
                "type": "object",
                "properties": {
                    "approve": {
                        "type": "boolean",
                        "title": "Run this tool call?",
                    }
                },
                "required": ["approve"],
            }))
            .expect("a fixed schema is valid");
            let by = match &question.agent {
                Some(agent) => format!("Agent `{}`", paracle_base::shown::line(agent)),
                None => "This call".to_string(),
            };
            let message = format!(
                "{by} runs tool `{}` of plugin `{}` ({}), whose calls need your approval. Arguments: {}",
                paracle_base::shown::line(&question.tool),
                paracle_base::shown::line(&question.plugin),
                question.digest,
                paracle_base::shown::line(&question.arguments),
            );
            let message = if question.arguments_bytes > question.arguments.len() {
                format!(
                    "{message} (the first {} of {} bytes: decline if you cannot judge it from these)",
                    question.arguments.len(),
                    question.arguments_bytes
                )
            } else {
                message
            };
            let result = elicit(&peer, message, schema, question.timeout_secs).await?;
            match result.action {
                ElicitationAction::Accept => result.content.as_ref()?.get("approve")?.as_bool(),
                ElicitationAction::Decline => Some(false),
                _ => None,
            }
        })
    }
}

/// One `elicitation/create` round trip; `None` when it failed.
async fn elicit(
    peer: &Peer<RoleServer>,
    message: String,
    schema: ElicitationSchema,
    timeout_secs: u64,
) -> Option<rmcp::model::ElicitResult> {
    let request = ElicitRequestParams::FormElicitationParams {
        meta: None,
        message,
        requested_schema: schema,
    };
    // The gatekeeper bounds the wait; rmcp's own default would cut it
    // shorter.
    let timeout = std::time::Duration::from_secs(timeout_secs + 1);
    match peer
        .create_elicitation_with_timeout(request, Some(timeout))
        .await
    {
        Ok(result) => Some(result),
        Err(error) => {
            tracing::debug!("elicitation failed: {error}");
            None
        }
    }
}
