//! Printing: a table for people, JSON for scripts.

use std::time::Duration;

use serde_json::{json, Value};

use paracle_base::shown;
use paracle_contract::json::info_json;
use paracle_runtime::{CallStats, Plugin};

pub(super) fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("JSON values serialise")
    );
}

/// The widest a table cell is shown; the JSON output has the whole text.
const CELL_CHARS: usize = 120;

/// A plain aligned table. Cells may hold a plugin's text: each is shown on
/// one line, with its control characters escaped, and clipped.
pub(super) fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|c| shown::clipped(c, CELL_CHARS)).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_uppercase()).collect());
    for row in rows {
        line(row);
    }
}

pub(super) fn duration(d: Option<Duration>) -> String {
    match d {
        None => "-".into(),
        Some(d) if d < Duration::from_micros(1) => format!("{} ns", d.as_nanos()),
        Some(d) if d < Duration::from_millis(1) => format!("{:.1} µs", d.as_nanos() as f64 / 1e3),
        Some(d) if d < Duration::from_secs(1) => format!("{:.1} ms", d.as_nanos() as f64 / 1e6),
        Some(d) => format!("{:.2} s", d.as_secs_f64()),
    }
}

pub(super) fn stats_json(stats: &CallStats) -> Value {
    let micros = |d: Option<Duration>| d.map(|d| d.as_nanos() as f64 / 1e3);
    json!({
        "calls": stats.calls,
        "ok": stats.ok,
        "errors": stats.errors,
        "traps": stats.traps,
        "limits": stats.limits,
        "rejected": stats.rejected,
        "denied": stats.denied,
        "mean_us": micros(stats.mean()),
        "p50_us": micros(stats.percentile(0.50)),
        "p99_us": micros(stats.percentile(0.99)),
    })
}

pub(super) fn plugin_json(plugin: &Plugin, source: &str) -> Value {
    let grants = plugin.grants();
    json!({
        "name": plugin.name(),
        "kind": plugin.kind().as_str(),
        "digest": plugin.digest(),
        "source": source,
        "info": info_json(plugin.info()),
        "tools": plugin.tools().iter().map(|t| json!({
            "name": t.name,
            "description": t.description,
            "input_schema": serde_json::from_str::<Value>(&t.input_schema).unwrap_or(Value::Null),
        })).collect::<Vec<_>>(),
        "config": serde_json::from_str::<Value>(plugin.config()).unwrap_or(Value::Null),
        "isolation": plugin.isolation(),
        "grants": grants,
        "approve": plugin.approvals(),
        "limits": plugin.limits(),
        "compiled": plugin.cache_use(),
    })
}
