"""{{name}}: a Paracle tool plugin, in Python."""

# Plugin and Tool are the component's exports: keep them imported here.
from paracle_plugin import Plugin, Tool, plugin, tool  # noqa: F401

plugin(name="{{name}}", version="0.1.0", description="Greets people")


@tool(
    description="Greets someone by name",
    schema={
        "type": "object",
        "properties": {"name": {"type": "string", "description": "Who to greet"}},
        "required": ["name"],
        "additionalProperties": False,
    },
)
def greet(args, context):
    # The host has checked args against the schema above.
    return {"greeting": f"Hello, {args['name']}!"}
