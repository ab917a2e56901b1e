/**
 * `deno task serve [--runs DIR] [--port 8000] [--host 127.0.0.1] [--token T] [--backend auto]`:
 * a local web page for captions → images (any run folder under DIR with a
 * checkpoint.petal) and for watching training (losses.csv, samples/). See docs/serve.md.
 *
 * On loopback (the default) it answers to loopback names only. Bound beyond loopback it
 * prints a warning and requires a token on every API request: `--token`, or one made
 * and printed at start.
 */
import { petalError, PetalFailure } from "../pipeline/io/errors.ts";
import { startServer } from "../pipeline/serve/app.ts";
import { isLoopback, isWildcard, LOOPBACK_NAMES, newToken } from "../pipeline/serve/guard.ts";
import { defineTask } from "./flags.ts";
import { BACKEND_FLAG, exists, runTask, selectBackend, SHIPPED_MODELS } from "./cli.ts";

export const SERVE = defineTask({
  name: "serve",
  summary: "a local page: captions → images from any run, and training progress",
  flags: {
    runs: {
      type: "string",
      arg: "DIR",
      default: "runs",
      help: "folder whose subfolders are runs (a `checkpoint.petal` each)",
      defaultText: "`runs`, else the shipped `models/`",
    },
    port: {
      type: "number",
      integer: true,
      min: 0,
      max: 65535,
      default: 8000,
      help: "port (0 picks a free one)",
    },
    host: {
      type: "string",
      arg: "HOST",
      default: "127.0.0.1",
      help: "address to listen on (`0.0.0.0` shares the page on your network: token required)",
    },
    token: {
      type: "string",
      arg: "T",
      help: "token every API request must carry (`?token=T` in the page URL, or a Bearer header)",
      defaultText: "none on loopback; else made and printed at start",
    },
    backend: BACKEND_FLAG,
  },
});

if (import.meta.main) {
  await runTask(SERVE, async (values) => {
    await selectBackend(values.backend);
    if (values.runs === "runs" && !(await exists("runs")) && await exists(SHIPPED_MODELS)) {
      values.runs = SHIPPED_MODELS; // a fresh clone: the shipped model, before any training
    }
    if (values.token !== undefined && !/^[\w.~-]{8,}$/.test(values.token)) {
      throw new PetalFailure(petalError(
        "BadArgument",
        "--token",
        "a token is at least 8 letters, digits or -._~",
        "pass a longer --token, or leave it out to have one made",
      ));
    }
    const shared = !isLoopback(values.host);
    const token = values.token ?? (shared ? newToken() : undefined);
    let server;
    try {
      server = startServer({
        runs: values.runs,
        port: values.port,
        hostname: values.host,
        log: console.error,
        allowedHosts: allowedHosts(values.host),
        token,
      });
    } catch (e) {
      // Port taken, or a host name that is not this machine's: one line, not a stack.
      throw new PetalFailure(petalError(
        "BadArgument",
        `${values.host}:${values.port}`,
        (e as Error).message,
        "pick another --port (0 picks a free one) or --host",
      ));
    }
    if (shared) {
      console.warn(
        `warning: --host ${values.host} shares this page with every machine that can reach ` +
          `port ${server.port}; API requests need the token below`,
      );
    }
    const query = token === undefined ? "" : `?token=${token}`;
    console.log(`runs: ${values.runs}`);
    if (token !== undefined) console.log(`token: ${token}`);
    console.log(`generate: ${server.url}${query}`);
    console.log(`training: ${server.url}training${query}`);
    Deno.addSignalListener("SIGINT", () => {
      server.shutdown().then(() => Deno.exit(0));
    });
    await server.finished;
  });
}

/**
 * The names a server bound to `host` answers to: loopback names always; a specific
 * address also itself; a wildcard address every address of this machine and its name.
 */
function allowedHosts(host: string): string[] {
  const own = isWildcard(host)
    ? [host, ...Deno.networkInterfaces().map((i) => i.address), Deno.hostname()]
    : [host];
  return [...new Set([...LOOPBACK_NAMES, ...own])];
}
