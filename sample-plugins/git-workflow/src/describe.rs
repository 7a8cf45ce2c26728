//! A pull-request description rendered from a run: what it set out to do,
//! its phases and their agents' outcomes, its metrics, its artifacts and the
//! branch's changes.

use std::fmt::Write;

use paracle_sdk::git::DiffStat;
use paracle_sdk::Value;

const TITLE_CHARS: usize = 72;

/// Text for one cell of a Markdown table.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{}m {:02}s", ms / 60_000, ms / 1000 % 60)
    }
}

fn text<'v>(value: &'v Value, key: &str) -> &'v str {
    value[key].as_str().unwrap_or("")
}

/// The workflow's name and the first line of the task, cut to fit a title.
pub fn title(run: &Value, execution: &str) -> String {
    let state = &run["run"];
    let workflow = text(&state["workflow"], "name");
    let task = text(state, "input").lines().next().unwrap_or("").trim();
    let title = match (workflow.is_empty(), task.is_empty()) {
        (false, false) => format!("{workflow}: {task}"),
        (false, true) => format!("{workflow} (execution {execution})"),
        _ => format!("paracle execution {execution}"),
    };
    if title.chars().count() <= TITLE_CHARS {
        return title;
    }
    let mut cut: String = title.chars().take(TITLE_CHARS - 1).collect();
    cut.push('…');
    cut
}

pub fn body(
    run: &Value,
    intro: Option<&str>,
    head: &str,
    base: &str,
    commits: u32,
    changes: &DiffStat,
) -> String {
    let state = &run["run"];
    let metrics = &run["metrics"];
    let mut md = String::new();
    if let Some(intro) = intro.filter(|i| !i.trim().is_empty()) {
        let _ = writeln!(md, "{}\n", intro.trim_end());
    }
    let _ = writeln!(md, "## Summary\n");
    let _ = writeln!(
        md,
        "Execution `{}` of workflow `{}`, now **{}**, on branch `{head}` (into `{base}`).\n",
        text(state, "id"),
        text(&state["workflow"], "name"),
        text(state, "status"),
    );
    let task = text(state, "input").trim();
    if !task.is_empty() {
        let _ = writeln!(md, "Task:\n");
        for line in task.lines() {
            let _ = writeln!(md, "> {line}");
        }
        md.push('\n');
    }

    let _ = writeln!(md, "## Phases\n");
    let _ = writeln!(md, "| Phase | Status | Agents | Duration |");
    let _ = writeln!(md, "| --- | --- | --- | --- |");
    let phases = state["phases"].as_array().cloned().unwrap_or_default();
    for phase in &phases {
        let agents = phase["agents"].as_array().map(Vec::len).unwrap_or(0);
        let succeeded = phase["agents"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["status"] == "succeeded")
            .count();
        let _ = writeln!(
            md,
            "| {} | {} | {succeeded}/{agents} succeeded | {} |",
            cell(text(phase, "name")),
            text(phase, "status"),
            duration(phase["duration_ms"].as_u64().unwrap_or(0)),
        );
    }

    let _ = writeln!(md, "\n## Outcomes\n");
    for phase in &phases {
        let agents = phase["agents"].as_array().cloned().unwrap_or_default();
        if agents.is_empty() {
            continue;
        }
        let _ = writeln!(md, "### {}\n", text(phase, "name"));
        for agent in &agents {
            let name = text(agent, "name");
            match agent["failure"].as_str() {
                Some(failure) => {
                    let _ = writeln!(
                        md,
                        "- **{name}**: failed ({failure}): {}",
                        text(agent, "error").lines().next().unwrap_or("")
                    );
                }
                None => {
                    let _ = writeln!(
                        md,
                        "- **{name}**: {}, {} step(s), {} tool call(s)",
                        text(agent, "status"),
                        agent["steps"].as_u64().unwrap_or(0),
                        agent["tool_calls"].as_u64().unwrap_or(0),
                    );
                }
            }
        }
        if let Some(decision) = phase["decision"].as_object() {
            let verdict = if decision.get("approved") == Some(&Value::Bool(true)) {
                "approved"
            } else {
                "rejected"
            };
            let reason = decision.get("reason").and_then(Value::as_str).unwrap_or("");
            let _ = writeln!(
                md,
                "\nReview: {verdict}{}",
                if reason.is_empty() {
                    String::new()
                } else {
                    format!(": {reason}")
                }
            );
        }
        md.push('\n');
    }

    let totals = &metrics["totals"];
    let _ = writeln!(md, "## Metrics\n");
    let _ = writeln!(md, "| Metric | Value |");
    let _ = writeln!(md, "| --- | --- |");
    let number = |key: &str| totals[key].as_u64().unwrap_or(0);
    let _ = writeln!(md, "| Agents succeeded | {} |", number("agents_succeeded"));
    let _ = writeln!(md, "| Agents failed | {} |", number("agents_failed"));
    let _ = writeln!(md, "| Phase time | {} |", duration(number("duration_ms")));
    let _ = writeln!(
        md,
        "| Tokens (prompt / completion) | {} / {} |",
        number("prompt_tokens"),
        number("completion_tokens")
    );
    let _ = writeln!(md, "| Tool calls | {} |", number("tool_calls"));

    let mut artifacts: Vec<&str> = phases
        .iter()
        .flat_map(|p| p["agents"].as_array().into_iter().flatten())
        .flat_map(|a| a["artifacts"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    artifacts.sort_unstable();
    artifacts.dedup();
    let _ = writeln!(md, "\n## Artifacts\n");
    if artifacts.is_empty() {
        let _ = writeln!(md, "None.");
    }
    for artifact in &artifacts {
        let _ = writeln!(md, "- `{artifact}`");
    }

    let _ = writeln!(md, "\n## Changes\n");
    let _ = writeln!(
        md,
        "{commits} commit(s), {} file(s) changed, {} insertion(s), {} deletion(s).\n",
        changes.files.len(),
        changes.insertions,
        changes.deletions
    );
    if !changes.files.is_empty() {
        let _ = writeln!(md, "| File | + | - |");
        let _ = writeln!(md, "| --- | --- | --- |");
        for file in &changes.files {
            let _ = writeln!(
                md,
                "| `{}` | {} | {} |",
                cell(&file.path),
                file.insertions,
                file.deletions
            );
        }
    }
    let _ = writeln!(
        md,
        "\n---\nDescribed by paracle's git workflow from run `{}`.",
        text(state, "id")
    );
    md
}
