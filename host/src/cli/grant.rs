//! `paracle plugin grant`, `paracle plugin revoke` and `paracle plugin limit`.

use anyhow::Result;
use serde_json::json;

use super::output::{plugin_json, print_json};
use super::plugin::requests_vs_grants;
use crate::error::RegistryError;
use crate::registry::Registry;
use crate::sandbox::Grant;

#[derive(Clone, Copy)]
pub(super) enum Change {
    Grant,
    Revoke,
}

impl Change {
    fn verb(self) -> &'static str {
        match self {
            Change::Grant => "granted",
            Change::Revoke => "revoked",
        }
    }
}

pub(super) async fn change(
    registry: &mut Registry,
    name: &str,
    change: Change,
    specs: &[String],
    json: bool,
) -> Result<()> {
    // Every spec is checked before anything is saved: one bad spec changes nothing.
    let (plugin, changed) = registry
        .update_grants(name, |grants| {
            let mut changed = Vec::new();
            for spec in specs {
                match change {
                    Change::Grant => {
                        let grant = Grant::parse(spec)?;
                        let described = grant.describe();
                        if grants.add(grant) {
                            changed.push(described);
                        }
                    }
                    Change::Revoke => {
                        changed.extend(grants.revoke(spec)?.iter().map(Grant::describe))
                    }
                }
            }
            Ok(changed)
        })
        .await?;
    let verb = change.verb();
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
        println!("  {}", crate::shown::line(&line));
    }
    Ok(())
}

pub(super) async fn limit(
    registry: &mut Registry,
    name: &str,
    assignments: &[String],
    json: bool,
) -> Result<()> {
    let (plugin, before) = registry
        .update_limits(name, |limits| {
            let before = limits.clone();
            for assignment in assignments {
                limits
                    .set(assignment)
                    .map_err(|message| RegistryError::Invalid {
                        name: name.to_string(),
                        message: format!("limit `{assignment}`: {message}"),
                    })?;
            }
            Ok(before)
        })
        .await?;
    if json {
        let source = registry.source_of(name)?.describe();
        let mut value = plugin_json(&plugin, &source);
        value["previous_limits"] = json!(before);
        print_json(&value);
        return Ok(());
    }
    println!("Limits of `{name}`: {}", plugin.limits().describe());
    println!("  were: {}", before.describe());
    Ok(())
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
