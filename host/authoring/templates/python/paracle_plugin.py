"""Write a Paracle plugin in plain Python.

The host speaks the WIT contract in `wit/`; this module turns it into
functions on dicts, so that a plugin never handles JSON text or the
classes componentize-py generates:

    from paracle_plugin import Plugin, Tool, plugin, tool

    plugin(name="greeter", version="0.1.0", description="Greets people")

    @tool(description="Greets someone", schema={"type": "object", ...})
    def greet(args, context):
        return {"greeting": "Hello, " + args["name"] + "!"}

`Plugin` and `Tool` (or `Provider`, or `Memory`) must be imported into the
app module: they are what componentize-py exports. The generated bindings
(`wit_world`) exist only inside the component, so they are imported lazily,
and everything here also runs under plain Python for the plugin's tests.
"""

import json
import sys

__all__ = [
    "Plugin", "Tool", "Provider", "Memory",
    "plugin", "tool", "provider", "memory", "config", "log",
    "PluginError", "InvalidInput", "NotFound", "Denied", "Timeout", "Unavailable",
    "call_tool", "chat", "search",
]


class PluginError(Exception):
    """An error the plugin reports to its caller; the subclass says which."""

    kind = "internal"


class InvalidInput(PluginError):
    kind = "invalid-input"


class NotFound(PluginError):
    kind = "not-found"


class Denied(PluginError):
    kind = "denied"


class Timeout(PluginError):
    kind = "timeout"


class Unavailable(PluginError):
    kind = "unavailable"


_info = {}
_tools = {}
_provider = {}
_memory = []
# The operator's config for this plugin, a dict, set when the host calls init.
config = {}


def plugin(name, version="0.1.0", description="", author="", license="",
           tags=(), config_schema=None, hosts=(), env=(), paths=()):
    """Describe the plugin. `hosts`, `env` and `paths` ask the operator for
    capabilities: hosts as "host" or "host:port", environment variables by
    name, and directories as dicts {"guest_path", "writable", "reason"}."""
    # `info` has no error to report with: a wrong type here would trap the
    # load, so it is refused now, when the component is built.
    def strings(what, values):
        if isinstance(values, str):
            raise TypeError(f"{what} must be a list of strings, not one string")
        values = list(values)
        if not all(isinstance(v, str) for v in values):
            raise TypeError(f"{what} must be a list of strings")
        return values
    for p in paths:
        if not isinstance(p.get("guest_path"), str):
            raise TypeError("each of paths needs a guest_path string")
    if config_schema is not None:
        json.dumps(config_schema)
    _info.update(name=str(name), version=str(version), description=str(description),
                 author=str(author), license=str(license), tags=strings("tags", tags),
                 config_schema=config_schema, hosts=strings("hosts", hosts), env=strings("env", env),
                 paths=[dict(p) for p in paths])


def tool(name=None, description="", schema=None):
    """Make a function `f(args, context) -> value` a tool. `args` is a dict
    the host has checked against `schema`; the answer is any JSON value."""
    def register(function):
        # Checked now: list-tools has no error to report a bad schema with.
        json.dumps(schema if schema is not None else {})
        _tools[str(name or function.__name__)] = {
            "description": str(description or (function.__doc__ or "").strip()),
            "schema": schema if schema is not None else {"type": "object"},
            "run": function,
        }
        return function
    return register


def provider(models):
    """Make a function `f(request) -> reply` the provider's chat. `models`
    is a list of dicts {"id", "description", "context_window"}. `request`
    is a dict (model, messages, tools, temperature, max_tokens); the reply
    is a string, or a dict with "content" and optionally "tool_calls",
    "finish_reason" and "usage"."""
    def register(function):
        _provider["models"] = [dict(m) for m in models]
        _provider["chat"] = function
        return function
    return register


def memory(cls):
    """Make a class the plugin's store: one object per instance, with
    put, get, delete and keys (and optionally search) on plain strings."""
    _memory.append(cls)
    return cls


_LEVELS = {"trace": "TRACE", "debug": "DEBUG", "info": "INFO", "warn": "WARN",
           "warning": "WARN", "error": "ERROR"}


def log(level, message):
    """A line in the host's log: level is trace, debug, info, warn or error."""
    try:
        from wit_world.imports import host
    except ImportError:
        print(f"[{level}] {message}", file=sys.stderr)
        return
    name = _LEVELS.get(str(level).lower(), "INFO")
    host.log(getattr(host.LogLevel, name), str(message))


def call_tool(name, args, context=None):
    """Run tool `name` as the host would, for tests."""
    entry = _tools.get(name)
    if entry is None:
        raise NotFound(f"no tool `{name}`")
    return entry["run"](args, context or {"caller": "test", "run_id": None, "agent": None})


def chat(request):
    """Ask the provider as the host would, for tests: the reply as a dict."""
    return _reply(_provider["chat"](request), request)


def _reply(reply, request):
    if isinstance(reply, str):
        reply = {"content": reply}
    content = reply.get("content", "")
    calls = reply.get("tool_calls", [])
    usage = reply.get("usage") or {
        # About four characters a token.
        "prompt_tokens": sum(len(m.get("content", "")) for m in request.get("messages", [])) // 4,
        "completion_tokens": len(content) // 4,
    }
    return {
        "model": reply.get("model") or request.get("model") or _provider["models"][0]["id"],
        "content": content,
        "tool_calls": calls,
        "finish_reason": reply.get("finish_reason", "tool-calls" if calls else "stop"),
        "usage": usage,
    }


def _types():
    from wit_world.imports import types
    return types


def _fail(error):
    """A Python exception as the contract's error."""
    from componentize_py_types import Err
    types = _types()
    variants = {
        "invalid-input": types.Error_InvalidInput,
        "not-found": types.Error_NotFound,
        "denied": types.Error_Denied,
        "timeout": types.Error_Timeout,
        "unavailable": types.Error_Unavailable,
    }
    kind = error.kind if isinstance(error, PluginError) else "internal"
    message = str(error) if isinstance(error, PluginError) else f"{type(error).__name__}: {error}"
    return Err(variants.get(kind, types.Error_Internal)(message))


def _guarded(function, *args):
    """Run `function`, turning any exception, the plugin's own or one in
    converting its answer, into the contract's error rather than a trap."""
    try:
        return function(*args)
    except PluginError as error:
        raise _fail(error)
    except BaseException as error:  # a bug, or sys.exit: reported, not a trap
        raise _fail(error)


def _dump(value):
    # NaN and infinities are not JSON: refused here, not sent.
    return json.dumps(value, allow_nan=False)


def _u32(value):
    number = int(value)
    if not 0 <= number <= 0xFFFFFFFF:
        raise ValueError(f"{value} is not a count from 0 to 4294967295")
    return number


_FINISH = {"stop": "STOP", "tool-calls": "TOOL_CALLS", "tool_calls": "TOOL_CALLS",
           "length": "LENGTH", "content-filter": "CONTENT_FILTER", "content_filter": "CONTENT_FILTER"}


class Plugin:
    def info(self):
        types = _types()
        schema = _info.get("config_schema")
        return types.PluginInfo(
            name=_info.get("name", ""),
            version=_info.get("version", "0.1.0"),
            description=_info.get("description", ""),
            author=_info.get("author", ""),
            license=_info.get("license", ""),
            tags=_info.get("tags", []),
            config_schema=None if schema is None else json.dumps(schema),
            requests=types.Capabilities(
                paths=[types.PathRequest(guest_path=p["guest_path"], writable=bool(p.get("writable")),
                                         reason=p.get("reason", "")) for p in _info.get("paths", [])],
                hosts=_info.get("hosts", []),
                env=_info.get("env", []),
            ),
        )

    def init(self, config_json):
        def start():
            config.clear()
            config.update(json.loads(config_json))
            if _memory:
                _store()
        _guarded(start)

    def health(self):
        return _types().HealthStatus(ready=True, message="")


class Tool:
    def list_tools(self):
        types = _types()
        return [types.ToolSpec(name=name, description=entry["description"],
                               input_schema=json.dumps(entry["schema"]))
                for name, entry in _tools.items()]

    def invoke(self, name, arguments, context):
        ctx = {"caller": context.caller, "run_id": context.run_id, "agent": context.agent}
        return _guarded(lambda: _dump(call_tool(name, json.loads(arguments), ctx)))


class Provider:
    def list_models(self):
        def models():
            types = _types()
            return [types.ModelInfo(id=str(m["id"]), description=str(m.get("description", "")),
                                    context_window=None if m.get("context_window") is None
                                    else _u32(m["context_window"]))
                    for m in _provider.get("models", [])]
        return _guarded(models)

    def chat(self, request):
        return _guarded(self._chat, request)

    def _chat(self, request):
        types = _types()
        asked = {
            "model": request.model,
            "messages": [{"role": m.role.name.lower(), "content": m.content,
                          "tool_calls": [{"id": c.id, "name": c.name, "arguments": json.loads(c.arguments)}
                                         for c in m.tool_calls],
                          "tool_call_id": m.tool_call_id} for m in request.messages],
            "tools": [{"name": t.name, "description": t.description,
                       "input_schema": json.loads(t.input_schema)} for t in request.tools],
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
        reply = chat(asked)
        finish = _FINISH.get(str(reply["finish_reason"]))
        if finish is None:
            raise ValueError(f"finish_reason {reply['finish_reason']!r} is not one of stop, tool-calls, length, content-filter")
        calls = [types.ToolCall(id=str(c["id"]), name=str(c["name"]), arguments=_dump(c.get("arguments", {})))
                 for c in reply["tool_calls"]]
        return types.ChatResponse(
            model=str(reply["model"]),
            message=types.Message(role=types.Role.ASSISTANT, content=str(reply["content"]),
                                  tool_calls=calls, tool_call_id=None),
            finish_reason=getattr(types.FinishReason, finish),
            usage=types.Usage(prompt_tokens=_u32(reply["usage"]["prompt_tokens"]),
                              completion_tokens=_u32(reply["usage"]["completion_tokens"])),
        )


_stores = []


def _store():
    if not _stores:
        _stores.append(_memory[0]())
    return _stores[0]


def search(store, namespace, query, limit):
    """Search `store` as the host would, for tests: its own `search`, or
    entries ranked by how many of the query's words they contain."""
    if hasattr(store, "search"):
        return store.search(namespace, query, limit)
    words = [w for w in "".join(c.lower() if c.isalnum() else " " for c in query).split()]
    hits = []
    for key in store.keys(namespace, ""):
        value = store.get(namespace, key)
        if value is None:
            continue
        haystack = f"{key} {value}".lower()
        score = sum(1 for w in words if w in haystack)
        if score:
            hits.append({"key": key, "value": value, "score": float(score)})
    hits.sort(key=lambda h: (-h["score"], h["key"]))
    return hits[:limit]


class Memory:
    def put(self, namespace, key, value):
        _guarded(lambda: _store().put(namespace, key, value))

    def get(self, namespace, key):
        def got():
            value = _store().get(namespace, key)
            return None if value is None else str(value)
        return _guarded(got)

    def delete(self, namespace, key):
        return _guarded(lambda: bool(_store().delete(namespace, key)))

    def keys(self, namespace, prefix):
        return _guarded(lambda: [str(k) for k in _store().keys(namespace, prefix)])

    def search(self, namespace, query, limit):
        def hits():
            types = _types()
            found = search(_store(), namespace, query, limit)
            return [types.SearchHit(key=str(h["key"]), value=str(h["value"]), score=float(h["score"]))
                    for h in found[:limit]]
        return _guarded(hits)
