//! What installing from a registry costs, against what the same plugin
//! costs without one, in one run:
//!
//! - `copy + load`: copy the component into a fresh project and `plugin
//!   load` it (open the registry, read, check, take the compiled code from
//!   the cache, instantiate, `init`, record it).
//! - `install`: `plugin install` it into a fresh project from a registry on
//!   loopback, with an empty blob cache: pull the manifest and the
//!   component, check both digests, keep them in the cache, then the same
//!   load and record.
//!
//! Each is measured twice: as the commands a user runs (`cp` and `paracle
//! plugin load`, against `paracle plugin install`; the target), and in
//! process through the library, which leaves out what both commands pay
//! alike (starting the process and the engine) to show where the rest goes.
//!
//! The component is a 20 MB one: a sample plugin with a 20 MB custom
//! section, so that moving bytes dominates, as it does for a Python or
//! JavaScript component. Both take compiled code from the same warm cache;
//! compiling is not what is compared. Target: `install` under 2x `copy +
//! load`, as commands. Rounds alternate, and medians are compared.
//!
//! Needs `docker-registry` (Debian's package). Run with
//! `cargo bench -p paracle --bench install`; `-- --quick` for fewer rounds.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use paracle_distribution::plugin::{self, SignWith};
use paracle_distribution::{Access, ArtifactRef};
use paracle_project::{Paths, Registry};
use paracle_runtime::{PluginSettings, Runtime};
use paracle_testing::oci::OciRegistry;

const PADDING: usize = 20 << 20;

/// `component` with a custom section of `size` bytes appended: still the
/// same component to every tool, only larger.
fn padded(component: &[u8], size: usize) -> Vec<u8> {
    let name = b"padding";
    let mut contents = Vec::with_capacity(size + 16);
    leb128(&mut contents, name.len() as u64);
    contents.extend_from_slice(name);
    contents.resize(contents.len() + size, 0x5a);
    let mut bytes = component.to_vec();
    bytes.push(0); // custom section
    leb128(&mut bytes, contents.len() as u64);
    bytes.extend_from_slice(&contents);
    bytes
}

fn leb128(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn named() -> PluginSettings {
    PluginSettings {
        name: Some("big".into()),
        ..PluginSettings::default()
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn fresh_paths(root: &Path, home: &Path, round: usize) -> Paths {
    let project = root.join(format!("project-{round}"));
    std::fs::create_dir_all(&project).unwrap();
    let mut paths = Paths::new(&project, home, &home.join("cache"));
    // A fresh blob cache each round; the compiled code stays warm.
    paths.blobs = root.join(format!("blobs-{round}"));
    paths
}

async fn copy_and_load(runtime: &Arc<Runtime>, paths: Paths, component: &Path) -> Duration {
    let started = Instant::now();
    let copy: PathBuf = paths.project.join("plugin.wasm");
    std::fs::copy(component, &copy).unwrap();
    let mut registry = Registry::open(paths, runtime.clone()).unwrap();
    registry.load_file(&copy, named()).await.unwrap();
    started.elapsed()
}

async fn install(
    runtime: &Arc<Runtime>,
    paths: Paths,
    access: &Access,
    reference: &ArtifactRef,
) -> Duration {
    let started = Instant::now();
    let mut registry = Registry::open(paths, runtime.clone()).unwrap();
    let options = plugin::InstallOptions {
        name: Some("big".into()),
        ..plugin::InstallOptions::default()
    };
    plugin::install(&mut registry, access, reference, options, false)
        .await
        .unwrap();
    started.elapsed()
}

/// The two as commands, each in a fresh project, with the blob cache
/// emptied before each install and the compiled code left warm.
fn commands(
    root: &Path,
    component: &Path,
    reference: &ArtifactRef,
    rounds: usize,
) -> (Duration, Duration) {
    let home = root.join("cli-home");
    let cache = root.join("cli-cache");
    let paracle = |project: &Path, args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_paracle"))
            .arg("--project")
            .arg(project)
            .args(args)
            .env("PARACLE_HOME", &home)
            .env("PARACLE_CACHE_DIR", &cache)
            .env_remove("PARACLE_LOG")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let component_arg = component.to_str().unwrap();
    let reference_arg = reference.to_string();
    let warm = root.join("cli-warm");
    paracle(&warm, &["plugin", "load", component_arg, "--name", "big"]);
    let mut loads = Vec::new();
    let mut installs = Vec::new();
    for round in 0..rounds {
        let project = root.join(format!("cli-load-{round}"));
        std::fs::create_dir_all(&project).unwrap();
        let started = Instant::now();
        let copy = project.join("big.wasm");
        let status = std::process::Command::new("cp")
            .arg(component)
            .arg(&copy)
            .status()
            .unwrap();
        assert!(status.success());
        paracle(
            &project,
            &["plugin", "load", copy.to_str().unwrap(), "--name", "big"],
        );
        loads.push(started.elapsed());

        let _ = std::fs::remove_dir_all(cache.join("oci"));
        let project = root.join(format!("cli-install-{round}"));
        let started = Instant::now();
        paracle(
            &project,
            &["plugin", "install", &reference_arg, "--name", "big"],
        );
        installs.push(started.elapsed());
    }
    (median(loads), median(installs))
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 3 } else { 9 };
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("home");
    let component = root.path().join("big.wasm");
    let original = std::fs::read(paracle_guests::TEXT_TOOLS).unwrap();
    std::fs::write(&component, padded(&original, PADDING)).unwrap();
    let size = std::fs::metadata(&component).unwrap().len();

    let registry = OciRegistry::start();
    let reference =
        ArtifactRef::parse(&format!("oci://{}/bench/big:1.0", registry.host())).unwrap();
    let access = Access::default();
    let warm_paths = Paths::new(root.path(), &home, &home.join("cache"));
    let runtime = Arc::new(Runtime::new(Some(warm_paths.cache.clone())).unwrap());
    plugin::publish(
        &runtime,
        &component,
        &reference,
        SignWith::ExistingFile,
        &access,
    )
    .await
    .unwrap();
    // Compile once, so that both sides take the code from the cache.
    copy_and_load(&runtime, fresh_paths(root.path(), &home, 0), &component).await;

    let mut loads = Vec::new();
    let mut installs = Vec::new();
    for round in 1..=rounds {
        let paths = fresh_paths(root.path(), &home, round * 2);
        loads.push(copy_and_load(&runtime, paths, &component).await);
        let paths = fresh_paths(root.path(), &home, round * 2 + 1);
        installs.push(install(&runtime, paths, &access, &reference).await);
    }
    let load = median(loads);
    let pulled = median(installs);
    let (cli_load, cli_pulled) = commands(root.path(), &component, &reference, rounds);
    println!(
        "component: {:.1} MB, {rounds} rounds, medians",
        size as f64 / 1e6
    );
    println!("as commands:");
    println!("  cp + paracle plugin load   {}", ms(cli_load));
    println!("  paracle plugin install     {}", ms(cli_pulled));
    println!(
        "  ratio                      {:.2}x (target: under 2x)",
        cli_pulled.as_secs_f64() / cli_load.as_secs_f64()
    );
    println!("in process (the library, without starting a process and an engine):");
    println!("  copy + load                {}", ms(load));
    println!("  install                    {}", ms(pulled));
    println!(
        "  ratio                      {:.2}x",
        pulled.as_secs_f64() / load.as_secs_f64()
    );
}
