//! `{{name}}`: a Paracle memory plugin. Entries live in this instance's
//! memory, so they last as long as the instance; for entries that outlast
//! it, ask for a directory in `info` (`request_path`) and keep them there.
//! `search` is the SDK's: entries ranked by how many of the query's words
//! they contain.

use std::collections::BTreeMap;

use paracle_sdk::{Error, Memory, Plugin, PluginInfo, Value};

#[derive(Default)]
pub struct {{type}} {
    entries: BTreeMap<(String, String), String>,
}

impl Plugin for {{type}} {
    fn info() -> PluginInfo {
        PluginInfo::new("{{name}}", env!("CARGO_PKG_VERSION"), "Keeps notes in memory")
    }

    fn init(_config: Value) -> Result<Self, Error> {
        Ok({{type}}::default())
    }
}

impl Memory for {{type}} {
    fn put(&mut self, namespace: &str, key: &str, value: &str) -> Result<(), Error> {
        self.entries
            .insert((namespace.into(), key.into()), value.into());
        Ok(())
    }

    fn get(&mut self, namespace: &str, key: &str) -> Result<Option<String>, Error> {
        Ok(self.entries.get(&(namespace.into(), key.into())).cloned())
    }

    fn delete(&mut self, namespace: &str, key: &str) -> Result<bool, Error> {
        Ok(self.entries.remove(&(namespace.into(), key.into())).is_some())
    }

    fn keys(&mut self, namespace: &str, prefix: &str) -> Result<Vec<String>, Error> {
        Ok(self
            .entries
            .keys()
            .filter(|(ns, key)| ns == namespace && key.starts_with(prefix))
            .map(|(_, key)| key.clone())
            .collect())
    }
}

paracle_sdk::export!(memory: {{type}});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_it_keeps() {
        let mut memory = {{type}}::init(Value::Null).unwrap();
        memory.put("notes", "colour", "the sky is blue").unwrap();
        memory.put("other", "colour", "elsewhere").unwrap();
        assert_eq!(memory.get("notes", "colour").unwrap().as_deref(), Some("the sky is blue"));
        assert_eq!(memory.keys("notes", "").unwrap(), vec!["colour".to_string()]);
        let hits = memory.search("notes", "sky", 5).unwrap();
        assert_eq!(hits.len(), 1);
        assert!(memory.delete("notes", "colour").unwrap());
    }
}
