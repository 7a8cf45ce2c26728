//! A small path language over JSON: `a.b`, `a[0]`, `a[*].b`, `["odd key"]`.

use paracle_sdk::{Error, Value};

#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
    Wildcard,
}

fn parse(path: &str) -> Result<Vec<Step>, Error> {
    let mut steps = Vec::new();
    let chars: Vec<char> = path.chars().collect();
    let mut i = 0;
    let bad = |at: usize, what: &str| Error::invalid_input(format!("bad path at {at}: {what}"));
    while i < chars.len() {
        match chars[i] {
            '.' => i += 1,
            '[' => {
                let close = chars[i..]
                    .iter()
                    .position(|&c| c == ']')
                    .map(|p| p + i)
                    .ok_or_else(|| bad(i, "`[` without `]`"))?;
                let inner: String = chars[i + 1..close].iter().collect();
                let inner = inner.trim();
                if inner == "*" {
                    steps.push(Step::Wildcard);
                } else if let Some(quoted) =
                    inner.strip_prefix('"').and_then(|s| s.strip_suffix('"'))
                {
                    steps.push(Step::Key(quoted.to_string()));
                } else {
                    let index = inner
                        .parse()
                        .map_err(|_| bad(i, "expected a number, `*` or a quoted key"))?;
                    steps.push(Step::Index(index));
                }
                i = close + 1;
            }
            _ => {
                let start = i;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    i += 1;
                }
                let key: String = chars[start..i].iter().collect();
                steps.push(if key == "*" {
                    Step::Wildcard
                } else {
                    Step::Key(key)
                });
            }
        }
    }
    Ok(steps)
}

/// Every value the path selects; a path that leads nowhere selects nothing.
pub fn select(document: &Value, path: &str) -> Result<Vec<Value>, Error> {
    let mut current = vec![document];
    for step in parse(path)? {
        let mut next = Vec::new();
        for value in current {
            match (&step, value) {
                (Step::Key(key), Value::Object(map)) => next.extend(map.get(key)),
                (Step::Index(index), Value::Array(items)) => next.extend(items.get(*index)),
                (Step::Wildcard, Value::Array(items)) => next.extend(items.iter()),
                (Step::Wildcard, Value::Object(map)) => next.extend(map.values()),
                _ => {}
            }
        }
        current = next;
    }
    Ok(current.into_iter().cloned().collect())
}
