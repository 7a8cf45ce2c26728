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
        let url = nats.url();
        let mut args = vec!["worker", "--nats", &url, "--name", name, "--json"];
        args.extend_from_slice(extra);
        let mut child = project
            .command(&args)
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

    let run = project.json(&["run", "start", "wide"]);
    let id = run["id"].as_str().unwrap().to_string();
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
    let run = project.json(&["run", "start", "wide"]);
    let id = run["id"].as_str().unwrap().to_string();
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
    let run = project.json(&["run", "start", "wide"]);
    let id = run["id"].as_str().unwrap().to_string();
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
    let run = project.json(&["run", "start", "wide"]);
    let id = run["id"].as_str().unwrap().to_string();
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
            && error.contains(&format!("hashes to sha256:"))
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
    let run = project.json(&["run", "start", "wide"]);
    let id = run["id"].as_str().unwrap().to_string();
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
    let run = project.json(&["run", "start", "wide"]);
    let id = run["id"].as_str().unwrap().to_string();
    let done = project.json(&["run", "next", "--run", &id, "--nats", &url]);
    assert_eq!(done["status"], "completed", "{done:#}");
    assert_eq!(sharing.stop()["succeeded"], 1);
}

#[test]
fn without_nats_nothing_is_sent_and_the_run_is_untouched() {
    let project = Project::new();
    wide_phase(&project, 2, 0);
    let run = project.json(&["run", "start", "wide"]);
    let id = run["id"].as_str().unwrap().to_string();
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
