//! Reads the contract's version from the WIT package itself, so that the host
//! and paracle-sdk cannot disagree with `wit/` or with each other.

use std::path::PathBuf;

const PACKAGE: &str = "paracle:plugin";

fn main() {
    let wit = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../wit");
    println!("cargo:rerun-if-changed={}", wit.display());
    let mut versions = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&wit)
        .unwrap_or_else(|e| panic!("cannot read the contract in {}: {e}", wit.display()))
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "wit"))
        .collect();
    entries.sort();
    for path in entries {
        println!("cargo:rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let declared = text
            .lines()
            .map(str::trim)
            .find_map(|line| line.strip_prefix("package "))
            .and_then(|rest| rest.trim_end_matches(';').trim().strip_prefix(PACKAGE))
            .and_then(|rest| rest.strip_prefix('@'))
            .unwrap_or_else(|| {
                panic!(
                    "{} does not declare `package {PACKAGE}@VERSION;`",
                    path.display()
                )
            });
        versions.push((path, declared.to_string()));
    }
    let (first_path, version) = versions
        .first()
        .unwrap_or_else(|| panic!("no .wit files in {}", wit.display()))
        .clone();
    for (path, other) in &versions {
        assert!(
            *other == version,
            "{} declares {PACKAGE}@{other} but {} declares @{version}; one contract has one version",
            path.display(),
            first_path.display()
        );
    }
    println!("cargo:rustc-env=PARACLE_CONTRACT_VERSION={version}");
}
