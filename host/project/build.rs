//! Builds the sample plugins for wasm32-wasip2: they are embedded in the
//! binary as the defaults (see `defaults.rs`). The test fixtures are built
//! by the dev-only `paracle-guests`, never here.

fn main() {
    paracle_guest_build::build("sample-plugins");
    let release = paracle_guest_build::guest_dir()
        .join("wasm32-wasip2")
        .join("release");
    println!("cargo:rustc-env=PARACLE_SAMPLE_DIR={}", release.display());
}
