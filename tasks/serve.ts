/**
 * `deno task serve [--runs DIR] [--port 8000] [--host 127.0.0.1] [--backend auto]`:
 * a local web page for captions → images (any run folder under DIR with a
 * checkpoint.petal) and for watching training (losses.csv, samples/). See docs/serve.md.
 */
import { petalError, PetalFailure } from "../pipeline/io/errors.ts";
import { startServer } from "../pipeline/serve/app.ts";
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
      help: "address to listen on (`0.0.0.0` shares the page on your network)",
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
    let server;
    try {
      server = startServer({
        runs: values.runs,
        port: values.port,
        hostname: values.host,
        log: console.error,
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
    console.log(`runs: ${values.runs}`);
    console.log(`generate: ${server.url}`);
    console.log(`training: ${server.url}training`);
    Deno.addSignalListener("SIGINT", () => {
      server.shutdown().then(() => Deno.exit(0));
    });
    await server.finished;
  });
}
