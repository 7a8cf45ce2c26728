//! The source changes `paracle plugin dev` rebuilds on, from the operating
//! system's file events (the `notify` crate), settled so that an editor's
//! burst of writes is one change.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use notify::{RecursiveMode, Watcher};

/// How long the sources must be quiet before a change is reported.
const SETTLE: Duration = Duration::from_millis(150);

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot watch {dir}: {reason}")]
    Start { dir: PathBuf, reason: String },

    #[error("`watch` pattern `{pattern}`: {reason}")]
    Pattern { pattern: String, reason: String },
}

/// A `watch` pattern: `*` stays within one directory, so that `*.js` is
/// the project's own files and not everything under `node_modules`; `**`
/// crosses directories.
pub(crate) fn pattern_glob(pattern: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(pattern).literal_separator(true).build()
}

/// The directories `patterns` can reach, each watched as deep as needed:
/// `*.py` is the project's own directory alone, `src/**/*.rs` is `src` and
/// below. A project's `node_modules`, `.venv` or `target` are not watched
/// unless a pattern reaches into them, so their size costs no watches.
fn roots(dir: &Path, patterns: &[String]) -> Vec<(PathBuf, RecursiveMode)> {
    let is_glob = |part: &str| part.contains(['*', '?', '[', '{']);
    let mut roots: Vec<(PathBuf, RecursiveMode)> = Vec::new();
    for pattern in patterns {
        let parts: Vec<&str> = pattern
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        let (root, mode) = match parts.iter().position(|part| is_glob(part)) {
            // A plain file: its directory, not below.
            None => (
                dir.join(parts[..parts.len().saturating_sub(1)].join("/")),
                RecursiveMode::NonRecursive,
            ),
            Some(at) => {
                let rest = &parts[at..];
                let deep = rest.len() > 1 || rest.iter().any(|p| p.contains("**"));
                let mode = if deep {
                    RecursiveMode::Recursive
                } else {
                    RecursiveMode::NonRecursive
                };
                (dir.join(parts[..at].join("/")), mode)
            }
        };
        if !root.is_dir() {
            continue;
        }
        match roots.iter_mut().find(|(r, _)| *r == root) {
            Some((_, existing)) if mode == RecursiveMode::Recursive => *existing = mode,
            Some(_) => {}
            None => roots.push((root, mode)),
        }
    }
    roots
}

pub struct SourceWatcher {
    dir: PathBuf,
    patterns: GlobSet,
    events: Receiver<notify::Result<notify::Event>>,
    // Dropping the watcher stops the events.
    _watcher: notify::RecommendedWatcher,
}

impl SourceWatcher {
    /// Watch `dir` for changes to files that match `patterns` (relative to it).
    pub fn new(dir: &Path, patterns: &[String]) -> Result<Self, WatchError> {
        let mut set = GlobSetBuilder::new();
        for pattern in patterns {
            let glob = pattern_glob(pattern).map_err(|e| WatchError::Pattern {
                pattern: pattern.clone(),
                reason: e.to_string(),
            })?;
            set.add(glob);
        }
        let globs = set.build().map_err(|e| WatchError::Pattern {
            pattern: patterns.join(", "),
            reason: e.to_string(),
        })?;
        let start_error = |e: notify::Error| WatchError::Start {
            dir: dir.to_path_buf(),
            reason: e.to_string(),
        };
        let dir = std::fs::canonicalize(dir).map_err(|e| start_error(e.into()))?;
        let (sender, events) = channel();
        let mut watcher = notify::recommended_watcher(sender).map_err(start_error)?;
        let watched = roots(&dir, patterns);
        if watched.is_empty() {
            return Err(WatchError::Start {
                dir: dir.clone(),
                reason: format!(
                    "no directory that the `watch` patterns ({}) name exists",
                    patterns.join(", ")
                ),
            });
        }
        for (root, mode) in watched {
            watcher.watch(&root, mode).map_err(start_error)?;
        }
        Ok(SourceWatcher {
            dir,
            patterns: globs,
            events,
            _watcher: watcher,
        })
    }

    fn relevant(&self, event: &notify::Event) -> Vec<PathBuf> {
        if event.kind.is_access() {
            return Vec::new();
        }
        event
            .paths
            .iter()
            .filter_map(|path| path.strip_prefix(&self.dir).ok())
            .filter(|relative| self.patterns.is_match(relative))
            .map(Path::to_path_buf)
            .collect()
    }

    /// Wait for the next change to a watched file: the files that changed,
    /// once the sources have been quiet for a moment. None when the watcher
    /// has stopped.
    pub fn next_change(&self) -> Option<Vec<PathBuf>> {
        let mut changed: Vec<PathBuf> = Vec::new();
        // Only a change to a watched file moves the deadline: events on
        // other files (a log being read, a build's output) must not keep
        // one change from ever settling.
        let mut settled_at: Option<Instant> = None;
        loop {
            let event = match settled_at {
                None => self.events.recv().ok()?,
                Some(at) => {
                    let left = at.saturating_duration_since(Instant::now());
                    match self.events.recv_timeout(left) {
                        Ok(event) => event,
                        Err(RecvTimeoutError::Timeout) => {
                            changed.sort();
                            changed.dedup();
                            return Some(changed);
                        }
                        Err(RecvTimeoutError::Disconnected) => return None,
                    }
                }
            };
            match event {
                Ok(event) => {
                    let relevant = self.relevant(&event);
                    if !relevant.is_empty() {
                        changed.extend(relevant);
                        settled_at = Some(Instant::now() + SETTLE);
                    }
                }
                Err(error) => tracing::warn!("file events: {error}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_only_where_the_patterns_reach() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src/deep")).unwrap();
        std::fs::create_dir_all(dir.path().join("node_modules/x")).unwrap();
        let watched = roots(
            dir.path(),
            &[
                "src/**/*.rs".into(),
                "Cargo.toml".into(),
                "*.js".into(),
                "missing/*.py".into(),
            ],
        );
        assert_eq!(
            watched,
            vec![
                (dir.path().join("src"), RecursiveMode::Recursive),
                (dir.path().join(""), RecursiveMode::NonRecursive),
            ]
        );
    }

    #[test]
    fn reports_a_change_to_a_watched_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let watcher = SourceWatcher::new(dir.path(), &["*.py".into()]).unwrap();
        let root = dir.path().to_path_buf();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            std::fs::write(root.join("notes.txt"), "ignored").unwrap();
            std::fs::create_dir_all(root.join("lib")).unwrap();
            std::fs::write(root.join("lib/vendored.py"), "ignored too").unwrap();
            std::fs::write(root.join("app.py"), "print(1)").unwrap();
        });
        let changed = watcher.next_change().unwrap();
        writer.join().unwrap();
        assert_eq!(changed, vec![PathBuf::from("app.py")]);
    }
}
