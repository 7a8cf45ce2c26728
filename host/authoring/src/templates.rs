//! The files `plugin new` writes, embedded in the binary so that it works
//! offline and from any directory. `{{name}}`, `{{type}}` and `{{sdk}}`
//! are filled in by the scaffold.

use crate::manifest::{Language, ScaffoldKind};

/// The contract, for the Python and JavaScript toolchains, which read the
/// WIT themselves. The test below keeps this list equal to `wit/`.
pub(crate) const WIT: &[(&str, &str)] = &[
    ("adapter.wit", include_str!("../../../wit/adapter.wit")),
    (
        "git-workflow.wit",
        include_str!("../../../wit/git-workflow.wit"),
    ),
    ("git.wit", include_str!("../../../wit/git.wit")),
    ("host.wit", include_str!("../../../wit/host.wit")),
    ("memory.wit", include_str!("../../../wit/memory.wit")),
    ("observer.wit", include_str!("../../../wit/observer.wit")),
    ("plugin.wit", include_str!("../../../wit/plugin.wit")),
    ("provider.wit", include_str!("../../../wit/provider.wit")),
    ("tool.wit", include_str!("../../../wit/tool.wit")),
    ("types.wit", include_str!("../../../wit/types.wit")),
    ("worlds.wit", include_str!("../../../wit/worlds.wit")),
];

pub(crate) const RUST_MANIFEST: &str = include_str!("../templates/rust/Cargo.toml.tmpl");
pub(crate) const PYTHON_HELPER: &str = include_str!("../templates/python/paracle_plugin.py");
pub(crate) const JS_HELPER: &str = include_str!("../templates/js/paracle.js");

/// The plugin's source and its test, for a kind in a language; None where
/// that pair is not offered.
pub(crate) fn source(
    language: Language,
    kind: ScaffoldKind,
) -> Option<(&'static str, Option<&'static str>)> {
    use ScaffoldKind::*;
    Some(match (language, kind) {
        (Language::Rust, Tool) => (include_str!("../templates/rust/tool.rs"), None),
        (Language::Rust, Provider) => (include_str!("../templates/rust/provider.rs"), None),
        (Language::Rust, Memory) => (include_str!("../templates/rust/memory.rs"), None),
        (Language::Rust, Observer) => (include_str!("../templates/rust/observer.rs"), None),
        (Language::Rust, Adapter) => (include_str!("../templates/rust/adapter.rs"), None),
        (Language::Rust, GitWorkflow) => (include_str!("../templates/rust/git_workflow.rs"), None),
        (Language::Python, Tool) => (
            include_str!("../templates/python/tool.py"),
            Some(include_str!("../templates/python/tool_test.py")),
        ),
        (Language::Python, Provider) => (
            include_str!("../templates/python/provider.py"),
            Some(include_str!("../templates/python/provider_test.py")),
        ),
        (Language::Python, Memory) => (
            include_str!("../templates/python/memory.py"),
            Some(include_str!("../templates/python/memory_test.py")),
        ),
        (Language::Js, Tool) => (
            include_str!("../templates/js/tool.js"),
            Some(include_str!("../templates/js/tool.test.js")),
        ),
        (Language::Js, Provider) => (
            include_str!("../templates/js/provider.js"),
            Some(include_str!("../templates/js/provider.test.js")),
        ),
        (Language::Js, Memory) => (
            include_str!("../templates/js/memory.js"),
            Some(include_str!("../templates/js/memory.test.js")),
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_contract_is_all_of_wit() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../wit");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".wit"))
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = super::WIT.iter().map(|(name, _)| *name).collect();
        assert_eq!(on_disk, embedded, "update templates::WIT when wit/ changes");
    }
}
