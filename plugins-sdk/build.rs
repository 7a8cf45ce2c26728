//! Generates the guest bindings for every world of the contract.
//!
//! `wit_bindgen::generate!` cannot be used once per world in one crate here:
//! worlds share exported interfaces (`plugin` in all of them, `observer` in
//! two), and each one's `#[macro_export]` helper macro gets the same
//! crate-root name in every world. Generating the
//! code ourselves lets each world's copy carry the world's name, so one SDK
//! crate can serve every kind of plugin.

use std::path::PathBuf;

use paracle_contract_version::{CONTRACT_PACKAGE, CONTRACT_VERSION};
use wit_bindgen_core::wit_parser::Resolve;
use wit_bindgen_core::{Files, WorldGenerator};
use wit_bindgen_rust::{Opts, WithOption};

/// The exported interfaces whose generated `#[macro_export]` helpers would
/// clash between worlds that export the same interface.
const EXPORTED_INTERFACES: &[&str] = &[
    "plugin",
    "provider",
    "tool",
    "memory",
    "observer",
    "adapter",
    "git_workflow",
];

struct World {
    module: &'static str,
    wit_name: &'static str,
    /// Every world but the adapter reuses the adapter's `types` and `host`:
    /// the adapter world imports all interfaces, so it generates them all.
    shares_types: bool,
}

const WORLDS: &[World] = &[
    World {
        module: "adapter",
        wit_name: "adapter-plugin",
        shares_types: false,
    },
    World {
        module: "provider",
        wit_name: "provider-plugin",
        shares_types: true,
    },
    World {
        module: "tool",
        wit_name: "tool-plugin",
        shares_types: true,
    },
    World {
        module: "memory",
        wit_name: "memory-plugin",
        shares_types: true,
    },
    World {
        module: "observer",
        wit_name: "observer-plugin",
        shares_types: true,
    },
    World {
        module: "git_workflow",
        wit_name: "git-workflow-plugin",
        shares_types: true,
    },
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let wit_dir = manifest_dir.join("../wit");
    println!("cargo:rerun-if-changed={}", wit_dir.display());
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());

    for world in WORLDS {
        let mut resolve = Resolve::default();
        let (package, sources) = resolve
            .push_path(&wit_dir)
            .unwrap_or_else(|e| panic!("parsing {}: {e:?}", wit_dir.display()));
        for path in sources.paths() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
        let world_id = resolve
            .select_world(&[package], Some(world.wit_name))
            .expect("world exists in the contract");

        let mut opts = Opts {
            pub_export_macro: true,
            export_macro_name: Some(format!("__paracle_export_{}_world", world.module)),
            runtime_path: Some("::paracle_sdk::__private::rt".to_string()),
            additional_derive_attributes: vec!["PartialEq".to_string()],
            ..Opts::default()
        };
        if world.shares_types {
            for interface in ["types", "host"] {
                opts.with.push((
                    format!("{CONTRACT_PACKAGE}/{interface}@{CONTRACT_VERSION}"),
                    WithOption::Path(format!(
                        "crate::bindings::adapter::paracle::plugin::{interface}"
                    )),
                ));
            }
        }

        let mut files = Files::default();
        opts.build()
            .generate(&mut resolve, world_id, &mut files)
            .unwrap_or_else(|e| panic!("generating {}: {e:?}", world.wit_name));
        let (_, source) = files.iter().next().expect("one generated file");
        let source = std::str::from_utf8(source).expect("generated Rust is UTF-8");
        let mut source = source.to_string();
        let version = CONTRACT_VERSION.replace('.', "_");
        for interface in EXPORTED_INTERFACES {
            let shared = format!("__export_paracle_plugin_{interface}_{version}_cabi");
            let unique = format!(
                "__export_{}_paracle_plugin_{interface}_{version}_cabi",
                world.module
            );
            source = source.replace(&shared, &unique);
        }
        std::fs::write(out_dir.join(format!("{}.rs", world.module)), source)
            .expect("write generated bindings");
    }
}
