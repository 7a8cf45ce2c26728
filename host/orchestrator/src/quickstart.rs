//! Ready-made projects: the agents and a workflow for a kind of work,
//! written into `.paracle/` as ordinary spec files the user can edit. They
//! run on the embedded mock provider, so they work offline.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use paracle_base::atomic;
use paracle_runtime::valid_name;

use crate::error::OrchestratorError;

/// The kinds of project `quickstart` knows.
pub const TYPES: &[&str] = &["webapp", "analytics", "ml"];

struct AgentTemplate {
    name: &'static str,
    description: &'static str,
    prompt: &'static str,
    output_file: &'static str,
}

struct PhaseTemplate {
    name: &'static str,
    description: &'static str,
    agents: &'static [&'static str],
    approval: bool,
    artifacts: &'static [&'static str],
}

struct Template {
    summary: &'static str,
    agents: &'static [AgentTemplate],
    phases: &'static [PhaseTemplate],
}

const fn agent(
    name: &'static str,
    description: &'static str,
    prompt: &'static str,
    output_file: &'static str,
) -> AgentTemplate {
    AgentTemplate {
        name,
        description,
        prompt,
        output_file,
    }
}

const fn phase(
    name: &'static str,
    description: &'static str,
    agents: &'static [&'static str],
    approval: bool,
    artifacts: &'static [&'static str],
) -> PhaseTemplate {
    PhaseTemplate {
        name,
        description,
        agents,
        approval,
        artifacts,
    }
}

const WEBAPP: Template = Template {
    summary: "a web application",
    agents: &[
        agent("product-manager", "Turns the goal into requirements", "You are the product manager. Write the requirements, user stories and acceptance criteria.", "requirements.md"),
        agent("architect", "Designs the system", "You are the software architect. Describe the components, data model and API.", "architecture.md"),
        agent("frontend-dev", "Builds the user interface", "You are a frontend developer. Plan the pages and components, following the approved architecture.", "src/frontend/PLAN.md"),
        agent("backend-dev", "Builds the server", "You are a backend developer. Plan the endpoints and storage, following the approved architecture.", "src/backend/PLAN.md"),
        agent("qa-engineer", "Tests what was built", "You are a QA engineer. Write the test plan for the frontend and backend.", "tests/TEST_PLAN.md"),
        agent("reviewer", "Reviews the whole", "You are a senior reviewer. Review the work for gaps and risks.", "REVIEW.md"),
    ],
    phases: &[
        phase("planning", "Requirements and architecture", &["product-manager", "architect"], true, &["requirements.md", "architecture.md"]),
        phase("implementation", "Frontend and backend in parallel", &["frontend-dev", "backend-dev"], false, &["src/**/PLAN.md"]),
        phase("testing", "A test plan for what was built", &["qa-engineer"], false, &["tests/*.md"]),
        phase("review", "A final review before merging", &["reviewer"], true, &["REVIEW.md"]),
    ],
};

const ANALYTICS: Template = Template {
    summary: "a data analysis",
    agents: &[
        agent(
            "analytics-lead",
            "Frames the questions",
            "You are the analytics lead. State the questions, metrics and data sources.",
            "questions.md",
        ),
        agent(
            "data-engineer",
            "Prepares the data",
            "You are a data engineer. Plan extraction, cleaning and the tables to build.",
            "pipeline.md",
        ),
        agent(
            "data-analyst",
            "Analyses the data",
            "You are a data analyst. Describe the analysis and what it shows.",
            "analysis.md",
        ),
        agent(
            "report-writer",
            "Writes the report",
            "You are a report writer. Summarise the findings for decision makers.",
            "REPORT.md",
        ),
    ],
    phases: &[
        phase(
            "planning",
            "Questions and data plan",
            &["analytics-lead", "data-engineer"],
            true,
            &["questions.md", "pipeline.md"],
        ),
        phase(
            "analysis",
            "The analysis itself",
            &["data-analyst"],
            false,
            &["analysis.md"],
        ),
        phase(
            "reporting",
            "The report",
            &["report-writer"],
            true,
            &["REPORT.md"],
        ),
    ],
};

const ML: Template = Template {
    summary: "a machine-learning model",
    agents: &[
        agent(
            "ml-researcher",
            "Frames the problem",
            "You are an ML researcher. Define the task, the baseline and the metrics.",
            "problem.md",
        ),
        agent(
            "data-scientist",
            "Plans the data",
            "You are a data scientist. Plan the dataset, features and splits.",
            "data_plan.md",
        ),
        agent(
            "ml-engineer",
            "Plans training",
            "You are an ML engineer. Plan the model, training runs and infrastructure.",
            "training_plan.md",
        ),
        agent(
            "evaluator",
            "Evaluates the model",
            "You are an evaluator. Plan the evaluation, error analysis and fairness checks.",
            "evaluation.md",
        ),
    ],
    phases: &[
        phase(
            "planning",
            "Problem and data",
            &["ml-researcher", "data-scientist"],
            true,
            &["problem.md", "data_plan.md"],
        ),
        phase(
            "training",
            "Training plan",
            &["ml-engineer"],
            false,
            &["training_plan.md"],
        ),
        phase(
            "evaluation",
            "Evaluation plan",
            &["evaluator"],
            true,
            &["evaluation.md"],
        ),
    ],
};

fn template(kind: &str) -> Option<&'static Template> {
    match kind {
        "webapp" => Some(&WEBAPP),
        "analytics" => Some(&ANALYTICS),
        "ml" => Some(&ML),
        _ => None,
    }
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

fn agents_toml(kind: &str, template: &Template) -> String {
    let base = format!("{kind}-base");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Agents for `{kind}` workflows, written by `paracle quickstart`."
    );
    let _ = writeln!(
        out,
        "# They run on the embedded mock provider, so everything works offline."
    );
    let _ = writeln!(
        out,
        "# Point `provider` (and `model`) of `{base}` at a real provider to go live.\n"
    );
    let _ = writeln!(out, "[agents.{base}]");
    let _ = writeln!(
        out,
        "description = \"Settings shared by the {kind} agents\""
    );
    let _ = writeln!(out, "adapter = \"agent-runner\"");
    let _ = writeln!(out, "provider = \"mock-provider\"");
    let _ = writeln!(out, "tools = [\"text-tools\"]");
    let _ = writeln!(out, "memory = \"kv-memory\"");
    let _ = writeln!(out, "temperature = 0.2");
    let _ = writeln!(out, "max_steps = 6");
    for agent in template.agents {
        let _ = writeln!(out, "\n[agents.{}]", agent.name);
        let _ = writeln!(out, "parent = \"{base}\"");
        let _ = writeln!(out, "description = {}", toml_string(agent.description));
        let _ = writeln!(out, "system_prompt = {}", toml_string(agent.prompt));
        let _ = writeln!(
            out,
            "config = {{ output_file = {} }}",
            toml_string(agent.output_file)
        );
    }
    out
}

fn workflow_toml(kind: &str, name: &str, template: &Template) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# The `{name}` workflow, written by `paracle quickstart --type {kind}`."
    );
    let _ = writeln!(
        out,
        "# Start it with `paracle run start {name}`; `paracle run next` runs each phase.\n"
    );
    let _ = writeln!(
        out,
        "description = {}",
        toml_string(&format!("Plan and build {}: {name}", template.summary))
    );
    let _ = writeln!(
        out,
        "task = {}",
        toml_string(&format!("Build {name}, {}.", template.summary))
    );
    for phase in template.phases {
        let list = |items: &[&str]| {
            items
                .iter()
                .map(|i| toml_string(i))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(out, "\n[[phases]]");
        let _ = writeln!(out, "name = \"{}\"", phase.name);
        let _ = writeln!(out, "description = {}", toml_string(phase.description));
        let _ = writeln!(out, "agents = [{}]", list(phase.agents));
        let _ = writeln!(out, "parallel = {}", phase.agents.len() > 1);
        let _ = writeln!(out, "requires_approval = {}", phase.approval);
        let _ = writeln!(out, "artifacts = [{}]", list(phase.artifacts));
        let _ = writeln!(out, "timeout = \"5m\"");
        let _ = writeln!(out, "retry = {{ attempts = 2, backoff = \"1s\" }}");
    }
    out
}

const CONFIG: &str = "# Orchestrator settings, written by `paracle quickstart`.\n\n[orchestrator]\n# Agents of a parallel phase that run at once; `run next --max-workers` lowers it.\nmax_parallel_agents = 4\n# For phases that set no timeout.\nagent_timeout = \"10m\"\n";

/// What quickstart does to config.toml.
struct ConfigPlan {
    text: String,
    /// The file holds other orchestrator settings (or is not TOML), which
    /// `text` would replace: written only with `--force`.
    replaces_settings: bool,
}

/// The existing config.toml with CONFIG's `[orchestrator]` table in it.
/// Every other table (say, the git workflow's `[git]`) is kept as written,
/// even under `--force`, which replaces only the settings quickstart owns.
fn config_plan(existing: Option<&str>) -> ConfigPlan {
    let fresh = |replaces_settings| ConfigPlan {
        text: CONFIG.to_string(),
        replaces_settings,
    };
    let Some(existing) = existing else {
        return fresh(false);
    };
    let Ok(mut theirs) = existing.parse::<toml_edit::DocumentMut>() else {
        return fresh(true);
    };
    if existing.trim().is_empty() {
        return fresh(false);
    }
    let ours: toml_edit::DocumentMut = CONFIG.parse().expect("CONFIG is valid TOML");
    let plain = |item: &toml_edit::Item| {
        item.as_table().map(|t| {
            t.iter()
                .map(|(k, v)| (k.to_string(), v.to_string().trim().to_string()))
                .collect::<Vec<_>>()
        })
    };
    let replaces_settings = match theirs.get("orchestrator") {
        Some(table) if plain(table) == plain(&ours["orchestrator"]) => {
            return ConfigPlan {
                text: existing.to_string(),
                replaces_settings: false,
            }
        }
        Some(_) => true,
        None => false,
    };
    let ours = ours["orchestrator"]
        .as_table()
        .expect("CONFIG has [orchestrator]");
    match theirs
        .get_mut("orchestrator")
        .and_then(|item| item.as_table_mut())
    {
        // Refilled in place, so that the table keeps its place and comments.
        Some(table) => {
            table.clear();
            for (key, _) in ours.iter() {
                let (key, value) = ours.get_key_value(key).expect("key just listed");
                table.insert_formatted(key, value.clone());
            }
        }
        None => {
            theirs.insert("orchestrator", toml_edit::Item::Table(ours.clone()));
        }
    }
    let mut text = theirs.to_string();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    ConfigPlan {
        text,
        replaces_settings,
    }
}

/// A project type's spec files, as a built-in template holds them: paths
/// relative to `.paracle/`, and their text.
pub struct SpecFiles {
    /// What the project is for, like "a web application".
    pub summary: &'static str,
    pub files: Vec<(String, String)>,
    pub workflow: String,
}

/// The agents and the workflow of a `kind` project whose workflow is
/// called `name`.
pub fn spec_files(kind: &str, name: &str) -> Result<SpecFiles, OrchestratorError> {
    let refuse = OrchestratorError::Quickstart;
    let template = template(kind).ok_or_else(|| {
        refuse(format!(
            "unknown project type `{kind}`; choose one of {}",
            TYPES.join(", ")
        ))
    })?;
    if !valid_name(name) {
        return Err(refuse(format!(
            "`{name}` cannot name a workflow: use 1 to 64 lowercase letters, digits, `-` or `_`"
        )));
    }
    Ok(SpecFiles {
        summary: template.summary,
        files: vec![
            (format!("agents/{kind}.toml"), agents_toml(kind, template)),
            (
                format!("workflows/{name}.toml"),
                workflow_toml(kind, name, template),
            ),
        ],
        workflow: name.to_string(),
    })
}

/// What quickstart would make of `config.toml`: None when it already
/// holds quickstart's settings. Replacing orchestrator settings the user
/// wrote is refused unless `force`; its other tables are always kept.
pub fn config_change(
    state: &Path,
    force: bool,
) -> Result<Option<(PathBuf, String)>, OrchestratorError> {
    let file = paracle_project::settings::config_file(state);
    let existing = std::fs::read_to_string(&file).ok();
    let plan = config_plan(existing.as_deref());
    if existing.as_deref() == Some(plan.text.as_str()) {
        return Ok(None);
    }
    if plan.replaces_settings && !force {
        return Err(OrchestratorError::Quickstart(format!(
            "{} already exists with other [orchestrator] settings; edit it yourself, or pass --force to overwrite them (its other tables are kept)",
            file.display()
        )));
    }
    Ok(Some((file, plan.text)))
}

/// Write what [`config_change`] planned.
pub fn write_config(file: &Path, text: &str) -> Result<(), OrchestratorError> {
    atomic::write(file, text.as_bytes()).map_err(|source| OrchestratorError::Io {
        path: file.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_keeps_other_tables_and_replaces_only_orchestrator_settings() {
        let plan = config_plan(None);
        assert_eq!(
            (plan.text.as_str(), plan.replaces_settings),
            (CONFIG, false)
        );
        let plan = config_plan(Some(CONFIG));
        assert_eq!(
            (plan.text.as_str(), plan.replaces_settings),
            (CONFIG, false)
        );

        let git = "# mine\n[git]\nbase_branch = \"main\"\n";
        let added = config_plan(Some(git));
        assert!(!added.replaces_settings);
        assert!(added.text.starts_with(git), "{}", added.text);
        assert!(
            added.text.contains("max_parallel_agents = 4"),
            "{}",
            added.text
        );
        let again = config_plan(Some(&added.text));
        assert_eq!(again.text, added.text);

        let other =
            "[orchestrator] # tuned\nmax_parallel_agents = 2\n\n[git]\nbase_branch = \"dev\"\n";
        let replaced = config_plan(Some(other));
        assert!(replaced.replaces_settings);
        assert!(
            replaced.text.starts_with("[orchestrator] # tuned\n"),
            "{}",
            replaced.text
        );
        assert!(
            replaced.text.contains("max_parallel_agents = 4"),
            "{}",
            replaced.text
        );
        assert!(!replaced.text.contains("= 2"), "{}", replaced.text);
        assert!(
            replaced.text.ends_with("[git]\nbase_branch = \"dev\"\n"),
            "{}",
            replaced.text
        );

        assert!(config_plan(Some("[orchestrator")).replaces_settings);
        let comments = config_plan(Some("# notes to self\n"));
        assert!(!comments.replaces_settings);
        assert!(
            comments.text.contains("# notes to self\n")
                && comments.text.contains("max_parallel_agents = 4"),
            "{}",
            comments.text
        );
    }

    #[test]
    fn every_template_names_only_its_own_agents() {
        for kind in TYPES {
            assert_eq!(spec_files(kind, "x").unwrap().files.len(), 2);
            let template = template(kind).unwrap();
            for phase in template.phases {
                for agent in phase.agents {
                    assert!(
                        template.agents.iter().any(|a| a.name == *agent),
                        "{kind}: {agent}"
                    );
                }
            }
            assert!(
                template.phases[0].approval,
                "{kind}: planning stops at a gate"
            );
        }
    }
}
