//! Builds the guest components (the sample plugins, which are also the
//! embedded defaults, and the test fixtures) for wasm32-wasip2, so that `cargo build` and
//! `cargo test` need no earlier step.
//!
//! The guests build in their own workspace and target directory: the outer
//! cargo holds a lock on this build's target directory, and the guests must
//! not inherit flags meant for the host.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The samples are embedded as defaults; the fixtures are only for tests.
const GUEST_WORKSPACES: &[&str] = &["sample-plugins", "tests/fixtures"];
const WATCHED: &[&str] = &["sample-plugins", "tests/fixtures", "plugins-sdk", "wit"];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let repo = manifest_dir.parent().expect("host/ sits in the repository");
    for dir in WATCHED {
        watch(&repo.join(dir));
    }

    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    // OUT_DIR is <target>/<profile>/build/<package>/out.
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .expect("OUT_DIR lies inside the target directory")
        .join("guests");

    for workspace in GUEST_WORKSPACES {
        build_guests(&repo.join(workspace).join("Cargo.toml"), &target_dir);
    }
    let guest_dir = target_dir.join("wasm32-wasip2").join("release");
    println!("cargo:rustc-env=PARACLE_GUEST_DIR={}", guest_dir.display());
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

fn build_guests(manifest: &Path, target_dir: &Path) {
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
