#!/usr/bin/env bash
# A/B of the default recipe's GAN step alone (tasks/bench/recipe_step.ts, synthetic data, no
# image decoding: seconds per run instead of minutes), alternating two checkouts:
#   tasks/bench/ab_step.sh ../petal-3ec368c . [rounds=4] [steps=10]
# Prints img/s and cores busy per run, then the mean ratio new/old. Copies this tree's
# recipe_step.ts into each tree's root as .petal_ab_step.ts for the run (removed after).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
old="$(cd "$1" && pwd)"; new="$(cd "$2" && pwd)"
rounds="${3:-4}"; steps="${4:-10}"
# The step both trees time: the new tree's default recipe (an older tree has no recipe()).
settings="$(cd "$new" && deno eval 'import { recipe } from "./stages/recipe.ts"; console.log(JSON.stringify(recipe()))')"
for t in "$old" "$new"; do
  sed -e 's#"\.\./\.\./#"./#g' "$here/recipe_step.ts" >"$t/.petal_ab_step.ts"
  cat >>"$t/.petal_ab_step.ts" <<EOT
if (import.meta.main) {
  const { useBackend } = await import("./pipeline/backends/backend.ts");
  await useBackend("native");
  const r = await timeRecipeSteps($steps, 3, $settings);
  console.log(\`AB \${r.imgS.toFixed(2)} \${r.cores?.toFixed(2)}\`);
}
EOT
done
trap 'rm -f "$old/.petal_ab_step.ts" "$new/.petal_ab_step.ts"' EXIT
echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
res=""
for r in $(seq 1 "$rounds"); do
  for side in old new; do
    t="$old"; [[ $side == new ]] && t="$new"
    line="$(cd "$t" && deno run -A .petal_ab_step.ts 2>/dev/null | grep '^AB ')"
    echo "$side round $r: $(cut -d' ' -f2 <<<"$line") img/s, $(cut -d' ' -f3 <<<"$line") cores busy (load $(cut -d' ' -f1 /proc/loadavg))"
    res+="$side ${line#AB }"$'\n'
  done
done
awk '$1 == "old" { o += $2; no++ } $1 == "new" { n += $2; nn++ } END { printf "step: old %.1f img/s, new %.1f img/s: %.2f×\n", o / no, n / nn, (n / nn) / (o / no) }' <<<"$res"
