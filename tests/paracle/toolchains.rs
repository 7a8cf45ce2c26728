//! The plugin authors' toolchains the authoring tests build with: Rust
//! (this workspace's own), componentize-py (in the tests' Python, see
//! `python`), and componentize-js and jco from npm.
//!
//! `PARACLE_TEST_JS_TOOLS` names a directory where `npm install` of
//! `tests/js/package.json` was run (`.ci/run` does it). Otherwise the tests
//! run it under the target directory on first use, so that `cargo test`
//! works on its own given Node.js, npm and the npm registry.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const JS_PACKAGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/js/package.json");

/// The directory holding `componentize-js` and `jco`.
pub(crate) fn js_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(dir) = std::env::var_os("PARACLE_TEST_JS_TOOLS") {
            return PathBuf::from(dir).join("node_modules/.bin");
        }
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("js-tools");
        let bin = dir.join("node_modules/.bin");
        if !(bin.join("componentize-js").exists() && bin.join("jco").exists()) {
            npm_install(&dir);
        }
        bin
    })
}

/// Install beside the final place and move there, so that an interrupted
/// install is never taken for a finished one.
fn npm_install(dir: &Path) {
    let partial = dir.with_extension(format!("partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::copy(JS_PACKAGE, partial.join("package.json")).unwrap();
    let out = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&partial)
        .output()
        .unwrap_or_else(|e| panic!("npm: cannot start it ({e}); install Node.js 18+ with npm, or set PARACLE_TEST_JS_TOOLS"));
    assert!(
        out.status.success(),
        "npm install of tests/js/package.json failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
    if std::fs::rename(&partial, dir).is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
}

/// The directory holding `componentize-py`: the tests' Python's.
pub(crate) fn python_bin() -> &'static Path {
    crate::python::mcp_python()
        .parent()
        .expect("a Python in a bin directory")
}

/// `PATH` with the authors' toolchains first.
pub(crate) fn path_with_toolchains() -> OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = [js_bin().to_path_buf(), python_bin().to_path_buf()]
        .into_iter()
        .chain(std::env::split_paths(&path));
    std::env::join_paths(dirs).unwrap()
}

/// One cargo target directory for every Rust plugin the tests build, so
/// that the SDK and its dependencies compile once.
pub(crate) fn rust_target() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("authored-plugins")
}

/// Run `program` in `dir` with the toolchains on `PATH`; fail the test
/// with its output unless it succeeds.
pub(crate) fn run_in(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("PATH", path_with_toolchains())
        .env("CARGO_TARGET_DIR", rust_target())
        .output()
        .unwrap_or_else(|e| panic!("{program}: cannot start it: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} in {} failed:\n{}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
