"""{{name}}: a Paracle provider plugin (an LLM backend), in Python. This one
echoes the last user message; a real one sends the request to a model, at
a host it asks for with plugin(hosts=[...]) and the operator grants."""

# Plugin and Provider are the component's exports: keep them imported here.
from paracle_plugin import Plugin, Provider, plugin, provider  # noqa: F401

plugin(name="{{name}}", version="0.1.0", description="Echoes the last user message")


@provider(models=[{"id": "echo-1", "description": "Answers with what it was told", "context_window": 8192}])
def chat(request):
    said = next((m["content"] for m in reversed(request["messages"]) if m["role"] == "user"), "")
    return f"You said: {said}"
