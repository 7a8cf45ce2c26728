//! `paracle plugin grant`, `paracle plugin revoke` and `paracle plugin limit`.

use anyhow::Result;
use serde_json::json;

use super::output::{plugin_json, print_json};
use paracle_policy::{Approve, Grant};
use paracle_project::{AuditAction, AuditRecord, Registry, RegistryError};
use paracle_runtime::Plugin;

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
                        let described = (grant.describe(), grant.spec());
                        if grants.add(grant) {
                            changed.push(described);
                        }
                    }
                    Change::Revoke => changed.extend(
                        grants
                            .revoke(spec)?
                            .iter()
                            .map(|g| (g.describe(), g.spec())),
                    ),
                }
            }
            Ok(changed)
        })
        .await?;
    let action = match change {
        Change::Grant => AuditAction::Grant,
        Change::Revoke => AuditAction::Revoke,
    };
    for (_, spec) in &changed {
        registry.audit_quietly(
            AuditRecord::new(action, "operator", spec.as_str()).plugin(name, Some(plugin.digest())),
        );
    }
    let changed: Vec<String> = changed
        .into_iter()
        .map(|(described, _)| described)
        .collect();
    let verb = change.verb();
    if json {
        let source = registry.describe_source(name)?;
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
        println!("  {}", paracle_base::shown::line(&line));
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
        let source = registry.describe_source(name)?;
        let mut value = plugin_json(&plugin, &source);
        value["previous_limits"] = json!(before);
        print_json(&value);
        return Ok(());
    }
    println!("Limits of `{name}`: {}", plugin.limits().describe());
    println!("  were: {}", before.describe());
    Ok(())
}

/// `plugin approve NAME [TOOL] SETTING`.
pub(super) async fn approve(
    registry: &mut Registry,
    name: &str,
    words: &[String],
    json: bool,
) -> Result<()> {
    let (tool, setting) = match words {
        [setting] => (None, setting),
        [tool, setting] => (Some(tool.as_str()), setting),
        _ => anyhow::bail!("give a setting, and a tool first if it is for one tool: `paracle plugin approve {name} [TOOL] always|ask|never`"),
    };
    let Some(setting) = Approve::parse(setting) else {
        anyhow::bail!("`{setting}` is not a setting: use always (run without asking), ask (wait for a person) or never (refuse)");
    };
    if let Some(tool) = tool {
        let plugin = registry.get(name).await?;
        if !plugin.tools().iter().any(|t| t.name == tool) {
            anyhow::bail!(
                "plugin `{name}` has no tool `{tool}`; its tools are: {}",
                plugin
                    .tools()
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let (plugin, changed) = registry
        .update_approvals(name, |approvals| Ok(approvals.set(tool, setting)))
        .await?;
    if changed {
        registry.audit_quietly(
            AuditRecord::new(
                AuditAction::Approval,
                "operator",
                format!("tool {name}/{}", tool.unwrap_or("*")),
            )
            .plugin(name, Some(plugin.digest()))
            .outcome(format!("set {setting}")),
        );
    }
    if json {
        let source = registry.describe_source(name)?;
        let mut value = plugin_json(&plugin, &source);
        value["changed"] = json!(changed);
        print_json(&value);
        return Ok(());
    }
    println!(
        "Tool calls of `{name}` need approval: {}{}",
        plugin.approvals().describe(),
        if changed { "" } else { " (unchanged)" }
    );
    Ok(())
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// What a plugin asks for, against what it was granted.
pub(super) fn requests_vs_grants(plugin: &Plugin) -> Vec<String> {
    let requests = &plugin.info().requests;
    let grants = plugin.grants();
    let mut lines = Vec::new();
    for path in &requests.paths {
        let granted = grants.dirs.iter().find(|d| d.guest == path.guest_path);
        let mode = if path.writable { "rw" } else { "ro" };
        lines.push(match granted {
            Some(g) => format!(
                "  dir {} ({mode}): granted {}",
                path.guest_path,
                g.describe()
            ),
            None => format!(
                "  dir {} ({mode}): NOT granted ({}); grant with `paracle plugin grant {} dir:HOST_DIR:{}:{mode}`",
                path.guest_path,
                path.reason,
                plugin.name(),
                path.guest_path
            ),
        });
    }
    for host in &requests.hosts {
        lines.push(match grants.net.iter().find(|g| g.covers(host)) {
            Some(grant) => format!("  net {host}: granted as {grant}"),
            None => format!(
                "  net {host}: NOT granted; grant with `paracle plugin grant {} net:{host}`",
                plugin.name()
            ),
        });
    }
    for var in &requests.env {
        lines.push(if grants.env.contains(var) {
            format!("  env {var}: granted")
        } else if grants.secrets.contains(var) {
            format!("  env {var}: granted as the secret {var}")
        } else {
            format!(
                "  env {var}: NOT granted; grant with `paracle plugin grant {} env:{var}`",
                plugin.name()
            )
        });
    }
    for dir in &grants.dirs {
        if !requests.paths.iter().any(|p| p.guest_path == dir.guest) {
            lines.push(format!(
                "  dir {}: granted though not asked for",
                dir.describe()
            ));
        }
    }
    for grant in &grants.net {
        if !requests.hosts.iter().any(|h| grant.covers(h)) {
            lines.push(format!("  net {grant}: granted though not asked for"));
        }
    }
    for var in &grants.env {
        if !requests.env.contains(var) {
            lines.push(format!("  env {var}: granted though not asked for"));
        }
    }
    if grants.git {
        lines.push("  git: granted (the project's repository)".into());
    }
    lines
}
