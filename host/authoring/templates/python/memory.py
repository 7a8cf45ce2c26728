"""{{name}}: a Paracle memory plugin, in Python. Entries live in this
instance's memory, so they last as long as the instance; for entries that
outlast it, ask for a directory with plugin(paths=[...]) and keep them
there. Without a search method, entries are ranked by how many of the
query's words they contain."""

# Plugin and Memory are the component's exports: keep them imported here.
from paracle_plugin import Memory, Plugin, memory, plugin  # noqa: F401

plugin(name="{{name}}", version="0.1.0", description="Keeps notes in memory")


@memory
class Store:
    def __init__(self):
        self.entries = {}

    def put(self, namespace, key, value):
        self.entries[(namespace, key)] = value

    def get(self, namespace, key):
        return self.entries.get((namespace, key))

    def delete(self, namespace, key):
        return self.entries.pop((namespace, key), None) is not None

    def keys(self, namespace, prefix):
        return sorted(k for (ns, k) in self.entries if ns == namespace and k.startswith(prefix))
