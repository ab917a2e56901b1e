/**
 * What stands between the network and the JSON API of `serve`: the Host header (against
 * DNS rebinding: a foreign page whose name resolves to 127.0.0.1), the token (when the
 * page is shared beyond loopback), the content type (parsed, not searched: a
 * `text/plain; x=application/json` post is one a browser sends cross-site without a
 * preflight) and a body read as a stream under a byte cap.
 *
 * Pure functions, except {@link readBodyCapped}, which reads the request's stream.
 *
 * @example
 * ```ts
 * import { hostAllowed, mediaType } from "./guard.ts";
 * mediaType("Application/JSON; charset=utf-8"); // { type: "application/json", params: { charset: "utf-8" } }
 * hostAllowed("evil.example:8000", ["localhost", "127.0.0.1", "::1"]); // false
 * ```
 */

/** Host names every `serve` answers to: the loopback names. */
export const LOOPBACK_NAMES: readonly string[] = ["localhost", "127.0.0.1", "::1"];

/** Whether `host` (a name or address, IPv6 with or without brackets) is loopback only. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h.endsWith(".localhost") || h === "::1" ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** Whether `host` is a wildcard address (every interface). */
export const isWildcard = (host: string): boolean =>
  ["0.0.0.0", "::", "[::]"].includes(host.trim());

/**
 * The host name of a `Host` header value: lower case, port and IPv6 brackets removed;
 * undefined when it is not a well-formed host.
 *
 * @example
 * ```ts
 * hostName("[::1]:8000"); // "::1"
 * hostName("LocalHost"); // "localhost"
 * ```
 */
export function hostName(header: string): string | undefined {
  const h = header.trim().toLowerCase();
  const v6 = /^\[([0-9a-f:.]+)\](?::\d{1,5})?$/.exec(h);
  if (v6) return v6[1];
  const named = /^([a-z0-9.-]+)(?::\d{1,5})?$/.exec(h);
  return named ? named[1].replace(/\.$/, "") : undefined;
}

/** Whether a request's `Host` header names one of `allowed` (names or addresses). */
export function hostAllowed(header: string | null, allowed: readonly string[]): boolean {
  const name = header === null ? undefined : hostName(header);
  return name !== undefined &&
    allowed.some((a) => a.replace(/^\[|\]$/g, "").toLowerCase().replace(/\.$/, "") === name);
}

/** A parsed `Content-Type`: the media type in lower case and its parameters. */
export interface MediaType {
  readonly type: string;
  readonly params: Readonly<Record<string, string>>;
}

/**
 * Parses a `Content-Type` value (RFC 9110 §8.3.1); undefined when it is malformed.
 *
 * @example
 * ```ts
 * mediaType("text/plain; x=application/json")?.type; // "text/plain"
 * ```
 */
export function mediaType(header: string | null): MediaType | undefined {
  if (header === null) return undefined;
  const [head, ...rest] = header.split(";");
  const type = head.trim().toLowerCase();
  if (!/^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(type)) return undefined;
  const params: Record<string, string> = {};
  for (const p of rest) {
    if (p.trim() === "") continue;
    const m = /^\s*([a-z0-9!#$&^_.+-]+)\s*=\s*("[^"]*"|[^\s";]*)\s*$/i.exec(p);
    if (!m) return undefined;
    params[m[1].toLowerCase()] = m[2].replace(/^"|"$/g, "");
  }
  return { type, params };
}

/** Whether a `Content-Type` value is JSON in UTF-8: `application/json`, charset utf-8 or none. */
export function isJsonType(header: string | null): boolean {
  const m = mediaType(header);
  if (m?.type !== "application/json") return false;
  const charset = m.params.charset?.toLowerCase();
  return charset === undefined || charset === "utf-8" || charset === "utf8";
}

/**
 * The token a request carries: `Authorization: Bearer TOKEN`, else the `petal_token`
 * cookie the page got when it was opened with `?token=TOKEN`.
 */
export function requestToken(req: Request): string | undefined {
  const auth = /^Bearer\s+(\S+)$/i.exec(req.headers.get("authorization") ?? "");
  if (auth) return auth[1];
  for (const part of (req.headers.get("cookie") ?? "").split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === TOKEN_COOKIE) return v.join("=");
  }
  return undefined;
}

/** The cookie that carries the token for the page's own requests. */
export const TOKEN_COOKIE = "petal_token";

/** Compares two strings in time that depends on their length only. */
export function sameToken(a: string | undefined, b: string): boolean {
  if (a === undefined || a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < b.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** A new random token: 128 bits, URL-safe. */
export const newToken = (): string =>
  Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0"))
    .join("");

/** Why a body was not read. */
export type BodyProblem = "too-large" | "not-utf8";

/**
 * Reads a request body as UTF-8 text, at most `maxBytes`: a `Content-Length` over it is
 * refused before reading, and a stream that runs past it is cancelled there.
 *
 * @example
 * ```ts
 * const r = await readBodyCapped(req, 64 * 1024); // { text } | { problem: "too-large" }
 * ```
 */
export async function readBodyCapped(
  req: Request,
  maxBytes: number,
): Promise<{ text: string } | { problem: BodyProblem }> {
  const declared = req.headers.get("content-length");
  if (declared !== null && !(/^\d+$/.test(declared) && Number(declared) <= maxBytes)) {
    await req.body?.cancel().catch(() => {});
    return { problem: "too-large" };
  }
  if (req.body === null) return { text: "" };
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      return { problem: "too-large" };
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  chunks.reduce((at, c) => (bytes.set(c, at), at + c.length), 0);
  try {
    return { text: new TextDecoder("utf-8", { fatal: true }).decode(bytes) };
  } catch {
    return { problem: "not-utf8" };
  }
}
