//! `fs-tools`: read, list and write files inside the directory granted to it
//! at `/workspace`. The sandbox is what keeps it inside; the path checks here
//! only turn an escape attempt into a clear error.

use std::path::{Component, Path, PathBuf};

use paracle_sdk::{json, Error, InvocationContext, Plugin, PluginInfo, Tool, ToolSpec, Value};

const ROOT: &str = "/workspace";
const MAX_READ_BYTES: u64 = 512 * 1024;

struct FsTools;

impl Plugin for FsTools {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "fs-tools",
            env!("CARGO_PKG_VERSION"),
            "Read, list and write files in a granted directory",
        )
        .author("Paracle")
        .license("Apache-2.0")
        .tags(&["files"])
        .request_path(ROOT, true, "the files the agent works on")
    }

    fn init(_config: Value) -> Result<Self, Error> {
        Ok(FsTools)
    }
}

fn path_schema(extra: Value) -> Value {
    let mut properties =
        json!({"path": {"type": "string", "description": "Relative to the workspace"}});
    if let (Some(map), Some(extra)) = (properties.as_object_mut(), extra.as_object()) {
        map.extend(extra.clone());
    }
    let mut required = vec!["path"];
    if properties.get("content").is_some() {
        required.push("content");
    }
    json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
}

impl Tool for FsTools {
    fn list_tools(&self) -> Vec<ToolSpec> {
        vec![
            ToolSpec::new(
                "read_file",
                "Read a UTF-8 text file",
                path_schema(json!({})),
            ),
            ToolSpec::new(
                "list_dir",
                "List a directory's entries",
                path_schema(json!({})),
            ),
            ToolSpec::new(
                "write_file",
                "Create or replace a text file, creating parent directories",
                path_schema(json!({"content": {"type": "string"}})),
            ),
        ]
    }

    fn invoke(
        &mut self,
        name: &str,
        arguments: Value,
        _context: &InvocationContext,
    ) -> Result<Value, Error> {
        let relative = arguments.get("path").and_then(Value::as_str).unwrap_or("");
        let path = resolve(relative)?;
        match name {
            "read_file" => {
                let meta = std::fs::metadata(&path).map_err(|e| io_error(relative, e))?;
                if meta.len() > MAX_READ_BYTES {
                    return Err(Error::invalid_input(format!(
                        "`{relative}` is {} bytes; the limit is {MAX_READ_BYTES}",
                        meta.len()
                    )));
                }
                let content = std::fs::read_to_string(&path).map_err(|e| io_error(relative, e))?;
                Ok(json!({"path": relative, "content": content}))
            }
            "list_dir" => {
                let mut entries = Vec::new();
                for entry in std::fs::read_dir(&path).map_err(|e| io_error(relative, e))? {
                    let entry = entry.map_err(|e| io_error(relative, e))?;
                    let kind = match entry.file_type() {
                        Ok(t) if t.is_dir() => "dir",
                        Ok(t) if t.is_symlink() => "symlink",
                        _ => "file",
                    };
                    entries
                        .push(json!({"name": entry.file_name().to_string_lossy(), "kind": kind}));
                }
                entries.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
                Ok(json!({"path": relative, "entries": entries}))
            }
            "write_file" => {
                let content = arguments
                    .get("content")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| io_error(relative, e))?;
                }
                std::fs::write(&path, content).map_err(|e| io_error(relative, e))?;
                Ok(json!({"path": relative, "bytes": content.len()}))
            }
            other => Err(Error::not_found(format!("no tool named `{other}`"))),
        }
    }
}

/// The workspace path for `relative`, refusing absolute paths and `..`.
fn resolve(relative: &str) -> Result<PathBuf, Error> {
    if !Path::new(ROOT).exists() {
        return Err(Error::Denied(format!(
            "no directory is granted at {ROOT}; load the plugin with a grant for it"
        )));
    }
    let path = Path::new(relative);
    let mut resolved = PathBuf::from(ROOT);
    for component in path.components() {
        match component {
            Component::Normal(part) => resolved.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(Error::Denied(format!(
                    "`{relative}` leaves the workspace; use a path relative to it"
                )));
            }
        }
    }
    Ok(resolved)
}

fn io_error(path: &str, error: std::io::Error) -> Error {
    match error.kind() {
        std::io::ErrorKind::NotFound => Error::not_found(format!("`{path}` does not exist")),
        std::io::ErrorKind::PermissionDenied => {
            Error::Denied(format!("`{path}`: permission denied"))
        }
        _ => Error::internal(format!("`{path}`: {error}")),
    }
}

paracle_sdk::export!(tool: FsTools);
