//! The project's audit log (`.paracle/audit.jsonl`): one JSON line per
//! decision about what a plugin may do (a grant or revoke, a question to a
//! person and its answer, an approval, a denial, a secret handed over by
//! name, a signature accepted or refused), with when, which plugin and
//! digest, and who decided.
//!
//! Append-only: each record is one `write` of a whole line under an OS lock,
//! synced before the call returns. A crash mid-write can leave one torn
//! line; the next append starts on a line of its own, and a reader skips
//! torn lines and reports them rather than failing.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// What was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditAction {
    /// An operator granted something with a command.
    Grant,
    Revoke,
    /// A person was asked for a grant; `outcome` is their answer.
    Prompt,
    /// A person decided whether a tool call may run.
    Approval,
    /// Something was refused without asking anyone.
    Denial,
    /// A secret was handed to a plugin, by name.
    SecretUse,
    /// A plugin's signature was checked against the trust list.
    Signature,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Grant => "grant",
            AuditAction::Revoke => "revoke",
            AuditAction::Prompt => "prompt",
            AuditAction::Approval => "approval",
            AuditAction::Denial => "denial",
            AuditAction::SecretUse => "secret-use",
            AuditAction::Signature => "signature",
        }
    }
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// RFC 3339, UTC, milliseconds.
    pub at: String,
    pub action: AuditAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Who decided: `operator` (a command), `terminal:USER`, `mcp:CLIENT`,
    /// `policy` (the operator's `[prompts]`), `run:ID` (a workflow gate).
    pub who: String,
    /// What it was about, as a grant is written (`net:HOST:PORT`,
    /// `secret:NAME`), or a tool call.
    pub what: String,
    /// The answer or result: `once`, `always`, `deny`, `timeout`,
    /// `approved`, `rejected`, `valid`, `refused`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl AuditRecord {
    pub fn new(action: AuditAction, who: impl Into<String>, what: impl Into<String>) -> Self {
        AuditRecord {
            at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            action,
            plugin: None,
            digest: None,
            who: who.into(),
            what: what.into(),
            outcome: None,
            detail: None,
        }
    }

    pub fn plugin(mut self, name: &str, digest: Option<&str>) -> Self {
        self.plugin = Some(name.to_string());
        self.digest = digest.map(str::to_string);
        self
    }

    pub fn outcome(mut self, outcome: impl Into<String>) -> Self {
        self.outcome = Some(outcome.into());
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// A line that could not be read back: torn by a crash, or not a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TornLine {
    /// 1-based.
    pub line: usize,
    pub bytes: usize,
}

/// The log as read back.
#[derive(Debug, Default, Serialize)]
pub struct AuditLines {
    pub records: Vec<AuditRecord>,
    pub torn: Vec<TornLine>,
}

#[derive(Debug, thiserror::Error)]
#[error("audit log {file}: {source}")]
pub struct AuditError {
    pub file: PathBuf,
    pub source: std::io::Error,
}

/// Longest record kept: a line longer than this is cut at `detail`.
const MAX_LINE: usize = 16 * 1024;

/// The project's audit log.
#[derive(Debug, Clone)]
pub struct AuditLog {
    file: PathBuf,
}

impl AuditLog {
    pub fn new(file: PathBuf) -> Self {
        AuditLog { file }
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Append `record` as one line, synced.
    pub fn append(&self, record: &AuditRecord) -> Result<(), AuditError> {
        let error = |source| AuditError {
            file: self.file.clone(),
            source,
        };
        let mut line = serde_json::to_vec(record).expect("a record serializes");
        if line.len() > MAX_LINE {
            let mut shorter = record.clone();
            shorter.detail = Some("(cut: the record was over 16 KiB)".into());
            shorter.what = paracle_base::shown::clipped(&shorter.what, 1024);
            line = serde_json::to_vec(&shorter).expect("a record serializes");
        }
        line.push(b'\n');
        if let Some(dir) = self.file.parent() {
            std::fs::create_dir_all(dir).map_err(error)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&self.file)
            .map_err(error)?;
        file.lock().map_err(error)?;
        // A line torn by a crash stays a line of its own: the record after
        // it must not be glued to it and lost with it.
        if !ends_with_newline(&mut file).map_err(error)? {
            line.insert(0, b'\n');
        }
        file.write_all(&line).map_err(error)?;
        file.sync_data().map_err(error)?;
        Ok(())
    }

    /// Every record, oldest first, and the lines that are not records.
    pub fn read(&self) -> Result<AuditLines, AuditError> {
        let text = match std::fs::read(&self.file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(AuditLines::default()),
            Err(source) => {
                return Err(AuditError {
                    file: self.file.clone(),
                    source,
                })
            }
        };
        let mut lines = AuditLines::default();
        for (index, line) in text.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            match serde_json::from_slice::<AuditRecord>(line) {
                Ok(record) => lines.records.push(record),
                Err(_) => lines.torn.push(TornLine {
                    line: index + 1,
                    bytes: line.len(),
                }),
            }
        }
        Ok(lines)
    }
}

fn ends_with_newline(file: &mut File) -> std::io::Result<bool> {
    let length = file.seek(SeekFrom::End(0))?;
    if length == 0 {
        return Ok(true);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_line_is_skipped_reported_and_never_swallows_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path().join("audit.jsonl"));
        assert!(log.read().unwrap().records.is_empty());
        let first = AuditRecord::new(AuditAction::Grant, "operator", "net:example.org:443")
            .plugin("fetch", Some("sha256:ab"));
        log.append(&first).unwrap();
        // A crash in the middle of the second record.
        let mut file = OpenOptions::new().append(true).open(log.file()).unwrap();
        file.write_all(b"{\"at\":\"2026-12-02T00:00:00").unwrap();
        drop(file);
        let third =
            AuditRecord::new(AuditAction::Prompt, "terminal:alice", "env:HOME").outcome("deny");
        log.append(&third).unwrap();
        let read = log.read().unwrap();
        assert_eq!(read.records, vec![first, third]);
        assert_eq!(read.torn, vec![TornLine { line: 2, bytes: 26 }]);
    }

    #[test]
    fn a_link_in_place_of_the_log_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, "").unwrap();
        let file = dir.path().join("audit.jsonl");
        std::os::unix::fs::symlink(&elsewhere, &file).unwrap();
        let record = AuditRecord::new(AuditAction::Denial, "policy", "dir:/");
        assert!(AuditLog::new(file).append(&record).is_err());
        assert_eq!(std::fs::read(&elsewhere).unwrap(), b"");
    }
}
