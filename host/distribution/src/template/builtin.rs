//! The project types `quickstart` writes, as templates built into the
//! binary: installed through the same code as a template from a registry.

use paracle_orchestrator::quickstart;

use super::format::{Category, TemplateFiles, TemplateMeta, PARACLE_VERSION};
use super::index::Listing;
use crate::error::DistributionError;

/// The registry name built-in templates are listed under.
pub const BUILTIN: &str = "built-in";

/// The built-in template `kind`, with its workflow called `workflow`.
pub fn builtin(kind: &str, workflow: &str) -> Result<TemplateFiles, DistributionError> {
    let specs = quickstart::spec_files(kind, workflow)?;
    Ok(TemplateFiles {
        meta: meta(kind, specs.summary),
        meta_text: None,
        files: specs
            .files
            .into_iter()
            .map(|(path, text)| (path, text.into_bytes()))
            .collect(),
    })
}

fn meta(kind: &str, summary: &str) -> TemplateMeta {
    TemplateMeta {
        name: kind.to_string(),
        version: PARACLE_VERSION.to_string(),
        category: Category::Workflow,
        author: "Paracle".into(),
        tags: vec![kind.to_string(), "quickstart".into(), "offline".into()],
        paracle_version: format!("={PARACLE_VERSION}"),
        description: format!(
            "Agents and a phased workflow to plan and build {summary}, on the embedded mock provider"
        ),
        plugins: Vec::new(),
    }
}

/// Whether `id` names a built-in template.
pub fn is_builtin(id: &str) -> bool {
    quickstart::TYPES.contains(&id)
}

/// The built-in templates, listed as a registry's would be.
pub fn listings() -> Vec<Listing> {
    quickstart::TYPES
        .iter()
        .filter_map(|kind| {
            let specs = quickstart::spec_files(kind, kind).ok()?;
            Some(Listing {
                registry: BUILTIN.into(),
                reference: format!("{BUILTIN}:{kind}"),
                manifest: String::new(),
                meta: meta(kind, specs.summary),
                signature: None,
                subject: String::new(),
            })
        })
        .collect()
}
