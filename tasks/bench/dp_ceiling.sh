#!/usr/bin/env bash
# What data parallelism over two single-threaded workers could buy the default recipe's GAN
# step (tasks/bench/recipe_step.ts, synthetic data), measured without building it: one
# process at batch 32 on every core, against two processes side by side at batch 16 on one
# thread each (their img/s summed). No gradient exchange and separate batch statistics, so
# the pair is an upper bound on the real thing. Run alone on the machine:
#   tasks/bench/dp_ceiling.sh [rounds=2] [steps=30]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
rounds="${1:-2}"; steps="${2:-30}"
cd "$root"
settings() { # the default recipe, at batch $1
  deno eval "import { recipe } from './stages/recipe.ts'; const r = recipe();
    console.log(JSON.stringify({ ...r, train: { ...r.train, batchSize: $1 } }))"
}
script() { # $1: file, $2: settings
  sed -e 's#"\.\./\.\./#"./#g' tasks/bench/recipe_step.ts >"$1"
  cat >>"$1" <<EOT
if (import.meta.main) {
  const { useBackend } = await import("./pipeline/backends/backend.ts");
  await useBackend("native");
  const r = await timeRecipeSteps($steps, 3, $2);
  console.log(\`DP \${r.imgS.toFixed(1)} \${r.cores?.toFixed(2)}\`);
}
EOT
}
script .petal_dp32.ts "$(settings 32)"
script .petal_dp16.ts "$(settings 16)"
trap 'rm -f .petal_dp32.ts .petal_dp16.ts' EXIT
timed() { deno run -A "$@" 2>/dev/null | grep '^DP ' | cut -d' ' -f2-; }
echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$rounds"); do
  one="$(timed .petal_dp32.ts)"
  a="$(mktemp)"; b="$(mktemp)"
  OMP_NUM_THREADS=1 timed .petal_dp16.ts >"$a" &
  OMP_NUM_THREADS=1 timed .petal_dp16.ts >"$b" &
  wait
  read -r ia ca <"$a"; read -r ib cb <"$b"; rm -f "$a" "$b"
  read -r i1 c1 <<<"$one"
  awk -v i1="$i1" -v c1="$c1" -v ia="$ia" -v ca="$ca" -v ib="$ib" -v cb="$cb" -v r="$r" 'BEGIN {
    printf "round %d: one process, batch 32: %.1f img/s, %.2f cores; two at batch 16, one thread each: %.1f + %.1f = %.1f img/s, %.2f cores: %.2fx\n",
      r, i1, c1, ia, ib, ia + ib, ca + cb, (ia + ib) / i1 }'
done
