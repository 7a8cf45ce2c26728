import { test } from "node:test";
import assert from "node:assert/strict";

import { makeStore } from "./app.js";
import { search } from "./paracle.js";

test("finds what it keeps", () => {
  const store = makeStore();
  store.put("notes", "colour", "the sky is blue");
  store.put("other", "colour", "elsewhere");
  assert.equal(store.get("notes", "colour"), "the sky is blue");
  assert.deepEqual(store.keys("notes", ""), ["colour"]);
  assert.deepEqual(search(store, "notes", "sky", 5).map((h) => h.key), ["colour"]);
  assert.equal(store.delete("notes", "colour"), true);
});
