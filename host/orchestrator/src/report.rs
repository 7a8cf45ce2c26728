//! What a run writes for people and for monitoring: the reviewer's
//! `REQUEST.md`, `DECISION_*.md` and `ROLLBACK_*.md` records, and the run's
//! metrics as JSON and as Prometheus text. A person reads these on a
//! terminal too (`cat REQUEST.md`), so plugins' text in them is escaped.

use std::fmt::Write;

use serde_json::{json, Value};

use crate::bundle;
use crate::run::{AgentRun, AgentStatus, GatedCall, PhaseRun, RunState};
use paracle_base::shown;

/// A duration for people: `850 ms`, `12.3 s`.
pub fn human_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// The ribbon at the top of a review request.
pub(crate) fn ribbon(phase: &PhaseRun) -> &'static str {
    let missing = phase
        .validation
        .as_ref()
        .is_some_and(|v| !v.missing.is_empty());
    if phase.succeeded() == 0 {
        "🔴 NEEDS ATTENTION"
    } else if phase.failed() > 0 || missing {
        "🟡 PARTIAL SUCCESS"
    } else {
        "🟢 READY FOR REVIEW"
    }
}

fn agent_line(agent: &AgentRun) -> String {
    let mark = match agent.status {
        AgentStatus::Succeeded => "✅",
        AgentStatus::Failed => "❌",
        _ => "⏳",
    };
    let mut line = format!(
        "{mark} {} — {} in {}",
        agent.name,
        agent.status.as_str(),
        human_ms(agent.duration_ms)
    );
    if agent.attempts > 1 {
        let _ = write!(line, " after {} attempts", agent.attempts);
    }
    line
}

/// A plugin's text inline in Markdown: one line, its controls escaped, and
/// `<` and `>` as entities, so that it cannot close the `<details>` it sits
/// in or open HTML of its own.
fn inline(text: &str) -> String {
    shown::line(text).replace('<', "&lt;").replace('>', "&gt;")
}

/// A plugin's text in a Markdown code span: one line, its controls
/// escaped, and no backtick to end the span early.
fn code(text: &str) -> String {
    shown::line(text).replace('`', "'")
}

/// Markdown-safe text inside a fenced block: a fence inside the text would
/// end the block early, so the fence is made longer than any inside.
fn fenced(text: &str) -> String {
    let mut fence = "```".to_string();
    while text.contains(&fence) {
        fence.push('`');
    }
    format!("{fence}text\n{}\n{fence}\n", text.trim_end())
}

pub(crate) fn request_md(run: &RunState, index: usize) -> String {
    let phase = &run.phases[index];
    let spec = &run.workflow.phases[index];
    let mut md = String::new();
    let _ = writeln!(md, "# Review: phase `{}` of run `{}`\n", phase.name, run.id);
    let _ = writeln!(md, "> **{}**\n", ribbon(phase));
    let _ = writeln!(
        md,
        "Workflow `{}`. {} of {} agents succeeded.{}\n",
        run.workflow.name,
        phase.succeeded(),
        phase.agents.len(),
        if spec.description.is_empty() {
            String::new()
        } else {
            format!(" Phase: {}", spec.description)
        }
    );
    let waiting: Vec<&GatedCall> = phase.awaiting_calls().collect();
    if !waiting.is_empty() {
        let _ = writeln!(md, "## Tool calls awaiting approval\n");
        let _ = writeln!(
            md,
            "Nobody was at hand to approve these calls, whose approval setting is `ask`. Approving runs the agents that made them again, and the calls go through; rejecting runs them again with the calls refused.\n"
        );
        for call in &waiting {
            let _ = writeln!(
                md,
                "- agent `{}` calls `{}` of `{}` with `{}`",
                code(&call.agent),
                code(&call.tool),
                code(&call.plugin),
                code(&call.arguments)
            );
        }
        md.push('\n');
    }
    let _ = writeln!(md, "## Agents\n");
    for agent in &phase.agents {
        let _ = writeln!(md, "<details>\n<summary>{}</summary>\n", agent_line(agent));
        if let Some(error) = &agent.error {
            let kind = agent.failure.map(|f| f.as_str()).unwrap_or("error");
            let _ = writeln!(md, "**Failed ({kind}):** {}\n", inline(error));
        }
        if !agent.output.is_empty() {
            md.push_str(&fenced(&shown::block(&agent.output)));
            md.push('\n');
        }
        if !agent.artifacts.is_empty() {
            let _ = writeln!(md, "Artifacts: {}\n", inline(&agent.artifacts.join(", ")));
        }
        let _ = writeln!(
            md,
            "Tokens: {} prompt, {} completion. Steps: {}. Tool calls: {}.\n\n</details>\n",
            agent.tokens.prompt, agent.tokens.completion, agent.steps, agent.tool_calls
        );
    }
    if let Some(hygiene) = &phase.hygiene {
        let _ = writeln!(md, "## Hygiene: {}\n", hygiene.summary());
        let _ = writeln!(
            md,
            "{} new or changed file{} scanned for your secrets, key formats, size, binary content and files outside the artifact patterns. What was found is never quoted here.\n",
            hygiene.scanned,
            if hygiene.scanned == 1 { "" } else { "s" }
        );
        for finding in &hygiene.findings {
            let _ = writeln!(
                md,
                "- ⚠️ `{}` ({}): {}",
                code(&finding.path),
                serde_json::to_value(finding.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                inline(&finding.detail)
            );
        }
        if hygiene.incomplete {
            let _ = writeln!(
                md,
                "- ⚠️ not every file was scanned: the workspace holds more files, or more findings, than one report takes"
            );
        }
        if !hygiene.findings.is_empty() || hygiene.incomplete {
            md.push('\n');
        }
    }
    let _ = writeln!(md, "## Artifacts\n");
    match &phase.validation {
        Some(v) if spec.artifacts.is_empty() && v.found.is_empty() && v.links.is_empty() => {
            let _ = writeln!(md, "The phase asks for no artifacts.\n");
        }
        Some(v) => {
            for found in &v.found {
                let _ = writeln!(md, "- ✅ found `{}`", code(found));
            }
            for missing in &v.missing {
                let _ = writeln!(md, "- ❌ missing: nothing matches `{missing}`");
            }
            for link in &v.links {
                let _ = writeln!(
                    md,
                    "- ⚠️ skipped `{}`: a symbolic link, which is never an artifact and never followed",
                    code(link)
                );
            }
            md.push('\n');
        }
        None => {
            let _ = writeln!(md, "Not checked.\n");
        }
    }
    if let Some(path) = &phase.bundle {
        let _ = writeln!(md, "Bundle: `{path}`\n");
    }
    let _ = writeln!(md, "## Metrics\n");
    let _ = writeln!(
        md,
        "| agent | status | attempts | duration | tokens | tool calls |"
    );
    let _ = writeln!(md, "| --- | --- | --- | --- | --- | --- |");
    for agent in &phase.agents {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            agent.name,
            agent.status.as_str(),
            agent.attempts,
            human_ms(agent.duration_ms),
            agent.tokens.prompt + agent.tokens.completion,
            agent.tool_calls
        );
    }
    let _ = writeln!(md, "\nPhase duration: {}.\n", human_ms(phase.duration_ms));
    let _ = writeln!(md, "## Decide\n");
    let _ = writeln!(md, "- approve: `paracle run approve --run {}`", run.id);
    let _ = writeln!(
        md,
        "- reject: `paracle run reject --run {} --reason \"...\"`",
        run.id
    );
    md
}

pub(crate) fn calls_decision_md(
    run: &RunState,
    phase: &str,
    calls: &[GatedCall],
    approved: bool,
    reason: &str,
    at: &str,
) -> String {
    let mut md = String::new();
    let verdict = if approved { "APPROVED" } else { "REJECTED" };
    let _ = writeln!(
        md,
        "# Tool calls of phase `{phase}` of run `{}`: {verdict}\n",
        run.id
    );
    let _ = writeln!(md, "Decided at {at}.\n");
    if !reason.is_empty() {
        let _ = writeln!(md, "Reason: {}\n", inline(reason));
    }
    for call in calls {
        let _ = writeln!(
            md,
            "- agent `{}`: `{}` of `{}` with `{}`",
            code(&call.agent),
            code(&call.tool),
            code(&call.plugin),
            code(&call.arguments)
        );
    }
    md
}

pub(crate) fn decision_md(
    run: &RunState,
    phase: &str,
    approved: bool,
    reason: &str,
    at: &str,
) -> String {
    let verdict = if approved { "APPROVED" } else { "REJECTED" };
    let mut md = format!("# Decision: phase `{phase}` of run `{}`\n\n", run.id);
    let _ = writeln!(md, "**{verdict}** at {at}.\n");
    if !reason.is_empty() {
        let _ = writeln!(md, "Reason: {reason}\n");
    }
    md
}

/// The advisory written by a rollback: what the rolled-back phases produced,
/// for a person to undo by hand if they want to. Nothing is deleted.
pub(crate) fn rollback_md(run: &RunState, from: usize, at: &str) -> String {
    let mut md = format!(
        "# Rollback advisory: run `{}` back to phase `{}`\n\n",
        run.id, run.phases[from].name
    );
    let _ = writeln!(
        md,
        "Written at {at}. The run's cursor now points at phase `{}`; the next `paracle run next` runs it again.\n",
        run.phases[from].name
    );
    let _ = writeln!(
        md,
        "**No file was changed or deleted.** The files below were produced by the phases rolled back. Review them, and remove or revert them yourself if the new run should not see them.\n"
    );
    for phase in &run.phases[from..] {
        let files = bundle::bundled_files(phase);
        let _ = writeln!(md, "## `{}` (was {})\n", phase.name, phase.status.as_str());
        if files.is_empty() {
            let _ = writeln!(md, "No artifacts.\n");
        } else {
            for file in files {
                let _ = writeln!(md, "- `workspace/{}`", code(&file));
            }
            md.push('\n');
        }
        if let Some(bundle) = &phase.bundle {
            let _ = writeln!(md, "Its bundle `{bundle}` is kept.\n");
        }
    }
    md
}

pub fn metrics_json(run: &RunState) -> Value {
    let mut agents = Vec::new();
    let mut phases = Vec::new();
    let (mut prompt, mut completion, mut tool_calls, mut succeeded, mut failed) =
        (0u64, 0u64, 0u64, 0usize, 0usize);
    for phase in &run.phases {
        for a in &phase.agents {
            prompt += a.tokens.prompt;
            completion += a.tokens.completion;
            tool_calls += a.tool_calls as u64;
            agents.push(json!({
                "phase": phase.name,
                "agent": a.name,
                "status": a.status.as_str(),
                "failure": a.failure.map(|f| f.as_str()),
                "attempts": a.attempts,
                "duration_ms": a.duration_ms,
                "total_ms": a.total_ms,
                "prompt_tokens": a.tokens.prompt,
                "completion_tokens": a.tokens.completion,
                "steps": a.steps,
                "tool_calls": a.tool_calls,
            }));
        }
        succeeded += phase.succeeded();
        failed += phase.failed();
        phases.push(json!({
            "phase": phase.name,
            "status": phase.status.as_str(),
            "runs": phase.runs,
            "duration_ms": phase.duration_ms,
            "agents": phase.agents.len(),
            "succeeded": phase.succeeded(),
            "failed": phase.failed(),
            "attempts": phase.agents.iter().map(|a| a.attempts).sum::<u32>(),
            "artifacts_found": phase.validation.as_ref().map(|v| v.found.len()).unwrap_or(0),
            "artifacts_missing": phase.validation.as_ref().map(|v| v.missing.len()).unwrap_or(0),
            "hygiene": phase.hygiene.as_ref().map(|h| json!({
                "score": h.score,
                "grade": h.grade,
                "summary": h.summary(),
                "findings": h.findings.len(),
            })),
        }));
    }
    json!({
        "run_id": run.id,
        "workflow": run.workflow.name,
        "status": run.status.as_str(),
        "phases": phases,
        "agents": agents,
        "totals": {
            "agents_succeeded": succeeded,
            "agents_failed": failed,
            "duration_ms": run.phases.iter().map(|p| p.duration_ms).sum::<u64>(),
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "tool_calls": tool_calls,
        },
    })
}

/// The run's metrics in the Prometheus (OpenMetrics) text format, written
/// by the Prometheus client library, which escapes the labels.
pub(crate) fn metrics_prom(run: &RunState) -> String {
    use prometheus_client::encoding::text::encode;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::registry::Registry;
    use std::sync::atomic::AtomicU64;

    type Labels = Vec<(&'static str, String)>;
    type Gauges = Family<Labels, Gauge<f64, AtomicU64>>;
    type PerAgent = (Gauges, fn(&AgentRun) -> f64);
    let mut registry = Registry::default();
    let mut family = |name: &str, help: &str| {
        let gauges = Gauges::default();
        registry.register(name, help, gauges.clone());
        gauges
    };
    let base = |labels: &[(&'static str, &str)]| -> Labels {
        let mut all = vec![
            ("run", run.id.clone()),
            ("workflow", run.workflow.name.clone()),
        ];
        all.extend(labels.iter().map(|(k, v)| (*k, v.to_string())));
        all
    };
    let phase_duration = family(
        "paracle_phase_duration_seconds",
        "Wall-clock time of the phase's last run.",
    );
    let phase_agents = family("paracle_phase_agents", "Agents of the phase by status.");
    let agent_gauges: [PerAgent; 6] = [
        (
            family(
                "paracle_agent_duration_seconds",
                "Wall-clock time of the agent's last attempt.",
            ),
            |a| a.duration_ms as f64 / 1000.0,
        ),
        (
            family("paracle_agent_attempts", "Attempts made for the agent."),
            |a| a.attempts as f64,
        ),
        (
            family(
                "paracle_agent_succeeded",
                "1 if the agent succeeded, else 0.",
            ),
            |a| (a.status == AgentStatus::Succeeded) as u8 as f64,
        ),
        (
            family(
                "paracle_agent_prompt_tokens",
                "Prompt tokens the agent used.",
            ),
            |a| a.tokens.prompt as f64,
        ),
        (
            family(
                "paracle_agent_completion_tokens",
                "Completion tokens the agent used.",
            ),
            |a| a.tokens.completion as f64,
        ),
        (
            family("paracle_agent_tool_calls", "Tool calls the agent made."),
            |a| a.tool_calls as f64,
        ),
    ];
    for phase in &run.phases {
        phase_duration
            .get_or_create(&base(&[("phase", &phase.name)]))
            .set(phase.duration_ms as f64 / 1000.0);
        for (status, count) in [("succeeded", phase.succeeded()), ("failed", phase.failed())] {
            phase_agents
                .get_or_create(&base(&[("phase", &phase.name), ("status", status)]))
                .set(count as f64);
        }
        for agent in &phase.agents {
            let labels = base(&[("phase", &phase.name), ("agent", &agent.name)]);
            for (gauges, value) in &agent_gauges {
                gauges.get_or_create(&labels).set(value(agent));
            }
        }
    }
    let mut out = String::new();
    encode(&mut out, &registry).expect("writing to a String cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_outlast_the_text_inside() {
        assert_eq!(fenced("a ``` b"), "````text\na ``` b\n````\n");
    }

    #[test]
    fn a_plugins_text_cannot_forge_markdown_or_drive_a_terminal() {
        let forged = inline("boom\x1b[2J</details><h1>Approved</h1>\nok");
        assert_eq!(
            forged,
            "boom\\u{1b}[2J&lt;/details&gt;&lt;h1&gt;Approved&lt;/h1&gt;\\u{a}ok"
        );
        assert_eq!(code("a`b\x07"), "a'b\\u{7}");
    }

    #[test]
    fn metrics_labels_are_escaped_by_the_prometheus_client() {
        let workflow = crate::spec::Workflow {
            name: "w\"x\\y\nz".into(),
            description: String::new(),
            task: String::new(),
            phases: vec![crate::spec::Phase {
                name: "p".into(),
                description: String::new(),
                agents: vec!["a".into()],
                parallel: false,
                requires_approval: false,
                artifacts: Vec::new(),
                timeout_ms: None,
                retry: crate::spec::Retry {
                    attempts: 1,
                    backoff_ms: 0,
                },
                optional: false,
                task: None,
            }],
            agents: Default::default(),
        };
        let run = RunState::new("r1".into(), workflow, String::new());
        let text = metrics_prom(&run);
        assert!(
            text.contains(
                r#"paracle_agent_attempts{run="r1",workflow="w\"x\\y\nz",phase="p",agent="a"} 0"#
            ),
            "{text}"
        );
        assert_eq!(
            text.lines().filter(|l| !l.starts_with('#')).count(),
            9,
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
