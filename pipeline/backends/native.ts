/** Placeholder until the native kernels land (issue 5): reports that it is not built. */
export function registerNativeBackend(): Promise<{ ok: true } | { ok: false; reason: string }> {
  return Promise.resolve({ ok: false, reason: "native kernels not built yet" });
}
