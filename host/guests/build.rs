//! Builds the test fixtures (and the samples, which tests load as
//! well-behaved guests) and writes one path constant per component, plus
//! `foreach_fixture!`, which a test binary uses to prove every fixture has
//! tests.

use std::fmt::Write;

fn main() {
    let samples = paracle_guest_build::build("sample-plugins");
    let fixtures = paracle_guest_build::build("tests/fixtures");
    let mut code = String::new();
    for (workspace, guests) in [("sample-plugins", &samples), ("tests/fixtures", &fixtures)] {
        for (member, file) in guests {
            writeln!(
                code,
                "/// `{workspace}/{member}`, built for wasm32-wasip2.\n\
                 pub const {}: &str = {:?};",
                member.replace('-', "_").to_uppercase(),
                file.display().to_string()
            )
            .unwrap();
        }
    }
    let release = paracle_guest_build::guest_dir()
        .join("wasm32-wasip2")
        .join("release");
    writeln!(
        code,
        "/// The directory that holds every guest's `.wasm` file.\n\
         pub const GUEST_DIR: &str = {:?};",
        release.display().to_string()
    )
    .unwrap();
    code.push_str(
        "/// Calls `$m!(name)` for every fixture in `tests/fixtures`, by its\n\
         /// member name with `-` as `_`.\n\
         #[macro_export]\n\
         macro_rules! foreach_fixture {\n    ($m:ident) => {\n",
    );
    for (member, _) in &fixtures {
        writeln!(code, "        $m!({});", member.replace('-', "_")).unwrap();
    }
    code.push_str("    };\n}\n");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("guests.rs");
    std::fs::write(out, code).expect("write the guest constants");
}
