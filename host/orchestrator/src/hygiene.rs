//! What a reviewer should look at before approving a phase: the files the
//! phase added or changed in the run's workspace, scanned for the user's
//! secrets and for well-known key formats (flagged, never shown), for files
//! over the size limit, for binary content where text was expected, and for
//! files outside the phase's declared artifact patterns. The result is a
//! score out of 100 with a grade, in `REQUEST.md`, `run metrics` and
//! `<phase>/hygiene.json`.
//!
//! Files are read as everything in the workspace is: beneath the root,
//! never through a link, at most [`MAX_FILE_BYTES`] of each.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::OnceLock;

use regex::bytes::Regex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use paracle_base::beneath::{Beneath, MAX_FILE_BYTES};

/// The workspace's files and their digests, as a phase found them. Kept
/// beside the phase's report, so that a phase that goes on later (resumed,
/// or back from a gate) is judged on all it wrote.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Snapshot(BTreeMap<String, String>);

impl Snapshot {
    pub(crate) fn take(root: &Beneath) -> Snapshot {
        let mut files = BTreeMap::new();
        for path in root.files().files {
            if let Some(digest) = digest_of(root, &path) {
                files.insert(path, hex::encode(digest));
            }
        }
        Snapshot(files)
    }
}

fn digest_of(root: &Beneath, path: &str) -> Option<[u8; 32]> {
    let (file, _) = root.open_file(path).ok()?;
    let mut hash = Sha256::new();
    let mut reader = file.take(MAX_FILE_BYTES);
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = reader.read(&mut buffer).ok()?;
        if read == 0 {
            break;
        }
        hash.update(&buffer[..read]);
    }
    Some(hash.finalize().into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// The value of one of the user's secrets.
    Secret,
    /// Something shaped like a well-known credential.
    KeyFormat,
    Oversize,
    /// Binary content in a file whose name says text.
    Binary,
    /// A file the phase's artifact patterns do not name.
    Unexpected,
}

impl FindingKind {
    /// What each costs the score.
    fn cost(self) -> u32 {
        match self {
            FindingKind::Secret => 40,
            FindingKind::KeyFormat => 25,
            FindingKind::Oversize => 10,
            FindingKind::Binary => 10,
            FindingKind::Unexpected => 5,
        }
    }
}

/// One thing to look at. `detail` never quotes what was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub path: String,
    pub kind: FindingKind,
    pub detail: String,
}

/// The report of one phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hygiene {
    pub score: u32,
    pub grade: String,
    /// New or changed files scanned.
    pub scanned: usize,
    pub findings: Vec<Finding>,
    /// The workspace held more files than a scan lists: some were not
    /// looked at, which costs the score as a finding would.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub incomplete: bool,
}

impl Hygiene {
    /// `92/100 (A)`.
    pub fn summary(&self) -> String {
        format!("{}/100 ({})", self.score, self.grade)
    }
}

fn grade(score: u32) -> &'static str {
    match score {
        90.. => "A",
        80..=89 => "B",
        70..=79 => "C",
        60..=69 => "D",
        _ => "F",
    }
}

/// What the scan checks against.
pub(crate) struct Rules<'a> {
    /// The user's secrets, by name.
    pub(crate) secrets: &'a [(String, String)],
    pub(crate) max_file_bytes: u64,
    /// The phase's artifact patterns; none declared: nothing is unexpected.
    pub(crate) patterns: &'a [String],
}

/// Well-known credential formats: what each is called, and its shape.
fn key_formats() -> &'static [(&'static str, Regex)] {
    static FORMATS: OnceLock<Vec<(&'static str, Regex)>> = OnceLock::new();
    FORMATS.get_or_init(|| {
        [
            ("a private key", r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
            ("an AWS access key id", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
            ("a GitHub token", r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
            (
                "a GitHub fine-grained token",
                r"\bgithub_pat_[A-Za-z0-9_]{40,}\b",
            ),
            ("an Anthropic API key", r"\bsk-ant-[A-Za-z0-9_-]{20,}"),
            ("an OpenAI API key", r"\bsk-(?:proj-)?[A-Za-z0-9_-]{32,}"),
            ("a Slack token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
            ("a Google API key", r"\bAIza[0-9A-Za-z_-]{35}\b"),
            ("a Stripe secret key", r"\b[sr]k_live_[0-9A-Za-z]{20,}\b"),
        ]
        .into_iter()
        .map(|(name, pattern)| (name, Regex::new(pattern).expect("a fixed pattern compiles")))
        .collect()
    })
}

/// Findings kept in one report; past them the report is incomplete.
const MAX_FINDINGS: usize = 1000;
/// What a scan that could not look at everything costs.
const INCOMPLETE_COST: u32 = 25;

/// Names that say a file is text.
const TEXT_EXTENSIONS: &[&str] = &[
    "md", "markdown", "txt", "text", "rst", "adoc", "json", "jsonl", "toml", "yaml", "yml", "ini",
    "cfg", "conf", "csv", "tsv", "xml", "html", "htm", "css", "js", "mjs", "cjs", "ts", "tsx",
    "jsx", "py", "rb", "rs", "go", "java", "kt", "c", "h", "cc", "cpp", "hpp", "cs", "sh", "bash",
    "zsh", "sql", "graphql", "proto", "tf", "env", "log", "diff", "patch", "svg",
];

fn says_text(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    match name.rsplit_once('.') {
        Some((_, extension)) => TEXT_EXTENSIONS.contains(&extension.to_ascii_lowercase().as_str()),
        None => false,
    }
}

/// Scan the files the phase added or changed since `before`.
pub(crate) fn scan(root: &Beneath, before: &Snapshot, rules: &Rules<'_>) -> Hygiene {
    let listing = root.files();
    let matchers: Vec<globset::GlobMatcher> = rules
        .patterns
        .iter()
        .filter_map(|p| {
            globset::GlobBuilder::new(p)
                .literal_separator(true)
                .build()
                .ok()
                .map(|g| g.compile_matcher())
        })
        .collect();
    let mut findings = Vec::new();
    let mut scanned = 0;
    let mut incomplete = listing.truncated;
    for path in &listing.files {
        if findings.len() >= MAX_FINDINGS {
            incomplete = true;
            break;
        }
        let Some(digest) = digest_of(root, path) else {
            continue;
        };
        if before.0.get(path) == Some(&hex::encode(digest)) {
            continue;
        }
        scanned += 1;
        let mut found = |kind: FindingKind, detail: String| {
            findings.push(Finding {
                path: path.clone(),
                kind,
                detail,
            })
        };
        if !matchers.is_empty() && !matchers.iter().any(|m| m.is_match(path)) {
            found(
                FindingKind::Unexpected,
                "not named by the phase's artifact patterns".into(),
            );
        }
        let Ok((file, size)) = root.open_file(path) else {
            continue;
        };
        if size > rules.max_file_bytes {
            found(
                FindingKind::Oversize,
                format!(
                    "{} KiB, over the {} KiB limit (hygiene_max_file_kib)",
                    size.div_ceil(1024),
                    rules.max_file_bytes / 1024
                ),
            );
        }
        let mut content = Vec::new();
        if file.take(MAX_FILE_BYTES).read_to_end(&mut content).is_err() {
            continue;
        }
        if says_text(path) && (content.contains(&0) || std::str::from_utf8(&content).is_err()) {
            found(
                FindingKind::Binary,
                "binary content in a file named as text".into(),
            );
        }
        for (name, value) in rules.secrets {
            if !value.is_empty() && contains(&content, value.as_bytes()) {
                found(
                    FindingKind::Secret,
                    format!("holds the value of your secret `{name}`"),
                );
            }
        }
        for (what, shape) in key_formats() {
            if let Some(at) = shape.find(&content) {
                let line = content[..at.start()]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count()
                    + 1;
                found(
                    FindingKind::KeyFormat,
                    format!("holds what looks like {what}, on line {line}"),
                );
            }
        }
    }
    let cost: u32 = findings.iter().map(|f| f.kind.cost()).sum::<u32>()
        + if incomplete { INCOMPLETE_COST } else { 0 };
    let score = 100u32.saturating_sub(cost);
    Hygiene {
        score,
        grade: grade(score).to_string(),
        scanned,
        findings,
        incomplete,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// `text` with the value of each of the user's secrets replaced by its
/// name: what an agent said is kept in the run's state and shown to
/// reviewers, and a model can repeat a secret it saw.
pub fn hide_secrets(text: &mut String, secrets: &[(String, String)]) {
    for (name, value) in secrets {
        if !value.is_empty() && text.contains(value.as_str()) {
            *text = text.replace(value.as_str(), &format!("[secret {name}]"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_and_changed_files_are_scored_and_nothing_found_is_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, bytes: &[u8]| {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, bytes).unwrap();
        };
        write("kept.md", b"unchanged");
        write("changed.md", b"before");
        let root = Beneath::open(dir.path()).unwrap();
        let before = Snapshot::take(&root);
        write("changed.md", b"after");
        write(
            "notes/leak.md",
            b"token: hunter2-s3cr3t\nkey: AKIAABCDEFGHIJKLMNOP\n",
        );
        write("notes/picture.md", b"\x89PNG\0\0binary");
        write("big.bin", &vec![b'x'; 3000]);
        let secrets = vec![("DB_PASSWORD".to_string(), "hunter2-s3cr3t".to_string())];
        let patterns = vec!["notes/*.md".to_string(), "*.md".to_string()];
        let report = scan(
            &root,
            &before,
            &Rules {
                secrets: &secrets,
                max_file_bytes: 2048,
                patterns: &patterns,
            },
        );
        assert_eq!(report.scanned, 4);
        let kinds: Vec<(&str, FindingKind)> = report
            .findings
            .iter()
            .map(|f| (f.path.as_str(), f.kind))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("big.bin", FindingKind::Unexpected),
                ("big.bin", FindingKind::Oversize),
                ("notes/leak.md", FindingKind::Secret),
                ("notes/leak.md", FindingKind::KeyFormat),
                ("notes/picture.md", FindingKind::Binary),
            ]
        );
        let shown = serde_json::to_string(&report).unwrap();
        assert!(
            !shown.contains("hunter2") && !shown.contains("AKIA"),
            "{shown}"
        );
        assert!(shown.contains("line 2"), "{shown}");
        assert_eq!(report.score, 100 - 5 - 10 - 40 - 25 - 10);
        assert_eq!(report.summary(), "10/100 (F)");

        let mut said = "the password is hunter2-s3cr3t".to_string();
        hide_secrets(&mut said, &secrets);
        assert_eq!(said, "the password is [secret DB_PASSWORD]");
    }
}
