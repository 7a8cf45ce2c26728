//! Running a plugin project's build: the command its manifest names, with
//! the author's own toolchain.
//!
//! The command is the author's, as `cargo build` runs a crate's build
//! script: `plugin build` is for the author's own projects, never for one
//! a stranger sent (docs/security.md).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::RecvTimeoutError;
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
    #[error("`{program}` was not found; {hint}")]
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

    #[error("the build's output {path} is refused: {why}")]
    BadOutput { path: PathBuf, why: String },
}

/// Where the build writes the component, and the directory it must stay
/// in. Cargo writes under `CARGO_TARGET_DIR` when it is set (relative to
/// the project), whatever the manifest says.
fn output_place(dir: &Path, manifest: &PluginManifest) -> (PathBuf, PathBuf) {
    if manifest.language == Language::Rust {
        if let (Some(target), Some(rest)) = (
            std::env::var_os("CARGO_TARGET_DIR"),
            manifest.output.strip_prefix("target/"),
        ) {
            let target = dir.join(target);
            return (target.join(rest), target);
        }
    }
    (dir.join(&manifest.output), dir.to_path_buf())
}

/// The component the build wrote: a regular file, not a link, inside the
/// place it must be in.
fn checked_output(output: &Path, within: &Path) -> Result<PathBuf, BuildError> {
    let refused = |why: &str| BuildError::BadOutput {
        path: output.to_path_buf(),
        why: why.to_string(),
    };
    let metadata = match std::fs::symlink_metadata(output) {
        Ok(metadata) => metadata,
        Err(_) => return Err(BuildError::NoOutput(output.to_path_buf())),
    };
    if !metadata.file_type().is_file() {
        return Err(refused("it is not a regular file (a link, or a directory)"));
    }
    let real = std::fs::canonicalize(output).map_err(|e| refused(&e.to_string()))?;
    let place = std::fs::canonicalize(within).map_err(|e| refused(&e.to_string()))?;
    if !real.starts_with(&place) {
        return Err(refused(&format!("it resolves outside {}", place.display())));
    }
    Ok(real)
}

/// A command's program: a path relative to the project when it names a
/// directory, else searched in the project's tools and on `PATH`.
fn program_path(dir: &Path, program: &str, extra: &[PathBuf]) -> Option<PathBuf> {
    if program.contains('/') {
        let path = dir.join(program);
        return path.is_file().then_some(path);
    }
    find_program(program, extra)
}

/// How long a build's output is still read after the build exited: a
/// process it left behind may hold its pipes open.
const DRAIN: Duration = Duration::from_secs(1);

/// Build the project in `dir`; every line the build prints goes to
/// `on_line` as it comes.
pub fn build(
    dir: &Path,
    manifest: &PluginManifest,
    mut on_line: impl FnMut(&str) + Send,
) -> Result<Built, BuildError> {
    let extra = tool_dirs(dir);
    let program = &manifest.build[0];
    let found = program_path(dir, program, &extra).ok_or_else(|| BuildError::NoProgram {
        program: program.clone(),
        hint: missing_tools(dir, manifest.language)
            .into_iter()
            .map(|m| format!("to install {}: {}", m.tool, m.install))
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
    for stream in [Box::new(stdout) as Box<dyn Read + Send>, Box::new(stderr)] {
        let lines_to = lines_to.clone();
        // Detached: a reader blocked on a pipe that a leftover process
        // holds must not hold the build up.
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut line = Vec::new();
            // At most MAX_LINE bytes a line, so a build that prints one
            // endless line is read in pieces, not into memory whole.
            while (&mut reader)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut line)
                .is_ok_and(|n| n > 0)
            {
                let text = String::from_utf8_lossy(&line).trim_end().to_string();
                if lines_to.send(text).is_err() {
                    return;
                }
                line.clear();
            }
        });
    }
    drop(lines_to);
    let mut tail = VecDeque::with_capacity(TAIL_LINES);
    let mut keep = |line: String, on_line: &mut dyn FnMut(&str)| {
        on_line(&line);
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    };
    let status = loop {
        match lines.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => keep(line, &mut on_line),
            Err(RecvTimeoutError::Disconnected) => break child.wait(),
            Err(RecvTimeoutError::Timeout) => {}
        }
        // Asked after every line too, so that a process the build left
        // behind, printing on, cannot keep the build going.
        match child.try_wait() {
            Ok(Some(status)) => {
                let until = Instant::now() + DRAIN;
                while let Some(left) = until.checked_duration_since(Instant::now()) {
                    match lines.recv_timeout(left) {
                        Ok(line) => keep(line, &mut on_line),
                        Err(_) => break,
                    }
                }
                break Ok(status);
            }
            Ok(None) => {}
            Err(error) => break Err(error),
        }
    }
    .map_err(|source| BuildError::Spawn {
        program: program.clone(),
        source,
    })?;
    if !status.success() {
        return Err(BuildError::Failed {
            status: status.to_string(),
            tail: Vec::from(tail).join("\n"),
        });
    }
    let (output, within) = output_place(dir, manifest);
    let output = checked_output(&output, &within)?;
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
        let BuildError::Failed { tail, .. } = error else {
            panic!("{error}");
        };
        assert!(
            tail.starts_with("line 11\n") && tail.ends_with("line 40"),
            "{tail}"
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
    fn an_output_that_is_a_link_or_leads_outside_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("x.wasm"), "elsewhere").unwrap();
        std::os::unix::fs::symlink(outside.path().join("x.wasm"), dir.path().join("x.wasm"))
            .unwrap();
        let error = build(dir.path(), &manifest(&["true"], "x.wasm"), |_| {}).unwrap_err();
        assert!(matches!(error, BuildError::BadOutput { .. }), "{error}");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("out")).unwrap();
        let error = build(dir.path(), &manifest(&["true"], "out/x.wasm"), |_| {}).unwrap_err();
        assert!(matches!(error, BuildError::BadOutput { .. }), "{error}");
    }

    #[test]
    fn a_process_left_holding_the_pipes_does_not_hold_the_build() {
        let dir = tempfile::tempdir().unwrap();
        let asked = manifest(
            &[
                "sh",
                "-c",
                "echo built > x.wasm; sleep 300 & echo $! > left.pid; echo done",
            ],
            "x.wasm",
        );
        let built = build(dir.path(), &asked, |_| {}).unwrap();
        assert_eq!(
            built.output,
            std::fs::canonicalize(dir.path().join("x.wasm")).unwrap()
        );
        // The process the build left is still there: the build did not
        // wait for it.
        let pid = std::fs::read_to_string(dir.path().join("left.pid")).unwrap();
        let pid = pid.trim();
        let alive = Command::new("kill").args(["-0", pid]).status().unwrap();
        let _ = Command::new("kill").arg(pid).status();
        assert!(alive.success(), "the leftover process had ended");
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
