import { test } from "node:test";
import assert from "node:assert/strict";

import { spec } from "./app.js";
import { callTool } from "./paracle.js";

test("greets by name", () => {
  assert.deepEqual(callTool(spec, "greet", { name: "Ada" }), { greeting: "Hello, Ada!" });
});
