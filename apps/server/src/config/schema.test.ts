import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { configJsonSchema } from "./schema.js";

const committed = new URL("../../fw.config.schema.json", import.meta.url);

describe("fw.config.schema.json", () => {
  it("matches the zod schema", async () => {
    const text = await readFile(committed, "utf8").catch(() => "null");
    expect(
      JSON.parse(text),
      "apps/server/fw.config.schema.json is out of date: run `pnpm --filter @fw/server gen:schema` and commit the result",
    ).toEqual(configJsonSchema());
  });

  it("describes the defaults editors show", () => {
    const schema = configJsonSchema() as { properties: { listen: { properties: { port: { default: number } } } } };
    expect(schema.properties.listen.properties.port.default).toBe(4873);
  });
});
