//! `kv-memory`: a namespaced key-value store that persists in the directory
//! granted to it at `/data`, one JSON file per namespace, replaced atomically
//! so that a crash never leaves half a file. Search ranks entries with BM25
//! over the words of their keys and values.

use std::collections::BTreeMap;
use std::path::PathBuf;

use paracle_sdk::{Error, Memory, Plugin, PluginInfo, SearchHit, Value};

const ROOT: &str = "/data";

struct KvMemory;

impl Plugin for KvMemory {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "kv-memory",
            env!("CARGO_PKG_VERSION"),
            "A persistent namespaced key-value memory with ranked keyword search",
        )
        .author("Paracle")
        .license("Apache-2.0")
        .tags(&["memory", "search"])
        .request_path(ROOT, true, "where the entries are stored")
    }

    fn init(_config: Value) -> Result<Self, Error> {
        Ok(KvMemory)
    }
}

type Namespace = BTreeMap<String, String>;

fn file_of(namespace: &str) -> Result<PathBuf, Error> {
    let valid = !namespace.is_empty()
        && namespace.len() <= 128
        && namespace
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !namespace.starts_with('.');
    if !valid {
        return Err(Error::invalid_input(format!(
            "namespace `{namespace}` is not valid: use letters, digits, `-`, `_` and `.`, not starting with `.`"
        )));
    }
    if !std::path::Path::new(ROOT).exists() {
        return Err(Error::Denied(format!(
            "no directory is granted at {ROOT}; load the plugin with a grant for it"
        )));
    }
    Ok(PathBuf::from(ROOT).join(format!("{namespace}.json")))
}

fn load(namespace: &str) -> Result<Namespace, Error> {
    let path = file_of(namespace)?;
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| {
            Error::internal(format!(
                "namespace `{namespace}` is corrupt ({e}); remove {}",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Namespace::new()),
        Err(e) => Err(Error::internal(format!(
            "cannot read namespace `{namespace}`: {e}"
        ))),
    }
}

fn store(namespace: &str, entries: &Namespace) -> Result<(), Error> {
    let path = file_of(namespace)?;
    let temp = path.with_extension("json.tmp");
    let text = serde_json::to_string(entries).map_err(|e| Error::internal(e.to_string()))?;
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, &path)
    };
    write().map_err(|e| Error::internal(format!("cannot write namespace `{namespace}`: {e}")))
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

impl Memory for KvMemory {
    fn put(&mut self, namespace: &str, key: &str, value: &str) -> Result<(), Error> {
        if key.is_empty() {
            return Err(Error::invalid_input("the key is empty"));
        }
        let mut entries = load(namespace)?;
        entries.insert(key.to_string(), value.to_string());
        store(namespace, &entries)
    }

    fn get(&mut self, namespace: &str, key: &str) -> Result<Option<String>, Error> {
        Ok(load(namespace)?.remove(key))
    }

    fn delete(&mut self, namespace: &str, key: &str) -> Result<bool, Error> {
        let mut entries = load(namespace)?;
        let existed = entries.remove(key).is_some();
        if existed {
            store(namespace, &entries)?;
        }
        Ok(existed)
    }

    fn keys(&mut self, namespace: &str, prefix: &str) -> Result<Vec<String>, Error> {
        Ok(load(namespace)?
            .into_keys()
            .filter(|k| k.starts_with(prefix))
            .collect())
    }

    fn search(
        &mut self,
        namespace: &str,
        query: &str,
        limit: u32,
    ) -> Result<Vec<SearchHit>, Error> {
        let query = words(query);
        if query.is_empty() {
            return Ok(Vec::new());
        }
        let entries = load(namespace)?;
        let documents: Vec<(&String, &String, Vec<String>)> = entries
            .iter()
            .map(|(k, v)| (k, v, words(&format!("{k} {v}"))))
            .collect();
        let count = documents.len() as f32;
        let average_len =
            documents.iter().map(|d| d.2.len()).sum::<usize>() as f32 / count.max(1.0);
        let (k1, b) = (1.2f32, 0.75f32);
        let mut hits = Vec::new();
        for (key, value, doc) in &documents {
            let mut score = 0.0;
            for term in &query {
                let frequency = doc.iter().filter(|w| *w == term).count() as f32;
                if frequency == 0.0 {
                    continue;
                }
                let containing = documents.iter().filter(|d| d.2.contains(term)).count() as f32;
                let idf = ((count - containing + 0.5) / (containing + 0.5) + 1.0).ln();
                let norm = frequency * (k1 + 1.0)
                    / (frequency + k1 * (1.0 - b + b * doc.len() as f32 / average_len.max(1.0)));
                score += idf * norm;
            }
            if score > 0.0 {
                hits.push(SearchHit {
                    key: (*key).clone(),
                    value: (*value).clone(),
                    score,
                });
            }
        }
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.key.cmp(&b.key)));
        hits.truncate(limit as usize);
        Ok(hits)
    }
}

paracle_sdk::export!(memory: KvMemory);
