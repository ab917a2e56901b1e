// The generate page: caption → images from a chosen checkpoint, and a slider along the
// line between two captions' embeddings. Every failure lands in the error box; the
// controls are re-enabled whatever happens, so the page stays usable.
import { api, fillSelect, setError } from "./common.js";

const $ = (id) => document.getElementById(id);

async function loadCheckpoints() {
  try {
    const { runs } = await api("/api/runs");
    const names = runs.filter((r) => r.checkpoint).map((r) => r.name);
    fillSelect($("checkpoint"), names);
    if (names.length === 0) {
      setError("no checkpoints under --runs yet: train one with `deno task train --out runs/NAME`");
    }
  } catch (e) {
    setError(e.message);
  }
}

function image(src, alt) {
  const img = new Image();
  img.src = src;
  img.alt = alt;
  img.className = "sample";
  return img;
}

/** Runs `work` with `button` disabled and a status line; errors go to the error box. */
async function busy(button, status, text, work) {
  button.disabled = true;
  status.textContent = text;
  setError("");
  const started = performance.now();
  try {
    await work();
    status.textContent = `done in ${((performance.now() - started) / 1000).toFixed(1)} s`;
  } catch (e) {
    status.textContent = "";
    setError(e.message);
  } finally {
    button.disabled = false;
  }
}

$("generate-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  busy($("generate"), $("status"), "generating…", async () => {
    const caption = $("caption").value;
    const res = await api("/api/generate", {
      checkpoint: $("checkpoint").value,
      caption,
      count: $("count").value,
      seed: $("seed").value,
    });
    $("images").replaceChildren(...res.images.map((src, i) => image(src, `${caption} #${i + 1}`)));
  });
});

let interpImages = [];

function showInterp(i) {
  $("interp-image").src = interpImages[i];
  const t = interpImages.length > 1 ? i / (interpImages.length - 1) : 0;
  $("slider-label").textContent = `${Math.round(100 * (1 - t))}% first caption, ` +
    `${Math.round(100 * t)}% second`;
  for (const [j, img] of [...$("strip").children].entries()) {
    img.classList.toggle("selected", j === i);
  }
}

$("interpolate-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  busy($("interpolate"), $("interp-status"), "interpolating…", async () => {
    const res = await api("/api/interpolate", {
      checkpoint: $("checkpoint").value,
      a: $("caption").value,
      b: $("caption-b").value,
      steps: 9,
      seed: $("seed").value,
    });
    interpImages = res.images;
    $("strip").replaceChildren(...res.images.map((src, i) => {
      const img = image(src, `step ${i + 1}`);
      img.addEventListener("click", () => {
        $("slider").value = String(i);
        showInterp(i);
      });
      return img;
    }));
    $("slider").max = String(res.images.length - 1);
    $("slider").value = "0";
    $("interp").hidden = false;
    showInterp(0);
  });
});

$("slider").addEventListener("input", () => showInterp(Number($("slider").value)));

loadCheckpoints();
