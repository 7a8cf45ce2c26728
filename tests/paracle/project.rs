//! A temporary project with its own per-user directories, and the
//! `paracle` binary run in it as a user would.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

pub(crate) struct Project {
    dir: tempfile::TempDir,
    home: tempfile::TempDir,
}

impl Project {
    pub(crate) fn new() -> Self {
        Project {
            dir: tempfile::tempdir().unwrap(),
            home: tempfile::tempdir().unwrap(),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The per-user directory (`PARACLE_HOME`): trust list and config.
    pub(crate) fn home(&self) -> std::path::PathBuf {
        self.home.path().join("home")
    }

    /// The per-user cache (`PARACLE_CACHE_DIR`).
    pub(crate) fn cache(&self) -> std::path::PathBuf {
        self.home.path().join("cache")
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("paracle runs")
    }

    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "paracle {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub(crate) fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        let text = self.ok(&args);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("paracle {args:?} printed no JSON ({e}): {text}"))
    }

    /// A failing command: exit code 1 and a single `error:` line, no panic.
    pub(crate) fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "paracle {args:?} should fail with 1"
        );
        let stderr = String::from_utf8(out.stderr).unwrap();
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "one line of error for {args:?}, got: {stderr}"
        );
        assert!(lines[0].starts_with("error: "), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        lines[0].to_string()
    }
}

impl Project {
    /// The `paracle` command for this project, not yet started.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_paracle"));
        command
            .args(args)
            .current_dir(self.path())
            .env("PARACLE_HOME", self.home.path().join("home"))
            .env("PARACLE_CACHE_DIR", self.home.path().join("cache"))
            .env_remove("PARACLE_LOG");
        command
    }

    /// Write `text` to `relative`, making its directories.
    pub(crate) fn write(&self, relative: &str, text: &str) {
        let path = self.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// `paracle ARGS` on a pseudo-terminal, as a person at a shell runs it
/// (user `alice`).
pub(crate) fn on_terminal(project: &Project, args: &[&str]) -> rexpect::session::PtySession {
    let mut command = project.command(args);
    command.env("USER", "alice").env("TERM", "dumb");
    rexpect::session::spawn_with_options(
        command,
        rexpect::session::Options {
            timeout_ms: Some(60_000),
            strip_ansi_escape_codes: true,
        },
    )
    .expect("paracle starts on a pseudo-terminal")
}

/// How a command run with [`on_terminal`] exited.
pub(crate) fn exit_code(session: &mut rexpect::session::PtySession) -> i32 {
    match session.process.wait().unwrap() {
        rexpect::process::wait::WaitStatus::Exited(_, code) => code,
        other => panic!("paracle did not exit normally: {other:?}"),
    }
}

/// The records of `action` in the project's audit log, as `WHO WHAT
/// OUTCOME` lines.
pub(crate) fn audited(project: &Project, action: &str) -> Vec<String> {
    project.json(&["audit"])["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == action)
        .map(|r| {
            format!(
                "{} {} {}",
                r["who"].as_str().unwrap(),
                r["what"].as_str().unwrap(),
                r["outcome"].as_str().unwrap()
            )
        })
        .collect()
}
