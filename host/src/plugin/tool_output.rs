//! What a tool returns: JSON text, checked once as it leaves the plugin.

use std::fmt;

use serde_json::Value;

/// A tool's answer, as the JSON text the plugin wrote. It is known to be
/// valid JSON; it is kept as text because most answers go on as text (to an
/// adapter, a model or an MCP client), and building a tree for them would
/// cost more than the call itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutput(String);

impl ToolOutput {
    /// Check that `json` is one JSON value, without building it.
    pub(crate) fn new(json: String) -> Result<Self, serde_json::Error> {
        serde_json::from_str::<serde::de::IgnoredAny>(&json)?;
        Ok(ToolOutput(json))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// The answer as a JSON tree.
    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.0).expect("checked to be JSON when the tool answered")
    }
}

impl fmt::Display for ToolOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_kept_as_written() {
        let output = ToolOutput::new(r#"{"vowels": 4}"#.into()).unwrap();
        assert_eq!(output.as_str(), r#"{"vowels": 4}"#);
        assert_eq!(output.to_value()["vowels"], 4);
    }

    #[test]
    fn invalid_or_trailing_json_is_refused() {
        assert!(ToolOutput::new("{\"a\": ".into()).is_err());
        assert!(ToolOutput::new("{} {}".into()).is_err());
        assert!(ToolOutput::new("".into()).is_err());
    }
}
