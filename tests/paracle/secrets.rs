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

#[test]
fn a_phase_that_writes_a_secret_is_flagged_without_showing_it() {
    let project = Project::new();
    set_secret(&project, "DEPLOY_TOKEN", VALUE);
    project.write(
        "paracle.toml",
        &format!(
            r#"[plugins.scripted]
path = {:?}
config = {{ responses = [{{ tool_calls = [{{ name = "write_file", arguments = {{ path = "notes/a.txt", content = "deploy with {VALUE}" }} }}] }}, "I wrote {VALUE} into the notes"] }}
"#,
            Path::new(GUESTS).join("mock_provider.wasm")
        ),
    );
    project.write(
        ".paracle/agents/a.toml",
        "[agents.scribe]\nprovider = \"scripted\"\ntools = [\"fs-tools/write_file\"]\nmemory = \"none\"\n\n\
         [agents.planner]\nmemory = \"none\"\nconfig = { output_file = \"plan.md\" }\n",
    );
    project.write(
        ".paracle/workflows/leaky.toml",
        "task = \"Write notes.\"\n[[phases]]\nname = \"p\"\nagents = [\"scribe\"]\nartifacts = [\"notes/*.txt\"]\nrequires_approval = true\n",
    );
    project.write(
        ".paracle/workflows/clean.toml",
        "task = \"Plan.\"\n[[phases]]\nname = \"p\"\nagents = [\"planner\"]\nartifacts = [\"plan.md\"]\nrequires_approval = true\n",
    );

    let clean = project.json(&["run", "start", "clean"]);
    let clean_id = clean["id"].as_str().unwrap().to_string();
    let done = project.json(&["run", "next"]);
    assert_eq!(done["phases"][0]["hygiene"]["score"], 100, "{done}");
    assert_eq!(done["phases"][0]["hygiene"]["grade"], "A", "{done}");

    let leaky = project.json(&["run", "start", "leaky"]);
    let id = leaky["id"].as_str().unwrap().to_string();
    let held = project.json(&["run", "next"]);
    assert_eq!(held["status"], "awaiting-approval", "{held}");
    let hygiene = &held["phases"][0]["hygiene"];
    assert!(hygiene["score"].as_u64().unwrap() < 100, "{hygiene}");
    let kinds: Vec<&str> = hygiene["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["secret"], "{hygiene}");
    assert_eq!(hygiene["findings"][0]["path"], "notes/a.txt");
    assert!(hygiene["findings"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("DEPLOY_TOKEN"));

    let run_dir = project.path().join(".paracle/runs").join(&id);
    let request = std::fs::read_to_string(run_dir.join("p/REQUEST.md")).unwrap();
    assert!(
        request.contains(&format!("## Hygiene: {}/100", hygiene["score"])),
        "{request}"
    );
    assert!(request.contains("notes/a.txt"), "{request}");
    let report = std::fs::read_to_string(run_dir.join("p/hygiene.json")).unwrap();
    assert!(report.contains("\"secret\""), "{report}");
    let metrics = project.json(&["run", "metrics", "--run", &id]);
    assert_eq!(
        metrics["phases"][0]["hygiene"]["score"], hygiene["score"],
        "{metrics}"
    );
    // The artifact itself still holds what the agent wrote, for the
    // reviewer to judge; nothing the host wrote about it does.
    let artifact = std::fs::read_to_string(run_dir.join("workspace/notes/a.txt")).unwrap();
    assert!(artifact.contains(VALUE));
    let bundle = project
        .path()
        .join(format!(".paracle/artifacts/{id}/p.zip"));
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&bundle).unwrap()).unwrap();
    let mut manifest = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("MANIFEST.json").unwrap(), &mut manifest)
        .unwrap();
    assert!(!manifest.contains(VALUE), "{manifest}");
    let holding: Vec<String> = files_holding(project.path(), VALUE)
        .into_iter()
        // paracle.toml is the test's stand-in for a model that leaks.
        .filter(|f| {
            !f.ends_with("notes/a.txt") && !f.ends_with("p.zip") && !f.ends_with("paracle.toml")
        })
        .collect();
    assert_eq!(
        holding,
        Vec::<String>::new(),
        "only the artifact and its bundle hold it"
    );
    let state = std::fs::read_to_string(run_dir.join("state.json")).unwrap();
    assert!(
        state.contains("I wrote [secret DEPLOY_TOKEN] into the notes"),
        "what the agent said is kept, hidden"
    );
    assert!(project
        .path()
        .join(".paracle/runs")
        .join(&clean_id)
        .join("p/hygiene.json")
        .exists());
}
