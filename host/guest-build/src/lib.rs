//! Builds a cargo workspace of guests for `wasm32-wasip2` from a build
//! script, so that `cargo build` and `cargo test` need no earlier step.
//!
//! The guests build in their own workspace and target directory: the outer
//! cargo holds a lock on this build's target directory, and the guests must
//! not inherit flags meant for the host.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's root, from a build script of a crate at `host/<name>`.
pub fn repository() -> PathBuf {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    manifest_dir
        .ancestors()
        .nth(2)
        .expect("the crate sits at host/<name> in the repository")
        .to_path_buf()
}

/// Where the guests' `.wasm` files land: one directory shared by every build
/// script of this target directory, so that a guest is built once.
pub fn guest_dir() -> PathBuf {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    // OUT_DIR is <target>/<profile>/build/<package>/out.
    out_dir
        .ancestors()
        .nth(4)
        .expect("OUT_DIR lies inside the target directory")
        .join("guests")
}

/// Build the guest workspace in `repository/workspace` (and rerun when its
/// sources, the SDK or the WIT change); returns the `.wasm` file of each
/// member, by member directory name.
pub fn build(workspace: &str) -> Vec<(String, PathBuf)> {
    let repository = repository();
    for watched in [workspace, "plugins-sdk", "wit", "host/contract-version"] {
        watch(&repository.join(watched));
    }
    let manifest = repository.join(workspace).join("Cargo.toml");
    let target_dir = guest_dir();
    run_cargo(&manifest, &target_dir);
    let release = target_dir.join("wasm32-wasip2").join("release");
    members(&manifest)
        .into_iter()
        .map(|member| {
            let file = release.join(format!("{}.wasm", member.replace('-', "_")));
            assert!(
                file.is_file(),
                "building {} wrote no {}",
                manifest.display(),
                file.display()
            );
            (member, file)
        })
        .collect()
}

/// The member directories listed in a guest workspace's `members = [...]`.
fn members(manifest: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", manifest.display()));
    let start = text
        .find("members")
        .and_then(|at| text[at..].find('[').map(|open| at + open + 1))
        .unwrap_or_else(|| panic!("{} lists no members", manifest.display()));
    let end = start
        + text[start..]
            .find(']')
            .unwrap_or_else(|| panic!("{}: unclosed members list", manifest.display()));
    text[start..end]
        .lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .flat_map(|line| line.split(','))
        .map(|item| item.trim().trim_matches('"').to_string())
        .filter(|item| !item.is_empty())
        .collect()
}

/// Cargo rescans a watched directory for changes, so watch the sources only,
/// never a directory that holds build output.
fn watch(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == "target") {
            continue;
        }
        if path.is_dir() {
            watch(&path);
        } else {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

fn run_cargo(manifest: &Path, target_dir: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut command = Command::new(cargo);
    command
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(manifest)
        .arg("--target-dir")
        .arg(target_dir);
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        command.env_remove(var);
    }
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("could not run cargo to build the guest plugins: {e}"));
    if !status.success() {
        panic!(
            "building the guest plugins in {} failed (see above). If the error is about a \
             missing target, run `rustup target add wasm32-wasip2`.",
            manifest.display()
        );
    }
}
