/**
 * `deno task serve [--runs DIR] [--port 8000] [--host 127.0.0.1] [--backend auto]`:
 * a local web page for captions → images (any run folder under DIR with a
 * checkpoint.petal) and for watching training (losses.csv, samples/). See docs/serve.md.
 */
import { petalError, PetalFailure } from "../pipeline/errors.ts";
import { startServer } from "../pipeline/serve.ts";
import { main, numberFlag, parse, selectBackend } from "./cli.ts";

await main(async () => {
  const { values } = parse("serve", {
    runs: { type: "string", default: "runs" },
    port: { type: "string", default: "8000" },
    host: { type: "string", default: "127.0.0.1" },
    backend: { type: "string", default: "auto" },
  });
  const port = numberFlag("port", values.port, 8000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new PetalFailure(
      petalError("BadArgument", "--port", `"${values.port}" is not a port`, "pass 0..65535"),
    );
  }
  await selectBackend(values.backend);
  let server;
  try {
    server = startServer({
      runs: values.runs,
      port,
      hostname: values.host,
      log: console.error,
    });
  } catch (e) {
    // Port taken, or a host name that is not this machine's: one line, not a stack.
    throw new PetalFailure(petalError(
      "BadArgument",
      `${values.host}:${port}`,
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
