//! `text-tools`: small text utilities for agents: word and vowel counts, regex
//! extraction and a JSON query.

use paracle_sdk::{json, Error, InvocationContext, Plugin, PluginInfo, Tool, ToolSpec, Value};

mod query;
mod vowels;

use vowels::count_vowels;

struct TextTools;

impl Plugin for TextTools {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "text-tools",
            env!("CARGO_PKG_VERSION"),
            "Word and vowel counts, regex extraction and JSON queries",
        )
        .author("Paracle")
        .license("Apache-2.0")
        .tags(&["text", "json", "regex"])
    }

    fn init(_config: Value) -> Result<Self, Error> {
        Ok(TextTools)
    }
}

fn text_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"text": {"type": "string", "description": "The text to inspect"}},
        "required": ["text"],
        "additionalProperties": false
    })
}

impl Tool for TextTools {
    fn list_tools(&self) -> Vec<ToolSpec> {
        vec![
            ToolSpec::new("count_words", "Count the words in a text", text_schema()),
            ToolSpec::new(
                "count_vowels",
                "Count the vowels (a, e, i, o, u, either case) in a text",
                text_schema(),
            ),
            ToolSpec::new(
                "regex_extract",
                "Every match of a regular expression in a text, or of one of its capture groups",
                json!({
                    "type": "object",
                    "properties": {
                        "text": {"type": "string"},
                        "pattern": {"type": "string", "description": "A regular expression"},
                        "group": {"type": "integer", "minimum": 0, "description": "Capture group to return; 0 is the whole match"}
                    },
                    "required": ["text", "pattern"],
                    "additionalProperties": false
                }),
            ),
            ToolSpec::new(
                "json_query",
                "Select values from a JSON document with a path such as `items[0].name` or `items[*].id`",
                json!({
                    "type": "object",
                    "properties": {
                        "document": {"description": "Any JSON value"},
                        "path": {"type": "string", "description": "Dot-separated keys, [N] indexes and [*] wildcards; empty for the whole document"}
                    },
                    "required": ["document", "path"],
                    "additionalProperties": false
                }),
            ),
        ]
    }

    fn invoke(
        &mut self,
        name: &str,
        arguments: Value,
        _context: &InvocationContext,
    ) -> Result<Value, Error> {
        match name {
            "count_words" => {
                let text = string_arg(&arguments, "text")?;
                Ok(json!({"words": text.split_whitespace().count()}))
            }
            "count_vowels" => {
                let text = string_arg(&arguments, "text")?;
                Ok(json!({"vowels": count_vowels(text)}))
            }
            "regex_extract" => {
                let text = string_arg(&arguments, "text")?;
                let pattern = string_arg(&arguments, "pattern")?;
                let group = arguments.get("group").and_then(Value::as_u64).unwrap_or(0) as usize;
                let regex = regex_lite::Regex::new(pattern)
                    .map_err(|e| Error::invalid_input(format!("bad pattern: {e}")))?;
                if group >= regex.captures_len() {
                    return Err(Error::invalid_input(format!(
                        "the pattern has {} capture group(s); group {group} does not exist",
                        regex.captures_len() - 1
                    )));
                }
                let matches: Vec<&str> = regex
                    .captures_iter(text)
                    .filter_map(|c| c.get(group).map(|m| m.as_str()))
                    .collect();
                Ok(json!({"count": matches.len(), "matches": matches}))
            }
            "json_query" => {
                let path = string_arg(&arguments, "path")?;
                let document = arguments
                    .get("document")
                    .ok_or_else(|| Error::invalid_input("missing `document`"))?;
                let results = query::select(document, path)?;
                Ok(json!({"count": results.len(), "results": results}))
            }
            other => Err(Error::not_found(format!("no tool named `{other}`"))),
        }
    }
}

fn string_arg<'a>(arguments: &'a Value, key: &str) -> Result<&'a str, Error> {
    arguments
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| Error::invalid_input(format!("`{key}` must be a string")))
}

paracle_sdk::export!(tool: TextTools);
