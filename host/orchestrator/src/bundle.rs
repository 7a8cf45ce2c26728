//! What a phase leaves behind: its artifacts checked against the phase's
//! patterns, and a zip of them with a `MANIFEST.json`, at
//! `.paracle/artifacts/<run-id>/<phase>.zip`.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use paracle_base::atomic;
use paracle_base::beneath::{Beneath, MAX_FILE_BYTES};

use crate::clock;
use crate::error::OrchestratorError;
use crate::run::{PhaseRun, RunState, Validation};

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OrchestratorError + '_ {
    move |source| OrchestratorError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The workspace as the host reads it: see [`crate::beneath`].
pub(crate) fn open(workspace: &Path) -> Result<Beneath, OrchestratorError> {
    Beneath::open(workspace).map_err(io(workspace))
}

/// Which workspace files the patterns find, and which patterns find none.
/// Links are never artifacts: they are listed apart, matched or not.
pub(crate) fn validate(workspace: &Beneath, patterns: &[String]) -> Validation {
    let listing = workspace.files();
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
        let matched: Vec<&String> = listing
            .files
            .iter()
            .filter(|f| matcher.is_match(f))
            .collect();
        if matched.is_empty() {
            missing.push(pattern.clone());
        }
        found.extend(matched.into_iter().cloned());
    }
    Validation {
        found: found.into_iter().collect(),
        missing,
        links: listing.links,
    }
}

pub(crate) fn bundle_path(state_dir: &Path, run: &str, phase: &str) -> PathBuf {
    state_dir
        .join("artifacts")
        .join(run)
        .join(format!("{phase}.zip"))
}

/// The files a phase's bundle holds: those its patterns found, and those
/// its agents reported writing.
pub(crate) fn bundled_files(phase: &PhaseRun) -> Vec<String> {
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

pub(crate) fn digest(phase: &PhaseRun) -> Value {
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
pub(crate) fn write(
    state_dir: &Path,
    workspace: &Beneath,
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
    let mut listed = Vec::new();
    let mut skipped = Vec::new();
    for link in phase.validation.iter().flat_map(|v| &v.links) {
        skipped
            .push(json!({"path": link, "reason": "a symbolic link, which is never an artifact"}));
    }
    let zip_error = |e: zip::result::ZipError| std::io::Error::other(e.to_string());
    // Straight into the bundle's temporary file, each artifact opened in
    // turn, streamed, and read no further than the size it had when it was
    // opened: a workspace file may be larger than the host's memory.
    atomic::write_with(&target, |file| {
        let mut zip = zip::ZipWriter::new(file);
        let mut buffer = vec![0u8; 64 * 1024];
        for path in bundled_files(phase) {
            // A file reported but since removed, replaced by a link, or too
            // large is left out, not fatal: the manifest says what the
            // bundle holds and why the rest is not there.
            let (mut reader, size) = match workspace.open_file(&path) {
                Ok((_, size)) if size > MAX_FILE_BYTES => {
                    skipped.push(json!({
                        "path": path,
                        "reason": format!("{size} bytes, over the {MAX_FILE_BYTES} a bundle takes"),
                    }));
                    continue;
                }
                Ok(opened) => opened,
                Err(error) => {
                    skipped.push(json!({"path": path, "reason": error.to_string()}));
                    continue;
                }
            };
            zip.start_file(format!("artifacts/{path}"), options)
                .map_err(zip_error)?;
            let mut hasher = Sha256::new();
            let mut left = size;
            while left > 0 {
                let want = buffer
                    .len()
                    .min(usize::try_from(left).unwrap_or(usize::MAX));
                let read = reader.read(&mut buffer[..want])?;
                if read == 0 {
                    break;
                }
                hasher.update(&buffer[..read]);
                zip.write_all(&buffer[..read])?;
                left -= read as u64;
            }
            listed.push(json!({
                "path": path,
                "size": size - left,
                "sha256": hex::encode(hasher.finalize()),
            }));
        }
        let manifest = json!({
            "phase": phase.name,
            "run_id": run.id,
            "workflow": run.workflow.name,
            "created_at": clock::rfc3339(now),
            "artifact_count": listed.len(),
            "artifacts": listed,
            "skipped": skipped,
            "metrics": digest(phase),
        });
        zip.start_file("MANIFEST.json", options)
            .map_err(zip_error)?;
        zip.write_all(
            serde_json::to_string_pretty(&manifest)
                .expect("JSON values serialise")
                .as_bytes(),
        )?;
        zip.finish().map_err(zip_error)?;
        Ok(())
    })
    .map_err(io(&target))?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_reports_found_files_and_patterns_that_found_none() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("docs")).unwrap();
        std::fs::write(dir.path().join("plan.md"), "p").unwrap();
        std::fs::write(dir.path().join("docs/a.md"), "a").unwrap();
        std::os::unix::fs::symlink("plan.md", dir.path().join("link.md")).unwrap();
        let v = validate(
            &Beneath::open(dir.path()).unwrap(),
            &["*.md".into(), "docs/**".into(), "tests/*.rs".into()],
        );
        assert_eq!(v.found, vec!["docs/a.md", "plan.md"]);
        assert_eq!(v.missing, vec!["tests/*.rs"]);
        assert_eq!(v.links, vec!["link.md"]);
    }
}
