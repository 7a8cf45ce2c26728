//! Agents on workers over NATS JetStream: a real `nats-server -js` on
//! loopback, workers as separate `paracle worker` processes, and the
//! coordinator as `paracle run next --nats`. What is checked is what a
//! user sees: the run's state, its bundle and metrics, and what each worker
//! says it ran.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use paracle_testing::nats::NatsServer;
use serde_json::Value;

use crate::project::Project;

const GUESTS: &str = paracle_guests::GUEST_DIR;

/// How long any one step may take before the test gives up on it: far
/// longer than it needs, on a machine shared with other tests.
const PATIENCE: Duration = Duration::from_secs(180);

/// A workflow of one parallel phase of `agents` agents, each answering
/// through a provider that waits `delay_ms`, and writing one artifact.
fn wide_phase(project: &Project, agents: usize, delay_ms: u64) -> Vec<String> {
    project.write(
        "paracle.toml",
        &format!(
            "[plugins.slow-provider]\npath = {:?}\nconfig = {{ delay_ms = {delay_ms} }}\n",
            Path::new(GUESTS).join("mock_provider.wasm")
        ),
    );
    project.write(
        ".paracle/config.toml",
        "[orchestrator]\nmax_parallel_agents = 12\n",
    );
    let mut specs = String::new();
    let mut names = Vec::new();
    for i in 0..agents {
        let name = format!("agent-{i:02}");
        specs.push_str(&format!(
            "[agents.{name}]\nprovider = \"slow-provider\"\nsystem_prompt = \"You are agent {i}.\"\nmemory = \"none\"\nconfig = {{ output_file = \"out/{name}.md\" }}\n\n"
        ));
        names.push(name);
    }
    project.write(".paracle/agents/wide.toml", &specs);
    project.write(
        ".paracle/workflows/wide.toml",
        &format!(
            "task = \"Say hello.\"\n[[phases]]\nname = \"all\"\nagents = [{}]\nparallel = true\nartifacts = [\"out/*.md\"]\n",
            names
                .iter()
                .map(|n| format!("{n:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    names
}

/// A `paracle worker --json` process, its JSON lines read as they come.
struct WorkerProcess {
    name: String,
    child: Child,
    lines: mpsc::Receiver<Value>,
    seen: Vec<Value>,
}

impl WorkerProcess {
    fn start(project: &Project, nats: &NatsServer, name: &str, extra: &[&str]) -> Self {
        Self::start_with_env(project, nats, name, extra, &[])
    }

    fn start_with_env(
        project: &Project,
        nats: &NatsServer,
        name: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let url = nats.url();
        let mut args = vec!["worker", "--nats", &url, "--name", name, "--json"];
        args.extend_from_slice(extra);
        let mut child = project
            .command(&args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the worker starts");
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let value: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
                    panic!("a worker printed a line that is not JSON ({e}): {line}")
                });
                if sender.send(value).is_err() {
                    return;
                }
            }
        });
        let mut worker = WorkerProcess {
            name: name.to_string(),
            child,
            lines,
            seen: Vec::new(),
        };
        worker.wait_for("ready", 1);
        worker
    }

    /// Wait until the worker has printed `count` events named `event`;
    /// those events.
    fn wait_for(&mut self, event: &str, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let matching: Vec<Value> = self
                .seen
                .iter()
                .filter(|v| v["event"] == event)
                .cloned()
                .collect();
            if matching.len() >= count {
                return matching;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(value) => self.seen.push(value),
                Err(_) => {
                    let mut stderr = String::new();
                    if let Some(mut pipe) = self.child.stderr.take() {
                        let _ = self.child.kill();
                        let _ = pipe.read_to_string(&mut stderr);
                    }
                    panic!(
                        "worker `{}` printed {} `{event}` events, not {count}; it printed {:?}; stderr: {stderr}",
                        self.name,
                        matching.len(),
                        self.seen
                    );
                }
            }
        }
    }

    /// Stop it as Ctrl-C does; the counts it reports when it stops.
    fn stop(mut self) -> Value {
        // SAFETY: kill only sends a signal to the worker's process.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGINT);
        }
        let stopped = self.wait_for("stopped", 1).remove(0);
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "worker `{}` stopped with {status}",
            self.name
        );
        stopped
    }

    /// Kill it as a machine that dies does.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `paracle ARGS` started, not waited for.
fn spawn(project: &Project, args: &[&str]) -> Child {
    project
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("paracle starts")
}

/// Wait for `child` within the test's patience; its exit code, stdout and
/// stderr.
fn finish(mut child: Child) -> (Option<i32>, String, String) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut out = String::new();
            let mut err = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.code(), out, err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("paracle did not finish in {PATIENCE:?}; stderr: {err}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The artifacts of a run's phase bundle, by name, with the run's id taken
/// out of their content, so that two runs of one workflow compare.
fn bundle(project: &Project, state: &Value) -> Vec<(String, String)> {
    let file = project.path().join(
        state["phases"][0]["bundle"]
            .as_str()
            .expect("the phase has a bundle"),
    );
    let mut archive = zip::ZipArchive::new(std::fs::File::open(file).unwrap()).unwrap();
    let run = state["id"].as_str().unwrap();
    let mut entries = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let name = entry.name().unwrap().to_string();
        let mut content = String::new();
        entry.read_to_string(&mut content).unwrap();
        if name == "MANIFEST.json" {
            let manifest: Value = serde_json::from_str(&content).unwrap();
            // Timings, dates and digests (the content names the run) aside,
            // which artifacts it lists and their sizes.
            content = manifest["artifacts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| format!("{} {}", a["path"], a["size"]))
                .collect::<Vec<_>>()
                .join("\n");
        }
        entries.push((name, content.replace(run, "RUN")));
    }
    entries.sort();
    entries
}

/// What `run metrics` says that does not depend on timing.
fn counted(metrics: &Value) -> Value {
    let totals = &metrics["totals"];
    serde_json::json!({
        "agents": totals["agents"],
        "succeeded": totals["succeeded"],
        "failed": totals["failed"],
        "attempts": totals["attempts"],
        "prompt_tokens": totals["prompt_tokens"],
        "completion_tokens": totals["completion_tokens"],
        "steps": totals["steps"],
        "tool_calls": totals["tool_calls"],
    })
}

/// A new run of the `wide` workflow; its id.
fn started(project: &Project) -> String {
    project.json(&["run", "start", "wide"])["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `paracle ARGS` with `env` set, which must succeed.
fn succeeds_with(project: &Project, args: &[&str], env: &[(&str, &str)]) {
    let out = project
        .command(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn agents(state: &Value) -> &Vec<Value> {
    state["phases"][0]["agents"].as_array().unwrap()
}

#[test]
fn a_phase_of_forty_agents_runs_over_three_workers_as_it_runs_here() {
    let nats = NatsServer::start();
    let project = Project::new();
    let names = wide_phase(&project, 40, 150);
    let workers: Vec<WorkerProcess> = ["w1", "w2", "w3"]
        .iter()
        .map(|name| WorkerProcess::start(&project, &nats, name, &["--concurrency", "4"]))
        .collect();

    let id = started(&project);
    let url = nats.url();
    let remote = project.json(&["run", "next", "--run", &id, "--nats", &url]);
    assert_eq!(remote["status"], "completed", "{remote:#}");
    let mut ran_by: std::collections::BTreeMap<String, usize> = Default::default();
    for agent in agents(&remote) {
        assert_eq!(agent["status"], "succeeded", "{agent:#}");
        assert_eq!(agent["attempts"], 1, "{agent:#}");
        let placements = agent["placements"].as_array().unwrap();
        assert_eq!(placements.len(), 1, "{agent:#}");
        assert_eq!(placements[0]["status"], "succeeded");
        *ran_by
            .entry(placements[0]["worker"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let mut told = 0;
    for worker in workers {
        let name = worker.name.clone();
        let stopped = worker.stop();
        let succeeded = stopped["succeeded"].as_u64().unwrap() as usize;
        assert!(
            succeeded > 0,
            "worker {name} ran none of the 40: {ran_by:?}"
        );
        assert_eq!(ran_by.get(&name), Some(&succeeded), "{ran_by:?}");
        assert_eq!(stopped["failed"], 0);
        told += succeeded;
    }
    assert_eq!(told, names.len(), "every agent ran once, on one worker");

    // The same workflow, here.
    let here = project.json(&["run", "start", "wide"]);
    let here_id = here["id"].as_str().unwrap().to_string();
    let local = project.json(&["run", "next", "--run", &here_id]);
    assert_eq!(local["status"], "completed");
    assert!(agents(&local).iter().all(|a| a["placements"].is_null()));
    let (remote_bundle, local_bundle) = (bundle(&project, &remote), bundle(&project, &local));
    assert_eq!(
        remote_bundle
            .iter()
            .filter(|(n, _)| n.starts_with("artifacts/out/"))
            .count(),
        40
    );
    let differing: Vec<&String> = remote_bundle
        .iter()
        .zip(&local_bundle)
        .filter(|(a, b)| a != b)
        .map(|(a, _)| &a.0)
        .collect();
    assert!(
        differing.is_empty() && remote_bundle.len() == local_bundle.len(),
        "the bundles differ: {differing:?}"
    );
    assert_eq!(
        counted(&project.json(&["run", "metrics", "--run", &id])),
        counted(&project.json(&["run", "metrics", "--run", &here_id])),
    );
}

#[test]
fn a_worker_killed_while_it_holds_tasks_loses_none_and_the_run_says_so() {
    let nats = NatsServer::start();
    let project = Project::new();
    wide_phase(&project, 12, 2000);
    // The ack wait is short, so that the dead worker's tasks go elsewhere
    // soon; the workers say they are alive every third of it.
    let mut doomed = WorkerProcess::start(
        &project,
        &nats,
        "doomed",
        &["--concurrency", "4", "--ack-wait", "2s"],
    );
    let id = started(&project);
    let url = nats.url();
    let coordinator = spawn(
        &project,
        &["run", "next", "--run", &id, "--nats", &url, "--json"],
    );
    let taken: Vec<String> = doomed
        .wait_for("taken", 4)
        .iter()
        .map(|e| e["agent"].as_str().unwrap().to_string())
        .collect();
    doomed.kill();
    let survivors: Vec<WorkerProcess> = ["w2", "w3"]
        .iter()
        .map(|name| WorkerProcess::start(&project, &nats, name, &["--concurrency", "4"]))
        .collect();

    let (code, out, err) = finish(coordinator);
    assert_eq!(code, Some(0), "{err}");
    let state: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(state["status"], "completed");
    for agent in agents(&state) {
        let name = agent["name"].as_str().unwrap();
        assert_eq!(agent["status"], "succeeded", "{agent:#}");
        assert_eq!(
            agent["attempts"], 1,
            "a redelivery is not a retry: {agent:#}"
        );
        let placements = agent["placements"].as_array().unwrap();
        if taken.iter().any(|t| t == name) {
            assert_eq!(placements.len(), 2, "{agent:#}");
            assert_eq!(placements[0]["worker"], "doomed");
            assert_eq!(placements[0]["status"], "interrupted");
            assert_eq!(placements[1]["status"], "succeeded");
            assert_ne!(placements[1]["worker"], "doomed");
        } else {
            assert_eq!(placements.len(), 1, "{agent:#}");
            assert_eq!(placements[0]["status"], "succeeded");
        }
    }
    let files = bundle(&project, &state);
    let outputs: Vec<&String> = files
        .iter()
        .map(|(n, _)| n)
        .filter(|n| n.starts_with("artifacts/out/"))
        .collect();
    assert_eq!(outputs.len(), 12, "each artifact once: {outputs:?}");
    let ran: u64 = survivors
        .into_iter()
        .map(|w| w.stop()["succeeded"].as_u64().unwrap())
        .sum();
    assert_eq!(
        ran, 12,
        "the survivors ran the 8 waiting and the 4 interrupted"
    );
}

#[test]
fn a_coordinator_killed_mid_phase_picks_up_the_outcomes_that_came_while_it_was_down() {
    let nats = NatsServer::start();
    let project = Project::new();
    wide_phase(&project, 8, 1500);
    project.write(
        ".paracle/config.toml",
        &format!(
            "[orchestrator]\nmax_parallel_agents = 8\n\n[executor]\nkind = \"nats\"\nnats = \"{}\"\n",
            nats.url()
        ),
    );
    let mut worker = WorkerProcess::start(&project, &nats, "w1", &["--concurrency", "8"]);
    let id = started(&project);
    // `[executor]` sends the agents to the workers with no flag.
    let mut coordinator = spawn(&project, &["run", "next", "--run", &id]);
    worker.wait_for("taken", 8);
    coordinator.kill().unwrap();
    coordinator.wait().unwrap();
    worker.wait_for("finished", 8);
    let status = project.json(&["run", "status", "--run", &id]);
    assert_eq!(status["status"], "interrupted", "{status:#}");

    let resumed = project.json(&["run", "next", "--run", &id]);
    assert_eq!(resumed["status"], "completed", "{resumed:#}");
    for agent in agents(&resumed) {
        assert_eq!(agent["status"], "succeeded", "{agent:#}");
        assert_eq!(agent["attempts"], 1, "{agent:#}");
        assert_eq!(agent["placements"][0]["worker"], "w1");
    }
    assert_eq!(
        bundle(&project, &resumed)
            .iter()
            .filter(|(n, _)| n.starts_with("artifacts/out/"))
            .count(),
        8
    );
    let stopped = worker.stop();
    assert_eq!(stopped["succeeded"], 8, "nothing ran twice: {stopped}");
}

#[test]
fn a_worker_refuses_a_component_that_does_not_match_its_digest_and_grants_it_cannot_give() {
    let nats = NatsServer::start();
    let project = Project::new();
    wide_phase(&project, 1, 0);
    let listed = project.json(&["plugin", "list"]);
    let digest = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "slow-provider")
        .expect("slow-provider is listed")["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let object = digest.strip_prefix("sha256:").unwrap().to_string();
    let id = started(&project);
    let url = nats.url();
    // No worker yet: the coordinator puts the component in the store and
    // waits; then the store's copy is swapped for other bytes.
    let coordinator = spawn(
        &project,
        &["run", "next", "--run", &id, "--nats", &url, "--json"],
    );
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio.block_on(async {
        let client = async_nats::connect(&url).await.unwrap();
        let jetstream = async_nats::jetstream::new(client);
        let deadline = Instant::now() + PATIENCE;
        let store = loop {
            if let Ok(store) = jetstream.get_object_store("paracle-components").await {
                if store.info(&object).await.is_ok() {
                    break store;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the component never reached the store"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut other: &[u8] = b"\0asm not the component the task names";
        store.put(object.as_str(), &mut other).await.unwrap();
    });
    let worker = WorkerProcess::start(&project, &nats, "careful", &[]);
    let (code, out, _) = finish(coordinator);
    assert_eq!(code, Some(1), "the phase failed");
    let state: Value = serde_json::from_str(&out).unwrap();
    let agent = &agents(&state)[0];
    assert_eq!(agent["failure"], "setup", "{agent:#}");
    let error = agent["error"].as_str().unwrap();
    assert!(
        error.contains("worker `careful` refused plugin `slow-provider`")
            && error.contains("hashes to sha256:")
            && error.contains(&digest),
        "{error}"
    );
    assert!(!project
        .path()
        .join(".paracle/runs")
        .join(&id)
        .join("workspace/out")
        .exists());

    // A plugin granted a directory: refused by a worker that shares none,
    // run by one that shares the project.
    project.write(
        ".paracle/agents/wide.toml",
        "[agents.agent-00]\nprovider = \"mock-provider\"\ntools = [\"fs-tools\"]\nmemory = \"none\"\nconfig = { output_file = \"out/agent-00.md\" }\n",
    );
    let id = started(&project);
    let refused = project.run(&["run", "next", "--run", &id, "--nats", &url, "--json"]);
    assert_eq!(refused.status.code(), Some(1));
    let state: Value = serde_json::from_slice(&refused.stdout).unwrap();
    let error = agents(&state)[0]["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("refused plugin `fs-tools`")
            && error.contains("outside the directories this worker shares")
            && error.contains("--share"),
        "{error}"
    );
    worker.stop();
    let project_dir = project.path().to_str().unwrap().to_string();
    let sharing = WorkerProcess::start(&project, &nats, "sharing", &["--share", &project_dir]);
    let id = started(&project);
    let done = project.json(&["run", "next", "--run", &id, "--nats", &url]);
    assert_eq!(done["status"], "completed", "{done:#}");
    assert_eq!(sharing.stop()["succeeded"], 1);

    // The worker's own environment, and its own files, are not a task's to
    // grant: refused unless its operator allows them, whatever it shares.
    let provider = Path::new(GUESTS).join("mock_provider.wasm");
    project.write(
        ".paracle/agents/wide.toml",
        "[agents.agent-00]\nprovider = \"slow-provider\"\nmemory = \"none\"\nconfig = { output_file = \"out/agent-00.md\" }\n",
    );
    project.write(
        "paracle.toml",
        &format!("[plugins.slow-provider]\npath = {provider:?}\ngrants = {{ env = [\"HOME\"] }}\n"),
    );
    let strict = WorkerProcess::start(&project, &nats, "strict", &[]);
    let id = started(&project);
    let refused = project.run(&["run", "next", "--run", &id, "--nats", &url, "--json"]);
    let state: Value = serde_json::from_slice(&refused.stdout).unwrap();
    let error = agents(&state)[0]["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("`env:HOME`") && error.contains("--allow-env HOME"),
        "{error}"
    );
    strict.stop();
    let allowing = WorkerProcess::start(&project, &nats, "allowing", &["--allow-env", "HOME"]);
    let id = started(&project);
    let done = project.json(&["run", "next", "--run", &id, "--nats", &url]);
    assert_eq!(done["status"], "completed", "{done:#}");
    allowing.stop();

    std::fs::create_dir_all(project.home()).unwrap();
    project.write(
        "paracle.toml",
        &format!(
            "[plugins.slow-provider]\npath = {provider:?}\ngrants = {{ dirs = [\"{}:/data:rw\"] }}\n",
            project.home().display()
        ),
    );
    let sharing_all = WorkerProcess::start(&project, &nats, "wide-open", &["--share", "/"]);
    let id = started(&project);
    let refused = project.run(&["run", "next", "--run", &id, "--nats", &url, "--json"]);
    let state: Value = serde_json::from_slice(&refused.stdout).unwrap();
    let error = agents(&state)[0]["error"].as_str().unwrap().to_string();
    assert!(error.contains("this machine's own files"), "{error}");
    sharing_all.stop();

    // Under require-signed, the worker's own trust list decides, whatever
    // the coordinator's says: the unsigned component is refused there.
    let own_home = tempfile::tempdir().unwrap();
    std::fs::write(
        own_home.path().join("trust.toml"),
        "policy = \"require-signed\"\n",
    )
    .unwrap();
    project.write(
        "paracle.toml",
        &format!("[plugins.slow-provider]\npath = {provider:?}\n"),
    );
    let signed_only = WorkerProcess::start_with_env(
        &project,
        &nats,
        "signed-only",
        &[],
        &[("PARACLE_HOME", own_home.path().to_str().unwrap())],
    );
    let id = started(&project);
    let refused = project.run(&["run", "next", "--run", &id, "--nats", &url, "--json"]);
    let state: Value = serde_json::from_slice(&refused.stdout).unwrap();
    let error = agents(&state)[0]["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("worker `signed-only` refused plugin `slow-provider`")
            && error.contains("is not signed"),
        "{error}"
    );
    signed_only.stop();
}

#[test]
fn without_nats_nothing_is_sent_and_the_run_is_untouched() {
    let project = Project::new();
    wide_phase(&project, 2, 0);
    let id = started(&project);
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let error = project.fails(&[
        "run",
        "next",
        "--run",
        &id,
        "--nats",
        &format!("nats://127.0.0.1:{port}"),
    ]);
    assert!(
        error.contains("cannot reach NATS at nats://127.0.0.1:")
            && error.contains("nats-server -js"),
        "{error}"
    );
    let state = project.json(&["run", "status", "--run", &id]);
    assert_eq!(state["status"], "ready");
    assert!(agents(&state).iter().all(|a| a["status"] == "pending"));

    let error = project.fails(&["run", "next", "--run", &id, "--executor", "nats"]);
    assert!(error.contains("--nats nats://HOST:4222"), "{error}");
    let error = project.fails(&[
        "run",
        "next",
        "--run",
        &id,
        "--executor",
        "local",
        "--nats",
        "nats://127.0.0.1:4222",
    ]);
    assert!(
        error.contains("does not go with --executor local"),
        "{error}"
    );
    let error = project.fails(&[
        "run",
        "next",
        "--run",
        &id,
        "--nats",
        "http://127.0.0.1:4222",
    ]);
    assert!(error.contains("is not a NATS server's address"), "{error}");
    project.write(".paracle/config.toml", "[executor]\nkind = \"nats\"\n");
    let error = project.fails(&["run", "status", "--run", &id]);
    assert!(
        error.contains("config.toml:2:") && error.contains("needs the server"),
        "{error}"
    );
    project.write(
        ".paracle/config.toml",
        "[executor]\nkind = \"nats\"\nnats = \"nats://127.0.0.1:1\"\nworkers = 3\n",
    );
    let error = project.fails(&["run", "status", "--run", &id]);
    assert!(
        error.contains("config.toml:4:") && error.contains("workers"),
        "{error}"
    );
    let error = project.fails(&["worker", "--nats", &format!("nats://127.0.0.1:{port}")]);
    assert!(error.contains("cannot reach NATS"), "{error}");
}

/// Spans as an OTLP receiver decodes them: name, ids (hex), attributes.
struct ReceivedSpan {
    name: String,
    trace: String,
    span: String,
    parent: String,
    attributes: std::collections::BTreeMap<String, String>,
}

fn hexed(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute_text(value: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(V::StringValue(s)) => s.clone(),
        Some(V::IntValue(i)) => i.to_string(),
        Some(V::BoolValue(b)) => b.to_string(),
        Some(V::DoubleValue(d)) => d.to_string(),
        Some(V::ArrayValue(a)) => a
            .values
            .iter()
            .map(|v| attribute_text(&Some(v.clone())))
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    }
}

#[test]
fn a_run_over_two_workers_is_one_trace_with_gen_ai_attributes() {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;

    let tokio = tokio::runtime::Runtime::new().unwrap();
    let receiver = tokio.block_on(paracle_testing::http::FakeServer::start(|_| {
        paracle_testing::http::Reply {
            status: 200,
            headers: vec![("content-type".into(), "application/x-protobuf".into())],
            body: Vec::new(),
        }
    }));
    let endpoint = receiver.url("");
    let env = [("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())];
    let nats = NatsServer::start();
    let project = Project::new();
    wide_phase(&project, 4, 300);
    let workers: Vec<WorkerProcess> = ["w1", "w2"]
        .iter()
        .map(|name| {
            WorkerProcess::start_with_env(&project, &nats, name, &["--concurrency", "2"], &env)
        })
        .collect();
    let id = started(&project);
    let url = nats.url();
    succeeds_with(
        &project,
        &["run", "next", "--run", &id, "--nats", &url],
        &env,
    );
    for worker in workers {
        worker.stop();
    }
    // The same workflow here: its calls are traced from the run's events.
    let here_id = started(&project);
    succeeds_with(&project, &["run", "next", "--run", &here_id], &env);

    let mut spans = Vec::new();
    let mut services = std::collections::BTreeSet::new();
    let mut metric_names = std::collections::BTreeSet::new();
    for request in receiver.requests() {
        match request.path.as_str() {
            "/v1/traces" => {
                let export = ExportTraceServiceRequest::decode(request.bytes.as_slice())
                    .expect("OTLP traces decode");
                for resource in export.resource_spans {
                    for attribute in resource.resource.iter().flat_map(|r| &r.attributes) {
                        if attribute.key == "service.name" {
                            services.insert(attribute_text(&attribute.value));
                        }
                    }
                    for scope in resource.scope_spans {
                        for span in scope.spans {
                            spans.push(ReceivedSpan {
                                name: span.name,
                                trace: hexed(&span.trace_id),
                                span: hexed(&span.span_id),
                                parent: hexed(&span.parent_span_id),
                                attributes: span
                                    .attributes
                                    .iter()
                                    .map(|a| (a.key.clone(), attribute_text(&a.value)))
                                    .collect(),
                            });
                        }
                    }
                }
            }
            "/v1/metrics" => {
                let export = ExportMetricsServiceRequest::decode(request.bytes.as_slice())
                    .expect("OTLP metrics decode");
                for resource in export.resource_metrics {
                    for scope in resource.scope_metrics {
                        metric_names.extend(scope.metrics.into_iter().map(|m| m.name));
                    }
                }
            }
            other => panic!("the receiver was sent to {other}"),
        }
    }
    assert_eq!(services, ["paracle".to_string()].into());
    let traces: std::collections::BTreeSet<String> =
        spans.iter().map(|s| s.trace.clone()).collect();
    assert_eq!(traces.len(), 2, "two runs, two traces");
    let trace_of = |run: &str| -> String {
        spans
            .iter()
            .find(|s| s.name == "run wide" && s.attributes["paracle.run.id"] == run)
            .unwrap_or_else(|| panic!("no span of run {run}"))
            .trace
            .clone()
    };
    let (remote_trace, local_trace) = (trace_of(&id), trace_of(&here_id));

    // Here, each provider call hangs under its agent's attempt.
    let local: Vec<&ReceivedSpan> = spans.iter().filter(|s| s.trace == local_trace).collect();
    let local_agents: Vec<&&ReceivedSpan> = local
        .iter()
        .filter(|s| s.name.starts_with("invoke_agent "))
        .collect();
    assert_eq!(local_agents.len(), 4);
    for agent in &local_agents {
        let calls = local
            .iter()
            .filter(|s| s.parent == agent.span && s.name.starts_with("chat"))
            .count();
        assert_eq!(calls, 1, "{}", agent.name);
    }
    assert!(!local.iter().any(|s| s.name.starts_with("run_agent ")));

    let spans: Vec<&ReceivedSpan> = spans.iter().filter(|s| s.trace == remote_trace).collect();
    let named = |prefix: &str| -> Vec<&ReceivedSpan> {
        spans
            .iter()
            .copied()
            .filter(|s| s.name.starts_with(prefix))
            .collect()
    };

    let roots = named("run wide");
    assert_eq!(roots.len(), 1);
    assert!(roots[0].parent.is_empty() || roots[0].parent == "0000000000000000");
    assert_eq!(roots[0].attributes["paracle.run.id"], id);
    let phases = named("phase all");
    assert_eq!(phases.len(), 1);
    assert_eq!(phases[0].parent, roots[0].span);
    let agents = named("invoke_agent ");
    assert_eq!(agents.len(), 4);
    let on_workers = named("run_agent ");
    assert_eq!(on_workers.len(), 4);
    let chats = named("chat");
    assert_eq!(
        chats.len(),
        4,
        "one provider call per agent, traced once, on its worker"
    );
    let mut workers_seen = std::collections::BTreeSet::new();
    for agent in &agents {
        assert_eq!(agent.parent, phases[0].span);
        assert_eq!(agent.attributes["gen_ai.operation.name"], "invoke_agent");
        assert!(
            agent.attributes["gen_ai.usage.input_tokens"]
                .parse::<u64>()
                .unwrap()
                > 0
        );
        let remote: Vec<&&ReceivedSpan> = on_workers
            .iter()
            .filter(|w| w.parent == agent.span)
            .collect();
        assert_eq!(
            remote.len(),
            1,
            "the worker's span hangs under the attempt that sent it"
        );
        workers_seen.insert(remote[0].attributes["paracle.worker"].clone());
        let calls: Vec<&&ReceivedSpan> = chats
            .iter()
            .filter(|c| c.parent == remote[0].span)
            .collect();
        assert_eq!(calls.len(), 1);
        let call = &calls[0].attributes;
        assert_eq!(call["gen_ai.operation.name"], "chat");
        assert_eq!(call["gen_ai.provider.name"], "slow-provider");
        assert!(!call["gen_ai.response.model"].is_empty());
        assert!(call["gen_ai.usage.input_tokens"].parse::<u64>().unwrap() > 0);
        assert!(call["gen_ai.usage.output_tokens"].parse::<u64>().unwrap() > 0);
        assert_eq!(call["gen_ai.response.finish_reasons"], "stop");
        assert!(call["paracle.plugin.digest"].starts_with("sha256:"));
        assert_eq!(call["paracle.outcome"], "ok");
    }
    assert_eq!(workers_seen, ["w1".to_string(), "w2".to_string()].into());
    for metric in ["paracle.plugin.calls", "paracle.plugin.call.duration"] {
        assert!(metric_names.contains(metric), "{metric_names:?}");
    }
}
