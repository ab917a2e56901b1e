// Shared by both pages: JSON calls that turn a server `{error}` into a thrown Error
// (so a page shows the server's own message), and small formatting helpers.

/** GET or POST JSON; throws Error(message from the server) on a non-2xx answer. */
export async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  };
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new Error("the server is not answering (is `deno task serve` still running?)");
  }
  let data;
  try {
    data = await res.json();
  } catch {
    throw new Error(`${res.status} ${res.statusText}: the answer is not JSON`);
  }
  if (!res.ok) throw new Error(data.error ?? `${res.status} ${res.statusText}`);
  return data;
}

/** Shows `message` in the page's error box, or hides the box when it is empty. */
export function setError(message) {
  const box = document.getElementById("error");
  box.textContent = message ?? "";
  box.hidden = !message;
}

/** Seconds → "1 h 02 min", "3 min 05 s", "12 s". */
export function formatDuration(seconds) {
  if (seconds === undefined || seconds === null || !Number.isFinite(seconds)) return "unknown";
  const s = Math.round(seconds);
  const pad = (n) => String(n).padStart(2, "0");
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${pad(Math.floor((s % 3600) / 60))} min`;
  if (s >= 60) return `${Math.floor(s / 60)} min ${pad(s % 60)} s`;
  return `${s} s`;
}

/** Fills a <select> with `names`, keeping the current choice when it is still there. */
export function fillSelect(select, names, preferred) {
  const keep = preferred ?? select.value;
  select.replaceChildren(...names.map((n) => new Option(n, n)));
  if (names.includes(keep)) select.value = keep;
}
