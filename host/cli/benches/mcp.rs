//! What an MCP `tools/call` costs end to end, against the floor, in one run.
//!
//! Two servers answer the same client over stdio pipes:
//!
//! - `floor`: this very binary started with `--floor-server`. It reads
//!   JSON-RPC lines, answers `initialize`, `tools/list` and `tools/call` of
//!   `count_vowels` with the text-tools source compiled natively, and writes
//!   one line per answer: no MCP SDK, no wasm, no async runtime. It is what
//!   any stdio server pays for the pipes and JSON alone.
//! - `paracle`: `paracle mcp serve --stdio` in an empty project, calling the
//!   embedded `text-tools` plugin's `count_vowels` through the sandbox.
//!
//! The client, one thread, keeps up to N requests in flight, sending the
//! next as each answer comes, and checks every answer's vowel count. For 1
//! in flight it gives the round trip; for 8 the throughput. Inputs are 16 B,
//! 1 KiB and 64 KiB of text. Each figure is the median of three rounds that
//! alternate the servers. Printed beside them: the server's CPU time per
//! call (all its threads, from the scheduler's accounting: what it spends,
//! apart from waiting for pipes and threads to wake), the ratios to the
//! floor's figure of the same case, and the gain of 8 in flight over 1 for
//! the same server. Last, what `structuredContent` adds to an answer, in
//! process.
//!
//! Run with `cargo bench -p paracle --bench mcp`; `-- --quick` for one
//! round of fewer calls; `-- 64` for the cases whose label contains `64`
//! (`-- structured` for the last table alone).

#[path = "shared/inputs.rs"]
mod inputs;
#[path = "../../../sample-plugins/text-tools/src/vowels.rs"]
pub mod vowels;

use inputs::{text_of, INPUT_SIZES};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const TOOL: &str = "text-tools__count_vowels";
const IN_FLIGHT: [usize; 2] = [1, 8];

/// The floor server: what a stdio MCP server cannot do without.
mod floor {
    use super::*;

    pub(crate) fn serve() {
        let stdin = std::io::stdin().lock();
        let mut out = BufWriter::new(std::io::stdout().lock());
        for line in stdin.lines() {
            let Ok(line) = line else { return };
            let Ok(request) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            let Some(id) = request.get("id") else {
                continue; // a notification
            };
            let result = match request["method"].as_str() {
                Some("initialize") => json!({
                    "protocolVersion": request["params"]["protocolVersion"],
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "floor", "version": "0"}
                }),
                Some("tools/list") => json!({"tools": [{
                    "name": TOOL,
                    "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
                }]}),
                Some("tools/call") => {
                    let text = request["params"]["arguments"]["text"]
                        .as_str()
                        .unwrap_or_default();
                    let answer = json!({"vowels": vowels::count_vowels(text)});
                    json!({
                        "content": [{"type": "text", "text": answer.to_string()}],
                        "isError": false
                    })
                }
                _ => json!({}),
            };
            let response = json!({"jsonrpc": "2.0", "id": id, "result": result});
            serde_json::to_writer(&mut out, &response).expect("stdout");
            out.write_all(b"\n").expect("stdout");
            out.flush().expect("stdout");
        }
    }
}

/// A server process and the two ends of its pipes.
struct Server {
    name: &'static str,
    child: Child,
    input: Option<BufWriter<ChildStdin>>,
    output: BufReader<ChildStdout>,
}

impl Server {
    fn start(name: &'static str, mut command: Command) -> Server {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{name} starts: {e}"));
        let input = BufWriter::new(child.stdin.take().expect("piped"));
        let output = BufReader::new(child.stdout.take().expect("piped"));
        let mut server = Server {
            name,
            child,
            input: Some(input),
            output,
        };
        server.handshake();
        server
    }

    fn send(&mut self, message: &Value) {
        let input = self.input.as_mut().expect("open");
        serde_json::to_writer(&mut *input, message).expect("write");
        input.write_all(b"\n").expect("write");
        input.flush().expect("write");
    }

    fn receive(&mut self) -> Value {
        let mut line = String::new();
        let read = self.output.read_line(&mut line).expect("read");
        assert!(read > 0, "{} closed its output", self.name);
        serde_json::from_str(&line).expect("a JSON-RPC line")
    }

    fn handshake(&mut self) {
        self.send(
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "bench", "version": "0"}}}),
        );
        let answer = self.receive();
        assert!(
            answer["result"]["capabilities"]["tools"].is_object(),
            "{answer}"
        );
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        self.send(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}));
        let tools = self.receive();
        let listed = tools["result"]["tools"].as_array().expect("tools");
        assert!(
            listed.iter().any(|tool| tool["name"] == TOOL),
            "{} lists {TOOL}",
            self.name
        );
    }

    /// `calls` calls of `count_vowels` on `text`, with at most `in_flight`
    /// unanswered at once. Returns the wall time and each call's round trip.
    ///
    /// One thread writes and reads, a new request as each answer comes, so
    /// that with one in flight the figure is the pipe's round trip and
    /// nothing of the client's own threads. The pipes hold what is in
    /// flight: the server keeps reading while the client writes.
    fn run(&mut self, text: &str, calls: usize, in_flight: usize) -> (Duration, Vec<Duration>) {
        let expected = vowels::count_vowels(text) as u64;
        // Serialised before the clock starts: the client's own cost stays
        // out of the figures.
        let first_id = 1000;
        let lines: Vec<String> = (0..calls)
            .map(|i| {
                let mut line = serde_json::to_string(&json!({
                    "jsonrpc": "2.0", "id": first_id + i, "method": "tools/call",
                    "params": {"name": TOOL, "arguments": {"text": text}}
                }))
                .expect("serialises");
                line.push('\n');
                line
            })
            .collect();
        let mut sent_at = vec![None; calls];
        let mut round_trips = Vec::with_capacity(calls);
        let mut next = 0;
        let mut line = String::new();
        let started = Instant::now();
        for _ in 0..calls {
            while next < calls && next - round_trips.len() < in_flight {
                let input = self.input.as_mut().expect("open");
                sent_at[next] = Some(Instant::now());
                input.write_all(lines[next].as_bytes()).expect("write");
                input.flush().expect("write");
                next += 1;
            }
            line.clear();
            let read = self.output.read_line(&mut line).expect("read");
            assert!(read > 0, "{} closed its output", self.name);
            let answered = Instant::now();
            let answer: Value = serde_json::from_str(&line).expect("a JSON-RPC line");
            let id = answer["id"].as_u64().expect("an id") as usize;
            let sent = sent_at
                .get_mut(id - first_id)
                .and_then(Option::take)
                .unwrap_or_else(|| {
                    panic!(
                        "{}: an answer to {id}, not asked or answered twice",
                        self.name
                    )
                });
            round_trips.push(answered - sent);
            let text = answer["result"]["content"][0]["text"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: no text in {answer}", self.name));
            let counted: Value = serde_json::from_str(text).expect("the answer is JSON");
            assert_eq!(
                counted["vowels"].as_u64(),
                Some(expected),
                "{} answer {answer}",
                self.name
            );
            assert_ne!(answer["result"]["isError"], true, "{answer}");
        }
        (started.elapsed(), round_trips)
    }

    fn stop(mut self) {
        drop(self.input.take());
        let mut rest = Vec::new();
        let _ = self.output.read_to_end(&mut rest);
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "{} exited with {status}", self.name);
    }
}

/// The CPU time all threads of process `pid` have had so far, from the
/// scheduler's own accounting (nanoseconds, unlike `/proc/PID/stat`'s ticks).
fn cpu_time(pid: u32) -> Duration {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the server's threads");
    let nanos: u64 = tasks
        .filter_map(|task| {
            let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
            stat.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum();
    Duration::from_nanos(nanos)
}

fn median(durations: &mut [Duration]) -> Duration {
    durations.sort();
    durations[durations.len() / 2]
}

fn show(duration: Duration) -> String {
    let ns = duration.as_nanos() as f64;
    if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

/// One case's figures for one server.
#[derive(Clone, Copy)]
struct Figures {
    /// The median round trip of one call.
    round_trip: Duration,
    /// Calls answered per second over the whole case.
    throughput: f64,
    /// The server's CPU time (all its threads) per call: what it spends,
    /// apart from waiting for the pipes and for threads to wake.
    cpu_per_call: Duration,
}

fn calls_for(size: usize, quick: bool) -> usize {
    let calls = match size {
        s if s <= 1024 => 20_000,
        _ => 3_000,
    };
    if quick {
        calls / 5
    } else {
        calls
    }
}

/// What giving a tool's JSON answer also as `structuredContent` costs the
/// server: the answer's text alone (which every result carries), then also
/// the answer parsed into a tree and that tree serialised into the result
/// (as rmcp's types do), then also the answer's text spliced in as written
/// (what `paracle mcp serve --stdio` does). The answers are JSON objects of
/// about each input size.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Structured {
    No,
    Parsed,
    AsWritten,
}

fn structured_content_cost(quick: bool) {
    println!();
    println!("| answer |  text only | + structuredContent, parsed | added | + structuredContent, as written | added |");
    println!("|-------:|-----------:|----------------------------:|------:|-------------------------------:|------:|");
    for (label, size) in INPUT_SIZES {
        let answer = json!({"words": text_of(size).split(' ').collect::<Vec<_>>()}).to_string();
        let rounds = if quick { 200 } else { 2_000 } * 1024 / size.max(1024);
        let time = |structured: Structured| {
            let mut samples: Vec<Duration> = (0..11)
                .map(|_| {
                    let started = Instant::now();
                    for _ in 0..rounds {
                        let mut result = json!({
                            "content": [{"type": "text", "text": std::hint::black_box(&answer)}],
                            "isError": false
                        });
                        if structured == Structured::Parsed {
                            let value: Value = serde_json::from_str(&answer).expect("JSON");
                            result["structuredContent"] = value;
                        }
                        let mut line = serde_json::to_vec(&result).expect("serialises");
                        if structured == Structured::AsWritten {
                            line.pop();
                            line.extend_from_slice(b",\"structuredContent\":");
                            let start = line.len();
                            line.extend_from_slice(answer.as_bytes());
                            if memchr::memchr2(b'\n', b'\r', &line[start..]).is_some() {
                                unreachable!("the bench's answers are on one line");
                            }
                            line.push(b'}');
                        }
                        std::hint::black_box(line);
                    }
                    started.elapsed() / rounds as u32
                })
                .collect();
            median(&mut samples)
        };
        let plain = time(Structured::No);
        let parsed = time(Structured::Parsed);
        let as_written = time(Structured::AsWritten);
        let added = |with: Duration| (with.as_secs_f64() / plain.as_secs_f64() - 1.0) * 100.0;
        println!(
            "| {label:>6} | {:>10} | {:>27} | {:>4.0}% | {:>30} | {:>4.0}% |",
            show(plain),
            show(parsed),
            added(parsed),
            show(as_written),
            added(as_written),
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == "--floor-server") {
        floor::serve();
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let filter = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(String::as_str);
    // Rounds alternate the servers, so that a busy moment of the shared
    // machine falls on both; each figure is the median of its rounds.
    let rounds = if quick { 1 } else { 3 };

    let home = tempfile::tempdir().expect("a temporary directory");
    let project = home.path().join("project");
    std::fs::create_dir(&project).expect("project directory");
    let paracle = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_paracle"));
        command
            .args(["mcp", "serve", "--stdio", "--memory", "none"])
            .current_dir(&project)
            .env("PARACLE_HOME", home.path().join("home"))
            .env("PARACLE_CACHE_DIR", home.path().join("cache"))
            .env_remove("PARACLE_LOG")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
        command
    };
    let floor = || {
        let mut command = Command::new(std::env::current_exe().expect("this binary"));
        command.arg("--floor-server");
        command
    };
    // The first start compiles the plugin into the cache; it is not timed.
    Server::start("paracle", paracle()).stop();

    println!("| server  |  input | in flight |  round trip | calls/s | CPU per call | round trip / floor | calls/s / floor |  CPU / floor    | 8 in flight / 1 |");
    println!("|---------|-------:|----------:|------------:|--------:|-------------:|-------------------:|----------------:|----------------:|----------------:|");
    for (label, size) in INPUT_SIZES {
        if filter.is_some_and(|f| !label.contains(f)) {
            continue;
        }
        let text = text_of(size);
        let calls = calls_for(size, quick);
        let mut figures: Vec<Vec<(Figures, Figures)>> = vec![Vec::new(); IN_FLIGHT.len()];
        for _ in 0..rounds {
            for (at, &in_flight) in IN_FLIGHT.iter().enumerate() {
                let mut measured = Vec::new();
                for start in [&floor as &dyn Fn() -> Command, &paracle] {
                    let name = if measured.is_empty() {
                        "floor"
                    } else {
                        "paracle"
                    };
                    let mut server = Server::start(name, start());
                    // Warm both ends: the instance, the allocator, the caches.
                    server.run(&text, calls / 10, in_flight);
                    let cpu_before = cpu_time(server.child.id());
                    let (took, mut round_trips) = server.run(&text, calls, in_flight);
                    let cpu = cpu_time(server.child.id()) - cpu_before;
                    server.stop();
                    measured.push(Figures {
                        round_trip: median(&mut round_trips),
                        throughput: calls as f64 / took.as_secs_f64(),
                        cpu_per_call: cpu / calls as u32,
                    });
                }
                figures[at].push((measured[0], measured[1]));
            }
        }
        let pick = |at: usize, paracle: bool| -> Figures {
            let mut round_trips: Vec<Duration> = figures[at]
                .iter()
                .map(|(f, p)| if paracle { p } else { f }.round_trip)
                .collect();
            let mut throughputs: Vec<f64> = figures[at]
                .iter()
                .map(|(f, p)| if paracle { p } else { f }.throughput)
                .collect();
            throughputs.sort_by(f64::total_cmp);
            let mut cpu: Vec<Duration> = figures[at]
                .iter()
                .map(|(f, p)| if paracle { p } else { f }.cpu_per_call)
                .collect();
            Figures {
                round_trip: median(&mut round_trips),
                throughput: throughputs[throughputs.len() / 2],
                cpu_per_call: median(&mut cpu),
            }
        };
        for (at, &in_flight) in IN_FLIGHT.iter().enumerate() {
            let floor_figures = pick(at, false);
            for paracle in [false, true] {
                let mine = pick(at, paracle);
                let single = pick(0, paracle);
                let (to_floor_rt, to_floor_tp, to_floor_cpu) = if paracle {
                    (
                        format!(
                            "{:.2}x",
                            mine.round_trip.as_secs_f64() / floor_figures.round_trip.as_secs_f64()
                        ),
                        format!("{:.2}x", mine.throughput / floor_figures.throughput),
                        format!(
                            "{:.2}x",
                            mine.cpu_per_call.as_secs_f64()
                                / floor_figures.cpu_per_call.as_secs_f64()
                        ),
                    )
                } else {
                    (String::new(), String::new(), String::new())
                };
                let gain = if in_flight > 1 {
                    format!("{:.2}x", mine.throughput / single.throughput)
                } else {
                    String::new()
                };
                println!(
                    "| {:<7} | {label:>6} | {in_flight:>9} | {:>11} | {:>7.0} | {:>12} | {to_floor_rt:>18} | {to_floor_tp:>15} | {to_floor_cpu:>15} | {gain:>15} |",
                    if paracle { "paracle" } else { "floor" },
                    show(mine.round_trip),
                    mine.throughput,
                    show(mine.cpu_per_call),
                );
            }
        }
    }
    if filter.is_none_or(|f| "structured".contains(f)) {
        structured_content_cost(quick);
    }
}
