// {{name}}: a Paracle memory plugin, in JavaScript. Entries live in this
// instance's memory, so they last as long as the instance; for entries that
// outlast it, ask for a directory in info.paths and keep them there.
// Without a search method, entries are ranked by how many of the query's
// words they contain.
import { definePlugin } from "./paracle.js";

export function makeStore() {
  const entries = new Map();
  const at = (namespace, key) => `${namespace}\u0000${key}`;
  return {
    put(namespace, key, value) {
      entries.set(at(namespace, key), value);
    },
    get(namespace, key) {
      return entries.get(at(namespace, key));
    },
    delete(namespace, key) {
      return entries.delete(at(namespace, key));
    },
    keys(namespace, prefix) {
      return [...entries.keys()]
        .map((k) => k.split("\u0000"))
        .filter(([ns, key]) => ns === namespace && key.startsWith(prefix))
        .map(([, key]) => key)
        .sort();
    },
  };
}

export const { plugin, memory } = definePlugin({
  info: { name: "{{name}}", version: "0.1.0", description: "Keeps notes in memory" },
  store: makeStore,
});
