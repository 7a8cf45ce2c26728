//! The tools the server offers: Paracle's own, and every tool of every Tool
//! plugin the project has, each under its MCP name with its JSON Schema.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use paracle_project::Registry;
use paracle_runtime::{schema_errors, Plugin, PluginKind};

use crate::names;

/// Paracle's own tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builtin {
    WorkflowList,
    WorkflowRun,
    RunStatus,
    MemoryPut,
    MemoryGet,
    MemorySearch,
}

impl Builtin {
    const ALL: [Builtin; 6] = [
        Builtin::WorkflowList,
        Builtin::WorkflowRun,
        Builtin::RunStatus,
        Builtin::MemoryPut,
        Builtin::MemoryGet,
        Builtin::MemorySearch,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Builtin::WorkflowList => "workflow_list",
            Builtin::WorkflowRun => "workflow_run",
            Builtin::RunStatus => "run_status",
            Builtin::MemoryPut => "memory_put",
            Builtin::MemoryGet => "memory_get",
            Builtin::MemorySearch => "memory_search",
        }
    }

    fn uses_memory(self) -> bool {
        matches!(
            self,
            Builtin::MemoryPut | Builtin::MemoryGet | Builtin::MemorySearch
        )
    }

    fn description(self, memory: &str) -> String {
        let namespaces = "Namespaces keep keys apart; an agent's namespace is its name, so \
                          `namespace: \"planner\"` reaches what agent `planner` noted.";
        match self {
            Builtin::WorkflowList => {
                "The project's workflows (from .paracle/workflows/), each with its phases.".into()
            }
            Builtin::WorkflowRun => "Start a run of a workflow and run its phases, in this \
                 process, until the run completes, fails or reaches an approval gate, or the \
                 time runs out. Returns the run's state, with its id for run_status. Reports \
                 progress when the request carries a progress token."
                .into(),
            Builtin::RunStatus => "Where a run stands: its phases, agents, outcomes and what \
                 to do next. The newest run when `run` is left out."
                .into(),
            Builtin::MemoryPut => {
                format!("Store a value under a key in memory plugin `{memory}`. {namespaces}")
            }
            Builtin::MemoryGet => format!(
                "Read the value stored under a key in memory plugin `{memory}`. {namespaces}"
            ),
            Builtin::MemorySearch => format!(
                "Search the values in a namespace of memory plugin `{memory}`, best match \
                 first. {namespaces}"
            ),
        }
    }

    fn input_schema(self) -> Value {
        let namespace = json!({
            "type": "string",
            "minLength": 1,
            "description": "The namespace (default `mcp`)."
        });
        let key = json!({"type": "string", "minLength": 1});
        match self {
            Builtin::WorkflowList => json!({"type": "object", "additionalProperties": false}),
            Builtin::WorkflowRun => json!({
                "type": "object",
                "properties": {
                    "workflow": {"type": "string", "minLength": 1, "description": "The workflow's name, as workflow_list gives it."},
                    "input": {"type": "string", "description": "The task for the agents, instead of the workflow's own."},
                    "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "description": "The longest the run's phases may take, in seconds; at most the server's limit, which is also the default. A run cut short is left interrupted."}
                },
                "required": ["workflow"],
                "additionalProperties": false
            }),
            Builtin::RunStatus => json!({
                "type": "object",
                "properties": {
                    "run": {"type": "string", "minLength": 1, "description": "The run's id (default: the newest run)."}
                },
                "additionalProperties": false
            }),
            Builtin::MemoryPut => json!({
                "type": "object",
                "properties": {"namespace": namespace, "key": key, "value": {"type": "string"}},
                "required": ["key", "value"],
                "additionalProperties": false
            }),
            Builtin::MemoryGet => json!({
                "type": "object",
                "properties": {"namespace": namespace, "key": key},
                "required": ["key"],
                "additionalProperties": false
            }),
            Builtin::MemorySearch => json!({
                "type": "object",
                "properties": {
                    "namespace": namespace,
                    "query": {"type": "string", "minLength": 1},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 100, "description": "The most hits to return (default 10)."}
                },
                "required": ["query"],
                "additionalProperties": false
            }),
        }
    }
}

/// What a tool name leads to.
pub(crate) enum Target {
    Builtin(Builtin),
    Plugin { plugin: Arc<Plugin>, tool: String },
}

pub(crate) struct Entry {
    pub name: String,
    pub title: String,
    pub description: String,
    pub input_schema: Map<String, Value>,
    pub target: Target,
    /// Plugins check their own tools' arguments; this checks the built-ins'.
    validator: Option<jsonschema::Validator>,
}

impl Entry {
    /// Why `arguments` do not fit a built-in tool's schema, if they do not.
    pub(crate) fn argument_errors(&self, arguments: &Value) -> Option<String> {
        let validator = self.validator.as_ref()?;
        schema_errors(validator, arguments)
    }
}

pub(crate) struct Catalog {
    entries: Vec<Entry>,
    by_name: HashMap<String, usize>,
}

impl Catalog {
    /// Paracle's tools, the memory tools when `memory` names a plugin, and
    /// the tools of every Tool plugin of the project that loads.
    pub(crate) async fn build(registry: &Registry, memory: Option<&str>) -> Catalog {
        let mut catalog = Catalog {
            entries: Vec::new(),
            by_name: HashMap::new(),
        };
        for builtin in Builtin::ALL {
            if builtin.uses_memory() && memory.is_none() {
                continue;
            }
            let schema = builtin.input_schema();
            let validator =
                jsonschema::validator_for(&schema).expect("the built-in tools' schemas are valid");
            catalog.add(Entry {
                name: builtin.name().into(),
                title: builtin.name().replace('_', " "),
                description: builtin.description(memory.unwrap_or_default()),
                input_schema: object(schema),
                target: Target::Builtin(builtin),
                validator: Some(validator),
            });
        }
        let plugins = registry.load_kind(PluginKind::Tool, |_| true).await;
        for plugin in plugins {
            for spec in plugin.tools() {
                let schema = match serde_json::from_str::<Value>(&spec.input_schema) {
                    Ok(Value::Object(mut schema)) => {
                        // MCP wants an object schema; arguments always are one.
                        schema.entry("type").or_insert_with(|| json!("object"));
                        schema
                    }
                    _ => {
                        tracing::warn!(
                            "tool `{}` of plugin `{}` left out: its input schema is not a JSON object",
                            spec.name,
                            plugin.name()
                        );
                        continue;
                    }
                };
                catalog.add(Entry {
                    name: names::tool_name(plugin.name(), &spec.name),
                    title: format!("{}: {}", plugin.name(), spec.name),
                    description: format!(
                        "{} (tool `{}` of plugin `{}` {})",
                        spec.description,
                        spec.name,
                        plugin.name(),
                        plugin.info().version
                    ),
                    input_schema: schema,
                    target: Target::Plugin {
                        plugin: plugin.clone(),
                        tool: spec.name.clone(),
                    },
                    validator: None,
                });
            }
        }
        catalog
    }

    fn add(&mut self, entry: Entry) {
        if let Some(&at) = self.by_name.get(&entry.name) {
            // Names are built to be distinct; keep the first if two meet.
            tracing::warn!(
                "tool `{}` left out: `{}` has that name already",
                entry.title,
                self.entries[at].title
            );
            return;
        }
        self.by_name.insert(entry.name.clone(), self.entries.len());
        self.entries.push(entry);
    }

    /// The plugins behind the tools, each once.
    pub(crate) fn plugins(&self) -> Vec<Arc<Plugin>> {
        let mut plugins: Vec<Arc<Plugin>> = Vec::new();
        for entry in &self.entries {
            if let Target::Plugin { plugin, .. } = &entry.target {
                if !plugins.iter().any(|p| p.name() == plugin.name()) {
                    plugins.push(plugin.clone());
                }
            }
        }
        plugins
    }

    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Entry> {
        self.by_name.get(name).map(|&at| &self.entries[at])
    }
}

fn object(value: Value) -> Map<String, Value> {
    let Value::Object(map) = value else {
        unreachable!("the built-in tools' schemas are objects")
    };
    map
}
