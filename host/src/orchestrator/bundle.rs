//! What a phase leaves behind: its artifacts checked against the phase's
//! patterns, and a zip of them with a `MANIFEST.json`, at
//! `.paracle/artifacts/<run-id>/<phase>.zip`.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::atomic;

use super::clock;
use super::run::{PhaseRun, RunState, Validation};
use super::OrchestratorError;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OrchestratorError + '_ {
    move |source| OrchestratorError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `relative` inside `root`, or None if it would leave it: absolute paths,
/// `..` and empty paths are refused.
pub fn inside(root: &Path, relative: &str) -> Option<PathBuf> {
    let path = Path::new(relative);
    if relative.is_empty()
        || !path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return None;
    }
    Some(root.join(path))
}

/// Every file under `root`, relative to it, with `/` separators, sorted.
pub fn files_under(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                if let Ok(relative) = path.strip_prefix(root) {
                    let parts: Vec<String> = relative
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy().to_string())
                        .collect();
                    found.push(parts.join("/"));
                }
            }
        }
    }
    found.sort();
    found
}

/// Which workspace files the patterns find, and which patterns find none.
pub fn validate(workspace: &Path, patterns: &[String]) -> Validation {
    let files = files_under(workspace);
    let mut found = BTreeSet::new();
    let mut missing = Vec::new();
    for pattern in patterns {
        // Patterns were checked when the workflow was read.
        let Ok(glob) = globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
        else {
            missing.push(pattern.clone());
            continue;
        };
        let matcher = glob.compile_matcher();
        let matched: Vec<&String> = files.iter().filter(|f| matcher.is_match(f)).collect();
        if matched.is_empty() {
            missing.push(pattern.clone());
        }
        found.extend(matched.into_iter().cloned());
    }
    Validation {
        found: found.into_iter().collect(),
        missing,
    }
}

pub fn bundle_path(state_dir: &Path, run: &str, phase: &str) -> PathBuf {
    state_dir
        .join("artifacts")
        .join(run)
        .join(format!("{phase}.zip"))
}

/// The files a phase's bundle holds: those its patterns found, and those
/// its agents reported writing.
pub fn bundled_files(phase: &PhaseRun) -> Vec<String> {
    let mut files: BTreeSet<String> = phase
        .validation
        .as_ref()
        .map(|v| v.found.iter().cloned().collect())
        .unwrap_or_default();
    for agent in &phase.agents {
        files.extend(agent.artifacts.iter().cloned());
    }
    files.into_iter().collect()
}

pub fn digest(phase: &PhaseRun) -> Value {
    json!({
        "agents_run": phase.agents.iter().filter(|a| a.attempts > 0).count(),
        "agents_succeeded": phase.succeeded(),
        "agents_failed": phase.failed(),
        "duration_ms": phase.duration_ms,
        "agents": phase.agents.iter().map(|a| json!({
            "name": a.name,
            "status": a.status.as_str(),
            "attempts": a.attempts,
            "duration_ms": a.duration_ms,
        })).collect::<Vec<_>>(),
        "validation": phase.validation.as_ref().map(|v| json!({
            "found": v.found,
            "missing": v.missing,
        })),
    })
}

/// Write the bundle of phase `index`; returns its path.
pub fn write(
    state_dir: &Path,
    workspace: &Path,
    run: &RunState,
    index: usize,
) -> Result<PathBuf, OrchestratorError> {
    let phase = &run.phases[index];
    let target = bundle_path(state_dir, &run.id, &phase.name);
    let now = clock::now_ms();
    let (year, month, day, hour, minute, second) = clock::parts(now);
    let modified = zip::DateTime::from_date_and_time(year, month, day, hour, minute, second)
        .unwrap_or_default();
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(modified)
        .unix_permissions(0o644);
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let mut listed = Vec::new();
    for file in bundled_files(phase) {
        let Some(path) = inside(workspace, &file) else {
            continue;
        };
        // A file reported but since removed is left out, not fatal: the
        // manifest lists what the bundle holds.
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        zip.start_file(format!("artifacts/{file}"), options)
            .map_err(|e| OrchestratorError::Bundle(e.to_string()))?;
        zip.write_all(&bytes).map_err(io(&target))?;
        listed.push(json!({
            "path": file,
            "size": bytes.len(),
            "sha256": hex::encode(Sha256::digest(&bytes)),
        }));
    }
    let manifest = json!({
        "phase": phase.name,
        "run_id": run.id,
        "workflow": run.workflow.name,
        "created_at": clock::rfc3339(now),
        "artifact_count": listed.len(),
        "artifacts": listed,
        "metrics": digest(phase),
    });
    zip.start_file("MANIFEST.json", options)
        .map_err(|e| OrchestratorError::Bundle(e.to_string()))?;
    zip.write_all(
        serde_json::to_string_pretty(&manifest)
            .expect("JSON values serialise")
            .as_bytes(),
    )
    .map_err(io(&target))?;
    let bytes = zip
        .finish()
        .map_err(|e| OrchestratorError::Bundle(e.to_string()))?
        .into_inner();
    atomic::write(&target, &bytes).map_err(io(&target))?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_leave_the_workspace_are_refused() {
        let root = Path::new("/w");
        assert_eq!(inside(root, "a/b.md"), Some(PathBuf::from("/w/a/b.md")));
        assert_eq!(inside(root, "../x"), None);
        assert_eq!(inside(root, "/etc/passwd"), None);
        assert_eq!(inside(root, "a/../../x"), None);
        assert_eq!(inside(root, ""), None);
    }

    #[test]
    fn validation_reports_found_files_and_patterns_that_found_none() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("docs")).unwrap();
        std::fs::write(dir.path().join("plan.md"), "p").unwrap();
        std::fs::write(dir.path().join("docs/a.md"), "a").unwrap();
        let v = validate(
            dir.path(),
            &["*.md".into(), "docs/**".into(), "tests/*.rs".into()],
        );
        assert_eq!(v.found, vec!["docs/a.md", "plan.md"]);
        assert_eq!(v.missing, vec!["tests/*.rs"]);
    }
}
