// {{name}}: a Paracle provider plugin (an LLM backend), in JavaScript. This
// one echoes the last user message; a real one sends the request to a
// model, at a host it asks for in info.hosts and the operator grants.
import { definePlugin } from "./paracle.js";

export const spec = {
  info: { name: "{{name}}", version: "0.1.0", description: "Echoes the last user message" },
  models: [{ id: "echo-1", description: "Answers with what it was told", contextWindow: 8192 }],
  chat(request) {
    const said = [...request.messages].reverse().find((m) => m.role === "user")?.content ?? "";
    return `You said: ${said}`;
  },
};

export const { plugin, provider } = definePlugin(spec);
