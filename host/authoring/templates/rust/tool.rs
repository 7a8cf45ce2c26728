//! `{{name}}`: a Paracle tool plugin.

use paracle_sdk::{json, Error, InvocationContext, Plugin, PluginInfo, Tool, ToolSpec, Value};

pub struct {{type}};

impl Plugin for {{type}} {
    fn info() -> PluginInfo {
        PluginInfo::new("{{name}}", env!("CARGO_PKG_VERSION"), "Greets people")
    }

    fn init(_config: Value) -> Result<Self, Error> {
        Ok({{type}})
    }
}

impl Tool for {{type}} {
    fn list_tools(&self) -> Vec<ToolSpec> {
        vec![ToolSpec::new(
            "greet",
            "Greets someone by name",
            json!({
                "type": "object",
                "properties": {"name": {"type": "string", "description": "Who to greet"}},
                "required": ["name"],
                "additionalProperties": false
            }),
        )]
    }

    fn invoke(
        &mut self,
        name: &str,
        arguments: Value,
        _context: &InvocationContext,
    ) -> Result<Value, Error> {
        match name {
            // The host has checked the arguments against the schema above.
            "greet" => {
                let who = arguments["name"].as_str().unwrap_or_default();
                Ok(json!({"greeting": format!("Hello, {who}!")}))
            }
            other => Err(Error::not_found(format!("no tool `{other}`"))),
        }
    }
}

paracle_sdk::export!(tool: {{type}});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greets_by_name() {
        let mut plugin = {{type}}::init(json!({})).unwrap();
        let context = InvocationContext {
            caller: "test".into(),
            run_id: None,
            agent: None,
        };
        let answer = plugin
            .invoke("greet", json!({"name": "Ada"}), &context)
            .unwrap();
        assert_eq!(answer, json!({"greeting": "Hello, Ada!"}));
    }
}
