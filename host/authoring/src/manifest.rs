//! `paracle-plugin.toml`: how a plugin project is built, written by
//! `paracle plugin new` and read by `plugin build` and `plugin dev`.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const MANIFEST_FILE: &str = "paracle-plugin.toml";

/// The kinds `plugin new` writes projects for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScaffoldKind {
    Tool,
    Provider,
    Memory,
    Observer,
    Adapter,
    GitWorkflow,
}

impl ScaffoldKind {
    pub const ALL: [ScaffoldKind; 6] = [
        ScaffoldKind::Tool,
        ScaffoldKind::Provider,
        ScaffoldKind::Memory,
        ScaffoldKind::Observer,
        ScaffoldKind::Adapter,
        ScaffoldKind::GitWorkflow,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ScaffoldKind::Tool => "tool",
            ScaffoldKind::Provider => "provider",
            ScaffoldKind::Memory => "memory",
            ScaffoldKind::Observer => "observer",
            ScaffoldKind::Adapter => "adapter",
            ScaffoldKind::GitWorkflow => "git-workflow",
        }
    }

    /// The contract's world for this kind.
    pub fn world(self) -> String {
        format!("{}-plugin", self.name())
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Language {
    Rust,
    Python,
    Js,
}

impl Language {
    pub const ALL: [Language; 3] = [Language::Rust, Language::Python, Language::Js];

    pub fn name(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::Js => "js",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "javascript" => Some(Language::Js),
            other => Self::ALL.into_iter().find(|lang| lang.name() == other),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginManifest {
    /// The name the plugin is loaded under.
    pub name: String,
    pub kind: ScaffoldKind,
    pub language: Language,
    /// The command that builds the component, run in the project's
    /// directory: the program, then its arguments.
    pub build: Vec<String>,
    /// The component the build writes, relative to the project.
    pub output: String,
    /// Which files to rebuild on: patterns relative to the project.
    pub watch: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path} is missing: this is not a plugin project; make one with `paracle plugin new NAME --kind KIND`, or run this in one")]
    Missing { path: PathBuf },

    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl PluginManifest {
    /// The manifest of the project in `dir`.
    pub fn read(dir: &Path) -> Result<Self, ManifestError> {
        let path = dir.join(MANIFEST_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(ManifestError::Missing { path })
            }
            Err(source) => return Err(ManifestError::Read { path, source }),
        };
        let invalid = |message: String| ManifestError::Invalid {
            path: path.clone(),
            message,
        };
        let manifest: PluginManifest =
            paracle_base::strict_toml::parse(&text).map_err(|e| invalid(e.to_string()))?;
        manifest.check().map_err(invalid)?;
        Ok(manifest)
    }

    fn check(&self) -> Result<(), String> {
        if self
            .build
            .first()
            .is_none_or(|program| program.trim().is_empty())
        {
            return Err("`build` must name a program to run".into());
        }
        if !inside(&self.output) {
            return Err(format!(
                "`output` ({}) must be a path inside the project, with no `..`",
                self.output
            ));
        }
        if self.watch.is_empty() {
            return Err("`watch` must list at least one pattern".into());
        }
        for pattern in &self.watch {
            crate::watch::pattern_glob(pattern)
                .map_err(|e| format!("`watch` pattern `{pattern}`: {e}"))?;
        }
        Ok(())
    }

    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).expect("a manifest serialises");
        format!(
            "# How `paracle plugin build` and `paracle plugin dev` build this plugin:\n\
             # `build` runs in this directory and writes `output`; `watch` lists\n\
             # the files a change to which starts a new build.\n{body}"
        )
    }
}

/// Whether `path` is relative and stays below the directory it is relative to.
fn inside(path: &str) -> bool {
    let path = Path::new(path);
    !path.as_os_str().is_empty()
        && path
            .components()
            .all(|component| matches!(component, Component::Normal(_) | Component::CurDir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(text: &str) -> (tempfile::TempDir, Result<PluginManifest, ManifestError>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MANIFEST_FILE), text).unwrap();
        let read = PluginManifest::read(dir.path());
        (dir, read)
    }

    const GOOD: &str = r#"name = "greeter"
kind = "tool"
language = "python"
build = ["componentize-py", "componentize", "app"]
output = "greeter.wasm"
watch = ["*.py"]
"#;

    #[test]
    fn reads_what_it_writes() {
        let (_dir, read) = written(GOOD);
        let manifest = read.unwrap();
        assert_eq!(manifest.kind, ScaffoldKind::Tool);
        let (_again, reread) = written(&manifest.to_toml());
        assert_eq!(reread.unwrap(), manifest);
    }

    #[test]
    fn unknown_keys_name_their_line() {
        let (_dir, read) = written(&format!("{GOOD}colour = \"red\"\n"));
        let message = read.unwrap_err().to_string();
        assert!(
            message.contains("line 7") && message.contains("colour"),
            "{message}"
        );
    }

    #[test]
    fn the_output_stays_inside_the_project() {
        for output in ["../elsewhere.wasm", "/tmp/x.wasm", "a/../../b.wasm", ""] {
            let (_dir, read) = written(&GOOD.replace("greeter.wasm", output));
            let message = read.unwrap_err().to_string();
            assert!(message.contains("`output`"), "{output}: {message}");
        }
    }

    #[test]
    fn a_missing_manifest_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let message = PluginManifest::read(dir.path()).unwrap_err().to_string();
        assert!(message.contains("paracle plugin new"), "{message}");
    }
}
