//! `paracle plugin grant` and `paracle plugin revoke`.

use anyhow::Result;
use serde_json::json;

use super::output::{plugin_json, print_json};
use super::plugin::requests_vs_grants;
use crate::registry::Registry;
use crate::sandbox::Grant;

pub(super) async fn grant(
    registry: &mut Registry,
    name: &str,
    specs: &[String],
    json: bool,
) -> Result<()> {
    let mut grants = registry.get(name).await?.grants().clone();
    let mut added = Vec::new();
    for spec in specs {
        let grant = Grant::parse(spec)?;
        let described = grant.describe();
        if grants.add(grant) {
            added.push(described);
        }
    }
    apply(registry, name, grants, "granted", added, json).await
}

pub(super) async fn revoke(
    registry: &mut Registry,
    name: &str,
    specs: &[String],
    json: bool,
) -> Result<()> {
    let mut grants = registry.get(name).await?.grants().clone();
    let mut removed = Vec::new();
    for spec in specs {
        removed.extend(grants.revoke(spec)?.iter().map(Grant::describe));
    }
    apply(registry, name, grants, "revoked", removed, json).await
}

async fn apply(
    registry: &mut Registry,
    name: &str,
    grants: crate::sandbox::Grants,
    verb: &str,
    changed: Vec<String>,
    json: bool,
) -> Result<()> {
    let plugin = registry.set_grants(name, grants).await?;
    if json {
        let source = registry.source_of(name)?.describe();
        let mut value = plugin_json(&plugin, &source);
        value[verb] = json!(changed);
        value["requests"] = json!(requests_vs_grants(&plugin)
            .iter()
            .map(|line| line.trim())
            .collect::<Vec<_>>());
        print_json(&value);
        return Ok(());
    }
    if changed.is_empty() {
        println!("`{name}` already had that; its grants are unchanged");
    }
    for grant in &changed {
        println!("{} `{name}`: {grant}", capitalized(verb));
    }
    println!("  grants now: {}", plugin.grants().describe());
    for line in requests_vs_grants(&plugin) {
        println!("  {line}");
    }
    Ok(())
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
