//! Whether a tool call needs a person's approval before it runs: per plugin,
//! per tool, and per agent. `always` runs it, `ask` waits for a person (or,
//! in a workflow with nobody at hand, stops the run at a gate), `never`
//! refuses it. Where several settings apply, the strictest wins.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// One setting.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Approve {
    /// Runs without asking (the default).
    #[default]
    Always,
    Ask,
    Never,
}

impl Approve {
    pub fn parse(text: &str) -> Option<Approve> {
        match text {
            "always" => Some(Approve::Always),
            "ask" => Some(Approve::Ask),
            "never" => Some(Approve::Never),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Approve::Always => "always",
            Approve::Ask => "ask",
            Approve::Never => "never",
        }
    }
}

impl fmt::Display for Approve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The settings of one plugin's tools: one for all of them (`*`), and
/// some for single tools. Written as `approve = "ask"`, or as a table
/// `approve = { "*" = "always", delete = "ask" }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ApprovalsForm", into = "BTreeMap<String, Approve>")]
pub struct Approvals {
    all: Approve,
    tools: BTreeMap<String, Approve>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ApprovalsForm {
    One(Approve),
    Each(BTreeMap<String, Approve>),
}

impl TryFrom<ApprovalsForm> for Approvals {
    type Error = String;
    fn try_from(form: ApprovalsForm) -> Result<Self, String> {
        Ok(match form {
            ApprovalsForm::One(all) => Approvals {
                all,
                tools: BTreeMap::new(),
            },
            ApprovalsForm::Each(mut tools) => Approvals {
                all: tools.remove("*").unwrap_or_default(),
                tools,
            },
        })
    }
}

impl From<Approvals> for BTreeMap<String, Approve> {
    fn from(approvals: Approvals) -> Self {
        let mut map = approvals.tools;
        if approvals.all != Approve::Always || map.is_empty() {
            map.insert("*".into(), approvals.all);
        }
        map
    }
}

impl Approvals {
    /// The same setting for every tool.
    pub fn all(approve: Approve) -> Self {
        Approvals {
            all: approve,
            tools: BTreeMap::new(),
        }
    }

    /// What applies to `tool`.
    pub fn for_tool(&self, tool: &str) -> Approve {
        self.tools.get(tool).copied().unwrap_or(self.all)
    }

    /// Set `tool` (or every tool, with `None`) to `approve`. Setting every
    /// tool forgets the single tools' settings. Returns whether it changed.
    pub fn set(&mut self, tool: Option<&str>, approve: Approve) -> bool {
        let before = self.clone();
        match tool {
            None => {
                self.all = approve;
                self.tools.clear();
            }
            Some(tool) if approve == self.all => {
                self.tools.remove(tool);
            }
            Some(tool) => {
                self.tools.insert(tool.to_string(), approve);
            }
        }
        *self != before
    }

    /// Whether any call at all may need a person.
    pub fn is_always(&self) -> bool {
        self.all == Approve::Always && self.tools.values().all(|a| *a == Approve::Always)
    }

    /// One line: `all ask`, `all always; delete ask`.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("all {}", self.all)];
        parts.extend(self.tools.iter().map(|(tool, a)| format!("{tool} {a}")));
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Serialize)]
    struct Holder {
        #[serde(default)]
        approve: Approvals,
    }

    #[test]
    fn a_word_or_a_table_and_the_strictest_wins() {
        let one: Holder = toml::from_str("approve = \"ask\"").unwrap();
        assert_eq!(one.approve.for_tool("anything"), Approve::Ask);
        let each: Holder =
            toml::from_str("approve = { \"*\" = \"always\", delete = \"never\" }").unwrap();
        assert_eq!(each.approve.for_tool("read"), Approve::Always);
        assert_eq!(each.approve.for_tool("delete"), Approve::Never);
        assert!(toml::from_str::<Holder>("approve = \"maybe\"").is_err());
        assert!(Approve::Never > Approve::Ask && Approve::Ask > Approve::Always);
        let written = toml::to_string(&each).unwrap();
        let again: Holder = toml::from_str(&written).unwrap();
        assert_eq!(again.approve, each.approve);
        let mut approvals = Approvals::default();
        assert!(approvals.is_always());
        assert!(approvals.set(Some("delete"), Approve::Ask));
        assert!(!approvals.set(Some("delete"), Approve::Ask));
        assert_eq!(approvals.describe(), "all always; delete ask");
        assert!(approvals.set(None, Approve::Never));
        assert_eq!(approvals.for_tool("delete"), Approve::Never);
    }
}
