import { spawn } from "node:child_process";

export interface Exchange {
  /** Text the program prints before it wants the answer (matched against everything printed so far). */
  waitFor: RegExp;
  /** The answer, or a function of all output so far (e.g. to read a secret it printed). */
  answer: string | ((output: string) => string);
}

/**
 * Runs a command in a pseudo-terminal (util-linux `script`), answering its prompts in order, for
 * commands that insist on a terminal (`npm profile enable-2fa`). Bounded by `timeoutMs`.
 */
export function runInTty(
  command: string,
  options: { cwd: string; env: NodeJS.ProcessEnv; exchanges: Exchange[]; timeoutMs?: number },
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("script", ["-qfec", command, "/dev/null"], {
      cwd: options.cwd,
      env: options.env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let output = "";
    let next = 0;
    let answeredAt = 0;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`"${command}" did not finish in time; it printed:\n${output}`));
    }, options.timeoutMs ?? 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString("utf8");
      const exchange = options.exchanges[next];
      if (exchange?.waitFor.test(output.slice(answeredAt))) {
        next++;
        answeredAt = output.length;
        const answer = typeof exchange.answer === "string" ? exchange.answer : exchange.answer(output);
        child.stdin.write(`${answer}\r`);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}
