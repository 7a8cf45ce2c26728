//! Running a plugin project's build: the command its manifest names, with
//! the author's own toolchain.
//!
//! The command is the author's, as `cargo build` runs a crate's build
//! script: `plugin build` is for the author's own projects, never for one
//! a stranger sent (docs/security.md).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::manifest::{Language, PluginManifest};
use crate::toolchain::{find_program, missing_tools, tool_dirs};

/// How many lines of a failed build's output its error keeps.
const TAIL_LINES: usize = 30;
/// The longest line kept from a build's output.
const MAX_LINE: usize = 4096;

#[derive(Debug, Clone, Serialize)]
pub struct Built {
    /// The component the build wrote.
    pub output: PathBuf,
    #[serde(serialize_with = "seconds")]
    pub elapsed: Duration,
}

fn seconds<S: serde::Serializer>(elapsed: &Duration, to: S) -> Result<S::Ok, S::Error> {
    to.serialize_f64(elapsed.as_secs_f64())
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("`{program}` was not found: {hint}")]
    NoProgram { program: String, hint: String },

    #[error("cannot run `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },

    /// `tail` holds the build's last lines, which `build` has already
    /// handed to its caller one by one.
    #[error("the build failed ({status}); its output is above")]
    Failed { status: String, tail: String },

    #[error("the build succeeded but did not write {0}; check `output` in paracle-plugin.toml")]
    NoOutput(PathBuf),
}

/// Where the build writes the component. Cargo writes under
/// `CARGO_TARGET_DIR` when it is set, whatever the manifest says.
fn output_path(dir: &Path, manifest: &PluginManifest) -> PathBuf {
    if manifest.language == Language::Rust {
        if let (Some(target), Some(rest)) = (
            std::env::var_os("CARGO_TARGET_DIR"),
            manifest.output.strip_prefix("target/"),
        ) {
            return PathBuf::from(target).join(rest);
        }
    }
    dir.join(&manifest.output)
}

/// Build the project in `dir`; every line the build prints goes to
/// `on_line` as it comes.
pub fn build(
    dir: &Path,
    manifest: &PluginManifest,
    mut on_line: impl FnMut(&str) + Send,
) -> Result<Built, BuildError> {
    let extra = tool_dirs(dir);
    let program = &manifest.build[0];
    let found = find_program(program, &extra).ok_or_else(|| BuildError::NoProgram {
        program: program.clone(),
        hint: missing_tools(dir, manifest.language)
            .into_iter()
            .map(|m| format!("{} ({})", m.install, m.tool))
            .next()
            .unwrap_or_else(|| "install it, or change `build` in paracle-plugin.toml".into()),
    })?;
    let path = std::env::join_paths(extra.iter().cloned().chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap_or_default();
    let started = Instant::now();
    let mut child = Command::new(&found)
        .args(&manifest.build[1..])
        .current_dir(dir)
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| BuildError::Spawn {
            program: program.clone(),
            source,
        })?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let (lines_to, lines) = std::sync::mpsc::channel::<String>();
    let readers: Vec<_> = [
        Box::new(stdout) as Box<dyn std::io::Read + Send>,
        Box::new(stderr),
    ]
    .into_iter()
    .map(|stream| {
        let lines_to = lines_to.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                line.truncate(MAX_LINE);
                let text = String::from_utf8_lossy(&line).trim_end().to_string();
                if lines_to.send(text).is_err() {
                    return;
                }
                line.clear();
            }
        })
    })
    .collect();
    drop(lines_to);
    let mut tail = VecDeque::with_capacity(TAIL_LINES);
    for line in lines {
        on_line(&line);
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    for reader in readers {
        let _ = reader.join();
    }
    let status = child.wait().map_err(|source| BuildError::Spawn {
        program: program.clone(),
        source,
    })?;
    if !status.success() {
        return Err(BuildError::Failed {
            status: status.to_string(),
            tail: Vec::from(tail).join("\n"),
        });
    }
    let output = output_path(dir, manifest);
    let written = std::fs::metadata(&output)
        .and_then(|m| m.modified())
        .is_ok();
    if !written {
        return Err(BuildError::NoOutput(output));
    }
    Ok(Built {
        output,
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::ScaffoldKind;

    fn manifest(build: &[&str], output: &str) -> PluginManifest {
        PluginManifest {
            name: "t".into(),
            kind: ScaffoldKind::Tool,
            language: Language::Python,
            build: build.iter().map(|s| s.to_string()).collect(),
            output: output.into(),
            watch: vec!["*.py".into()],
        }
    }

    #[test]
    fn a_failed_build_keeps_its_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let asked = manifest(
            &[
                "sh",
                "-c",
                "for i in $(seq 1 40); do echo line $i; done; exit 3",
            ],
            "x.wasm",
        );
        let mut heard = 0;
        let error = build(dir.path(), &asked, |_| heard += 1).unwrap_err();
        assert_eq!(heard, 40);
        let message = error.to_string();
        assert!(
            message.contains("line 40") && !message.contains("line 10\n"),
            "{message}"
        );
    }

    #[test]
    fn a_build_that_writes_nothing_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let error = build(dir.path(), &manifest(&["true"], "x.wasm"), |_| {}).unwrap_err();
        assert!(matches!(error, BuildError::NoOutput(_)), "{error}");
    }

    #[test]
    fn project_tools_come_before_path() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join(".venv/bin");
        std::fs::create_dir_all(&bin).unwrap();
        let tool = bin.join("componentize-py");
        std::fs::write(&tool, "#!/bin/sh\necho built > x.wasm\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let built = build(
            dir.path(),
            &manifest(&["componentize-py"], "x.wasm"),
            |_| {},
        )
        .unwrap();
        assert_eq!(built.output, dir.path().join("x.wasm"));
    }

    #[test]
    fn a_missing_program_says_how_to_install_it() {
        let dir = tempfile::tempdir().unwrap();
        let error = build(
            dir.path(),
            &manifest(&["no-such-builder-xyz"], "x.wasm"),
            |_| {},
        )
        .unwrap_err();
        assert!(matches!(error, BuildError::NoProgram { .. }), "{error}");
    }
}
