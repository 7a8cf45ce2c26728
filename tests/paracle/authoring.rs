//! Plugin authors, from `paracle plugin new` to a call: Rust for every
//! kind, Python (componentize-py) and JavaScript (componentize-js) for tool,
//! provider and memory, each project's own test run as its author would,
//! built with `plugin build`, loaded, called, and its tools in `mcp tools`;
//! the build variants of the mainstream toolchains; and the dev loop, with
//! a running `mcp serve --watch` that follows it.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::project::Project;
use crate::toolchains::{path_with_toolchains, run_in, rust_target};

/// `paracle ARGS` in `project`, with the toolchains on `PATH`.
fn paracle(project: &Project, args: &[&str]) -> std::process::Output {
    project
        .command(args)
        .env("PATH", path_with_toolchains())
        .env("CARGO_TARGET_DIR", rust_target())
        .output()
        .expect("paracle runs")
}

fn ok(project: &Project, args: &[&str]) -> String {
    let out = paracle(project, args);
    assert!(
        out.status.success(),
        "paracle {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json_of(project: &Project, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    let text = ok(project, &args);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {text}"))
}

/// Scaffold `name` of `kind` in `language` under the project, run its own
/// test, build it with `plugin build` and return its directory.
fn scaffold_and_build(
    project: &Project,
    name: &str,
    kind: &str,
    language: &str,
    extra: &[&str],
) -> PathBuf {
    let dir = project.path().join("plugins").join(name);
    let dir_arg = dir.to_str().unwrap();
    let made = json_of(
        project,
        &[
            "plugin", "new", name, "--kind", kind, "--lang", language, "--dir", dir_arg,
        ],
    );
    assert_eq!(made["manifest"]["kind"], kind, "{made}");
    match language {
        "rust" => run_in(&dir, "cargo", &["test", "--quiet"]),
        "python" => run_in(&dir, "python3", &["-m", "unittest", "--quiet"]),
        _ => run_in(&dir, "node", &["--test"]),
    };
    let mut args = vec!["plugin", "build", dir_arg];
    args.extend_from_slice(extra);
    let built = json_of(project, &args);
    assert_eq!(built["name"], name, "{built}");
    assert!(
        built["digest"].as_str().unwrap().starts_with("sha256:"),
        "{built}"
    );
    dir
}

fn mcp_tool_names(project: &Project) -> Vec<String> {
    json_of(project, &["mcp", "tools"])
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

/// The calls a scaffold of each kind answers, the same in every language.
fn check_tool(project: &Project, name: &str) {
    let answer = json_of(
        project,
        &["plugin", "call", name, "greet", r#"{"name": "Ada"}"#],
    );
    assert_eq!(answer, json!({"greeting": "Hello, Ada!"}));
    assert!(mcp_tool_names(project).contains(&format!("{name}__greet")));
}

fn check_provider(project: &Project, name: &str) {
    let reply = ok(project, &["plugin", "call", name, "hello"]);
    assert!(reply.contains("You said: hello"), "{reply}");
    let models = ok(project, &["plugin", "call", name]);
    assert!(models.contains("echo-1"), "{models}");
}

fn check_memory(project: &Project, name: &str) {
    // Entries live in the instance, which a CLI call does not outlast: a
    // call that reaches every export of an empty store is what is left.
    let keys = ok(project, &["plugin", "call", name, "keys", "notes"]);
    assert!(!keys.contains("error"), "{keys}");
    let hits = ok(project, &["plugin", "call", name, "search", "notes", "sky"]);
    assert!(!hits.contains("error"), "{hits}");
    let health = ok(project, &["plugin", "health", name]);
    assert!(health.contains("ready"), "{health}");
}

#[test]
fn rust_scaffolds_of_every_kind_test_build_and_answer() {
    let project = Project::new();
    // The git workflow needs a repository with a commit to load against.
    for args in [
        &["init", "-q", "-b", "main"][..],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "start",
        ],
    ] {
        run_in(project.path(), "git", args);
    }
    scaffold_and_build(&project, "rs-tool", "tool", "rust", &[]);
    check_tool(&project, "rs-tool");
    scaffold_and_build(&project, "rs-provider", "provider", "rust", &[]);
    check_provider(&project, "rs-provider");
    scaffold_and_build(&project, "rs-memory", "memory", "rust", &[]);
    check_memory(&project, "rs-memory");

    scaffold_and_build(&project, "rs-observer", "observer", "rust", &[]);
    let event = r#"{"kind": "agent-started", "timestamp_ms": 1, "data": {}}"#;
    let report = json_of(&project, &["plugin", "call", "rs-observer", event, event]);
    assert_eq!(report["events"]["agent-started"], 2, "{report}");

    scaffold_and_build(&project, "rs-adapter", "adapter", "rust", &[]);
    let outcome = json_of(&project, &["plugin", "call", "rs-adapter", "Write a haiku"]);
    assert!(!outcome["output"].as_str().unwrap().is_empty(), "{outcome}");
    assert_eq!(outcome["steps"], 1, "{outcome}");

    // Without the grant the git workflow is refused, and says how to grant it.
    let dir = project.path().join("plugins/rs-git-workflow");
    let made = json_of(
        &project,
        &[
            "plugin",
            "new",
            "rs-git-workflow",
            "--kind",
            "git-workflow",
            "--dir",
            dir.to_str().unwrap(),
        ],
    );
    assert_eq!(made["build_command"], "paracle plugin build --grant git");
    run_in(&dir, "cargo", &["test", "--quiet"]);
    let refused = paracle(&project, &["plugin", "build", dir.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--grant git"));
    ok(
        &project,
        &["plugin", "build", dir.to_str().unwrap(), "--grant", "git"],
    );
    let settings = json_of(
        &project,
        &["git", "init-workflow", "--plugin", "rs-git-workflow"],
    );
    assert_eq!(settings["settings"]["base_branch"], "main", "{settings}");
}

/// Build the project at `dir`, whose tool `find` fails with the plugin's own
/// `not-found` error through the language's helper, and check that the
/// caller sees that error, of that kind, naming the plugin.
fn rebuild_and_expect_own_error(project: &Project, dir: &Path, name: &str) {
    ok(project, &["plugin", "build", dir.to_str().unwrap()]);
    let out = paracle(project, &["plugin", "call", name, "find", "{}"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(name) && stderr.contains("not found: nothing here"),
        "{stderr}"
    );
}

#[test]
fn python_scaffolds_test_build_and_answer() {
    let project = Project::new();
    let tool = scaffold_and_build(&project, "py-tool", "tool", "python", &[]);
    check_tool(&project, "py-tool");
    // An error the plugin raises reaches the caller as the plugin's own,
    // of the kind it chose, through the helper module.
    let app = tool.join("app.py");
    let mut code = std::fs::read_to_string(&app).unwrap();
    code.push_str(
        "\n\nfrom paracle_plugin import NotFound\n\n\n@tool(description=\"Finds nothing\")\ndef find(args, context):\n    raise NotFound(\"nothing here\")\n",
    );
    std::fs::write(&app, code).unwrap();
    rebuild_and_expect_own_error(&project, &tool, "py-tool");

    scaffold_and_build(&project, "py-provider", "provider", "python", &[]);
    check_provider(&project, "py-provider");
    scaffold_and_build(&project, "py-memory", "memory", "python", &[]);
    check_memory(&project, "py-memory");
}

#[test]
fn javascript_scaffolds_test_build_and_answer() {
    let project = Project::new();
    let tool = scaffold_and_build(&project, "js-tool", "tool", "js", &[]);
    check_tool(&project, "js-tool");
    let app = tool.join("app.js");
    let code = std::fs::read_to_string(&app).unwrap().replace(
        "  tools: {",
        "  tools: {\n    find: { description: \"Finds nothing\", run() { throw notFound(\"nothing here\"); } },",
    );
    let code = code.replace(
        "import { definePlugin } from \"./paracle.js\";",
        "import { definePlugin, notFound } from \"./paracle.js\";",
    );
    std::fs::write(&app, code).unwrap();
    rebuild_and_expect_own_error(&project, &tool, "js-tool");

    scaffold_and_build(&project, "js-provider", "provider", "js", &[]);
    check_provider(&project, "js-provider");
    scaffold_and_build(&project, "js-memory", "memory", "js", &[]);
    check_memory(&project, "js-memory");
}

/// Load `file` under `name` and have its `greet` tool answer.
fn load_and_greet(project: &Project, file: &Path, name: &str, extra: &[&str]) {
    let mut args = vec!["plugin", "load", file.to_str().unwrap(), "--name", name];
    args.extend_from_slice(extra);
    ok(project, &args);
    let answer = json_of(
        project,
        &["plugin", "call", name, "greet", r#"{"name": "Ada"}"#],
    );
    assert_eq!(answer, json!({"greeting": "Hello, Ada!"}), "{name}");
}

#[test]
fn every_mainstream_toolchains_build_variants_load_and_answer() {
    let project = Project::new();
    let py = project.path().join("py");
    ok(
        &project,
        &[
            "plugin",
            "new",
            "py-variants",
            "--kind",
            "tool",
            "--lang",
            "python",
            "--dir",
            py.to_str().unwrap(),
        ],
    );
    let js = project.path().join("js");
    ok(
        &project,
        &[
            "plugin",
            "new",
            "js-variants",
            "--kind",
            "tool",
            "--lang",
            "js",
            "--dir",
            js.to_str().unwrap(),
        ],
    );
    let wit = ["--wit", "wit", "-n", "tool-plugin"];

    // componentize-py, plain and with every WASI import stubbed (38 core
    // instances: more than the pool held before).
    let py_build = |extra: &[&str], out: &str| {
        let mut args = vec!["-d", "wit", "-w", "tool-plugin", "componentize"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["app", "-o", out]);
        run_in(&py, "componentize-py", &args);
        py.join(out)
    };
    load_and_greet(&project, &py_build(&[], "plain.wasm"), "py-plain", &[]);
    load_and_greet(
        &project,
        &py_build(&["--stub-wasi"], "stub.wasm"),
        "py-stub-wasi",
        &[],
    );

    // componentize-js on StarlingMonkey, plain and with WASI features off.
    let sm = |extra: &[&str], out: &str| {
        let mut args = vec!["app.js"];
        args.extend_from_slice(&wit);
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-o", out]);
        run_in(&js, "componentize-js", &args);
        js.join(out)
    };
    load_and_greet(&project, &sm(&[], "sm.wasm"), "js-starlingmonkey", &[]);
    let stubbed = sm(
        &["-d", "stdio", "random", "clocks", "http", "fetch-event"],
        "sm-stub.wasm",
    );
    load_and_greet(&project, &stubbed, "js-starlingmonkey-stubbed", &[]);

    // jco's QuickJS backend: async exports by default (the component
    // model's async ABI), stubbed WASI, and its synchronous mode.
    let qjs = |extra: &[&str], out: &str| {
        let mut args = vec!["componentize", "app.js"];
        args.extend_from_slice(&wit);
        args.extend_from_slice(&["--backend", "quickjs"]);
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-o", out]);
        run_in(&js, "jco", &args);
        js.join(out)
    };
    load_and_greet(&project, &qjs(&[], "qjs.wasm"), "js-quickjs", &[]);
    load_and_greet(
        &project,
        &qjs(&["--backend-qjs-stub-wasi"], "qjs-stub.wasm"),
        "js-quickjs-stubbed",
        &[],
    );
    load_and_greet(
        &project,
        &qjs(&["--backend-qjs-disable-async"], "qjs-sync.wasm"),
        "js-quickjs-sync",
        &[],
    );

    // The sandbox's limits hold on the async ABI too: a tool that spins is
    // stopped at its time limit, one that allocates at its memory limit,
    // and the errors say which limit and how to change it.
    let app = js.join("app.js");
    let code = std::fs::read_to_string(&app).unwrap().replace(
        "  tools: {",
        "  tools: {\n    spin: { description: \"Spins\", run() { for (;;) {} } },\n    grow: { description: \"Grows\", run() { const xs = []; for (;;) xs.push(new Array(1e6).fill(1)); } },",
    );
    std::fs::write(&app, code).unwrap();
    let hostile = qjs(&[], "qjs-hostile.wasm");
    ok(
        &project,
        &[
            "plugin",
            "load",
            hostile.to_str().unwrap(),
            "--name",
            "qjs-hostile",
            "--timeout-ms",
            "500",
            "--memory-mib",
            "64",
        ],
    );
    let spin = paracle(&project, &["plugin", "call", "qjs-hostile", "spin", "{}"]);
    let spin = String::from_utf8_lossy(&spin.stderr);
    assert!(
        spin.contains("exceeded its time limit") && spin.contains("timeout_ms=N"),
        "{spin}"
    );
    let grow = paracle(&project, &["plugin", "call", "qjs-hostile", "grow", "{}"]);
    let grow = String::from_utf8_lossy(&grow.stderr);
    assert!(
        grow.contains("exceeded its memory limit") && grow.contains("memory_mib=N"),
        "{grow}"
    );
    // And the server answers the next call.
    let answer = json_of(
        &project,
        &[
            "plugin",
            "call",
            "qjs-hostile",
            "greet",
            r#"{"name": "Ada"}"#,
        ],
    );
    assert_eq!(answer, json!({"greeting": "Hello, Ada!"}));
}

/// `plugin dev --json` in the background, its events written to `log`.
struct Dev {
    child: Child,
    log: PathBuf,
}

impl Dev {
    fn start(project: &Project, dir: &Path) -> Self {
        let log = dir.join("dev.log");
        let child = project
            .command(&[
                "--project",
                dir.to_str().unwrap(),
                "plugin",
                "dev",
                dir.to_str().unwrap(),
                "--json",
            ])
            .env("PATH", path_with_toolchains())
            .env("CARGO_TARGET_DIR", rust_target())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.join("dev.err")).unwrap())
            .spawn()
            .expect("plugin dev starts");
        Dev { child, log }
    }

    fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    fn wait_for(&self, event: &str) {
        let deadline = Instant::now() + Duration::from_secs(300);
        while !self.events().iter().any(|e| e["event"] == event) {
            assert!(
                Instant::now() < deadline,
                "no `{event}` from plugin dev: {:?}",
                self.events()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_dev_loop_reloads_in_place_and_a_watching_server_tells_its_client() {
    let project = Project::new();
    let dir = project.path().join("greeter");
    ok(
        &project,
        &[
            "plugin",
            "new",
            "greeter",
            "--kind",
            "tool",
            "--dir",
            dir.to_str().unwrap(),
        ],
    );
    let dev = Dev::start(&project, &dir);
    dev.wait_for("watching");
    let loaded = dev.events();
    assert!(
        loaded
            .iter()
            .any(|e| e["event"] == "loaded" && e["name"] == "greeter"),
        "{loaded:?}"
    );

    // The client edits the source while `mcp serve --watch` serves the
    // plugin dev keeps building: tests/mcp/client.py, scenario dev_loop.
    let out = std::process::Command::new(crate::python::mcp_python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/mcp/client.py"
        ))
        .arg("dev_loop")
        .current_dir(&dir)
        .env("PARACLE_BIN", env!("CARGO_BIN_EXE_paracle"))
        .env("PLUGIN_SOURCE", dir.join("src/lib.rs"))
        .env("DEV_LOG", &dev.log)
        .env("PLUGIN_NAME", "greeter")
        .envs(
            project
                .command(&[])
                .get_envs()
                .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))),
        )
        .stdin(Stdio::null())
        .output()
        .expect("the Python client starts");
    let server_log = std::fs::read_to_string(dir.join("server-stderr.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "dev loop failed:\n{}{}\n--- server ---\n{server_log}\n--- plugin dev ---\n{:?}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        dev.events(),
        std::fs::read_to_string(dir.join("dev.err")).unwrap_or_default(),
    );
    // The failed build said which version goes on serving.
    let failed = dev
        .events()
        .into_iter()
        .find(|e| e["event"] == "failed")
        .unwrap();
    let last_good = dev
        .events()
        .into_iter()
        .rfind(|e| e["event"] == "loaded")
        .unwrap();
    assert_eq!(failed["serving"], last_good["digest"]);
}
