//! `template.yaml` and the files a template may hold.
//!
//! A template directory holds exactly: `template.yaml`, an optional
//! `README.md`, agent specs in `agents/*.toml`, workflows in
//! `workflows/*.toml`, and plugin components in `plugins/NAME.wasm` (each
//! with an optional `NAME.wasm.sig`). Anything else is refused, so that a
//! template never writes where its user did not expect, and a symbolic link
//! is never followed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use paracle_runtime::valid_name;

use crate::error::DistributionError;
use crate::plugin::MAX_COMPONENT;
use crate::reference::ArtifactRef;

pub const META_FILE: &str = "template.yaml";
pub const README_FILE: &str = "README.md";
/// The largest spec or README a template may hold.
pub const MAX_TEXT_FILE: u64 = 1 << 20;
/// The most files in one template.
pub const MAX_FILES: usize = 256;
/// The most plugins one template may need.
pub const MAX_PLUGINS: usize = 32;

/// The version of Paracle templates are checked against.
pub const PARACLE_VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateMeta {
    pub name: String,
    /// A semantic version, like 1.2.0.
    pub version: String,
    pub category: Category,
    pub author: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// A semver requirement on Paracle's version, like ">=0.1, <0.3".
    pub paracle_version: String,
    pub description: String,
    /// The plugins its agents use, beyond the built-in ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<PluginDep>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Agent,
    Workflow,
    Plugin,
    Integration,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Agent => "agent",
            Category::Workflow => "workflow",
            Category::Plugin => "plugin",
            Category::Integration => "integration",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Category::Agent,
            Category::Workflow,
            Category::Plugin,
            Category::Integration,
        ]
        .into_iter()
        .find(|c| c.as_str() == text)
    }
}

/// A plugin a template needs: in a registry, pinned by digest, or embedded
/// as `plugins/NAME.wasm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginDep {
    /// The name its agents know it by.
    pub name: String,
    /// `oci://HOST/REPOSITORY[:TAG]@sha256:DIGEST`.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// `plugins/NAME.wasm`, inside the template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

impl PluginDep {
    pub fn embedded_path(&self) -> String {
        format!("plugins/{}.wasm", self.name)
    }
}

/// Parse and check `template.yaml` (read from `path`, for errors).
pub fn parse_meta(path: &Path, text: &str) -> Result<TemplateMeta, DistributionError> {
    let meta: TemplateMeta = serde_yaml_ng::from_str(text).map_err(|e| DistributionError::At {
        path: path.to_path_buf(),
        line: e.location().map_or(1, |l| l.line()),
        message: e.to_string(),
    })?;
    check_meta(&meta, |key| DistributionError::At {
        path: path.to_path_buf(),
        line: line_of_key(text, key),
        message: String::new(),
    })?;
    Ok(meta)
}

/// The 1-based line where `key` is first written as a mapping key; for
/// `plugins.NAME.KEY`, the first `KEY` from the plugin called NAME on.
fn line_of_key(text: &str, key: &str) -> usize {
    let is_key = |line: &str, key: &str| {
        let line = line.trim_start().trim_start_matches("- ");
        line.strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with(':'))
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut from = 0;
    let mut key = key;
    if let Some((plugin, field)) = key
        .strip_prefix("plugins.")
        .and_then(|rest| rest.rsplit_once('.'))
    {
        from = lines
            .iter()
            .position(|line| {
                is_key(line, "name")
                    && line
                        .split_once(':')
                        .is_some_and(|(_, value)| value.trim().trim_matches(['"', '\'']) == plugin)
            })
            .unwrap_or(0);
        key = field;
    }
    lines[from.min(lines.len())..]
        .iter()
        .position(|line| is_key(line, key))
        .map_or(1, |index| from + index + 1)
}

/// Check what serde cannot: names, versions, tags and plugin references.
/// `at(key)` makes the error for the line of `key`; its message is filled in.
pub(crate) fn check_meta(
    meta: &TemplateMeta,
    at: impl Fn(&str) -> DistributionError,
) -> Result<(), DistributionError> {
    let fail = |key: &str, message: String| {
        let mut error = at(key);
        match &mut error {
            DistributionError::At { message: m, .. } => *m = message,
            DistributionError::Template(m) => *m = format!("{m}{message}"),
            _ => {}
        }
        error
    };
    if !valid_name(&meta.name) {
        return Err(fail(
            "name",
            format!(
                "name `{}`: use 1 to 64 lowercase letters, digits, `-` or `_`",
                meta.name
            ),
        ));
    }
    semver::Version::parse(&meta.version).map_err(|e| {
        fail(
            "version",
            format!(
                "version `{}` is not a semantic version like 1.0.0: {e}",
                meta.version
            ),
        )
    })?;
    semver::VersionReq::parse(&meta.paracle_version).map_err(|e| {
        fail(
            "paracle_version",
            format!(
                "paracle_version `{}` is not a version requirement like \">=0.1\": {e}",
                meta.paracle_version
            ),
        )
    })?;
    if meta.author.trim().is_empty() {
        return Err(fail("author", "author is empty".into()));
    }
    if meta.description.trim().is_empty() {
        return Err(fail("description", "description is empty".into()));
    }
    for tag in &meta.tags {
        if !valid_name(tag) {
            return Err(fail(
                "tags",
                format!("tag `{tag}`: use 1 to 64 lowercase letters, digits, `-` or `_`"),
            ));
        }
    }
    if meta.plugins.len() > MAX_PLUGINS {
        return Err(fail(
            "plugins",
            format!(
                "it lists {} plugins; a template may need at most {MAX_PLUGINS}",
                meta.plugins.len()
            ),
        ));
    }
    for (index, dep) in meta.plugins.iter().enumerate() {
        if !valid_name(&dep.name) {
            return Err(fail(
                "plugins",
                format!(
                    "plugin `{}`: use 1 to 64 lowercase letters, digits, `-` or `_`",
                    dep.name
                ),
            ));
        }
        if meta.plugins[..index].iter().any(|d| d.name == dep.name) {
            return Err(fail(
                "plugins",
                format!("plugin `{}` is listed twice", dep.name),
            ));
        }
        match (&dep.reference, &dep.file) {
            (Some(reference), None) => {
                let at = format!("plugins.{}.ref", dep.name);
                let parsed = ArtifactRef::parse(reference)
                    .map_err(|e| fail(&at, format!("plugin `{}`: {e}", dep.name)))?;
                if parsed.digest().is_none() {
                    return Err(fail(
                        &at,
                        format!(
                            "plugin `{}`: `{reference}` has no digest; pin it as ...@sha256:DIGEST (`paracle plugin publish` prints it)",
                            dep.name
                        ),
                    ));
                }
            }
            (None, Some(file)) if *file == dep.embedded_path() => {}
            (None, Some(file)) => {
                return Err(fail(
                    &format!("plugins.{}.file", dep.name),
                    format!(
                        "plugin `{}`: an embedded plugin is the file `{}`, not `{file}`",
                        dep.name,
                        dep.embedded_path()
                    ),
                ))
            }
            _ => {
                return Err(fail(
                    "plugins",
                    format!(
                    "plugin `{}`: give exactly one of `ref` (in a registry) and `file` (embedded)",
                    dep.name
                ),
                ))
            }
        }
    }
    Ok(())
}

/// Whether this Paracle can use a template that asks for `requirement`.
pub fn check_compatible(meta: &TemplateMeta, label: &str) -> Result<(), DistributionError> {
    let requirement = semver::VersionReq::parse(&meta.paracle_version)
        .map_err(|e| DistributionError::Template(format!("{label}: paracle_version: {e}")))?;
    let ours = semver::Version::parse(PARACLE_VERSION).expect("our own version is semver");
    if !requirement.matches(&ours) {
        return Err(DistributionError::Template(format!(
            "{label} (template `{}` {}) needs Paracle {}, and this is Paracle {ours}; use a version of the template made for this one, or another Paracle",
            meta.name, meta.version, meta.paracle_version
        )));
    }
    Ok(())
}

/// What a file in a template is, by its path relative to the template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Readme,
    Agents,
    Workflow,
    Plugin,
    PluginSignature,
}

impl FileKind {
    /// The kind of the file at `relative`, or why it cannot be in a
    /// template. Only plain names: no `..`, no hidden files, no nesting.
    pub fn of(relative: &str) -> Result<Self, String> {
        let allowed = "a template holds template.yaml, README.md, agents/*.toml, workflows/*.toml and plugins/NAME.wasm (with NAME.wasm.sig)";
        let plain = |name: &str| {
            !name.is_empty()
                && !name.starts_with('.')
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        };
        let kind = match relative.split('/').collect::<Vec<_>>().as_slice() {
            [README_FILE] => Some(FileKind::Readme),
            ["agents", name] if plain(name) && name.ends_with(".toml") => Some(FileKind::Agents),
            ["workflows", name] if plain(name) && name.ends_with(".toml") => {
                Some(FileKind::Workflow)
            }
            ["plugins", name] if plain(name) && name.ends_with(".wasm") => Some(FileKind::Plugin),
            ["plugins", name] if plain(name) && name.ends_with(".wasm.sig") => {
                Some(FileKind::PluginSignature)
            }
            _ => None,
        };
        kind.ok_or_else(|| format!("`{relative}` cannot be in a template: {allowed}"))
    }

    pub fn limit(self) -> u64 {
        match self {
            FileKind::Plugin => MAX_COMPONENT,
            _ => MAX_TEXT_FILE,
        }
    }
}

/// A template, as files in memory: its metadata and every other file by
/// its path relative to the template.
#[derive(Debug, Clone)]
pub struct TemplateFiles {
    pub meta: TemplateMeta,
    /// The text of template.yaml, when read from a directory.
    pub meta_text: Option<String>,
    pub files: Vec<(String, Vec<u8>)>,
}

impl TemplateFiles {
    pub fn file(&self, relative: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|(path, _)| path == relative)
            .map(|(_, bytes)| bytes.as_slice())
    }

    /// Check that the files and the metadata agree: every embedded plugin
    /// is there, and every component is one the metadata lists.
    pub(crate) fn check_files(&self, label: &Path) -> Result<(), DistributionError> {
        for dep in &self.meta.plugins {
            if dep.file.is_some() && self.file(&dep.embedded_path()).is_none() {
                return Err(DistributionError::file(
                    label.join(dep.embedded_path()),
                    format!(
                        "is missing; template.yaml lists plugin `{}` as embedded",
                        dep.name
                    ),
                ));
            }
        }
        for (path, _) in &self.files {
            let kind =
                FileKind::of(path).map_err(|m| DistributionError::file(label.join(path), m))?;
            let listed = |component: &str| {
                self.meta
                    .plugins
                    .iter()
                    .any(|d| d.file.is_some() && d.embedded_path() == component)
            };
            match kind {
                FileKind::Plugin if !listed(path) => {
                    return Err(DistributionError::file(
                        label.join(path),
                        "is not listed in template.yaml; add it under `plugins:` with `file:`",
                    ))
                }
                FileKind::PluginSignature if !listed(path.trim_end_matches(".sig")) => {
                    return Err(DistributionError::file(
                        label.join(path),
                        "signs no plugin this template embeds",
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Read the template in `dir`: every file checked for its place, its kind
/// and its size, none of them a link.
pub fn read_dir(dir: &Path) -> Result<TemplateFiles, DistributionError> {
    let meta_path = dir.join(META_FILE);
    let meta_text = String::from_utf8(read_regular(&meta_path, MAX_TEXT_FILE)?)
        .map_err(|_| DistributionError::file(&meta_path, "is not UTF-8 text"))?;
    let meta = parse_meta(&meta_path, &meta_text)?;
    let mut files = Vec::new();
    walk(dir, dir, &mut files)?;
    let template = TemplateFiles {
        meta,
        meta_text: Some(meta_text),
        files,
    };
    template.check_files(dir)?;
    Ok(template)
}

fn walk(
    root: &Path,
    dir: &Path,
    files: &mut Vec<(String, Vec<u8>)>,
) -> Result<(), DistributionError> {
    let entries = std::fs::read_dir(dir).map_err(|e| DistributionError::io(dir, e))?;
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| DistributionError::io(dir, e))?;
    paths.sort();
    for path in paths {
        let relative = path
            .strip_prefix(root)
            .expect("walked from the root")
            .to_string_lossy()
            .replace('\\', "/");
        if relative == META_FILE {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).map_err(|e| DistributionError::io(&path, e))?;
        if meta.file_type().is_symlink() {
            return Err(DistributionError::file(
                &path,
                "is a symbolic link; a template holds only regular files",
            ));
        }
        if meta.is_dir() {
            if dir == root && ["agents", "workflows", "plugins"].contains(&relative.as_str()) {
                walk(root, &path, files)?;
                continue;
            }
            return Err(DistributionError::file(
                &path,
                FileKind::of(&format!("{relative}/")).unwrap_err(),
            ));
        }
        let kind = FileKind::of(&relative).map_err(|m| DistributionError::file(&path, m))?;
        if files.len() >= MAX_FILES {
            return Err(DistributionError::file(
                root,
                format!("holds more than {MAX_FILES} files"),
            ));
        }
        files.push((relative, read_regular(&path, kind.limit())?));
    }
    Ok(())
}

/// Read a regular file of at most `limit` bytes, not through a link.
fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, DistributionError> {
    use std::io::Read;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc_nofollow());
    let file = options.open(path).map_err(|e| match e.raw_os_error() {
        Some(code) if code == libc_eloop() => DistributionError::file(
            path,
            "is a symbolic link; a template holds only regular files",
        ),
        _ => DistributionError::io(path, e),
    })?;
    let meta = file
        .metadata()
        .map_err(|e| DistributionError::io(path, e))?;
    if !meta.is_file() {
        return Err(DistributionError::file(path, "is not a regular file"));
    }
    if meta.len() > limit {
        return Err(DistributionError::file(
            path,
            format!(
                "is {} bytes, more than the {limit} a template file may be",
                meta.len()
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| DistributionError::io(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(DistributionError::file(
            path,
            format!("grew past {limit} bytes while read"),
        ));
    }
    Ok(bytes)
}

#[cfg(unix)]
fn libc_nofollow() -> i32 {
    libc::O_NOFOLLOW
}

#[cfg(unix)]
fn libc_eloop() -> i32 {
    libc::ELOOP
}

#[cfg(not(unix))]
fn libc_eloop() -> i32 {
    -1
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: &str = "name: demo\nversion: 1.0.0\ncategory: workflow\nauthor: Ada\ntags: [web, demo]\nparacle_version: \">=0.1\"\ndescription: A demo.\n";

    #[test]
    fn metadata_is_strict_and_errors_name_the_line() {
        let path = Path::new("t/template.yaml");
        let meta = parse_meta(path, META).unwrap();
        assert_eq!(meta.category, Category::Workflow);
        let error = parse_meta(path, &format!("{META}license: MIT\n"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("line 8") && error.contains("license"),
            "{error}"
        );
        let error = parse_meta(path, &META.replace("1.0.0", "one"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("line 2") && error.contains("semantic version"),
            "{error}"
        );
        let error = parse_meta(path, &META.replace("workflow", "game"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("line 3"), "{error}");
        let unpinned = format!("{META}plugins:\n  - name: x\n    ref: oci://localhost:5000/x:1\n");
        let error = parse_meta(path, &unpinned).unwrap_err().to_string();
        assert!(
            error.contains("line 10") && error.contains("no digest"),
            "{error}"
        );
        let both = format!("{META}plugins:\n  - name: x\n    file: plugins/y.wasm\n");
        assert!(parse_meta(path, &both).is_err());
    }

    #[test]
    fn only_known_files_have_a_place() {
        assert_eq!(FileKind::of("agents/team.toml"), Ok(FileKind::Agents));
        assert_eq!(
            FileKind::of("plugins/x.wasm.sig"),
            Ok(FileKind::PluginSignature)
        );
        for bad in [
            "../x.toml",
            "agents/../../x.toml",
            "agents/.hidden.toml",
            "agents/sub/x.toml",
            "config.toml",
            "registry.toml",
            "agents/x.txt",
            "/etc/passwd",
            "",
        ] {
            assert!(FileKind::of(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_template_with_a_link_or_a_stray_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(META_FILE), META).unwrap();
        std::fs::create_dir(dir.path().join("agents")).unwrap();
        std::fs::write(dir.path().join("agents/a.toml"), "[agents.a]\n").unwrap();
        assert_eq!(read_dir(dir.path()).unwrap().files.len(), 1);
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("agents/b.toml")).unwrap();
        let error = read_dir(dir.path()).unwrap_err().to_string();
        assert!(error.contains("symbolic link"), "{error}");
        std::fs::remove_file(dir.path().join("agents/b.toml")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let error = read_dir(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains("notes.txt") && error.contains("cannot be in a template"),
            "{error}"
        );
    }
}
