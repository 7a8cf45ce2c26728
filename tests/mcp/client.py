"""Drive `paracle mcp serve` through the official Python MCP SDK.

Run by tests/mcp.rs as `python client.py SCENARIO`, in a project directory,
with PARACLE_BIN naming the paracle binary. Each scenario starts its own
server. It exits 0 when every check holds, or fails with the check that did
not.
"""

import asyncio
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request

import anyio

from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

PARACLE = os.environ["PARACLE_BIN"]
# stdio_client passes on only a few variables; the project's own go too.
ENV = {k: os.environ[k] for k in ("PARACLE_HOME", "PARACLE_CACHE_DIR") if k in os.environ}
BUILTINS = {"workflow_list", "workflow_run", "run_status", "memory_put", "memory_get", "memory_search"}
PORTABLE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Generous: an answer slower than this on a loaded machine means none is coming.
ANSWER_WITHIN = 120


def server(*extra):
    return StdioServerParameters(
        command=PARACLE, args=["mcp", "serve", "--stdio", *extra], env=ENV, cwd=os.getcwd()
    )


async def session_run(check, *extra):
    with open("server-stderr.log", "a") as errlog:
        async with stdio_client(server(*extra), errlog=errlog) as (read, write):
            # A request the server never answers fails the test, not hangs it.
            async with ClientSession(read, write, read_timeout_seconds=ANSWER_WITHIN) as session:
                init = await session.initialize()
                await check(session, init)


def text(result):
    assert result.content, f"a result with no content: {result}"
    return result.content[0].text


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


async def call_ok(session, name, arguments=None, **kwargs):
    result = await session.call_tool(name, arguments or {}, **kwargs)
    expect(not result.is_error, f"{name} failed: {text(result)}")
    return result


async def call_failing(session, name, arguments=None):
    result = await session.call_tool(name, arguments or {})
    expect(result.is_error, f"{name} should have failed, got {text(result)}")
    return text(result)


# -- scenarios ---------------------------------------------------------------


async def initialize(session, init):
    expect(init.server_info.name == "paracle", f"server name {init.server_info.name}")
    expect(init.server_info.version, "the server gives its version")
    expect(init.capabilities.tools is not None, "the server offers tools")
    expect(init.instructions and "workflow_run" in init.instructions, init.instructions)
    # The session works after the handshake.
    await session.send_ping()


async def tools_list(session, init):
    tools = (await session.list_tools()).tools
    names = [t.name for t in tools]
    expect(len(names) == len(set(names)), f"duplicate names: {names}")
    expect(BUILTINS <= set(names), f"built-in tools missing from {names}")
    for expected in ("text-tools__count_vowels", "text-tools__regex_extract", "hostile__spin"):
        expect(expected in names, f"{expected} missing from {names}")
    for tool in tools:
        expect(PORTABLE_NAME.match(tool.name), f"not a portable name: {tool.name}")
        expect(tool.input_schema.get("type") == "object", f"{tool.name}: {tool.input_schema}")
        expect(tool.description, f"{tool.name} has no description")
    vowels = next(t for t in tools if t.name == "text-tools__count_vowels")
    expect("text" in vowels.input_schema.get("properties", {}), f"schema kept: {vowels.input_schema}")
    run = next(t for t in tools if t.name == "workflow_run")
    expect(run.input_schema["required"] == ["workflow"], f"{run.input_schema}")


async def call_success(session, init):
    result = await call_ok(session, "text-tools__count_vowels", {"text": "banana"})
    expect(result.structured_content == {"vowels": 3}, f"{result.structured_content}")
    expect(json.loads(text(result)) == {"vowels": 3}, text(result))


async def call_failure(session, init):
    # The plugin's own error, with its message.
    message = await call_failing(session, "text-tools__regex_extract", {"text": "x", "pattern": "("})
    expect("text-tools" in message and "bad pattern" in message, message)
    # Arguments that do not fit the tool's schema: the model can fix them.
    message = await call_failing(session, "text-tools__count_vowels", {"words": 1})
    expect("schema" in message and "count_vowels" in message, message)
    message = await call_failing(session, "memory_get", {})
    expect("schema" in message and "key" in message, message)
    # An unknown tool is a bad request: a JSON-RPC error, not a result.
    try:
        await session.call_tool("no-such__tool", {})
    except MCPError as error:
        expect(error.error.code == -32602, f"code {error.error.code}")
        expect("no-such__tool" in error.error.message, error.error.message)
    else:
        raise AssertionError("an unknown tool was called")
    # And the server goes on.
    await call_ok(session, "text-tools__count_vowels", {"text": "ok"})


async def timeout(session, init):
    message = await call_failing(session, "hostile__spin")
    expect("hostile" in message and "time limit" in message, message)
    # The next call, to another plugin and to the same one, is answered.
    result = await call_ok(session, "text-tools__count_vowels", {"text": "still here"})
    expect(result.structured_content == {"vowels": 3}, f"{result.structured_content}")
    message = await call_failing(session, "hostile__spin")
    expect("time limit" in message, message)
    # JSON nested past the host's depth limit is a failed result that names
    # the limit, never a request left without an answer.
    message = await call_failing(session, "hostile__deep_json", {"depth": 200})
    expect("hostile" in message and "JSON depth" in message, message)
    result = await call_ok(session, "hostile__deep_json", {"depth": 3})
    expect(text(result).replace(" ", "") == "[[[0]]]", text(result))
    names = [t.name for t in (await session.list_tools()).tools]
    expect("hostile__spin" in names, names)


async def workflow(session, init):
    listed = (await call_ok(session, "workflow_list")).structured_content["workflows"]
    by_name = {w["name"]: w for w in listed}
    expect(by_name.get("quick", {}).get("phases") == ["plan", "build"], f"{listed}")

    progress = []

    async def heard(value, total, message):
        progress.append((value, message))

    result = await call_ok(
        session, "workflow_run", {"workflow": "quick", "input": "Say hello."}, progress_callback=heard
    )
    run = result.structured_content
    expect(run["status"] == "completed", f"status {run['status']}: {text(result)}")
    expect([p["status"] for p in run["phases"]] == ["succeeded", "succeeded"], f"{run['phases']}")
    expect(run["input"] == "Say hello.", run["input"])
    messages = [m for _, m in progress]
    expect(any("phase `plan` started" in m for m in messages), f"progress: {messages}")
    expect(any("phase `build` succeeded" in m for m in messages), f"progress: {messages}")
    values = [v for v, _ in progress]
    expect(values == sorted(set(values)), f"progress must increase: {values}")

    status = (await call_ok(session, "run_status", {"run": run["id"]})).structured_content
    expect(status["id"] == run["id"] and status["status"] == "completed", f"{status}")
    newest = (await call_ok(session, "run_status")).structured_content
    expect(newest["id"] == run["id"], f"{newest['id']} is not the newest run")

    # A time limit past what a clock can hold is the server's limit.
    again = await call_ok(session, "workflow_run", {"workflow": "quick", "timeout_seconds": 1e300})
    expect(again.structured_content["status"] == "completed", text(again))

    message = await call_failing(session, "workflow_run", {"workflow": "no-such-workflow"})
    expect("no workflow `no-such-workflow`" in message and "quick" in message, message)
    message = await call_failing(session, "run_status", {"run": "no-such-run"})
    expect("no run `no-such-run`" in message, message)


async def workflow_timeout(session, init):
    result = await session.call_tool("workflow_run", {"workflow": "slow", "timeout_seconds": 1})
    expect(result.is_error, f"a run past its time: {text(result)}")
    message = text(result)
    expect("did not finish within" in message, message)
    run = result.structured_content
    expect(run and run["status"] == "interrupted", f"{run}")
    expect(f"paracle run next --run {run['id']}" in message, message)
    # The server answers the next call at once.
    await call_ok(session, "text-tools__count_vowels", {"text": "next"})

    # A client that gives up on a call cancels it: the run stops, and is
    # interrupted, or ready if the cancel came before its phase began.
    with anyio.move_on_after(1.5):
        await session.call_tool("workflow_run", {"workflow": "slow"})
        raise AssertionError("the slow run finished before it was cancelled")
    for _ in range(300):
        newest = (await call_ok(session, "run_status")).structured_content
        stopped = newest["status"] in ("interrupted", "ready") and not newest["busy"]
        if newest["id"] != run["id"] and stopped:
            break
        await anyio.sleep(0.1)
    else:
        raise AssertionError(f"the cancelled run is still {newest['status']}")
    expect(newest["workflow"]["name"] == "slow", f"{newest['workflow']}")
    print(run["id"])


async def memory(session, init):
    stored = await call_ok(session, "memory_put", {"namespace": "notes", "key": "colour", "value": "deep blue sea"})
    expect(stored.structured_content["stored"] is True, f"{stored.structured_content}")
    await call_ok(session, "memory_put", {"key": "plain", "value": "in the default namespace"})
    got = (await call_ok(session, "memory_get", {"namespace": "notes", "key": "colour"})).structured_content
    expect(got == {"namespace": "notes", "key": "colour", "found": True, "value": "deep blue sea"}, f"{got}")
    missing = (await call_ok(session, "memory_get", {"namespace": "notes", "key": "nope"})).structured_content
    expect(missing["found"] is False and missing["value"] is None, f"{missing}")
    default = (await call_ok(session, "memory_get", {"key": "plain"})).structured_content
    expect(default["namespace"] == "mcp" and default["found"], f"{default}")
    hits = (await call_ok(session, "memory_search", {"namespace": "notes", "query": "blue"})).structured_content
    expect([h["key"] for h in hits["hits"]] == ["colour"], f"{hits}")


def malformed():
    """Bytes no client library would send, straight onto the server's stdin.

    Everything the server writes to stdout must be a JSON-RPC message, even
    with logging turned up.
    """
    # A file, not a pipe: debug logs would fill a pipe nobody reads yet.
    errlog = open("server-stderr.log", "w+")
    process = subprocess.Popen(
        [PARACLE, "-vv", "mcp", "serve", "--stdio"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errlog,
        env={**os.environ, **ENV},
        text=True,
    )

    def send(message):
        line = message if isinstance(message, str) else json.dumps(message)
        process.stdin.write(line + "\n")
        process.stdin.flush()

    def answer():
        line = process.stdout.readline()
        expect(line, "the server closed stdout")
        message = json.loads(line)
        expect(message.get("jsonrpc") == "2.0", f"not JSON-RPC: {line}")
        return message

    try:
        send({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "raw", "version": "0"}},
        })
        init = answer()
        expect(init["id"] == 1 and init["result"]["serverInfo"]["name"] == "paracle", f"{init}")
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})

        # Valid JSON that is not a request: Invalid Request.
        send({"jsonrpc": "2.0", "id": 2, "params": {}})
        reply = answer()
        expect(reply.get("error", {}).get("code") == -32600, f"{reply}")
        # A method there is none of.
        send({"jsonrpc": "2.0", "id": 3, "method": "tools/frobnicate"})
        reply = answer()
        expect(reply["id"] == 3 and reply["error"]["code"] == -32601, f"{reply}")
        expect("tools/frobnicate" in reply["error"]["message"], f"{reply}")
        # tools/call whose params are not a tools/call's: Invalid params.
        send({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"arguments": {}}})
        reply = answer()
        expect(reply["id"] == 4 and reply["error"]["code"] == -32602, f"{reply}")
        expect("name" in reply["error"]["message"], f"{reply}")
        send({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
              "params": {"name": "text-tools__count_vowels", "arguments": "banana"}})
        reply = answer()
        expect(reply["id"] == 5 and reply["error"]["code"] == -32602, f"{reply}")
        # An unknown tool.
        send({"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {"name": "nope", "arguments": {}}})
        reply = answer()
        expect(reply["id"] == 6 and reply["error"]["code"] == -32602, f"{reply}")
        # Bytes that are not JSON at all get no answer (the SDK ignores
        # them, as the other official SDKs do: there is no id to answer)...
        send("{this is not json")
        # ...and the server still answers what comes next.
        send({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
              "params": {"name": "text-tools__count_vowels", "arguments": {"text": "aeiou"}}})
        reply = answer()
        expect(reply["id"] == 7, f"the unparsable line was answered: {reply}")
        expect(reply["result"]["structuredContent"] == {"vowels": 5}, f"{reply}")
    except BaseException:
        process.kill()
        raise
    finally:
        # Closing stdin ends the session; the server must then exit.
        rest, _ = process.communicate(timeout=60)
        errlog.seek(0)
        errors = errlog.read()
    for line in rest.splitlines():
        expect(json.loads(line).get("jsonrpc") == "2.0", f"not JSON-RPC on stdout: {line}")
    expect(process.returncode == 0, f"exit {process.returncode}: {errors}")
    # The logs went somewhere, and it was not stdout.
    expect("serving" in errors, f"no logs on stderr: {errors[:500]}")


async def http():
    process = subprocess.Popen(
        [PARACLE, "mcp", "serve", "--http", "127.0.0.1:0", "--json"],
        stdout=subprocess.PIPE,
        env={**os.environ, **ENV},
        text=True,
    )
    try:
        announced = ""
        while True:
            line = process.stdout.readline()
            expect(line, "the server stopped before announcing its address")
            announced += line
            try:
                url = json.loads(announced)["url"]
                break
            except json.JSONDecodeError:
                continue
        expect(re.match(r"^http://127\.0\.0\.1:\d+/mcp$", url), url)
        async with streamable_http_client(url) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                expect(init.server_info.name == "paracle", f"{init.server_info}")
                names = [t.name for t in (await session.list_tools()).tools]
                expect("text-tools__count_vowels" in names, names)
                result = await call_ok(session, "text-tools__count_vowels", {"text": "banana"})
                expect(result.structured_content == {"vowels": 3}, f"{result.structured_content}")
                await in_flight(session)
        # A web page's request carries an Origin, and a DNS-rebound name
        # arrives as another Host: both are refused.
        for header, value in (("Origin", "http://evil.example"), ("Host", "evil.example")):
            request = urllib.request.Request(
                url,
                data=b'{"jsonrpc":"2.0","id":1,"method":"ping"}',
                headers={"Content-Type": "application/json",
                         "Accept": "application/json, text/event-stream", header: value},
            )
            try:
                urllib.request.urlopen(request, timeout=30)
            except urllib.error.HTTPError as error:
                expect(error.code == 403, f"{header}: {value}: status {error.code}")
            else:
                raise AssertionError(f"a request with {header}: {value} was served")
    finally:
        process.terminate()
        process.wait(timeout=30)


async def dev_loop():
    """A running `mcp serve --watch` follows `plugin dev`: an edit reloads the
    plugin, the client is told its tools changed and sees the new tool, and
    the next call answers the new way; a broken edit leaves that version
    serving. PLUGIN_SOURCE is the scaffolded tool's source, DEV_LOG the
    JSON lines `plugin dev --json` writes."""
    source = os.environ["PLUGIN_SOURCE"]
    dev_log = os.environ["DEV_LOG"]
    name = os.environ["PLUGIN_NAME"]
    changed = anyio.Event()

    async def on_message(message):
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    def dev_events(kind):
        with open(dev_log) as log:
            return [e for e in (json.loads(line) for line in log if line.startswith("{")) if e["event"] == kind]

    async def until(condition, what):
        with anyio.fail_after(ANSWER_WITHIN):
            while not condition():
                await anyio.sleep(0.1)

    with open("server-stderr.log", "a") as errlog:
        async with stdio_client(server("--watch"), errlog=errlog) as (read, write):
            async with ClientSession(read, write, read_timeout_seconds=ANSWER_WITHIN,
                                     message_handler=on_message) as session:
                init = await session.initialize()
                expect(init.capabilities.tools.list_changed, "the server says its tools can change")
                tool = f"{name}__greet"
                first = await call_ok(session, tool, {"name": "Ada"})
                expect(text(first) == '{"greeting":"Hello, Ada!"}', text(first))
                loaded = len(dev_events("loaded"))

                # An edit: a new greeting, and a second tool.
                with open(source) as f:
                    code = f.read()
                edited = code.replace("Hello, ", "Howdy, ").replace(
                    'vec![ToolSpec::new(',
                    'vec![ToolSpec::new("wave", "Waves", json!({"type": "object"})), ToolSpec::new(', 1)
                expect(edited != code, "the scaffold has the text this scenario edits")
                with open(source, "w") as f:
                    f.write(edited)
                with anyio.fail_after(ANSWER_WITHIN):
                    await changed.wait()
                expect(len(dev_events("loaded")) > loaded, "plugin dev reloaded the plugin")
                names = {t.name for t in (await session.list_tools()).tools}
                expect(f"{name}__wave" in names, f"the new tool is listed: {sorted(names)}")
                second = await call_ok(session, tool, {"name": "Ada"})
                expect(text(second) == '{"greeting":"Howdy, Ada!"}', text(second))

                # A broken edit: the build fails, and the last good version serves on.
                failed = len(dev_events("failed"))
                with open(source, "w") as f:
                    f.write(edited + "\nthis is not rust\n")
                await until(lambda: len(dev_events("failed")) > failed, "plugin dev reports the failed build")
                third = await call_ok(session, tool, {"name": "Ada"})
                expect(text(third) == '{"greeting":"Howdy, Ada!"}', text(third))
    print("dev loop ok")


async def secret_leak(session, init):
    """A plugin granted a secret puts its value in its answer and its error:
    neither reaches the client (SECRET_VALUE is the value)."""
    value = os.environ["SECRET_VALUE"]
    arguments = {"name": "HOSTILE_SECRET"}
    result = await call_ok(session, "hostile__leak_env", arguments)
    shown = json.dumps([c.model_dump() for c in result.content]) + json.dumps(result.structured_content)
    expect(value not in shown, f"the value reached the client: {shown}")
    expect("[secret HOSTILE_SECRET]" in shown, shown)
    message = await call_failing(session, "hostile__leak_env", {**arguments, "fail": True})
    expect(value not in message and "[secret HOSTILE_SECRET]" in message, message)


async def in_flight(session, init=None):
    """Calls in flight run at once, up to the plugin's instance limit (4 by
    default): four calls of a tool that waits 150 ms take about as long as
    one, not four times as long. Ratios of times measured here, in one run."""
    import time

    async def sleep_call():
        started = time.perf_counter()
        await call_ok(session, "hostile__sleep", {"ms": 150})
        return time.perf_counter() - started

    await sleep_call()  # the first call makes the first instance
    one = min([await sleep_call() for _ in range(2)])
    started = time.perf_counter()
    await asyncio.gather(*(sleep_call() for _ in range(4)))
    four = time.perf_counter() - started
    expect(four < 2.5 * one, f"4 calls in flight took {four:.3f} s against {one:.3f} s for one")
    # Payloads of 1 MiB go through whole, with answers matched to their calls.
    texts = [("aeiou" * (200_000 + i)) for i in range(3)]
    results = await asyncio.gather(
        *(call_ok(session, "text-tools__count_vowels", {"text": t}) for t in texts))
    for t, result in zip(texts, results):
        expect(result.structured_content == {"vowels": len(t)}, f"{result.structured_content}")


STDIO = {
    "initialize": initialize,
    "tools_list": tools_list,
    "call_success": call_success,
    "call_failure": call_failure,
    "timeout": timeout,
    "workflow": workflow,
    "workflow_timeout": workflow_timeout,
    "memory": memory,
    "secret_leak": secret_leak,
    "in_flight": in_flight,
}


async def elicitation():
    """A plugin asks for a loopback host it was not granted (ELICIT_URL); the
    client's user answers through elicitation: once (after longer than the
    plugin's own time limit), decline, never (past the policy's timeout),
    and always, after which no question is asked. A client without the
    capability is never asked. The Rust test checks what was saved and
    logged."""
    url = os.environ["ELICIT_URL"]
    arguments = {"url": url}
    asked = []
    script = []

    async def answer(context, params):
        asked.append(params.message)
        expect("hostile" in params.message and "sha256:" in params.message, params.message)
        expect("network access to" in params.message, params.message)
        schema = params.requested_schema
        expect(schema["properties"]["answer"]["enum"] == ["once", "always", "deny"], schema)
        how = script.pop(0)
        if how == "never":
            await anyio.sleep(3600)
        if how == "once-slowly":
            await anyio.sleep(2.5)
            how = "once"
        if how == "decline":
            return types.ElicitResult(action="decline")
        return types.ElicitResult(action="accept", content={"answer": how})

    # No elicitation capability: denied as before, nobody asked.
    with open("server-stderr.log", "a") as errlog:
        async with stdio_client(server(), errlog=errlog) as (read, write):
            async with ClientSession(read, write, read_timeout_seconds=ANSWER_WITHIN) as session:
                await session.initialize()
                message = await call_failing(session, "hostile__http_get", arguments)
                expect("denied network access" in message, message)
                expect("paracle plugin grant hostile net:127.0.0.1" in message, message)

        async with stdio_client(server(), errlog=errlog) as (read, write):
            async with ClientSession(
                read, write, read_timeout_seconds=ANSWER_WITHIN, elicitation_callback=answer
            ) as session:
                await session.initialize()
                script.append("once-slowly")
                result = await call_ok(session, "hostile__http_get", arguments)
                expect(json.loads(text(result))["status"] == 200, text(result))
                script.append("never")
                message = await call_failing(session, "hostile__http_get", arguments)
                expect("denied network access" in message, message)
                # Unanswered is not refused: asked again.
                script.append("always")
                await call_ok(session, "hostile__http_get", arguments)
                expect(len(asked) == 3, f"asked {len(asked)} times")
                # Saved: the same server lets the next call through unasked.
                await call_ok(session, "hostile__http_get", arguments)
                expect(len(asked) == 3, f"asked again after always: {len(asked)}")
                # A refusal is remembered for this client: not asked again.
                by_name = {"url": url.replace("127.0.0.1", "localhost")}
                script.append("decline")
                message = await call_failing(session, "hostile__http_get", by_name)
                expect("denied network access to localhost" in message, message)
                message = await call_failing(session, "hostile__http_get", by_name)
                expect("denied network access to localhost" in message, message)
                expect(len(asked) == 4, f"asked again after a refusal: {len(asked)}")
    print(json.dumps({"asked": len(asked)}))


async def approval():
    """Tool calls of hostile's read_env need approval (paracle.toml): the
    client's user approves one and refuses the next; a client without
    elicitation cannot approve, so the call is refused."""
    arguments = {"name": "HOME"}
    asked = []

    async def decide(context, params):
        asked.append(params.message)
        expect("read_env" in params.message and "hostile" in params.message, params.message)
        expect("HOME" in params.message, f"the arguments are shown: {params.message}")
        expect(params.requested_schema["properties"]["approve"]["type"] == "boolean", params.requested_schema)
        return types.ElicitResult(action="accept", content={"approve": len(asked) == 1})

    with open("server-stderr.log", "a") as errlog:
        async with stdio_client(server(), errlog=errlog) as (read, write):
            async with ClientSession(read, write, read_timeout_seconds=ANSWER_WITHIN) as session:
                await session.initialize()
                message = await call_failing(session, "hostile__read_env", arguments)
                expect("no person is at hand" in message, message)
        async with stdio_client(server(), errlog=errlog) as (read, write):
            async with ClientSession(
                read, write, read_timeout_seconds=ANSWER_WITHIN, elicitation_callback=decide
            ) as session:
                await session.initialize()
                await call_ok(session, "hostile__read_env", arguments)
                message = await call_failing(session, "hostile__read_env", arguments)
                expect("a person refused this call" in message, message)
                # Tools without the setting run unasked.
                await call_ok(session, "hostile__leak_env", {"name": "NOTHING_HERE"})
                expect(len(asked) == 2, f"asked {len(asked)} times")
    print(json.dumps({"asked": len(asked)}))


def main():
    scenario = sys.argv[1]
    if scenario == "malformed":
        malformed()
    elif scenario == "http":
        asyncio.run(http())
    elif scenario == "dev_loop":
        asyncio.run(dev_loop())
    elif scenario == "elicitation":
        asyncio.run(elicitation())
    elif scenario == "approval":
        asyncio.run(approval())
    else:
        asyncio.run(session_run(STDIO[scenario]))


if __name__ == "__main__":
    main()
