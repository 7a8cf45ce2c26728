import { test } from "node:test";
import assert from "node:assert/strict";

import { spec } from "./app.js";
import { chat } from "./paracle.js";

test("echoes the last user message", () => {
  const reply = chat(spec, {
    model: "",
    messages: [
      { role: "system", content: "Be brief." },
      { role: "user", content: "hello" },
    ],
  });
  assert.equal(reply.content, "You said: hello");
  assert.equal(reply.finishReason, "stop");
  assert.equal(reply.model, "echo-1");
});
