//! A Python with the official MCP SDK, for driving the server as a real
//! client would, and with componentize-py, for building Python plugins.
//!
//! `PARACLE_TEST_PYTHON` names one (`.ci/run` makes it). Otherwise the tests
//! make a virtual environment under the target directory on first use, from
//! `tests/mcp/requirements.txt`, so that `cargo test` works on its own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const REQUIREMENTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/mcp/requirements.txt"
);

pub(crate) fn mcp_python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        if let Some(python) = std::env::var_os("PARACLE_TEST_PYTHON") {
            return PathBuf::from(python);
        }
        let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mcp-venv");
        let python = venv.join("bin/python");
        if !(venv.join("paracle-test-finished").exists() && has_mcp(&python)) {
            make_venv(&venv);
        }
        python
    })
}

fn has_mcp(python: &Path) -> bool {
    python.exists()
        && python.with_file_name("componentize-py").exists()
        && Command::new(python)
            .args(["-c", "import mcp.client.stdio"])
            .status()
            .is_ok_and(|s| s.success())
}

/// Build the environment in its place under a lock, so that test processes
/// running at once make it once, and mark it finished last, so that an
/// interrupted install is never taken for a finished one. It cannot be
/// built elsewhere and moved: the scripts pip writes (componentize-py)
/// name their interpreter by its absolute path.
fn make_venv(venv: &Path) {
    let lock = std::fs::File::create(venv.with_extension("lock")).expect("create the venv lock");
    lock.lock().expect("take the venv lock");
    let finished = venv.join("paracle-test-finished");
    if finished.exists() && has_mcp(&venv.join("bin/python")) {
        return;
    }
    let _ = std::fs::remove_dir_all(venv);
    let run = |command: &mut Command, what: &str| {
        let out = command
            .output()
            .unwrap_or_else(|e| panic!("{what}: cannot start it: {e}"));
        assert!(
            out.status.success(),
            "{what} failed; install Python 3.10+ with venv (Debian: python3-venv), or set \
             PARACLE_TEST_PYTHON to a Python with `pip install -r tests/mcp/requirements.txt`:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(
        Command::new("python3").args(["-m", "venv"]).arg(venv),
        "python3 -m venv",
    );
    run(
        Command::new(venv.join("bin/python")).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "-r",
            REQUIREMENTS,
        ]),
        "pip install -r tests/mcp/requirements.txt",
    );
    std::fs::write(&finished, "").expect("mark the venv finished");
}
