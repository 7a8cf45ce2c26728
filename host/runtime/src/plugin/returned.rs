//! The caps on what a plugin returns, checked as the value leaves the guest
//! and before the host parses, stores, prints or sends any of it.
//!
//! wasmtime copies a returned value into host memory as it lifts it, so
//! that copy is bounded by the plugin's own memory limit; everything the
//! host does after it is bounded by these caps. They sit far above what any
//! honest plugin returns, and they keep derived data small: a version goes
//! into every MCP tool description and every registry record, so a version
//! that may be long multiplies.

use paracle_contract::json::{nests_deeper_than, MAX_JSON_DEPTH};
use paracle_contract::{PluginInfo, ToolSpec};

/// Counted for each item of a returned list, besides its text: the host
/// holds a few words for every item, so a million empty strings are not
/// free, and they count against the output limit like their text.
pub(crate) const ITEM_BYTES: usize = 32;

/// `version`, and each tag.
pub(crate) const MAX_SHORT_TEXT: usize = 64;
/// `author`, `license`, each requested path, host or variable and its reason.
pub(crate) const MAX_LINE_TEXT: usize = 256;
/// `description` of a plugin or of a tool.
pub(crate) const MAX_DESCRIPTION: usize = 4096;
/// Tags, and requested paths, hosts and variables, each.
pub(crate) const MAX_LIST_ITEMS: usize = 64;
/// A config schema, or one tool's input schema.
pub(crate) const MAX_SCHEMA_BYTES: usize = 64 * 1024;
/// Tools one plugin offers.
pub(crate) const MAX_TOOLS: usize = 256;
/// All of one plugin's tool list together: names, descriptions, schemas.
pub(crate) const MAX_TOOL_LIST_BYTES: usize = 1024 * 1024;

/// What a plugin returned that is over a cap, as the detail of a
/// [`crate::error::Limit::Value`] error.
pub(crate) type Over = String;

fn text(field: &str, value: &str, max: usize) -> Result<(), Over> {
    if value.len() > max {
        return Err(format!(
            "its {field} is {} bytes, over the {max} allowed",
            value.len()
        ));
    }
    Ok(())
}

fn list<'a>(
    field: &str,
    values: impl ExactSizeIterator<Item = &'a str>,
    each: usize,
) -> Result<(), Over> {
    if values.len() > MAX_LIST_ITEMS {
        return Err(format!(
            "it lists {} {field}, over the {MAX_LIST_ITEMS} allowed",
            values.len()
        ));
    }
    for value in values {
        text(field, value, each)?;
    }
    Ok(())
}

fn schema(field: &str, json: &str) -> Result<(), Over> {
    text(field, json, MAX_SCHEMA_BYTES)?;
    if nests_deeper_than(json, MAX_JSON_DEPTH) {
        return Err(format!(
            "its {field} nests deeper than {MAX_JSON_DEPTH} levels"
        ));
    }
    Ok(())
}

/// What a plugin says about itself.
pub(crate) fn check_info(info: &PluginInfo) -> Result<(), Over> {
    text("name", &info.name, MAX_SHORT_TEXT)?;
    text("version", &info.version, MAX_SHORT_TEXT)?;
    text("description", &info.description, MAX_DESCRIPTION)?;
    text("author", &info.author, MAX_LINE_TEXT)?;
    text("license", &info.license, MAX_LINE_TEXT)?;
    list("tags", info.tags.iter().map(String::as_str), MAX_SHORT_TEXT)?;
    if let Some(json) = &info.config_schema {
        schema("config schema", json)?;
    }
    let requests = &info.requests;
    list(
        "requested paths",
        requests.paths.iter().map(|p| p.guest_path.as_str()),
        MAX_LINE_TEXT,
    )?;
    list(
        "reasons for paths",
        requests.paths.iter().map(|p| p.reason.as_str()),
        MAX_LINE_TEXT,
    )?;
    list(
        "requested hosts",
        requests.hosts.iter().map(String::as_str),
        MAX_LINE_TEXT,
    )?;
    list(
        "requested variables",
        requests.env.iter().map(String::as_str),
        MAX_LINE_TEXT,
    )
}

/// A tool plugin's list of tools.
pub(crate) fn check_tools(tools: &[ToolSpec]) -> Result<(), Over> {
    if tools.len() > MAX_TOOLS {
        return Err(format!(
            "it lists {} tools, over the {MAX_TOOLS} allowed",
            tools.len()
        ));
    }
    let mut total = 0usize;
    for tool in tools {
        text("tool name", &tool.name, MAX_SHORT_TEXT)?;
        text("tool description", &tool.description, MAX_DESCRIPTION)?;
        schema(
            &format!("input schema of `{}`", tool.name),
            &tool.input_schema,
        )?;
        total += tool.name.len() + tool.description.len() + tool.input_schema.len() + ITEM_BYTES;
    }
    if total > MAX_TOOL_LIST_BYTES {
        return Err(format!(
            "its tool list is {total} bytes, over the {MAX_TOOL_LIST_BYTES} allowed"
        ));
    }
    Ok(())
}

/// The bytes a list of strings counts for against the output limit.
pub(crate) fn list_bytes<'a>(items: impl IntoIterator<Item = &'a str>) -> usize {
    items.into_iter().map(|s| s.len() + ITEM_BYTES).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use paracle_contract::Capabilities;

    fn info() -> PluginInfo {
        PluginInfo {
            name: "ok".into(),
            version: "1.0.0".into(),
            description: "fine".into(),
            author: String::new(),
            license: String::new(),
            tags: vec!["a".into()],
            config_schema: Some("{}".into()),
            requests: Capabilities {
                paths: Vec::new(),
                hosts: Vec::new(),
                env: Vec::new(),
            },
        }
    }

    #[test]
    fn each_field_of_the_info_is_capped() {
        assert_eq!(check_info(&info()), Ok(()));
        let mut long_version = info();
        long_version.version = "9".repeat(50 << 20);
        assert!(check_info(&long_version).unwrap_err().contains("version"));
        let mut many_tags = info();
        many_tags.tags = vec![String::new(); 1000];
        assert!(check_info(&many_tags).unwrap_err().contains("tags"));
        let mut deep = info();
        deep.config_schema = Some("[".repeat(100));
        assert!(check_info(&deep).unwrap_err().contains("deeper"));
        let mut hosts = info();
        hosts.requests.hosts = vec!["h".repeat(300)];
        assert!(check_info(&hosts).unwrap_err().contains("hosts"));
    }

    #[test]
    fn tool_lists_are_capped_in_count_and_bytes() {
        let tool = |name: &str, schema: usize| ToolSpec {
            name: name.into(),
            description: "d".into(),
            input_schema: format!("{{\"x\": \"{}\"}}", "s".repeat(schema)),
        };
        assert_eq!(check_tools(&[tool("a", 10)]), Ok(()));
        let many: Vec<ToolSpec> = (0..MAX_TOOLS + 1)
            .map(|i| tool(&i.to_string(), 1))
            .collect();
        assert!(check_tools(&many).unwrap_err().contains("tools"));
        let heavy: Vec<ToolSpec> = (0..20).map(|i| tool(&i.to_string(), 60_000)).collect();
        assert!(check_tools(&heavy).unwrap_err().contains("tool list"));
    }

    #[test]
    fn messages_are_cut_on_a_character_boundary() {
        use crate::error::{cut_message, MAX_MESSAGE};
        assert_eq!(cut_message("short".into()), "short");
        let cut = cut_message("é".repeat(MAX_MESSAGE));
        assert!(cut.len() < MAX_MESSAGE + 40, "{}", cut.len());
        assert!(cut.ends_with(&format!("({} more bytes)", MAX_MESSAGE)));
        assert_eq!(list_bytes(["", ""]), 2 * ITEM_BYTES);
    }
}
