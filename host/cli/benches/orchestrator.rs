//! What the orchestrator costs, measured against calling the adapter
//! directly, in one run:
//!
//! - `100 agents`: a phase of 100 agents on the embedded mock provider, one
//!   at a time. `direct` builds each agent's routes and calls `run-agent`
//!   itself; `orchestrated` is `Orchestrator::next` on the same agents
//!   (state saved atomically after every agent, events to the observers,
//!   artifact validation, the zip bundle). The overhead per agent is the
//!   difference, divided by 100. Target: at most 2 ms.
//! - `8 agents, 4 workers`: a parallel phase of 8 agents on a mock provider
//!   that waits 100 ms per call, with `max_workers = 4`: two waves, so about
//!   200 ms. Target: at most 260 ms.
//!
//! - `git workflow`: the 100-agent phase again, in a git repository with the
//!   git workflow set up: `run start` also makes a branch and a worktree,
//!   and the phase ends with a commit of its 100 artifacts. Shown next to the
//!   plain figures of the same run; no target.
//!
//! - `over NATS`: the 100-agent phase sent to `paracle worker` processes
//!   through a real `nats-server -js` on loopback. One at a time on one
//!   worker against the same phase run here gives the NATS executor's
//!   overhead per agent (target: under 5 ms); then the phase in parallel
//!   (12 at once) on one worker and on three.
//!
//! Run with `cargo bench -p paracle --bench orchestrator`; `-- --quick` for
//! fewer rounds. Figures go to stdout; docs/performance.md records them.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use paracle_cluster::NatsExecutor;
use paracle_contract::Task;
use paracle_orchestrator::spec::Workflow;
use paracle_orchestrator::{Orchestrator, RunOptions};
use paracle_project::{Paths, Registry};
use paracle_runtime::{AgentRoutes, Runtime};

const GUESTS: &str = paracle_guests::GUEST_DIR;
const AGENTS: usize = 100;

fn write(root: &Path, relative: &str, text: &str) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn registry(project: &Path, home: &Path) -> Registry {
    let paths = Paths::new(project, home, &home.join("cache"));
    let runtime = Arc::new(Runtime::new(Some(paths.cache.clone())).expect("engine starts"));
    paracle_gitflow::with_repository(Registry::open(paths, runtime).expect("registry opens"))
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// The 100-agent project: each agent answers in one provider round-trip and
/// writes one artifact, as the quickstart's agents do.
fn hundred_agents(project: &Path) {
    let mut agents = String::new();
    let mut names = Vec::new();
    for i in 0..AGENTS {
        let name = format!("agent-{i:03}");
        agents.push_str(&format!(
            "[agents.{name}]\nsystem_prompt = \"You are agent {i}.\"\nmemory = \"none\"\nconfig = {{ output_file = \"out/{name}.md\" }}\n\n"
        ));
        names.push(format!("\"{name}\""));
    }
    write(project, ".paracle/agents/many.toml", &agents);
    write(
        project,
        ".paracle/workflows/many.toml",
        &format!(
            "task = \"Say hello.\"\n[[phases]]\nname = \"all\"\nagents = [{}]\nartifacts = [\"out/*.md\"]\n",
            names.join(", ")
        ),
    );
}

/// Each agent of the 100 called straight through its adapter, as a caller
/// without the orchestrator would: the same plugins, routes and spec.
async fn direct(registry: &Registry, workflow: &Workflow) -> Duration {
    let adapter = registry.get("agent-runner").await.unwrap();
    let provider = registry.get("mock-provider").await.unwrap();
    let started = Instant::now();
    for agent in workflow.agents.values() {
        let routes = AgentRoutes::new(
            adapter.name(),
            Some(provider.clone()),
            Vec::new(),
            None,
            Some("bench".into()),
            Some(agent.name.clone()),
        )
        .unwrap();
        let spec = agent.spec();
        let task = Task {
            id: agent.name.clone(),
            input: workflow.task.clone(),
            context: "{}".into(),
        };
        let outcome = adapter
            .run_agent(&spec, &task, Arc::new(routes))
            .await
            .unwrap()
            .unwrap();
        std::hint::black_box(outcome);
    }
    started.elapsed()
}

/// Medians of `run start` and `run next` over the 100-agent phase.
struct Phase100 {
    start: Duration,
    next: Duration,
}

async fn overhead(rounds: usize) -> Phase100 {
    let project = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    hundred_agents(project.path());
    let registry = registry(project.path(), home.path());
    let orchestrator = Orchestrator::new(&registry);
    let workflow = orchestrator.workflow("many").await.unwrap();
    // Warm both paths: compiled code, pools, the file system.
    direct(&registry, &workflow).await;
    let run = orchestrator.start("many", None).await.unwrap();
    orchestrator
        .next(Some(&run.id), &RunOptions::default())
        .await
        .unwrap();

    let (mut direct_times, mut orchestrated, mut starts) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        direct_times.push(direct(&registry, &workflow).await);
        let started = Instant::now();
        let run = orchestrator.start("many", None).await.unwrap();
        starts.push(started.elapsed());
        let started = Instant::now();
        let state = orchestrator
            .next(Some(&run.id), &RunOptions::default())
            .await
            .unwrap();
        orchestrated.push(started.elapsed());
        assert_eq!(state.phases[0].succeeded(), AGENTS, "every agent succeeds");
    }
    let direct_median = median(direct_times);
    let orchestrated_median = median(orchestrated.clone());
    let start_median = median(starts.clone());
    let per_agent = orchestrated_median.saturating_sub(direct_median) / AGENTS as u32;
    println!("100 agents, one at a time, mock provider ({rounds} rounds, medians)");
    println!(
        "  direct adapter calls      {}  ({} per agent)",
        ms(direct_median),
        ms(direct_median / AGENTS as u32)
    );
    println!(
        "  orchestrated (run next)   {}  ({} per agent)",
        ms(orchestrated_median),
        ms(orchestrated_median / AGENTS as u32)
    );
    println!("  run start                 {}", ms(start_median));
    println!(
        "  overhead per agent        {}  (target ≤ 2 ms: {})",
        ms(per_agent),
        if per_agent <= Duration::from_millis(2) {
            "met"
        } else {
            "NOT met"
        }
    );
    Phase100 {
        start: start_median,
        next: orchestrated_median,
    }
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.com")
        .env("GIT_COMMITTER_NAME", "Bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?}");
}

async fn git_workflow(rounds: usize, plain: Phase100) {
    let project = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let root = project.path();
    git(root, &["init", "-q", "-b", "main"]);
    write(root, "README.md", "bench\n");
    git(root, &["add", "README.md"]);
    git(root, &["commit", "-q", "-m", "first"]);
    hundred_agents(root);
    write(
        root,
        ".paracle/config.toml",
        "[git]\nbase_branch = \"main\"\n",
    );
    let registry = registry(root, home.path());
    let orchestrator = Orchestrator::new(&registry);
    let warm = orchestrator.start("many", None).await.unwrap();
    orchestrator
        .next(Some(&warm.id), &RunOptions::default())
        .await
        .unwrap();
    let (mut starts, mut nexts) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let started = Instant::now();
        let run = orchestrator.start("many", None).await.unwrap();
        starts.push(started.elapsed());
        assert!(run.workspace.is_some(), "the run works in its worktree");
        let started = Instant::now();
        let state = orchestrator
            .next(Some(&run.id), &RunOptions::default())
            .await
            .unwrap();
        nexts.push(started.elapsed());
        assert_eq!(state.phases[0].succeeded(), AGENTS, "every agent succeeds");
    }
    let (start, next) = (median(starts), median(nexts));
    println!(
        "\n100 agents with the git workflow ({rounds} rounds, medians; plain figures from above)"
    );
    println!(
        "  run start (branch + worktree)  {}  (plain {}, +{})",
        ms(start),
        ms(plain.start),
        ms(start.saturating_sub(plain.start))
    );
    println!(
        "  run next (+ commit of 100)     {}  (plain {}, +{})",
        ms(next),
        ms(plain.next),
        ms(next.saturating_sub(plain.next))
    );
}

async fn workers(rounds: usize) {
    let project = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let root = project.path();
    write(
        root,
        "paracle.toml",
        &format!(
            "[plugins.slow-provider]\npath = {:?}\nconfig = {{ delay_ms = 100 }}\n",
            Path::new(GUESTS).join("mock_provider.wasm")
        ),
    );
    // The configured maximum is above 4, so that --max-workers is the cap.
    write(
        root,
        ".paracle/config.toml",
        "[orchestrator]\nmax_parallel_agents = 8\n",
    );
    let mut agents = String::new();
    let mut names = Vec::new();
    for i in 1..=8 {
        agents.push_str(&format!(
            "[agents.slow-{i}]\nprovider = \"slow-provider\"\nmemory = \"none\"\n\n"
        ));
        names.push(format!("\"slow-{i}\""));
    }
    write(root, ".paracle/agents/slow.toml", &agents);
    write(
        root,
        ".paracle/workflows/eight.toml",
        &format!(
            "task = \"Wait.\"\n[[phases]]\nname = \"wide\"\nagents = [{}]\nparallel = true\n",
            names.join(", ")
        ),
    );
    let registry = registry(root, home.path());
    let orchestrator = Orchestrator::new(&registry);
    let options = RunOptions {
        max_workers: Some(4),
        ..RunOptions::default()
    };
    let warm = orchestrator.start("eight", None).await.unwrap();
    orchestrator.next(Some(&warm.id), &options).await.unwrap();
    let mut times = Vec::new();
    for _ in 0..rounds {
        let run = orchestrator.start("eight", None).await.unwrap();
        let started = Instant::now();
        let state = orchestrator.next(Some(&run.id), &options).await.unwrap();
        times.push(started.elapsed());
        assert_eq!(state.phases[0].succeeded(), 8, "every agent succeeds");
    }
    let worst = *times.iter().max().unwrap();
    let best = *times.iter().min().unwrap();
    let median = median(times);
    println!("\n8 agents, 100 ms per provider call, --max-workers 4 ({rounds} rounds)");
    println!(
        "  phase wall time  median {}  best {}  worst {}",
        ms(median),
        ms(best),
        ms(worst)
    );
    println!(
        "  target ≈ 200 ms, ≤ 260 ms: {}",
        if median <= Duration::from_millis(260) {
            "met"
        } else {
            "NOT met"
        }
    );
}

/// `paracle worker` processes on `nats`, sharing the bench's per-user
/// directories (and so its compiled code), each ready when returned.
fn start_workers(nats: &str, home: &Path, count: usize, concurrency: usize) -> Vec<Child> {
    (0..count)
        .map(|i| {
            let mut child = Command::new(env!("CARGO_BIN_EXE_paracle"))
                .args(["worker", "--nats", nats, "--json", "--name"])
                .arg(format!("bench-{i}"))
                .args(["--concurrency", &concurrency.to_string()])
                .env("PARACLE_HOME", home)
                .env("PARACLE_CACHE_DIR", home.join("cache"))
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("paracle worker starts");
            let mut lines = BufReader::new(child.stdout.take().unwrap());
            let mut ready = String::new();
            lines.read_line(&mut ready).unwrap();
            assert!(ready.contains("\"ready\""), "{ready}");
            // A line per task follows; read, or the worker stops when the
            // pipe is full.
            std::thread::spawn(move || std::io::copy(&mut lines, &mut std::io::sink()));
            child
        })
        .collect()
}

fn stop_workers(workers: Vec<Child>) {
    for mut worker in workers {
        let _ = worker.kill();
        let _ = worker.wait();
    }
}

/// The median time of `run next` over `rounds` fresh runs of `many`.
async fn phase_median(
    orchestrator: &Orchestrator<'_>,
    options: &RunOptions,
    rounds: usize,
) -> Duration {
    let warm = orchestrator.start("many", None).await.unwrap();
    orchestrator.next(Some(&warm.id), options).await.unwrap();
    let mut times = Vec::new();
    for _ in 0..rounds {
        let run = orchestrator.start("many", None).await.unwrap();
        let started = Instant::now();
        let state = orchestrator.next(Some(&run.id), options).await.unwrap();
        times.push(started.elapsed());
        assert_eq!(state.phases[0].succeeded(), AGENTS, "every agent succeeds");
    }
    median(times)
}

async fn over_nats(rounds: usize) {
    let nats = paracle_testing::nats::NatsServer::start();
    let project = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    hundred_agents(project.path());
    write(
        project.path(),
        ".paracle/config.toml",
        "[orchestrator]\nmax_parallel_agents = 12\n",
    );
    let registry = registry(project.path(), home.path());
    let local = Orchestrator::new(&registry);
    let executor: Arc<dyn paracle_orchestrator::Executor> = Arc::new(
        NatsExecutor::connect(&nats.url(), Duration::from_secs(5))
            .await
            .expect("NATS answers"),
    );
    let remote = Orchestrator::new(&registry).with_executor(executor);
    let one_at_a_time = RunOptions::default();
    let twelve_at_once = RunOptions {
        parallel: true,
        max_workers: Some(12),
        ..RunOptions::default()
    };

    let here = phase_median(&local, &one_at_a_time, rounds).await;
    let workers = start_workers(&nats.url(), home.path(), 1, 12);
    let on_one = phase_median(&remote, &one_at_a_time, rounds).await;
    let parallel_one = phase_median(&remote, &twelve_at_once, rounds).await;
    stop_workers(workers);
    let workers = start_workers(&nats.url(), home.path(), 3, 4);
    let parallel_three = phase_median(&remote, &twelve_at_once, rounds).await;
    stop_workers(workers);
    let parallel_here = phase_median(&local, &twelve_at_once, rounds).await;

    let per_agent = on_one.saturating_sub(here) / AGENTS as u32;
    println!("\n100 agents over NATS, mock provider ({rounds} rounds, medians)");
    println!("  one at a time, here            {}", ms(here));
    println!("  one at a time, 1 worker        {}", ms(on_one));
    println!(
        "  NATS executor per agent        {}  (target < 5 ms: {})",
        ms(per_agent),
        if per_agent < Duration::from_millis(5) {
            "met"
        } else {
            "NOT met"
        }
    );
    println!("  12 at once, here               {}", ms(parallel_here));
    println!("  12 at once, 1 worker (12 each) {}", ms(parallel_one));
    println!("  12 at once, 3 workers (4 each) {}", ms(parallel_three));
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 3 } else { 9 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let plain = overhead(rounds).await;
        workers(rounds).await;
        git_workflow(rounds, plain).await;
        over_nats(rounds).await;
    });
}
