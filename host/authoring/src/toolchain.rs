//! The toolchains a plugin project builds with: where a project keeps its
//! own (a Python virtual environment, npm's binaries), and what is missing,
//! with the command that installs it.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::manifest::Language;

/// The componentize-py release the Python projects are written against.
pub(crate) const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

#[derive(Debug, Clone, Serialize)]
pub struct Missing {
    pub tool: String,
    pub install: String,
}

/// Where a project keeps its own tools: a Python virtual environment and
/// npm's binaries, searched before `PATH`.
pub(crate) fn tool_dirs(dir: &Path) -> Vec<PathBuf> {
    [dir.join(".venv/bin"), dir.join("node_modules/.bin")]
        .into_iter()
        .filter(|d| d.is_dir())
        .collect()
}

pub(crate) fn find_program(program: &str, extra: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    extra
        .iter()
        .cloned()
        .chain(std::env::split_paths(&path))
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What the build of a `language` project in `dir` needs that cannot be
/// found, each with the command that installs it.
pub fn missing_tools(dir: &Path, language: Language) -> Vec<Missing> {
    let extra = tool_dirs(dir);
    let have = |program: &str| find_program(program, &extra).is_some();
    let mut missing = Vec::new();
    let mut need = |tool: &str, install: String| {
        missing.push(Missing {
            tool: tool.into(),
            install,
        })
    };
    match language {
        Language::Rust => {
            if !have("cargo") {
                need(
                    "cargo",
                    "install Rust with rustup: https://rustup.rs".into(),
                );
            } else if have("rustup") {
                let installed = std::process::Command::new("rustup")
                    .args(["target", "list", "--installed"])
                    .current_dir(dir)
                    .output()
                    .map(|out| String::from_utf8_lossy(&out.stdout).contains("wasm32-wasip2"))
                    .unwrap_or(true);
                if !installed {
                    need(
                        "the wasm32-wasip2 target",
                        "rustup target add wasm32-wasip2".into(),
                    );
                }
            }
        }
        Language::Python => {
            if !have("componentize-py") {
                need(
                    "componentize-py",
                    format!(
                        "cd {} && python3 -m venv .venv && .venv/bin/pip install {COMPONENTIZE_PY}",
                        dir.display()
                    ),
                );
            }
        }
        Language::Js => {
            if !have("node") {
                need("node", "install Node.js 18 or later, with npm".into());
            }
            if !have("componentize-js") {
                need(
                    "componentize-js",
                    format!("cd {} && npm install", dir.display()),
                );
            }
        }
    }
    missing
}
