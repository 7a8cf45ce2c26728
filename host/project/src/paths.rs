//! Where Paracle keeps things: the project's state directory, and the
//! per-user plugins, trust list and code cache.

use std::path::{Path, PathBuf};

/// Where Paracle keeps things.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The project directory.
    pub project: PathBuf,
    /// `<project>/.paracle`.
    pub state: PathBuf,
    /// Per-user plugins, discovered in every project.
    pub user_plugins: PathBuf,
    /// The per-user trust list: signing keys and the signature policy.
    pub trust: PathBuf,
    /// Compiled components.
    pub cache: PathBuf,
    /// Per-user settings: registries, those reached over plain HTTP, and
    /// what a person may be asked for (`[prompts]`).
    pub user_config: PathBuf,
    /// The user's secrets, readable by the user only.
    pub secrets: PathBuf,
    /// Blobs pulled from registries, by digest.
    pub blobs: PathBuf,
    /// The last template index seen from each registry.
    pub template_index: PathBuf,
}

impl Paths {
    /// Paths for `project`. `PARACLE_HOME` and `PARACLE_CACHE_DIR` override
    /// the per-user locations (by default under the XDG directories).
    pub fn for_project(project: &Path) -> Self {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        let env_dir = |var: &str| {
            std::env::var_os(var)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let data_home = env_dir("XDG_DATA_HOME").unwrap_or_else(|| home.join(".local/share"));
        let cache_home = env_dir("XDG_CACHE_HOME").unwrap_or_else(|| home.join(".cache"));
        let user = env_dir("PARACLE_HOME").unwrap_or_else(|| data_home.join("paracle"));
        let cache = env_dir("PARACLE_CACHE_DIR").unwrap_or_else(|| cache_home.join("paracle"));
        Paths::new(project, &user, &cache)
    }

    /// Paths for `project`, with the per-user files under `user` and the
    /// caches under `cache`.
    pub fn new(project: &Path, user: &Path, cache: &Path) -> Self {
        Paths {
            project: project.to_path_buf(),
            state: project.join(".paracle"),
            user_plugins: user.join("plugins"),
            trust: user.join("trust.toml"),
            cache: cache.join("compiled"),
            user_config: user.join("config.toml"),
            secrets: user.join("secrets.toml"),
            blobs: cache.join("oci").join("blobs"),
            template_index: cache.join("oci").join("index"),
        }
    }

    pub fn registry_file(&self) -> PathBuf {
        self.state.join("registry.toml")
    }

    pub fn stats_file(&self) -> PathBuf {
        self.state.join("stats.json")
    }

    /// The append-only log of who allowed or refused what.
    pub fn audit_file(&self) -> PathBuf {
        self.state.join("audit.jsonl")
    }

    pub fn project_config(&self) -> PathBuf {
        self.project.join("paracle.toml")
    }

    /// The templates installed into the project, with what they wrote.
    pub fn templates_file(&self) -> PathBuf {
        self.state.join("templates.toml")
    }

    pub fn plugins_dir(&self) -> PathBuf {
        self.state.join("plugins")
    }

    /// Where the git workflow checks out each execution's branch.
    pub fn worktrees(&self) -> PathBuf {
        self.state.join("worktrees")
    }

    /// The shared workspace that tool plugins like `fs-tools` are granted.
    /// A workflow run re-points that grant at its own workspace.
    pub fn workspace(&self) -> PathBuf {
        self.state.join("workspace")
    }
}
