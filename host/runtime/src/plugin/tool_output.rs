//! What a tool returns: JSON text, checked once as it leaves the plugin.

use std::fmt;

use serde_json::Value;

use paracle_contract::json::{nests_deeper_than, MAX_JSON_DEPTH};

/// A tool's answer, as the JSON text the plugin wrote. It is known to be
/// valid JSON; it is kept as text because most answers go on as text (to an
/// adapter, a model or an MCP client), and building a tree for them would
/// cost more than the call itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutput(String);

/// Why a tool's answer was refused.
#[derive(Debug)]
pub(crate) enum OutputError {
    Invalid(serde_json::Error),
    /// Nested deeper than [`MAX_JSON_DEPTH`].
    TooDeep,
}

impl ToolOutput {
    /// Check that `json` is one JSON value no deeper than
    /// [`MAX_JSON_DEPTH`], without building it. Every parser after this one
    /// (serde_json's own limit is deeper) then reads it without fail.
    pub(crate) fn new(json: String) -> Result<Self, OutputError> {
        if nests_deeper_than(&json, MAX_JSON_DEPTH) {
            return Err(OutputError::TooDeep);
        }
        serde_json::from_str::<Checked>(&json).map_err(OutputError::Invalid)?;
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
        serde_json::from_str(&self.0).expect(
            "checked to be JSON, and no deeper than serde_json reads, when the tool answered",
        )
    }
}

/// A JSON value read through without being kept, its strings decoded:
/// `IgnoredAny` skips strings without decoding their escapes, so a lone
/// surrogate (`"\ud800"`) passed it, and every later parser that decodes
/// (`to_value`) refused the answer after it had been accepted.
struct Checked;

impl<'de> serde::Deserialize<'de> for Checked {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Checked)
    }
}

impl<'de> serde::de::Visitor<'de> for Checked {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut items: A) -> Result<Checked, A::Error> {
        while items.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut members: A) -> Result<Checked, A::Error> {
        while members.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
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
    fn a_lone_surrogate_is_not_json_a_host_can_read() {
        for answer in [r#""\ud800""#, r#"{"a": ["\udc00x"]}"#] {
            assert!(
                matches!(ToolOutput::new(answer.into()), Err(OutputError::Invalid(_))),
                "{answer}"
            );
        }
        let pair = ToolOutput::new(r#"{"a": "\ud83d\ude00"}"#.into()).expect("a surrogate pair");
        assert_eq!(pair.to_value()["a"], "\u{1F600}");
    }

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

    #[test]
    fn json_deeper_than_the_limit_is_refused_before_it_is_parsed() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let at_limit = ToolOutput::new(deep(MAX_JSON_DEPTH)).unwrap();
        assert!(at_limit.to_value().is_array());
        assert!(matches!(
            ToolOutput::new(deep(MAX_JSON_DEPTH + 1)),
            Err(OutputError::TooDeep)
        ));
        // A million brackets, unclosed: refused, never parsed.
        assert!(matches!(
            ToolOutput::new("[".repeat(1_000_000)),
            Err(OutputError::TooDeep)
        ));
        // Brackets inside strings do not count.
        let quoted = format!("{{\"a\": \"{}\\\"\"}}", "[".repeat(500));
        assert!(ToolOutput::new(quoted).is_ok());
    }
}
