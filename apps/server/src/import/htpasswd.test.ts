import { describe, expect, it } from "vitest";
import { parseHtpasswd } from "./htpasswd.js";

describe("parseHtpasswd", () => {
  it("reads Verdaccio's lines, their autocreated dates, comments and CRLF line ends", () => {
    const text = [
      "# team accounts",
      "alice:$2a$10$g6jr6knMIuF.o.59ngoQEeospX1wtip6QyOTPNeqY69eunTWbM.i2:autocreated 2026-12-02T04:42:35.037Z",
      "",
      "bob:{SHA}9jBBHFEZTMHzCmbJTFWpfQoBmM8=\r",
      "carol:$apr1$aE0qSNHg$K.YJ.tus5zeTSNMMrr6zG/:made by hand",
    ].join("\n");
    expect(parseHtpasswd(text)).toEqual({
      entries: [
        {
          name: "alice",
          hash: "$2a$10$g6jr6knMIuF.o.59ngoQEeospX1wtip6QyOTPNeqY69eunTWbM.i2",
          created: "2026-12-02T04:42:35.037Z",
          line: 2,
        },
        { name: "bob", hash: "{SHA}9jBBHFEZTMHzCmbJTFWpfQoBmM8=", line: 4 },
        { name: "carol", hash: "$apr1$aE0qSNHg$K.YJ.tus5zeTSNMMrr6zG/", line: 5 },
      ],
      problems: [],
    });
  });

  it("keeps the last line of a name listed twice, as Verdaccio does, and reports lines it cannot read", () => {
    const { entries, problems } = parseHtpasswd("dave:{SHA}first\nnot a line\ndave:{SHA}second\nerin:\n:{SHA}x\n");
    expect(entries).toEqual([{ name: "dave", hash: "{SHA}second", line: 3 }]);
    expect(problems).toEqual([
      { line: 1, reason: '"dave" is listed again on line 3' },
      { line: 2, reason: "not a name:hash line" },
      { line: 4, reason: '"erin" has no password hash' },
      { line: 5, reason: "not a name:hash line" },
    ]);
  });
});
