/** Small data sets made in code, so the suite needs no ../shared. */
import { ensureSyntheticData } from "../pipeline/synthetic.ts";

export const SHARED = new URL("../../shared/", import.meta.url).pathname;
export const hasShared = (() => {
  try {
    return Deno.statSync(`${SHARED}oxford102/images`).isDirectory;
  } catch {
    return false;
  }
})();

/** A fresh temp folder holding a small synthetic Reed-layout set. */
export async function syntheticFixture(trainImages = 24, testImages = 6): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "petal-test-" });
  return await ensureSyntheticData(`${dir}/synthetic`, { trainImages, testImages });
}

/** Runs a task as a user would; returns exit code and the text it printed. */
export async function runTask(script: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-webgpu",
      new URL(`../tasks/${script}`, import.meta.url).pathname,
      ...args,
    ],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
