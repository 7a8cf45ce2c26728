//! Workflows driven through the `paracle` binary, as a workflow user would:
//! specs, runs, failures, approvals, rollback, metrics, bundles, and a run
//! killed part-way through.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::project::Project;
use serde_json::Value;

const GUESTS: &str = paracle_guests::GUEST_DIR;

/// Agents every test can use: `writer` answers at once; `slow-N` wait
/// `delay_ms` per provider call, on a mock provider declared in paracle.toml.
fn project_with_agents(delay_ms: u64) -> Project {
    let project = Project::new();
    project.write(
        "paracle.toml",
        &format!(
            "[plugins.slow-provider]\npath = {:?}\nconfig = {{ delay_ms = {delay_ms} }}\n\
             [plugins.slow-provider.limits]\ntimeout_ms = 120000\n",
            Path::new(GUESTS).join("mock_provider.wasm")
        ),
    );
    let mut agents = String::from(
        r#"[agents.base]
provider = "mock-provider"
tools = ["text-tools"]
memory = "none"
max_steps = 4

[agents.writer]
parent = "base"
system_prompt = "You write."
config = { output_file = "out/writer.md" }
"#,
    );
    for n in 1..=4 {
        agents.push_str(&format!(
            "\n[agents.slow-{n}]\nparent = \"base\"\nprovider = \"slow-provider\"\nconfig = {{ output_file = \"out/slow-{n}.md\" }}\n"
        ));
    }
    project.write(".paracle/agents/agents.toml", &agents);
    project
}

fn state_file(project: &Project, run: &str) -> PathBuf {
    project
        .path()
        .join(".paracle/runs")
        .join(run)
        .join("state.json")
}

fn read_state(project: &Project, run: &str) -> Value {
    serde_json::from_slice(&std::fs::read(state_file(project, run)).unwrap()).unwrap()
}

fn agent<'a>(state: &'a Value, phase: usize, name: &str) -> &'a Value {
    state["phases"][phase]["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no agent {name} in phase {phase}"))
}

fn start(project: &Project, workflow: &str) -> String {
    let run = project.json(&["run", "start", workflow]);
    run["id"].as_str().unwrap().to_string()
}

/// The files of a zip, as Python's zipfile (an independent reader) lists them.
fn zip_names(zip: &Path) -> Vec<String> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print('\\n'.join(z.namelist()))",
        ])
        .arg(zip)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn zip_entry(zip: &Path, name: &str) -> String {
    let file = std::fs::File::open(zip).unwrap();
    let mut archive = zip::ZipArchive::new(file).unwrap();
    let mut entry = archive.by_name(name).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
    text
}

#[test]
fn quickstart_runs_offline_plans_and_stops_at_the_gate() {
    let project = Project::new();
    let run = project.json(&["quickstart", "--type", "webapp", "--name", "shop"]);
    let id = run["id"].as_str().unwrap();
    assert_eq!(run["status"], "awaiting-approval");
    assert_eq!(run["phases"][0]["name"], "planning");
    assert_eq!(run["phases"][0]["status"], "awaiting-approval");
    assert_eq!(run["phases"][1]["status"], "pending");
    for file in [
        ".paracle/config.toml",
        ".paracle/agents/webapp.toml",
        ".paracle/workflows/shop.toml",
    ] {
        assert!(project.path().join(file).is_file(), "{file}");
    }
    let run_dir = project.path().join(".paracle/runs").join(id);
    let request = std::fs::read_to_string(run_dir.join("planning/REQUEST.md")).unwrap();
    assert!(request.contains("READY FOR REVIEW"), "{request}");
    assert!(request.contains("<details>") && request.contains("</details>"));
    assert!(request.contains("found `requirements.md`"), "{request}");
    assert!(request.contains("## Metrics"));
    assert!(run_dir.join("workspace/architecture.md").is_file());

    let bundle = project
        .path()
        .join(".paracle/artifacts")
        .join(id)
        .join("planning.zip");
    let mut names = zip_names(&bundle);
    names.sort();
    assert_eq!(
        names,
        [
            "MANIFEST.json",
            "artifacts/architecture.md",
            "artifacts/requirements.md"
        ]
    );
    let manifest: Value = serde_json::from_str(&zip_entry(&bundle, "MANIFEST.json")).unwrap();
    assert_eq!(manifest["phase"], "planning");
    assert_eq!(manifest["run_id"], id);
    assert_eq!(manifest["artifact_count"], 2);
    assert!(manifest["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(manifest["metrics"]["agents_run"], 2);
    assert_eq!(manifest["metrics"]["agents_succeeded"], 2);
    assert_eq!(
        manifest["metrics"]["validation"]["missing"],
        Value::Array(vec![])
    );

    // The gate holds until someone decides.
    let refused = project.fails(&["run", "next", "--json"]);
    assert!(
        refused.contains("awaiting-approval") && refused.contains("run approve"),
        "{refused}"
    );
    let refused = project.fails(&["run", "reject", "--reason", " "]);
    assert!(refused.contains("--reason"), "{refused}");
    let approved = project.json(&["run", "approve", "--reason", "good plan"]);
    assert_eq!(approved["status"], "ready");
    let decision = approved["decision_file"].as_str().unwrap();
    assert!(std::fs::read_to_string(decision)
        .unwrap()
        .contains("APPROVED"));
    let refused = project.fails(&["run", "approve"]);
    assert!(refused.contains("no phase awaits approval"), "{refused}");

    // The rest of the workflow, to the end.
    assert_eq!(project.json(&["run", "next"])["status"], "ready");
    assert_eq!(project.json(&["run", "next"])["status"], "ready");
    assert_eq!(
        project.json(&["run", "next"])["status"],
        "awaiting-approval"
    );
    let rejected = project.json(&["run", "reject", "--reason", "needs tests"]);
    assert_eq!(rejected["status"], "rejected");
    assert!(rejected["next_step"]
        .as_str()
        .unwrap()
        .contains("run retry"));
    assert_eq!(
        project.json(&["run", "retry", "--phase", "review"])["status"],
        "awaiting-approval"
    );
    assert_eq!(project.json(&["run", "approve"])["status"], "completed");

    let metrics = project.json(&["run", "metrics"]);
    assert_eq!(metrics["totals"]["agents_succeeded"], 6);
    let prom = std::fs::read_to_string(metrics["files"]["prometheus"].as_str().unwrap()).unwrap();
    for line in prom.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(
            series.starts_with("paracle_") && series.ends_with('}'),
            "{line}"
        );
        value.parse::<f64>().unwrap_or_else(|_| panic!("{line}"));
    }
    assert!(prom.contains("paracle_agent_succeeded{"), "{prom}");
    let written: Value = serde_json::from_str(
        &std::fs::read_to_string(metrics["files"]["json"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(written["run_id"], id);

    // Quickstart again: the same files are kept, and a new run starts.
    let out = project.ok(&["quickstart", "--type", "webapp", "--name", "shop"]);
    assert!(out.contains("unchanged"), "{out}");
    assert_eq!(project.json(&["run", "list"]).as_array().unwrap().len(), 2);
}

fn expect_spec_error(project: &Project, file: &str, line: usize, needle: &str) {
    let error = project.fails(&["workflow", "show", "w"]);
    let at = format!("{}:{line}:", project.path().join(file).display());
    assert!(error.contains(&at), "expected {at} in: {error}");
    assert!(error.contains(needle), "expected `{needle}` in: {error}");
}

#[test]
fn specs_are_strict_and_errors_point_at_the_line() {
    let project = project_with_agents(0);
    let workflow = "[[phases]]\nname = \"p\"\nagents = [\"writer\"]\n";
    project.write(".paracle/workflows/w.toml", workflow);
    project.ok(&["workflow", "show", "w"]);

    project.write(
        ".paracle/workflows/w.toml",
        "[[phases]]\nname = \"p\"\nagents = [\"writer\"]\nparalel = true\n",
    );
    expect_spec_error(&project, ".paracle/workflows/w.toml", 4, "paralel");

    project.write(
        ".paracle/workflows/w.toml",
        "[[phases]]\nname = \"p\"\nagents = [\n  \"writer\",\n  \"ghost\",\n]\n",
    );
    expect_spec_error(&project, ".paracle/workflows/w.toml", 5, "no agent `ghost`");
    project.write(".paracle/workflows/w.toml", workflow);

    let bad_agents = [
        ("[agents.writer]\nsystem_prompt = \"x\"\ntemprature = 1.0\n", 3, "temprature"),
        ("[agents.writer]\nprovider = \"nope\"\n", 2, "no plugin"),
        ("[agents.writer]\nprovider = \"text-tools\"\n", 2, "not a provider plugin"),
        ("[agents.writer]\n\ntools = [\"text-tools/nope\"]\n", 3, "has no tool `nope`"),
        ("[agents.writer]\nparent = \"a\"\n[agents.a]\nparent = \"writer\"\n", 4, "inheritance cycle"),
        (
            "[agents.writer]\nparent = \"a1\"\n[agents.a1]\nparent = \"a2\"\n[agents.a2]\nparent = \"a3\"\n[agents.a3]\nparent = \"a4\"\n[agents.a4]\nparent = \"a5\"\n[agents.a5]\n",
            10,
            "more than 5 levels",
        ),
    ];
    for (text, line, needle) in bad_agents {
        project.write(".paracle/agents/agents.toml", text);
        expect_spec_error(&project, ".paracle/agents/agents.toml", line, needle);
    }
    // Five levels are allowed.
    project.write(
        ".paracle/agents/agents.toml",
        "[agents.writer]\nparent = \"a1\"\n[agents.a1]\nparent = \"a2\"\n[agents.a2]\nparent = \"a3\"\n[agents.a3]\nparent = \"a4\"\n[agents.a4]\n",
    );
    project.ok(&["workflow", "show", "w"]);

    project.write(
        ".paracle/config.toml",
        "[orchestrator]\nmax_paralel_agents = 2\n",
    );
    let error = project.fails(&["run", "list"]);
    assert!(
        error.contains("config.toml:2:") && error.contains("max_paralel_agents"),
        "{error}"
    );
    project.write(
        ".paracle/config.toml",
        "[orchestrator]\n\nmax_parallel_agents = 0\n",
    );
    let error = project.fails(&["run", "list"]);
    assert!(
        error.contains("config.toml:3:") && error.contains("at least 1"),
        "{error}"
    );
    project.write(
        ".paracle/config.toml",
        "[orchestrator]\nagent_timeout = \"1m\"\nhygiene_max_file_kib = 0\n",
    );
    let error = project.fails(&["run", "list"]);
    assert!(
        error.contains("config.toml:3:") && error.contains("hygiene_max_file_kib"),
        "{error}"
    );
    project.write(
        ".paracle/config.toml",
        "[orchestrator]\nagent_timeout = \"soon\"\n",
    );
    let error = project.fails(&["run", "list"]);
    assert!(
        error.contains("config.toml:2:") && error.contains("not a duration"),
        "{error}"
    );
    project.write(".paracle/config.toml", "[git]\nbase = \"main\"\n");
    let error = project.fails(&["run", "list"]);
    assert!(
        error.contains("config.toml:2:") && error.contains("unknown field `base`"),
        "{error}"
    );
}

#[test]
fn inheritance_merges_tools_and_config_and_the_child_wins() {
    let project = Project::new();
    project.write(
        ".paracle/agents/a.toml",
        r#"[agents.grandparent]
system_prompt = "old"
temperature = 0.5
tools = ["text-tools/count_words"]
config = { recall = 1, style = { tone = "dry", length = "short" } }

[agents.parent]
parent = "grandparent"
max_tokens = 100
tools = ["fs-tools"]

[agents.child]
parent = "parent"
system_prompt = "new"
tools = ["text-tools/count_vowels"]
config = { style = { tone = "warm" } }
"#,
    );
    project.write(
        ".paracle/workflows/w.toml",
        "[[phases]]\nname = \"p\"\nagents = [\"child\"]\n",
    );
    let workflow = project.json(&["workflow", "show", "w"]);
    let child = &workflow["agents"]["child"];
    assert_eq!(child["system_prompt"], "new");
    assert_eq!(child["temperature"], 0.5);
    assert_eq!(child["max_tokens"], 100);
    assert_eq!(
        child["tools"],
        serde_json::json!({ "fs-tools": [], "text-tools": ["count_vowels", "count_words"] })
    );
    assert_eq!(
        child["config"],
        serde_json::json!({ "recall": 1, "style": { "tone": "warm", "length": "short" } })
    );
}

#[test]
fn failed_agents_are_recorded_with_their_reason_and_retried() {
    let project = project_with_agents(1500);
    project.write(
        ".paracle/workflows/w.toml",
        r#"task = "Write something."
[[phases]]
name = "p"
agents = ["writer", "slow-1"]
parallel = true
artifacts = ["out/*.md"]
retry = { attempts = 2, backoff = "10ms" }

[[phases]]
name = "after"
agents = ["writer"]
"#,
    );
    let id = start(&project, "w");
    // Each attempt of slow-1 outlives the timeout; writer is not held up.
    let out = project.run(&["run", "next", "--timeout", "0.3", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed phase fails the command"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("phase `p` failed: 1 of 2 agents failed"),
        "{stderr}"
    );
    let state = read_state(&project, &id);
    assert_eq!(state["status"], "failed");
    assert_eq!(state["phases"][0]["status"], "failed");
    let slow = agent(&state, 0, "slow-1");
    assert_eq!(slow["status"], "failed");
    assert_eq!(slow["failure"], "timeout");
    assert_eq!(slow["attempts"], 2, "the retry policy allows two attempts");
    assert!(
        slow["error"].as_str().unwrap().contains("timeout of 300ms"),
        "{slow}"
    );
    let writer = agent(&state, 0, "writer");
    assert_eq!(writer["status"], "succeeded");
    assert_eq!(writer["attempts"], 1);
    assert_eq!(
        state["phases"][0]["validation"]["found"][0],
        "out/writer.md"
    );

    let refused = project.fails(&["run", "next", "--json"]);
    assert!(
        refused.contains("run retry") && refused.contains("--phase p"),
        "{refused}"
    );

    // Retrying only the failed agent, with time enough, completes the phase.
    let retried = project.json(&["run", "retry", "--phase", "p", "--agent", "slow-1"]);
    assert_eq!(retried["phases"][0]["status"], "succeeded");
    assert_eq!(retried["status"], "ready");
    assert_eq!(retried["cursor"], 1);
    let state = read_state(&project, &id);
    assert_eq!(
        agent(&state, 0, "writer")["attempts"],
        1,
        "the writer was not run again"
    );
    assert_eq!(agent(&state, 0, "slow-1")["status"], "succeeded");
    assert!(
        !state["archive"].as_array().unwrap().is_empty(),
        "the failed record is kept"
    );

    let unknown = project.fails(&["run", "retry", "--phase", "nope", "--json"]);
    assert!(
        unknown.contains("no phase `nope`") && unknown.contains("p, after"),
        "{unknown}"
    );
}

#[test]
fn a_run_killed_mid_phase_is_resumed_without_losing_finished_work() {
    // The first agent of the phase is quick; the two after it wait a minute
    // on their provider (whose time limit is two), far longer than the
    // checks below take on a loaded machine: this binary runs the MCP, git,
    // registry and authoring tests beside it, and the authoring tests
    // compile plugins on every core. Nobody waits that minute: the run is
    // killed, and resumed with a quick provider.
    let project = project_with_agents(60_000);
    // The built-in adapter's limit (10 s) would end each slow agent after
    // 10 s, and the phase after 20: on a loaded machine that came before
    // the checks below, and the run was over when they expected it busy.
    // Raised as the README tells users to for an agent on a real model.
    project.ok(&["plugin", "limit", "agent-runner", "timeout_ms=120000"]);
    let adapter = project.json(&["plugin", "show", "agent-runner"]);
    assert_eq!(adapter["limits"]["timeout_ms"], 120_000, "{adapter}");
    let agents =
        std::fs::read_to_string(project.path().join(".paracle/agents/agents.toml")).unwrap();
    project.write(
        ".paracle/agents/agents.toml",
        &agents.replace(
            "[agents.slow-1]\nparent = \"base\"\nprovider = \"slow-provider\"\n",
            "[agents.slow-1]\nparent = \"base\"\n",
        ),
    );
    project.write(
        ".paracle/workflows/w.toml",
        r#"[[phases]]
name = "first"
agents = ["writer"]
artifacts = ["out/writer.md"]

[[phases]]
name = "second"
agents = ["slow-1", "slow-2", "slow-3"]
artifacts = ["out/slow-*.md"]
"#,
    );
    let id = start(&project, "w");
    project.json(&["run", "next"]);
    let first_bundle = project
        .path()
        .join(".paracle/artifacts")
        .join(&id)
        .join("first.zip");
    let first_before = std::fs::read(&first_bundle).unwrap();

    let mut child = project
        .command(&["run", "next", "--json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the first agent of the phase has finished, then SIGKILL.
    let began = Instant::now();
    loop {
        let state = read_state(&project, &id);
        if agent(&state, 1, "slow-1")["status"] == "succeeded" {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "slow-1 never finished: {state}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // While it runs, nobody else may advance the run.
    let busy = project.fails(&["run", "next", "--json"]);
    assert!(
        busy.contains("another paracle process"),
        "{busy}\nthe run as it stands: {}",
        read_state(&project, &id)
    );
    let live = project.json(&["run", "status"]);
    assert_eq!(live["busy"], true);
    assert_eq!(live["status"], "running");
    assert_eq!(
        child.try_wait().unwrap(),
        None,
        "the phase was still running"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // What is left runs quickly when resumed.
    let config = std::fs::read_to_string(project.path().join("paracle.toml")).unwrap();
    project.write(
        "paracle.toml",
        &config.replace("delay_ms = 60000", "delay_ms = 10"),
    );

    let status = project.json(&["run", "status"]);
    assert_eq!(status["status"], "interrupted");
    assert_eq!(status["interrupted_phase"], "second");
    assert!(status["next_step"].as_str().unwrap().contains("run next"));
    assert_eq!(agent(&status, 1, "slow-1")["status"], "succeeded");
    assert_eq!(status["phases"][0]["status"], "succeeded");
    assert_eq!(std::fs::read(&first_bundle).unwrap(), first_before);

    let done = project.json(&["run", "next"]);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["phases"][1]["status"], "succeeded");
    assert_eq!(
        agent(&done, 1, "slow-1")["attempts"],
        1,
        "finished work is not redone"
    );
    for n in 1..=3 {
        assert_eq!(agent(&done, 1, &format!("slow-{n}"))["status"], "succeeded");
    }
    let workspace = project
        .path()
        .join(".paracle/runs")
        .join(&id)
        .join("workspace");
    for file in [
        "out/writer.md",
        "out/slow-1.md",
        "out/slow-2.md",
        "out/slow-3.md",
    ] {
        assert!(workspace.join(file).is_file(), "{file}");
    }
    let bundle = project
        .path()
        .join(".paracle/artifacts")
        .join(&id)
        .join("second.zip");
    assert_eq!(
        zip_names(&bundle).len(),
        4,
        "three artifacts and the manifest"
    );
    assert_eq!(std::fs::read(&first_bundle).unwrap(), first_before);
    let history = done["history"].as_array().unwrap();
    assert!(
        history.iter().any(|h| h["action"] == "resume"),
        "{history:?}"
    );
}

#[test]
fn rollback_writes_an_advisory_and_touches_no_file() {
    let project = project_with_agents(0);
    project.write(
        ".paracle/workflows/w.toml",
        "[[phases]]\nname = \"a\"\nagents = [\"writer\"]\n\n[[phases]]\nname = \"b\"\nagents = [\"slow-1\"]\n",
    );
    let id = start(&project, "w");
    project.json(&["run", "next"]);
    assert_eq!(project.json(&["run", "next"])["status"], "completed");
    let workspace = project
        .path()
        .join(".paracle/runs")
        .join(&id)
        .join("workspace");
    let snapshot = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir.join("out")).unwrap() {
            let path = entry.unwrap().path();
            files.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
        files.sort();
        files
    };
    let before = snapshot(&workspace);

    let rolled = project.json(&["run", "rollback", "--phase", "a"]);
    assert_eq!(rolled["status"], "ready");
    assert_eq!(rolled["cursor"], 0);
    assert_eq!(rolled["phases"][0]["status"], "pending");
    let advisory = std::fs::read_to_string(rolled["advisory"].as_str().unwrap()).unwrap();
    assert!(advisory.contains("No file was changed"), "{advisory}");
    assert!(
        advisory.contains("workspace/out/writer.md")
            && advisory.contains("workspace/out/slow-1.md")
    );
    assert!(Path::new(rolled["advisory"].as_str().unwrap())
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("ROLLBACK_"));
    assert_eq!(snapshot(&workspace), before, "no workspace file changed");
    assert_eq!(rolled["archive"].as_array().unwrap().len(), 2);
    assert_eq!(project.json(&["run", "next"])["cursor"], 1);
}

#[test]
fn parallel_phases_run_at_most_max_workers_agents_at_once() {
    let delay = 300;
    let project = project_with_agents(delay);
    project.write(
        ".paracle/workflows/w.toml",
        "[[phases]]\nname = \"p\"\nagents = [\"slow-1\", \"slow-2\", \"slow-3\", \"slow-4\"]\nparallel = true\n",
    );
    let phase_ms = |args: &[&str]| -> u64 {
        start(&project, "w");
        let mut all = vec!["run", "next"];
        all.extend_from_slice(args);
        let state = project.json(&all);
        assert_eq!(state["status"], "completed", "{state}");
        state["phases"][0]["duration_ms"].as_u64().unwrap()
    };
    let four = phase_ms(&[]);
    let two = phase_ms(&["--max-workers", "2"]);
    let one = phase_ms(&["--max-workers", "1"]);
    // Lower bounds follow from the limit itself: waves of `delay` each.
    assert!(two >= 2 * delay, "two at a time takes two waves: {two} ms");
    assert!(one >= 4 * delay, "one at a time takes four waves: {one} ms");
    // Parallelism, as a ratio within this run: four at once beat one at a time.
    assert!(
        (four as f64) < 0.75 * one as f64,
        "four at once ({four} ms) should be well under one at a time ({one} ms)"
    );
}

#[test]
fn an_inherited_tool_that_does_not_exist_is_reported_where_it_was_named() {
    let project = Project::new();
    project.write(
        ".paracle/agents/a.toml",
        "[agents.parent]\ntools = [\"text-tools/nope\"]\n\n[agents.child]\nparent = \"parent\"\ntools = [\"text-tools/count_words\"]\n",
    );
    project.write(
        ".paracle/workflows/w.toml",
        "[[phases]]\nname = \"p\"\nagents = [\"child\"]\n",
    );
    expect_spec_error(&project, ".paracle/agents/a.toml", 2, "has no tool `nope`");
}

/// In-process: every execution event reaches the observer plugins, with the
/// provider and tool calls the adapter made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_reaches_the_observers() {
    use paracle_orchestrator::{Orchestrator, RunOptions};
    use paracle_project::{Paths, Registry};
    use paracle_runtime::Runtime;
    use std::sync::Arc;

    let project = Project::new();
    project.write(
        ".paracle/agents/a.toml",
        "[agents.counter]\ntools = [\"text-tools/count_vowels\"]\nmemory = \"none\"\n\n[agents.echo]\nmemory = \"none\"\n",
    );
    project.write(
        ".paracle/workflows/w.toml",
        "task = \"count_vowels: banana\"\n[[phases]]\nname = \"only\"\nagents = [\"counter\", \"echo\"]\nparallel = true\n",
    );
    let home = tempfile::tempdir().unwrap();
    let paths = Paths::new(project.path(), home.path(), &home.path().join("cache"));
    let runtime = Arc::new(Runtime::new(Some(paths.cache.clone())).unwrap());
    let registry = Registry::open(paths, runtime).unwrap();
    let orchestrator = Orchestrator::new(&registry);
    let run = orchestrator.start("w", None).await.unwrap();
    let run = orchestrator
        .next(Some(&run.id), &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(run.status.as_str(), "completed");
    assert!(
        run.phases[0].agents[0].output.contains("\"vowels\":"),
        "{:?}",
        run.phases[0].agents[0]
    );

    let observer = registry.get("metrics-collector").await.unwrap();
    let report = observer.report().await.unwrap().unwrap();
    let counts = &report["counts"];
    assert_eq!(counts["execution-started"], 1, "{report}");
    assert_eq!(counts["phase-started"], 1, "{report}");
    assert_eq!(counts["agent-started"], 2, "{report}");
    assert_eq!(counts["agent-finished"], 2, "{report}");
    assert_eq!(counts["phase-finished"], 1, "{report}");
    assert_eq!(counts["execution-finished"], 1, "{report}");
    // counter asks for the tool, then answers: two provider calls; echo one.
    assert_eq!(counts["llm-call"], 3, "{report}");
    assert_eq!(counts["tool-call"], 1, "{report}");
    assert!(report["by_plugin"]["text-tools"].is_object(), "{report}");
}

#[test]
fn agents_write_through_tools_into_their_own_runs_workspace() {
    let project = Project::new();
    project.write(
        "paracle.toml",
        &format!(
            r#"[plugins.scripted]
path = {:?}
config = {{ responses = [{{ tool_calls = [{{ name = "write_file", arguments = {{ path = "notes/a.txt", content = "from the agent" }} }}] }}, "written"] }}
"#,
            Path::new(GUESTS).join("mock_provider.wasm")
        ),
    );
    project.write(
        ".paracle/agents/a.toml",
        "[agents.scribe]\nprovider = \"scripted\"\ntools = [\"fs-tools/write_file\"]\nmemory = \"none\"\n",
    );
    project.write(
        ".paracle/workflows/w.toml",
        "[[phases]]\nname = \"p\"\nagents = [\"scribe\"]\nartifacts = [\"notes/*.txt\"]\n",
    );
    let first = start(&project, "w");
    let done = project.json(&["run", "next"]);
    assert_eq!(done["status"], "completed", "{done}");
    let second = start(&project, "w");
    project.json(&["run", "next"]);
    for id in [&first, &second] {
        let file = project
            .path()
            .join(".paracle/runs")
            .join(id)
            .join("workspace/notes/a.txt");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "from the agent");
    }
    assert!(
        !project.path().join(".paracle/workspace/notes").exists(),
        "the shared workspace is not written by runs"
    );
}

#[test]
fn links_in_a_runs_workspace_are_never_followed_by_the_host() {
    let project = project_with_agents(0);
    project.write(
        ".paracle/agents/notary.toml",
        "[agents.notary]\nparent = \"base\"\nconfig = { output_file = \"notes/ok.md\" }\n",
    );
    project.write(
        ".paracle/workflows/w.toml",
        "task = \"Write.\"\n[[phases]]\nname = \"p\"\nagents = [\"writer\", \"notary\"]\nartifacts = [\"**/*.md\"]\n",
    );
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.md"), "host secret").unwrap();
    let id = start(&project, "w");
    // What a plugin granted the workspace can plant there (see
    // hostile::a_writable_grant_still_ends_at_the_granted_directory):
    // a directory that leads out, where the writer's artifact goes, and a
    // file that leads out, which the phase's pattern matches.
    let workspace = project
        .path()
        .join(".paracle/runs")
        .join(&id)
        .join("workspace");
    std::os::unix::fs::symlink(outside.path(), workspace.join("out")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.md"),
        workspace.join("stolen.md"),
    )
    .unwrap();

    let out = project.run(&["run", "next", "--json"]);
    assert_eq!(out.status.code(), Some(1), "the writer's agent failed");
    let state = read_state(&project, &id);
    let writer = agent(&state, 0, "writer");
    assert_eq!(writer["status"], "failed");
    assert!(
        writer["error"].as_str().unwrap().contains("symbolic link"),
        "{writer}"
    );
    assert_eq!(agent(&state, 0, "notary")["status"], "succeeded");
    let validation = &state["phases"][0]["validation"];
    assert_eq!(validation["found"], serde_json::json!(["notes/ok.md"]));
    assert_eq!(validation["links"], serde_json::json!(["out", "stolen.md"]));

    // Nothing was written outside, and nothing from outside was bundled.
    let names: Vec<_> = std::fs::read_dir(outside.path()).unwrap().collect();
    assert_eq!(names.len(), 1);
    let bundle = project
        .path()
        .join(".paracle/artifacts")
        .join(&id)
        .join("p.zip");
    let mut entries = zip_names(&bundle);
    entries.sort();
    assert_eq!(entries, ["MANIFEST.json", "artifacts/notes/ok.md"]);
    let manifest: Value = serde_json::from_str(&zip_entry(&bundle, "MANIFEST.json")).unwrap();
    let skipped: Vec<&str> = manifest["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, ["out", "stolen.md"], "{manifest}");
    // An artifact swapped for a link is replaced when the phase runs again,
    // never written through.
    std::fs::remove_file(workspace.join("notes/ok.md")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.md"),
        workspace.join("notes/ok.md"),
    )
    .unwrap();
    let again = project.run(&["run", "retry", "--phase", "p", "--json"]);
    assert_eq!(again.status.code(), Some(1), "the writer fails again");
    assert!(std::fs::symlink_metadata(workspace.join("notes/ok.md"))
        .unwrap()
        .is_file());
    let names: Vec<_> = std::fs::read_dir(outside.path()).unwrap().collect();
    assert_eq!(names.len(), 1);
    assert_eq!(
        std::fs::read_to_string(outside.path().join("secret.md")).unwrap(),
        "host secret"
    );
}
