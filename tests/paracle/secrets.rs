//! The user's secrets: set from stdin (never argv), listed by name, kept
//! outside the project readable by the user only, seen only by a plugin
//! granted them, and never in an answer, a log line, an error, an MCP
//! result, or any file the project or its cache holds.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;

use serde_json::Value;

use crate::project::Project;

const GUESTS: &str = paracle_guests::GUEST_DIR;
const VALUE: &str = "s3cr3t-Value-8472-zq";

fn set_secret(project: &Project, name: &str, value: &str) -> Value {
    let mut child = project
        .command(&["secret", "set", name, "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{value}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every file under `dir` that holds `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            found.extend(files_holding(&path, needle));
        } else if kind.is_file() {
            let bytes = std::fs::read(&path).unwrap_or_default();
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

#[test]
fn a_secret_reaches_only_its_grantee_and_never_leaves_through_it() {
    let project = Project::new();
    project.ok(&["plugin", "load", &format!("{GUESTS}/hostile.wasm")]);
    assert_eq!(
        set_secret(&project, "HOSTILE_SECRET", VALUE)["replaced"],
        false
    );

    // Kept per user, owner-only, outside the project; listed by name only.
    let file = project.home().join("secrets.toml");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let listed = project.ok(&["secret", "list", "--json"]);
    assert!(
        listed.contains("HOSTILE_SECRET") && !listed.contains(VALUE),
        "{listed}"
    );
    let error = project.fails(&["secret", "set", "bad name"]);
    assert!(error.contains("letters, digits"), "{error}");

    // Not granted: the plugin cannot read it (no terminal, nobody asked).
    let read = project.json(&[
        "plugin",
        "call",
        "hostile",
        "read_env",
        r#"{"name":"HOSTILE_SECRET"}"#,
    ]);
    assert_eq!(read["value"], Value::Null, "{read}");

    project.ok(&["plugin", "grant", "hostile", "secret:HOSTILE_SECRET"]);
    // Granted: the plugin holds it (the host recognised and hid the value
    // it returned), yet nothing it returns shows it.
    let read = project.json(&[
        "plugin",
        "call",
        "hostile",
        "read_env",
        r#"{"name":"HOSTILE_SECRET"}"#,
    ]);
    assert_eq!(read["value"], "[secret HOSTILE_SECRET]", "{read}");
    let out = project
        .command(&[
            "plugin",
            "call",
            "hostile",
            "leak_env",
            r#"{"name":"HOSTILE_SECRET"}"#,
            "--json",
        ])
        .env("PARACLE_LOG", "info")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stdout.contains(VALUE) && !stderr.contains(VALUE),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("<[secret HOSTILE_SECRET]>"), "{stdout}");
    assert!(
        stderr.contains("the value is [secret HOSTILE_SECRET]"),
        "the log line is kept, hidden: {stderr}"
    );
    let error = project.fails(&[
        "plugin",
        "call",
        "hostile",
        "leak_env",
        r#"{"name":"HOSTILE_SECRET","fail":true}"#,
    ]);
    assert!(
        !error.contains(VALUE) && error.contains("failing with [secret HOSTILE_SECRET]"),
        "{error}"
    );

    // Through MCP, answers and errors alike.
    crate::mcp::scenario_with(&project, "secret_leak", &[("SECRET_VALUE", VALUE)]);

    // Nothing the project or the cache holds has it: registry, stats,
    // audit log, the MCP server's log.
    assert_eq!(files_holding(project.path(), VALUE), Vec::<String>::new());
    assert_eq!(files_holding(&project.cache(), VALUE), Vec::<String>::new());
    let audit = project.ok(&["audit", "--json", "--plugin", "hostile"]);
    assert!(
        audit.contains("secret:HOSTILE_SECRET") && audit.contains("secret-use"),
        "{audit}"
    );

    // Removed: the plugin granted it says what to do rather than run without.
    project.ok(&["secret", "rm", "HOSTILE_SECRET"]);
    let error = project.fails(&[
        "plugin",
        "call",
        "hostile",
        "read_env",
        r#"{"name":"HOSTILE_SECRET"}"#,
    ]);
    assert!(
        error.contains("paracle secret set HOSTILE_SECRET"),
        "{error}"
    );

    // A secrets file others can read is refused, not used.
    set_secret(&project, "HOSTILE_SECRET", VALUE);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = project.fails(&["secret", "list"]);
    assert!(error.contains("chmod 600"), "{error}");
}
