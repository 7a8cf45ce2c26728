//! The user's secrets as plugins see them: an environment variable of the
//! secret's name, in the stores of plugins granted `secret:NAME`, and never
//! anywhere else. Whatever such a plugin returns, logs or fails with passes
//! through its [`Redactor`] first, so a secret's value does not leave
//! through an answer, a log line or an error message.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

/// Where the values of the user's secrets come from (`paracle-project`
/// keeps them per user, outside every project).
pub trait SecretSource: Send + Sync + std::fmt::Debug {
    /// The value of secret `name`, if the user has one.
    fn value(&self, name: &str) -> Option<String>;
}

/// The values of the secrets one plugin holds, hidden wherever they appear
/// in what it produces.
#[derive(Default)]
pub(crate) struct Redactor {
    any: AtomicBool,
    hidden: RwLock<Vec<Hidden>>,
}

/// Nothing of what it hides: a value must never reach a log through `{:?}`.
impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("hidden", &self.hidden.read().unwrap().len())
            .finish()
    }
}

struct Hidden {
    value: String,
    /// The value as it appears inside a JSON string, when that differs.
    escaped: Option<String>,
    replacement: String,
}

impl Redactor {
    /// Hide `value` from now on, as `[secret NAME]`.
    pub(crate) fn hide(&self, name: &str, value: &str) {
        if value.is_empty() {
            return;
        }
        let mut hidden = self.hidden.write().unwrap();
        if hidden.iter().any(|h| h.value == value) {
            return;
        }
        let quoted = serde_json::to_string(value).expect("a string always serializes");
        let escaped = &quoted[1..quoted.len() - 1];
        hidden.push(Hidden {
            value: value.to_string(),
            escaped: (escaped != value).then(|| escaped.to_string()),
            replacement: format!("[secret {name}]"),
        });
        // Longest first, so a secret that contains another is hidden whole.
        hidden.sort_by_key(|h| std::cmp::Reverse(h.value.len()));
        self.any.store(true, Ordering::Release);
    }

    pub(crate) fn is_empty(&self) -> bool {
        !self.any.load(Ordering::Acquire)
    }

    /// `text` with every held secret's value, raw or JSON-escaped, replaced
    /// by its name. The replacement holds no quote or backslash, so JSON
    /// stays JSON when a value sat inside one of its strings.
    pub(crate) fn scrub<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if self.is_empty() {
            return Cow::Borrowed(text);
        }
        let hidden = self.hidden.read().unwrap();
        let mut text = Cow::Borrowed(text);
        for secret in hidden.iter() {
            for form in std::iter::once(&secret.value).chain(secret.escaped.as_ref()) {
                if text.contains(form.as_str()) {
                    text = Cow::Owned(text.replace(form.as_str(), &secret.replacement));
                }
            }
        }
        text
    }

    /// [`Self::scrub`] in place.
    pub(crate) fn scrub_in_place(&self, text: &mut String) {
        if self.is_empty() {
            return;
        }
        if let Cow::Owned(scrubbed) = self.scrub(text) {
            *text = scrubbed;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_hidden_raw_and_inside_json() {
        let redactor = Redactor::default();
        assert!(redactor.is_empty());
        assert_eq!(redactor.scrub("nothing held"), "nothing held");
        redactor.hide("TOKEN", "s3cr\"et-value");
        redactor.hide("SHORTER", "s3cr");
        let json = serde_json::json!({ "said": "the token is s3cr\"et-value" }).to_string();
        let scrubbed = redactor.scrub(&json);
        assert!(!scrubbed.contains("s3cr"), "{scrubbed}");
        let parsed: serde_json::Value = serde_json::from_str(&scrubbed).unwrap();
        assert_eq!(parsed["said"], "the token is [secret TOKEN]");
        assert_eq!(
            redactor.scrub("s3cr\"et-value s3cr"),
            "[secret TOKEN] [secret SHORTER]"
        );
    }
}
