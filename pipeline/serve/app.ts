/**
 * The local web server behind `deno task serve`: a generate page (caption → images,
 * caption interpolation) and a training page (loss curves, sample grids, img/s, ETA,
 * scores), over a small JSON API. `createApp` gives the request handler (tests call it
 * directly); `startServer` puts it on Deno.serve.
 *
 * Every API error is a 4xx/5xx with `{"error": "..."}`, one line a person can act on.
 *
 * @example
 * ```ts
 * import { createApp, startServer } from "./app.ts";
 * const app = createApp({ runs: "runs" });
 * const res = await app.handler(new Request("http://localhost/api/runs"));
 * const server = startServer({ runs: "runs", port: 8000, hostname: "127.0.0.1" });
 * await server.shutdown();
 * ```
 */
import { Buffer } from "node:buffer";
import { CHECKPOINT_FILE } from "../io/checkpoint.ts";
import { PetalFailure } from "../io/errors.ts";
import { GeneratorCache, type GeneratorCacheOptions } from "./generator_cache.ts";
import {
  hostAllowed,
  isJsonType,
  LOOPBACK_NAMES,
  readBodyCapped,
  requestToken,
  sameToken,
  TOKEN_COOKIE,
} from "./guard.ts";
import { QueueAborted, QueueFull, QueueTimeout } from "./work_queue.ts";
import { encodePng } from "../io/images.ts";
import { byPosition, defaultCandidates, drawPixels, interpolateCaptions } from "../draw.ts";
import { downsample, renderLossSvg } from "../io/plots.ts";
import { isSafeName, listRuns, readRun } from "./run_info.ts";

export const MAX_COUNT = 16;
export const MAX_STEPS = 16;
export const MAX_CAPTION = 300;
/** Requests are a few short fields; anything bigger is a mistake or an abuse. */
export const MAX_BODY = 64 * 1024;
/** Seconds a refused (busy) client is told to wait before it tries again. */
export const RETRY_AFTER_S = 2;

/** An error with the HTTP status it answers with (and any headers, e.g. Retry-After). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), {
    status,
    headers: {
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-store",
      ...headers,
    },
  });

export interface GenerateRequest {
  readonly checkpoint: string;
  readonly caption: string;
  readonly count: number;
  readonly seed: number;
}

export interface InterpolateRequest {
  readonly checkpoint: string;
  readonly a: string;
  readonly b: string;
  readonly steps: number;
  readonly seed: number;
}

const field = (body: Record<string, unknown>, name: string) => body[name];

function checkpointName(body: Record<string, unknown>): string {
  const name = field(body, "checkpoint");
  if (typeof name !== "string" || name === "") {
    throw new HttpError(400, "checkpoint is missing: pick a run folder from GET /api/runs");
  }
  if (!isSafeName(name)) {
    throw new HttpError(400, `bad checkpoint name "${name}": one folder name under --runs`);
  }
  return name;
}

function caption(body: Record<string, unknown>, name: string, label: string): string {
  const v = field(body, name);
  if (v !== undefined && typeof v !== "string") throw new HttpError(400, `${label} must be text`);
  const text = (v ?? "").trim();
  if (text === "") throw new HttpError(400, `${label} is empty: type a description of a flower`);
  if (text.length > MAX_CAPTION) {
    throw new HttpError(400, `${label} is too long (${text.length} > ${MAX_CAPTION} characters)`);
  }
  return text;
}

function integer(
  body: Record<string, unknown>,
  name: string,
  lo: number,
  hi: number,
  fallback: number,
): number {
  const v = field(body, name);
  if (v === undefined || v === null || v === "") return fallback;
  // The form sends numbers; a numeric string from curl is fine too.
  const n = typeof v === "string" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isInteger(n) || n < lo || n > hi) {
    throw new HttpError(
      400,
      `${name} must be an integer from ${lo} to ${hi}, got ${JSON.stringify(v)}`,
    );
  }
  return n;
}

/**
 * Checks a generate request body. Pure: the checkpoint's existence is checked later.
 *
 * @example
 * ```ts
 * parseGenerateRequest({ checkpoint: "a", caption: "red petals", count: 4 });
 * // { checkpoint: "a", caption: "red petals", count: 4, seed: 0 }
 * ```
 */
export function parseGenerateRequest(body: Record<string, unknown>): GenerateRequest {
  return {
    checkpoint: checkpointName(body),
    caption: caption(body, "caption", "caption"),
    count: integer(body, "count", 1, MAX_COUNT, 4),
    seed: integer(body, "seed", 0, 2 ** 32 - 1, 0),
  };
}

/**
 * Checks an interpolate request body (captions `a` → `b`, `steps` images).
 *
 * @example
 * ```ts
 * parseInterpolateRequest({ checkpoint: "a", a: "red petals", b: "white petals" }).steps; // 9
 * ```
 */
export function parseInterpolateRequest(body: Record<string, unknown>): InterpolateRequest {
  return {
    checkpoint: checkpointName(body),
    a: caption(body, "a", "first caption"),
    b: caption(body, "b", "second caption"),
    steps: integer(body, "steps", 2, MAX_STEPS, 9),
    seed: integer(body, "seed", 0, 2 ** 32 - 1, 0),
  };
}

async function readJsonBody(req: Request): Promise<Record<string, unknown>> {
  // Parsed, not searched: `text/plain; x=application/json` is a type a cross-site form
  // or fetch sends without a preflight. Requiring JSON makes any cross-site post a
  // preflighted request, which we never approve.
  if (!isJsonType(req.headers.get("content-type"))) {
    throw new HttpError(415, "send the body as JSON (content-type: application/json)");
  }
  const read = await readBodyCapped(req, MAX_BODY);
  if ("problem" in read) {
    throw read.problem === "too-large"
      ? new HttpError(413, `body over ${MAX_BODY} bytes`)
      : new HttpError(400, "the body is not UTF-8 text");
  }
  let body: unknown;
  try {
    body = JSON.parse(read.text);
  } catch (e) {
    throw new HttpError(400, `malformed JSON: ${(e as Error).message}`);
  }
  if (!body || typeof body !== "object" || Array.isArray(body)) {
    throw new HttpError(400, "the body must be a JSON object");
  }
  return body as Record<string, unknown>;
}

/** Queue refusals → HTTP: busy 429, too slow 503, both with Retry-After. */
function queueError(e: unknown): HttpError | undefined {
  const retry = { "retry-after": String(RETRY_AFTER_S) };
  if (e instanceof QueueFull) {
    return new HttpError(429, `${e.message}; try again in ${RETRY_AFTER_S} s`, retry);
  }
  if (e instanceof QueueTimeout) return new HttpError(503, e.message, retry);
  if (e instanceof QueueAborted) return new HttpError(503, e.message);
  return undefined;
}

const dataUrl = (png: Uint8Array) => `data:image/png;base64,${Buffer.from(png).toString("base64")}`;

const STATIC_TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
};

export interface ServeOptions {
  /** Folder holding run folders (each with checkpoint.petal and/or losses.csv). */
  readonly runs: string;
  /** Where the page files are; defaults to web/ beside this module. */
  readonly webDir?: string;
  readonly log?: (line: string) => void;
  /**
   * Host names (or addresses) the server answers to; a request whose `Host` header
   * names another is refused (421), which defeats DNS rebinding. Loopback names by
   * default.
   */
  readonly allowedHosts?: readonly string[];
  /**
   * When set, every `/api/` request must carry it (`Authorization: Bearer TOKEN`, or
   * the cookie a page opened with `?token=TOKEN` gets).
   */
  readonly token?: string;
  /** Bounds of the generator cache and its queue. */
  readonly cache?: GeneratorCacheOptions;
}

export interface App {
  readonly handler: (req: Request) => Promise<Response>;
  /** The loaded generators, shared by all requests. */
  readonly generators: GeneratorCache;
  readonly dispose: () => void;
}

/**
 * The request handler and its state (the generator cache).
 *
 * @example
 * ```ts
 * const app = createApp({ runs: "runs" });
 * const res = await app.handler(new Request("http://x/api/generate", {
 *   method: "POST",
 *   headers: { "content-type": "application/json" },
 *   body: JSON.stringify({ checkpoint: "demo", caption: "pink petals", count: 2 }),
 * }));
 * app.dispose();
 * ```
 */
export function createApp(opts: ServeOptions): App {
  const ctx: AppContext = {
    runs: opts.runs.replace(/\/+$/, "") || ".",
    webDir: (opts.webDir ?? new URL("./web", import.meta.url).pathname).replace(/\/+$/, ""),
    generators: new GeneratorCache(opts.cache),
    allowedHosts: opts.allowedHosts ?? LOOPBACK_NAMES,
    token: opts.token,
  };
  const handler = async (req: Request): Promise<Response> => {
    try {
      guard(ctx, req);
      const res = await route(ctx, req);
      return withTokenCookie(ctx, req, res);
    } catch (e) {
      const http = e instanceof HttpError ? e : queueError(e);
      if (http) return json({ error: http.message }, http.status, http.headers);
      // A checkpoint that exists but does not load (truncated, other version) is the
      // run's problem, not the request's: say what is wrong with it.
      if (e instanceof PetalFailure) return json({ error: e.message }, 422);
      const message = String((e as Error)?.message ?? e).split("\n")[0];
      opts.log?.(`error: ${req.method} ${new URL(req.url).pathname}: ${message}`);
      return json({ error: `internal error: ${message}` }, 500);
    }
  };
  return { handler, generators: ctx.generators, dispose: () => ctx.generators.dispose() };
}

/** Refuses a foreign Host (421) and, when a token is set, an API request without it (401). */
function guard(ctx: AppContext, req: Request): void {
  const host = req.headers.get("host") ?? new URL(req.url).host;
  if (!hostAllowed(host, ctx.allowedHosts)) {
    throw new HttpError(
      421,
      `this server answers to ${ctx.allowedHosts.join(", ")}, not ${JSON.stringify(host)}`,
    );
  }
  if (ctx.token === undefined || !new URL(req.url).pathname.startsWith("/api/")) return;
  if (!sameToken(requestToken(req), ctx.token)) {
    throw new HttpError(
      401,
      "this page is shared beyond loopback: open the URL serve printed (with ?token=…), " +
        "or send Authorization: Bearer TOKEN",
    );
  }
}

/** A page opened with the right `?token=` gets it as a same-site, script-free cookie. */
function withTokenCookie(ctx: AppContext, req: Request, res: Response): Response {
  if (ctx.token === undefined) return res;
  const given = new URL(req.url).searchParams.get("token") ?? undefined;
  if (!sameToken(given, ctx.token)) return res;
  res.headers.append(
    "set-cookie",
    `${TOKEN_COOKIE}=${ctx.token}; Path=/; HttpOnly; SameSite=Strict`,
  );
  return res;
}

/** What every request handler shares. */
interface AppContext {
  readonly runs: string;
  readonly webDir: string;
  readonly generators: GeneratorCache;
  readonly allowedHosts: readonly string[];
  readonly token?: string;
}

async function checkpointFile(ctx: AppContext, name: string): Promise<string> {
  const path = `${ctx.runs}/${name}/${CHECKPOINT_FILE}`;
  try {
    if ((await Deno.stat(path)).isFile) return path;
  } catch { /* answered below */ }
  throw new HttpError(
    404,
    `unknown checkpoint "${name}": no ${CHECKPOINT_FILE} in ${ctx.runs}/${name}`,
  );
}

async function staticFile(ctx: AppContext, file: string): Promise<Response> {
  const ext = file.split(".").pop() ?? "";
  if (!isSafeName(file) || !STATIC_TYPES[ext]) throw new HttpError(404, `no page ${file}`);
  try {
    return new Response(await Deno.readFile(`${ctx.webDir}/${file}`), {
      headers: { "content-type": STATIC_TYPES[ext], "cache-control": "no-cache" },
    });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new HttpError(404, `no page ${file}`);
    throw e;
  }
}

async function runDetail(ctx: AppContext, name: string) {
  const run = await readRun(ctx.runs, name, Date.now());
  if (!run) {
    throw new HttpError(
      404,
      `unknown run "${name}": no checkpoint or losses.csv in ${ctx.runs}/${name}`,
    );
  }
  return run;
}

async function generate(ctx: AppContext, req: Request): Promise<Response> {
  const r = parseGenerateRequest(await readJsonBody(req));
  const path = await checkpointFile(ctx, r.checkpoint);
  const started = performance.now();
  const images = await ctx.generators.use(path, async (gen) => {
    const { imageSize } = gen.gan.model;
    // Best of K per image where the checkpoint keeps its matcher, as `deno task infer`;
    // image j is drawn with id j (pipeline/draw.ts, stages/noise.ts).
    const rgb = await drawPixels(gen, byPosition(Array(r.count).fill(r.caption)), {
      seed: r.seed,
      candidates: defaultCandidates(gen),
      batch: MAX_COUNT,
    });
    return await Promise.all(rgb.map((x) => encodePng(x, imageSize, imageSize)));
  }, req.signal);
  return json({
    checkpoint: r.checkpoint,
    caption: r.caption,
    count: r.count,
    seed: r.seed,
    images: images.map(dataUrl),
    seconds: (performance.now() - started) / 1000,
  });
}

async function interpolate(ctx: AppContext, req: Request): Promise<Response> {
  const r = parseInterpolateRequest(await readJsonBody(req));
  const path = await checkpointFile(ctx, r.checkpoint);
  const images = await ctx.generators.use(path, async (gen) => {
    const { imageSize } = gen.gan.model;
    // Same noise as image 1 of a generate request with this seed: the slider's left
    // end is the first image on the page.
    const rgb = await interpolateCaptions(gen, r.a, r.b, r.steps, r.seed);
    return await Promise.all(rgb.map((x) => encodePng(x, imageSize, imageSize)));
  }, req.signal);
  return json({ ...r, images: images.map(dataUrl) });
}

/** A request, taken apart: its path segments and a method check. */
interface Parsed {
  readonly req: Request;
  readonly path: string;
  readonly parts: readonly string[];
  readonly only: (method: string) => void;
}

function parseRequest(req: Request): Parsed {
  const path = new URL(req.url).pathname;
  const parts = path.split("/").filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      throw new HttpError(400, `bad URL escape in ${path}`);
    }
  });
  const only = (m: string) => {
    if (req.method !== m && !(m === "GET" && req.method === "HEAD")) {
      throw new HttpError(405, `${path} answers ${m} only`);
    }
  };
  return { req, path, parts, only };
}

/** Pages: `/`, `/training`, `/web/FILE`; else the JSON API under `/api`. */
async function route(ctx: AppContext, req: Request): Promise<Response> {
  const r = parseRequest(req);
  const { parts, only } = r;
  if (parts.length === 0) {
    only("GET");
    return await staticFile(ctx, "index.html");
  }
  if (parts.length === 1 && parts[0] === "training") {
    only("GET");
    return await staticFile(ctx, "training.html");
  }
  if (parts[0] === "web" && parts.length === 2) {
    only("GET");
    return await staticFile(ctx, parts[1]);
  }
  if (parts[0] !== "api") throw new HttpError(404, `no page ${r.path}`);
  return await routeApi(ctx, r);
}

async function routeApi(ctx: AppContext, r: Parsed): Promise<Response> {
  const { parts, only } = r;
  const [, what, name] = parts;
  if (what === "runs" && parts.length === 2) {
    only("GET");
    return json({ runs: await listRuns(ctx.runs) });
  }
  if (what === "generate" && parts.length === 2) {
    only("POST");
    return await generate(ctx, r.req);
  }
  if (what === "interpolate" && parts.length === 2) {
    only("POST");
    return await interpolate(ctx, r.req);
  }
  if (what === "run" && name !== undefined) {
    only("GET");
    const answer = await routeRun(ctx, r, name);
    if (answer) return answer;
  }
  throw new HttpError(404, `no API route ${r.req.method} ${r.path}`);
}

/** `/api/run/NAME`, its `losses.svg` and `samples/FILE`. */
async function routeRun(ctx: AppContext, r: Parsed, name: string) {
  if (!isSafeName(name)) throw new HttpError(400, `bad run name "${name}"`);
  const [, , , sub, file] = r.parts;
  const run = await runDetail(ctx, name);
  if (r.parts.length === 3) {
    // The page plots from the SVG; the rows are for scripts, so cap their number.
    return json({ ...run, losses: downsample(run.losses, 1000) });
  }
  if (sub === "losses.svg" && r.parts.length === 4) {
    return new Response(renderLossSvg(run.losses, { title: `training losses — ${name}` }), {
      headers: { "content-type": "image/svg+xml", "cache-control": "no-store" },
    });
  }
  if (sub === "samples" && r.parts.length === 5) {
    if (!run.samples.includes(file)) {
      throw new HttpError(404, `no sample grid "${file}" in run ${name}`);
    }
    return new Response(await Deno.readFile(`${ctx.runs}/${name}/samples/${file}`), {
      headers: { "content-type": "image/png", "cache-control": "no-cache" },
    });
  }
  return undefined;
}

export interface ServerOptions extends ServeOptions {
  readonly port?: number;
  readonly hostname?: string;
  readonly signal?: AbortSignal;
  readonly onListen?: (addr: { hostname: string; port: number; url: string }) => void;
}

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  readonly app: App;
  readonly finished: Promise<void>;
  readonly shutdown: () => Promise<void>;
}

/**
 * Serves the app on Deno.serve (127.0.0.1:8000 unless told); port 0 picks a free port.
 *
 * @example
 * ```ts
 * const s = startServer({ runs: "runs", port: 0 });
 * console.log(s.url); // http://127.0.0.1:40123/
 * await s.shutdown();
 * ```
 */
export function startServer(opts: ServerOptions): RunningServer {
  const app = createApp(opts);
  const hostname = opts.hostname ?? "127.0.0.1";
  const server = Deno.serve({
    port: opts.port ?? 8000,
    hostname,
    signal: opts.signal,
    onListen: () => {},
  }, app.handler);
  const port = server.addr.port;
  // An IPv6 literal needs brackets in a URL.
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  const url = `http://${host}:${port}/`;
  opts.onListen?.({ hostname, port, url });
  const finished = server.finished.finally(() => app.dispose());
  return {
    url,
    port,
    app,
    finished,
    shutdown: async () => {
      await server.shutdown();
      await finished;
    },
  };
}
