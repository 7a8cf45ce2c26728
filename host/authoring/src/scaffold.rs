//! `paracle plugin new`: a plugin project that builds into a working
//! component with one command and carries one test the author can run.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::manifest::{Language, PluginManifest, ScaffoldKind, MANIFEST_FILE};
use crate::templates;
use crate::toolchain::{missing_tools, Missing, COMPONENTIZE_PY};

/// The componentize-js release the JavaScript projects are written against.
const COMPONENTIZE_JS: &str = "^0.23.0";

#[derive(Debug, Clone)]
pub struct ScaffoldRequest {
    pub name: String,
    pub kind: ScaffoldKind,
    pub language: Language,
    /// Where to write the project; it must not exist, or be empty.
    pub dir: PathBuf,
    /// For Rust: the `plugins-sdk` directory of a Paracle checkout.
    pub sdk: Option<PathBuf>,
}

/// What `plugin new` wrote and what to run next.
#[derive(Debug, Clone, Serialize)]
pub struct Scaffolded {
    pub dir: PathBuf,
    pub files: Vec<String>,
    pub manifest: PluginManifest,
    /// The one command that builds the component.
    pub build_command: String,
    /// The command that runs the project's test.
    pub test_command: String,
    /// Tools the build needs that are not installed, with how to get them.
    pub missing: Vec<Missing>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("`{0}` is not a valid plugin name: use 1 to 64 lowercase letters, digits, `-` or `_`, starting with a letter")]
    Name(String),

    #[error("{kind} plugins are not offered in {language}, which has tool, provider and memory; Rust has every kind (`--lang rust`)")]
    NotOffered {
        kind: &'static str,
        language: &'static str,
    },

    #[error("{0} exists and is not empty; choose another name or `--dir`, so that nothing there is overwritten")]
    NotEmpty(PathBuf),

    #[error("paracle-sdk was not found at {0}; it is not on crates.io yet: pass `--sdk` the `plugins-sdk` directory of a Paracle checkout")]
    NoSdk(PathBuf),

    #[error("cannot write the project in {dir}: {source}")]
    Write {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// The SDK of the checkout this binary was built from, when it is still there.
fn default_sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins-sdk")
}

fn valid_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn type_name(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            let first = chars.next().map(|c| c.to_ascii_uppercase());
            first.into_iter().chain(chars).collect::<String>()
        })
        .collect()
}

fn manifest_for(name: &str, kind: ScaffoldKind, language: Language) -> PluginManifest {
    let world = kind.world();
    let component = format!("{name}.wasm");
    let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match language {
        Language::Rust => PluginManifest {
            name: name.into(),
            kind,
            language,
            build: strings(&["cargo", "build", "--release", "--target", "wasm32-wasip2"]),
            output: format!(
                "target/wasm32-wasip2/release/{}.wasm",
                name.replace('-', "_")
            ),
            watch: strings(&["src/**/*.rs", "Cargo.toml"]),
        },
        Language::Python => PluginManifest {
            name: name.into(),
            kind,
            language,
            build: strings(&[
                "componentize-py",
                "-d",
                "wit",
                "-w",
                &world,
                "componentize",
                "app",
                "-o",
                &component,
            ]),
            output: component,
            watch: strings(&["*.py"]),
        },
        Language::Js => PluginManifest {
            name: name.into(),
            kind,
            language,
            build: strings(&[
                "componentize-js",
                "app.js",
                "--wit",
                "wit",
                "-n",
                &world,
                "-o",
                &component,
            ]),
            output: component,
            watch: strings(&["*.js"]),
        },
    }
}

/// The files of the project, by path relative to it.
fn files(
    request: &ScaffoldRequest,
    manifest: &PluginManifest,
    sdk: Option<&Path>,
) -> Result<Vec<(String, String)>, ScaffoldError> {
    let not_offered = || ScaffoldError::NotOffered {
        kind: request.kind.name(),
        language: request.language.name(),
    };
    let (source, test) =
        templates::source(request.language, request.kind).ok_or_else(not_offered)?;
    let name = &request.name;
    let fill = |text: &str| {
        let sdk = sdk.map(|p| p.display().to_string()).unwrap_or_default();
        // The SDK path goes into a TOML string: quoted by toml itself.
        let sdk_quoted = toml::Value::String(sdk).to_string();
        text.replace("{{name}}", name)
            .replace("{{type}}", &type_name(name))
            .replace("\"{{sdk}}\"", &sdk_quoted)
    };
    let mut files = vec![(MANIFEST_FILE.to_string(), manifest.to_toml())];
    match request.language {
        Language::Rust => {
            files.push(("Cargo.toml".into(), fill(templates::RUST_MANIFEST)));
            files.push(("src/lib.rs".into(), fill(source)));
            files.push((".gitignore".into(), "/target\n/.paracle\n".into()));
        }
        Language::Python => {
            files.push(("app.py".into(), fill(source)));
            files.push((
                "test_app.py".into(),
                fill(test.expect("python sources have tests")),
            ));
            files.push(("paracle_plugin.py".into(), templates::PYTHON_HELPER.into()));
            files.push((
                ".gitignore".into(),
                format!("/{name}.wasm\n/.venv\n/.paracle\n__pycache__/\n"),
            ));
        }
        Language::Js => {
            files.push(("app.js".into(), fill(source)));
            files.push((
                "app.test.js".into(),
                fill(test.expect("js sources have tests")),
            ));
            files.push(("paracle.js".into(), templates::JS_HELPER.into()));
            files.push((
                "package.json".into(),
                package_json(name, &request.kind.world()),
            ));
            files.push((
                ".gitignore".into(),
                format!("/{name}.wasm\n/node_modules\n/.paracle\n"),
            ));
        }
    }
    if request.language != Language::Rust {
        for (file, text) in templates::WIT {
            files.push((format!("wit/{file}"), text.to_string()));
        }
    }
    files.push(("README.md".into(), readme(request, manifest)));
    Ok(files)
}

fn package_json(name: &str, world: &str) -> String {
    format!(
        r#"{{
  "name": "{name}",
  "version": "0.1.0",
  "private": true,
  "type": "module",
  "scripts": {{
    "build": "componentize-js app.js --wit wit -n {world} -o {name}.wasm",
    "build:quickjs": "jco componentize app.js --wit wit -n {world} --backend quickjs -o {name}.wasm",
    "test": "node --test"
  }},
  "devDependencies": {{
    "@bytecodealliance/componentize-js": "{COMPONENTIZE_JS}"
  }}
}}
"#
    )
}

fn commands(language: Language, kind: ScaffoldKind) -> (&'static str, &'static str) {
    let build = if kind == ScaffoldKind::GitWorkflow {
        "paracle plugin build --grant git"
    } else {
        "paracle plugin build"
    };
    match language {
        Language::Rust => (build, "cargo test"),
        Language::Python => (build, "python3 -m unittest"),
        Language::Js => (build, "npm test"),
    }
}

fn readme(request: &ScaffoldRequest, manifest: &PluginManifest) -> String {
    let name = &request.name;
    let kind = request.kind.name();
    let (build, test) = commands(request.language, request.kind);
    let setup = match request.language {
        Language::Rust => "rustup target add wasm32-wasip2".to_string(),
        Language::Python => {
            format!("python3 -m venv .venv && .venv/bin/pip install {COMPONENTIZE_PY}")
        }
        Language::Js => "npm install".to_string(),
    };
    let call = match request.kind {
        ScaffoldKind::Tool => format!("paracle plugin call {name} greet '{{\"name\": \"Ada\"}}'\nparacle mcp tools              # {name}__greet is there\n"),
        ScaffoldKind::Provider => format!("paracle plugin call {name} chat hello\n"),
        ScaffoldKind::Memory => format!("paracle plugin call {name} search notes sky   # entries last as long as the instance:\n# through `paracle mcp serve` (memory_put, memory_get with --memory {name}) or an agent's run\n"),
        ScaffoldKind::Observer => format!("paracle plugin call {name} report\n"),
        ScaffoldKind::Adapter => "paracle run start WORKFLOW   # with `adapter = \"NAME\"` in an agent's spec\n".replace("NAME", name),
        ScaffoldKind::GitWorkflow => "paracle git init-workflow\n".to_string(),
    };
    let extra = match request.language {
        Language::Js => "\n`npm run build:quickjs` builds with the QuickJS engine instead (a 1.6 MB\ncomponent against 12 MB, quicker to load), once `npm install --save-dev\n@bytecodealliance/jco` has added jco.\n",
        Language::Python => "\n`componentize-py ... --stub-wasi` builds a component that imports no WASI\nat all; it loads as well.\n",
        Language::Rust => "",
    };
    let grant = if request.kind == ScaffoldKind::GitWorkflow {
        "\nA git workflow reaches the repository only with the operator's `git`\ngrant, which `--grant git` gives it on the first build; the project must\nbe a git repository.\n".to_string()
    } else {
        String::new()
    };
    format!(
        "# {name}\n\nA Paracle {kind} plugin, written by `paracle plugin new`.\n\n\
         ## Build, test, run\n\n```sh\n{setup}     # once: the toolchain\n{build}        # builds {output} and loads it into this directory's project\n{test}\n{call}```\n\n\
         `paracle plugin dev` rebuilds on every change to {watch} and reloads the\nplugin in place; a running `paracle mcp serve --watch` picks the new version\nup and tells its clients. A build that fails leaves the previous version\nserving.\n{extra}{grant}",
        output = manifest.output,
        watch = manifest.watch.join(", "),
    )
}

/// Write a new plugin project.
pub fn scaffold(request: &ScaffoldRequest) -> Result<Scaffolded, ScaffoldError> {
    if !valid_name(&request.name) {
        return Err(ScaffoldError::Name(request.name.clone()));
    }
    if templates::source(request.language, request.kind).is_none() {
        return Err(ScaffoldError::NotOffered {
            kind: request.kind.name(),
            language: request.language.name(),
        });
    }
    let sdk = match request.language {
        Language::Rust => {
            let wanted = request.sdk.clone().unwrap_or_else(default_sdk);
            let found = std::fs::canonicalize(&wanted)
                .ok()
                .filter(|dir| dir.join("Cargo.toml").is_file())
                .ok_or(ScaffoldError::NoSdk(wanted))?;
            Some(found)
        }
        _ => None,
    };
    let dir = &request.dir;
    let non_empty = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    if non_empty || dir.is_file() {
        return Err(ScaffoldError::NotEmpty(dir.clone()));
    }
    let manifest = manifest_for(&request.name, request.kind, request.language);
    let files = files(request, &manifest, sdk.as_deref())?;
    write_all(dir, &files).map_err(|source| ScaffoldError::Write {
        dir: dir.clone(),
        source,
    })?;
    let (build, test) = commands(request.language, request.kind);
    Ok(Scaffolded {
        dir: dir.clone(),
        files: files.into_iter().map(|(path, _)| path).collect(),
        missing: missing_tools(dir, request.language),
        manifest,
        build_command: build.into(),
        test_command: test.into(),
    })
}

/// Every file is written into a directory beside `dir`, which then takes
/// its place (or, when `dir` is an empty directory already, whose entries
/// move into it), so that a failure part-way leaves no half project behind.
fn write_all(dir: &Path, files: &[(String, String)]) -> std::io::Result<()> {
    // `components` drops a trailing `/`, through which `lstat` would
    // follow a link.
    let dir: PathBuf = std::path::absolute(dir)?.components().collect();
    if std::fs::symlink_metadata(&dir).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(std::io::Error::other(
            "it is a symbolic link; name the directory itself",
        ));
    }
    let parent = dir.parent().unwrap_or(Path::new("/")).to_path_buf();
    std::fs::create_dir_all(&parent)?;
    let staging = tempfile_dir(&parent)?;
    let mut moved: Vec<PathBuf> = Vec::new();
    let result = (|| {
        for (path, text) in files {
            let target = staging.join(path);
            if let Some(folder) = target.parent() {
                std::fs::create_dir_all(folder)?;
            }
            paracle_base::atomic::write(&target, text.as_bytes())?;
        }
        if !dir.exists() {
            return std::fs::rename(&staging, &dir);
        }
        for entry in std::fs::read_dir(&staging)? {
            let name = entry?.file_name();
            std::fs::rename(staging.join(&name), dir.join(&name))?;
            moved.push(dir.join(&name));
        }
        std::fs::remove_dir(&staging)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
        for path in moved {
            let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
        }
    }
    result
}

fn tempfile_dir(parent: &Path) -> std::io::Result<PathBuf> {
    for attempt in 0..100u32 {
        let candidate = parent.join(format!(".paracle-new-{}-{attempt}", std::process::id()));
        match std::fs::create_dir(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(error),
        }
    }
    Err(std::io::Error::other(
        "no free name for a staging directory",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(dir: &Path, language: Language, kind: ScaffoldKind) -> ScaffoldRequest {
        ScaffoldRequest {
            name: "my-plugin".into(),
            kind,
            language,
            dir: dir.join("my-plugin"),
            sdk: None,
        }
    }

    #[test]
    fn writes_every_offered_pair_with_a_manifest_that_reads_back() {
        let root = tempfile::tempdir().unwrap();
        for language in Language::ALL {
            for kind in ScaffoldKind::ALL {
                let dir = root
                    .path()
                    .join(format!("{}-{}", language.name(), kind.name()));
                let mut asked = request(&dir, language, kind);
                let offered = templates::source(language, kind).is_some();
                match scaffold(&asked) {
                    Ok(done) => {
                        assert!(offered);
                        let manifest = PluginManifest::read(&done.dir).unwrap();
                        assert_eq!(manifest.kind, kind);
                        let text = std::fs::read_to_string(done.dir.join(match language {
                            Language::Rust => "src/lib.rs",
                            Language::Python => "app.py",
                            Language::Js => "app.js",
                        }))
                        .unwrap();
                        assert!(
                            !text.contains("{{"),
                            "{language:?} {kind:?}: unfilled placeholder"
                        );
                        assert!(text.contains("my-plugin"));
                    }
                    Err(ScaffoldError::NotOffered { .. }) => assert!(!offered),
                    Err(other) => panic!("{language:?} {kind:?}: {other}"),
                }
                asked.name = "Bad Name".into();
                assert!(matches!(scaffold(&asked), Err(ScaffoldError::Name(_))));
            }
        }
    }

    #[test]
    fn never_writes_over_a_directory_with_files() {
        let root = tempfile::tempdir().unwrap();
        let asked = request(root.path(), Language::Python, ScaffoldKind::Tool);
        std::fs::create_dir_all(&asked.dir).unwrap();
        std::fs::write(asked.dir.join("app.py"), "mine").unwrap();
        assert!(matches!(scaffold(&asked), Err(ScaffoldError::NotEmpty(_))));
        assert_eq!(
            std::fs::read_to_string(asked.dir.join("app.py")).unwrap(),
            "mine"
        );
    }

    #[test]
    fn an_empty_directory_given_as_dot_is_filled_and_nothing_is_left_beside_it() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("here");
        std::fs::create_dir(&dir).unwrap();
        let asked = ScaffoldRequest {
            dir: dir.join("."),
            ..request(root.path(), Language::Js, ScaffoldKind::Tool)
        };
        scaffold(&asked).unwrap();
        assert!(dir.join("app.js").is_file() && dir.join(MANIFEST_FILE).is_file());
        let beside: Vec<_> = std::fs::read_dir(root.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(beside, vec![std::ffi::OsString::from("here")]);
        let inside = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(".paracle-new"));
        assert!(!inside);
    }

    #[test]
    fn a_link_is_not_written_through() {
        let root = tempfile::tempdir().unwrap();
        let elsewhere = root.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, root.path().join("my-plugin")).unwrap();
        let asked = request(root.path(), Language::Python, ScaffoldKind::Tool);
        assert!(scaffold(&asked).is_err());
        let trailing = ScaffoldRequest {
            dir: root.path().join("my-plugin/"),
            ..asked
        };
        assert!(scaffold(&trailing).is_err());
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    }

    #[test]
    fn type_names_are_camel_case() {
        assert_eq!(type_name("my-plugin_two"), "MyPluginTwo");
    }
}
