/**
 * Docs that cannot drift: README's Layout names every file of every code folder, and
 * nothing that is not there; no placeholder (a SHOUTED_NAME the code does not know) is
 * left in the prose of README and docs.
 */
import { assert, assertEquals } from "./assert.ts";
import { ROOT } from "./fixtures.ts";

/** Folders whose files the Layout lists; what .gitignore leaves out is skipped. */
const CODE_ROOTS = ["stages", "pipeline", "tasks", "docs/examples", "native"];
const IGNORED = new Set(["native/build"]);

/** The Layout block's entries: path → the text beside it (continuation lines joined). */
async function layoutEntries(): Promise<Map<string, string>> {
  const readme = await Deno.readTextFile(`${ROOT}README.md`);
  const section = readme.slice(readme.indexOf("## Layout"));
  const start = section.indexOf("```\n") + 4;
  const block = section.slice(start, section.indexOf("\n```", start));
  const entries = new Map<string, string>();
  let last = "";
  for (const line of block.split("\n")) {
    if (/^\S/.test(line)) {
      const [path, ...rest] = line.split(/\s{2,}/);
      last = path;
      entries.set(path, rest.join(" "));
    } else entries.set(last, `${entries.get(last)} ${line.trim()}`);
  }
  return entries;
}

/** The names a folder entry lists: after each colon, split on commas and semicolons. */
const listedNames = (text: string): string[] =>
  text.slice(text.indexOf(": ") + 2).split(/[,;]/).map((part) => part.trim())
    .map((part) => part.includes(": ") ? part.slice(part.lastIndexOf(": ") + 2) : part)
    .filter((n) => n.length > 0);

/** A folder's entries as the Layout names them: `x.ts` → `x`, a folder → `x/`. */
async function namesIn(folder: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(`${ROOT}${folder}`)) {
    if (IGNORED.has(`${folder}/${e.name}`)) continue;
    names.push(e.isDirectory ? `${e.name}/` : e.name.replace(/\.ts$/, ""));
  }
  return names.sort();
}

async function codeFolders(): Promise<string[]> {
  const out: string[] = [];
  const walk = async (folder: string) => {
    out.push(folder);
    for await (const e of Deno.readDir(`${ROOT}${folder}`)) {
      const path = `${folder}/${e.name}`;
      if (e.isDirectory && !IGNORED.has(path)) await walk(path);
    }
  };
  for (const root of CODE_ROOTS) await walk(root);
  return out;
}

Deno.test("README Layout: every code folder is listed with exactly the files in it", async () => {
  const entries = await layoutEntries();
  for (const folder of await codeFolders()) {
    const text = entries.get(`${folder}/`);
    assert(text !== undefined, `README Layout lacks ${folder}/`);
    assertEquals(listedNames(text).sort(), await namesIn(folder), `README Layout, ${folder}/`);
  }
  for (const path of entries.keys()) {
    const stat = await Deno.stat(`${ROOT}${path}`).catch(() => undefined);
    assert(stat, `README Layout names ${path}, which does not exist`);
    assertEquals(stat.isDirectory, path.endsWith("/"), path);
  }
});

/** Markdown prose: fenced blocks and code spans removed. */
const prose = (markdown: string): string =>
  markdown.replace(/```[\s\S]*?```/g, "").replace(/`[^`\n]*`/g, "");

/** Every SHOUTED_NAME in the sources petal ships (env variables, constants). */
async function sourceNames(): Promise<Set<string>> {
  const names = new Set<string>();
  const files = (await codeFolders()).map(async (folder) => {
    for await (const e of Deno.readDir(`${ROOT}${folder}`)) {
      if (!e.isFile || !/\.(ts|js|cpp|hpp|sh|py)$/.test(e.name)) continue;
      const text = await Deno.readTextFile(`${ROOT}${folder}/${e.name}`);
      for (const m of text.matchAll(/\b[A-Z][A-Z0-9]+(?:_[A-Z0-9]+)+\b/g)) names.add(m[0]);
    }
  });
  await Promise.all(files);
  return names;
}

Deno.test("README and docs: every SHOUTED_NAME in prose is one the code knows (no placeholders)", async () => {
  const known = await sourceNames();
  assert(known.has("PETAL_EW_THREADS"), "the scan finds libpetal's environment variables");
  for (const doc of ["README.md", "docs/quality.md", "docs/serve.md"]) {
    const text = prose(await Deno.readTextFile(`${ROOT}${doc}`));
    const unknown = [...text.matchAll(/\b[A-Z][A-Z0-9]+(?:_[A-Z0-9]+)+\b/g)]
      .map((m) => m[0]).filter((name) => !known.has(name));
    assertEquals(unknown, [], `${doc}: names no source file knows (a placeholder left in?)`);
  }
});
