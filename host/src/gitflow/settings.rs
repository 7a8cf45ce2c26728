//! The `[git]` table of `.paracle/config.toml`. Its presence turns the git
//! workflow on; the host passes it to the git-workflow plugin as its config.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::atomic;

/// The plugin that runs the git workflow unless `[git] plugin` names another.
pub const DEFAULT_PLUGIN: &str = "git-workflow";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitSettings {
    /// The plugin that runs the workflow; it must export `git-workflow`.
    pub plugin: String,
    pub base_branch: String,
    pub auto_commit: bool,
    pub auto_merge: bool,
    pub auto_cleanup: bool,
}

impl GitSettings {
    /// The config the workflow plugin's `init` receives.
    pub fn plugin_config(&self) -> Value {
        json!({
            "base_branch": self.base_branch,
            "auto_commit": self.auto_commit,
            "auto_merge": self.auto_merge,
            "auto_cleanup": self.auto_cleanup,
        })
    }
}

/// Write `settings` as the `[git]` table of `config_file`, keeping every
/// other table, comment and key as written.
pub fn write(config_file: &Path, settings: &GitSettings) -> Result<PathBuf, String> {
    let text = match std::fs::read_to_string(config_file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", config_file.display())),
    };
    let mut document: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| format!("{} is not valid TOML: {e}", config_file.display()))?;
    let mut table = toml_edit::Table::new();
    let blank_line = if text.is_empty() { "" } else { "\n" };
    table.decor_mut().set_prefix(format!(
        "{blank_line}# The git workflow: a branch and a worktree per execution (paracle git init-workflow).\n"
    ));
    if settings.plugin != DEFAULT_PLUGIN {
        table["plugin"] = toml_edit::value(settings.plugin.as_str());
    }
    table["base_branch"] = toml_edit::value(settings.base_branch.as_str());
    table["auto_commit"] = toml_edit::value(settings.auto_commit);
    table["auto_merge"] = toml_edit::value(settings.auto_merge);
    table["auto_cleanup"] = toml_edit::value(settings.auto_cleanup);
    match document.get_mut("git").and_then(|item| item.as_table_mut()) {
        // Rewritten in place, so that its comments and position stay.
        Some(existing) => {
            for (key, value) in table.iter() {
                existing[key] = value.clone();
            }
            if settings.plugin == DEFAULT_PLUGIN {
                existing.remove("plugin");
            }
        }
        None => {
            document.insert("git", toml_edit::Item::Table(table));
        }
    }
    if let Some(parent) = config_file.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    atomic::write(config_file, document.to_string().as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", config_file.display()))?;
    Ok(config_file.to_path_buf())
}
