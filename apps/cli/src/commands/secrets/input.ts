/**
 * Reads a secret value without it passing through the command line (and so the shell history and `ps`):
 * piped on stdin, or typed at a prompt that does not echo.
 */
export async function readValue(label: string): Promise<string> {
  if (process.stdin.isTTY) return promptHidden(`${label}: `);
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  // One trailing newline is what `echo` and here-strings add; anything else is part of the value.
  const value = Buffer.concat(chunks)
    .toString("utf8")
    .replace(/\r?\n$/, "");
  if (value === "") {
    throw new Error(
      `no value on stdin: pipe it in (printf '%s' "$VALUE" | fw secrets …) or run in a terminal to be asked`,
    );
  }
  return value;
}

/** Asks on the terminal with echo off; Ctrl-C cancels. */
export function promptHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  // Echo off before the prompt shows, so nothing typed after it can be echoed.
  stdin.setRawMode(true);
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let value = "";
    const finish = (error?: Error) => {
      stdin.off("data", onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write("\n");
      if (error) reject(error);
      else if (value === "") reject(new Error("no value given"));
      else resolve(value);
    };
    const onData = (chunk: Buffer) => {
      for (const char of chunk.toString("utf8")) {
        if (char === "\r" || char === "\n" || char === "\u0004") return finish();
        if (char === "\u0003") return finish(new Error("cancelled"));
        if (char === "\u007f" || char === "\b") value = value.slice(0, -1);
        else if (char >= " ") value += char;
      }
    };
    stdin.resume();
    stdin.on("data", onData);
  });
}

/** Asks a yes/no-style question on the terminal (echo on); the answer without its newline. */
export function ask(question: string): Promise<string> {
  process.stderr.write(question);
  return new Promise((resolve) => {
    let text = "";
    const onData = (chunk: Buffer) => {
      text += chunk.toString("utf8");
      const end = text.indexOf("\n");
      if (end === -1) return;
      process.stdin.off("data", onData);
      process.stdin.pause();
      resolve(text.slice(0, end).replace(/\r$/, ""));
    };
    process.stdin.resume();
    process.stdin.on("data", onData);
  });
}
