// {{name}}: a Paracle tool plugin, in JavaScript.
import { definePlugin } from "./paracle.js";

export const spec = {
  info: { name: "{{name}}", version: "0.1.0", description: "Greets people" },
  tools: {
    greet: {
      description: "Greets someone by name",
      schema: {
        type: "object",
        properties: { name: { type: "string", description: "Who to greet" } },
        required: ["name"],
        additionalProperties: false,
      },
      // The host has checked args against the schema above.
      run(args, context) {
        return { greeting: `Hello, ${args.name}!` };
      },
    },
  },
};

export const { plugin, tool } = definePlugin(spec);
