// The training page: polls GET /api/run/:name every few seconds and redraws the stats,
// the loss plot (inline SVG rendered by the server's plots.ts, the same as losses.png)
// and the sample grids. A failed poll shows its message and the next poll tries again.
import { api, fillSelect, formatDuration, setError } from "./common.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 3000;
/** The loss log changes every step while training; this long without a change = idle. */
const LIVE_SECONDS = 60;

const sampleUrl = (run, file, version) =>
  `/api/run/${encodeURIComponent(run)}/samples/${encodeURIComponent(file)}?v=${version ?? 0}`;

const num = (x, digits = 3) => (Number.isFinite(x) ? x.toFixed(digits) : "–");

async function refreshRuns() {
  const { runs } = await api("/api/runs");
  const names = runs.map((r) => r.name);
  const wanted = new URLSearchParams(location.search).get("run") ?? undefined;
  fillSelect($("run"), names, $("run").value || wanted);
  if (names.length === 0) {
    throw new Error("no runs under --runs yet: start one with `deno task train --out runs/NAME`");
  }
}

function scoreTable(title, fields) {
  const entries = Object.entries(fields ?? {});
  if (entries.length === 0) return [];
  const h = document.createElement("h3");
  h.textContent = title;
  const table = document.createElement("table");
  for (const [k, v] of entries) {
    const tr = table.insertRow();
    tr.insertCell().textContent = k;
    tr.insertCell().textContent = typeof v === "number" ? String(Number(v.toPrecision(5))) : v;
  }
  return [h, table];
}

let shownVersion;
let shownEarlier = "";

async function refreshRun(name) {
  const run = await api(`/api/run/${encodeURIComponent(name)}`);
  const s = run.summary;
  $("stat-step").textContent = String(s.step);
  $("stat-epoch").textContent = String(s.epoch);
  $("stat-ips").textContent = num(s.imagesPerSecond, 1);
  $("stat-elapsed").textContent = formatDuration(s.elapsed);
  $("stat-eta").textContent = s.eta === undefined
    ? "unknown"
    : s.eta === 0
    ? "done"
    : formatDuration(s.eta);
  $("stat-eta").title = s.eta === undefined ? "the run's budget is not recorded (budget.json)" : "";
  $("stat-loss").textContent = `${num(s.lossD)} / ${num(s.lossG)}`;
  $("stat-model").textContent = run.model
    ? `${run.model.size}, batch ${run.train?.batchSize ?? "?"}, ${run.train?.loss ?? "?"}`
    : "no checkpoint yet";
  const live = s.idle !== undefined && s.idle < LIVE_SECONDS;
  $("live").textContent = live ? "training" : `idle ${formatDuration(s.idle)}`;
  $("live").className = live ? "badge live" : "badge";

  const svg = await fetch(`/api/run/${encodeURIComponent(name)}/losses.svg`);
  if (!svg.ok) throw new Error((await svg.json()).error);
  $("plot").innerHTML = await svg.text();

  $("scores").replaceChildren(
    ...scoreTable("Evaluator (evaluator.json)", run.scores.evaluator),
    ...scoreTable("Scores (score.json)", run.scores.score),
  );

  const hasLatest = run.samples.includes("latest.png");
  $("latest").hidden = !hasLatest;
  $("no-samples").hidden = hasLatest;
  // Only swap the image when the grid changed, so the page does not flicker every poll.
  if (hasLatest && shownVersion !== `${name}:${run.samplesVersion}`) {
    shownVersion = `${name}:${run.samplesVersion}`;
    $("latest").src = sampleUrl(name, "latest.png", run.samplesVersion);
  }
  const epochs = run.samples.filter((f) => f !== "latest.png").slice(0, 12);
  const key = `${name}:${epochs.join(",")}`;
  if (key !== shownEarlier) {
    shownEarlier = key;
    $("earlier").replaceChildren(...epochs.map((f) => {
      const a = document.createElement("a");
      a.href = sampleUrl(name, f, 0);
      a.target = "_blank";
      const img = new Image();
      img.src = a.href;
      img.alt = f;
      const label = document.createElement("span");
      label.textContent = `epoch ${Number(f.match(/\d+/)[0])}`;
      a.append(img, label);
      return a;
    }));
    if (epochs.length === 0) $("earlier").textContent = "none yet";
  }
}

async function poll() {
  try {
    await refreshRuns();
    if ($("run").value) await refreshRun($("run").value);
    setError("");
  } catch (e) {
    setError(e.message);
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

$("run").addEventListener("change", () => {
  history.replaceState(null, "", `?run=${encodeURIComponent($("run").value)}`);
  refreshRun($("run").value).catch((e) => setError(e.message));
});

poll();
