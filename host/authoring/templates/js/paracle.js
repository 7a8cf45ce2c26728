// Write a Paracle plugin in plain JavaScript.
//
// The host speaks the WIT contract in `wit/`; `definePlugin` turns it into
// functions on plain objects, so that a plugin never handles JSON text:
//
//   import { definePlugin } from "./paracle.js";
//   export const { plugin, tool } = definePlugin({
//     info: { name: "greeter", version: "0.1.0", description: "Greets people" },
//     tools: {
//       greet: { description: "...", schema: { type: "object" }, run(args, context) { ... } },
//     },
//   });
//
// Export what the kind needs (`plugin` and one of `tool`, `provider` or
// `memory`): componentize-js looks for those names. Nothing here needs the
// component to run, so the plugin's tests run under Node.

/** An error the plugin reports to its caller; `kind` says which. */
export class PluginError extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}
export const invalidInput = (message) => new PluginError("invalid-input", message);
export const notFound = (message) => new PluginError("not-found", message);
export const denied = (message) => new PluginError("denied", message);
export const unavailable = (message) => new PluginError("unavailable", message);

// The operator's config for this plugin, set when the host calls init.
export const config = {};

const KINDS = ["invalid-input", "not-found", "denied", "timeout", "unavailable", "internal"];
const FINISH_REASONS = ["stop", "tool-calls", "length", "content-filter"];

function u32(n) {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`${n} is not a count from 0 to 4294967295`);
  return n;
}

// A thrown value as the contract's error: componentize-js reads `payload`.
function guarded(run) {
  try {
    return run();
  } catch (error) {
    const kind = KINDS.includes(error?.kind) ? error.kind : "internal";
    const message = error instanceof PluginError ? error.message : `${error?.name ?? "Error"}: ${error?.message ?? error}`;
    const failure = new Error(message);
    failure.payload = { tag: kind, val: message };
    throw failure;
  }
}

function wordSearch(store, namespace, query, limit) {
  // Not \p{L}: StarlingMonkey's regular expressions lack Unicode classes.
  const words = query.toLowerCase().split(/[^0-9a-z\u00c0-\uffff]+/).filter(Boolean);
  const hits = [];
  for (const key of store.keys(namespace, "")) {
    const value = store.get(namespace, key);
    if (value === undefined || value === null) continue;
    const haystack = `${key} ${value}`.toLowerCase();
    const score = words.filter((w) => haystack.includes(w)).length;
    if (score > 0) hits.push({ key, value, score });
  }
  hits.sort((a, b) => b.score - a.score || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return hits.slice(0, limit);
}

function reply(answer, request, models) {
  const given = typeof answer === "string" ? { content: answer } : answer;
  const content = given.content ?? "";
  const toolCalls = given.toolCalls ?? [];
  const promptChars = (request.messages ?? []).reduce((n, m) => n + (m.content ?? "").length, 0);
  return {
    model: given.model || request.model || models[0]?.id || "",
    content,
    toolCalls,
    finishReason: given.finishReason ?? (toolCalls.length ? "tool-calls" : "stop"),
    // About four characters a token.
    usage: given.usage ?? { promptTokens: Math.floor(promptChars / 4), completionTokens: Math.floor(content.length / 4) },
  };
}

/**
 * The component's exports, from a plain description:
 * - `info`: { name, version, description, author, license, tags, configSchema, hosts, env, paths };
 * - `tools`: { NAME: { description, schema, run(args, context) } } for a tool plugin;
 * - `models` and `chat(request)` for a provider (a string or { content, toolCalls, finishReason, usage });
 * - `store`: a function making an object with put, get, delete, keys (and optionally search) for a memory.
 */
export function definePlugin(spec) {
  const info = spec.info ?? {};
  let store;
  const storeNow = () => (store ??= spec.store());
  const exports = {
    plugin: {
      info() {
        // `info` has no error to report with, so every field is made the
        // type the contract wants rather than trapping on a wrong one.
        const strings = (values) => [].concat(values ?? []).map(String);
        return {
          name: String(info.name ?? ""),
          version: String(info.version ?? "0.1.0"),
          description: String(info.description ?? ""),
          author: String(info.author ?? ""),
          license: String(info.license ?? ""),
          tags: strings(info.tags),
          configSchema: info.configSchema == null ? undefined : JSON.stringify(info.configSchema),
          requests: {
            paths: [].concat(info.paths ?? []).map((p) => ({ guestPath: String(p.guestPath), writable: !!p.writable, reason: String(p.reason ?? "") })),
            hosts: strings(info.hosts),
            env: strings(info.env),
          },
        };
      },
      init(configJson) {
        guarded(() => {
          for (const key of Object.keys(config)) delete config[key];
          Object.assign(config, JSON.parse(configJson));
          if (spec.store) storeNow();
        });
      },
      health() {
        return { ready: true, message: "" };
      },
    },
  };
  if (spec.tools) {
    exports.tool = {
      listTools() {
        return Object.entries(spec.tools).map(([name, t]) => ({
          name,
          description: String(t.description ?? ""),
          inputSchema: JSON.stringify(t.schema ?? { type: "object" }),
        }));
      },
      invoke(name, args, context) {
        // A tool that returns nothing answers null.
        // Nothing, a function or a symbol answers null.
        return guarded(() => JSON.stringify(callTool(spec, name, JSON.parse(args), context) ?? null) ?? "null");
      },
    };
  }
  if (spec.chat) {
    const models = spec.models ?? [];
    exports.provider = {
      listModels() {
        return guarded(() =>
          models.map((m) => ({
            id: String(m.id),
            description: String(m.description ?? ""),
            contextWindow: m.contextWindow == null ? undefined : u32(m.contextWindow),
          })),
        );
      },
      chat(request) {
        return guarded(() => {
          const asked = {
            model: request.model,
            messages: request.messages.map((m) => ({
              role: m.role,
              content: m.content,
              toolCalls: m.toolCalls.map((c) => ({ id: c.id, name: c.name, arguments: JSON.parse(c.arguments) })),
              toolCallId: m.toolCallId,
            })),
            tools: request.tools.map((t) => ({ name: t.name, description: t.description, inputSchema: JSON.parse(t.inputSchema) })),
            temperature: request.temperature,
            maxTokens: request.maxTokens,
          };
          const answer = reply(spec.chat(asked), asked, models);
          // Checked here, where a mistake is the plugin's error, rather
          // than where the component lowers it, where it would be a trap.
          if (!FINISH_REASONS.includes(answer.finishReason)) {
            throw new Error(`finishReason ${JSON.stringify(answer.finishReason)} is not one of ${FINISH_REASONS.join(", ")}`);
          }
          if (!Array.isArray(answer.toolCalls)) throw new Error("toolCalls must be an array");
          answer.usage = { promptTokens: u32(answer.usage.promptTokens), completionTokens: u32(answer.usage.completionTokens) };
          return {
            model: String(answer.model),
            message: {
              role: "assistant",
              content: String(answer.content),
              toolCalls: answer.toolCalls.map((c) => ({ id: String(c.id), name: String(c.name), arguments: JSON.stringify(c.arguments ?? {}) })),
              toolCallId: undefined,
            },
            finishReason: answer.finishReason,
            usage: answer.usage,
          };
        });
      },
    };
  }
  if (spec.store) {
    exports.memory = {
      put: (ns, key, value) => guarded(() => { storeNow().put(ns, key, value); }),
      get: (ns, key) =>
        guarded(() => {
          const value = storeNow().get(ns, key);
          return value == null ? undefined : String(value);
        }),
      delete: (ns, key) => guarded(() => !!storeNow().delete(ns, key)),
      keys: (ns, prefix) => guarded(() => [...storeNow().keys(ns, prefix)].map(String)),
      search: (ns, query, limit) =>
        guarded(() => {
          const s = storeNow();
          const hits = s.search ? s.search(ns, query, limit) : wordSearch(s, ns, query, limit);
          return hits.slice(0, limit).map((h) => ({ key: String(h.key), value: String(h.value), score: Number(h.score) }));
        }),
    };
  }
  return exports;
}

/** Run tool `name` as the host would, for tests. */
export function callTool(spec, name, args, context = { caller: "test" }) {
  const t = spec.tools?.[name];
  if (!t) throw notFound(`no tool \`${name}\``);
  return t.run(args, context);
}

/** Ask a provider as the host would, for tests: the reply as an object. */
export function chat(spec, request) {
  return reply(spec.chat(request), request, spec.models ?? []);
}

/** Search a store as the host would, for tests. */
export function search(store, namespace, query, limit) {
  return store.search ? store.search(namespace, query, limit) : wordSearch(store, namespace, query, limit);
}
