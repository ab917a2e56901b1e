#!/usr/bin/env bash
# A/B of the default recipe as a user runs it, between two checkouts of petal (issue 18):
# alternates OLD and NEW, ROUNDS times each, and prints per run img/s (train's closing line),
# the cores the process used during the GAN steps (CPU time / wall time from the first
# logged step to the end, from /proc/PID/stat) and, at the end, best-of-8 `deno task infer`
# captions/s of the 819 test captions with each tree's own checkpoint.
#
#   tasks/bench/ab.sh ../petal-3ec368c .          # 3 rounds, 60 steps each
#   ROUNDS=2 STEPS=40 tasks/bench/ab.sh OLD NEW
#   EXTRA="--diffaug" INFER=0 tasks/bench/ab.sh OLD NEW   # flags added to train; no infer
#
# Each tree needs `deno install` and native/build.sh run once. Data: ../shared/oxford102
# of the NEW tree (DATA=... to change). The text pre-training is cut to one step
# (--pretrain-text 1), as `deno task bench` does: the GAN step is what is timed.
set -euo pipefail
old="$(cd "$1" && pwd)"
new="$(cd "$2" && pwd)"
rounds="${ROUNDS:-3}"
steps="${STEPS:-60}"
read -r -a extra <<<"${EXTRA:-}"
data="${DATA:-$(cd "$new/../shared/oxford102" && pwd)}"
tmp="$(mktemp -d /tmp/petal-ab.XXXXXX)"
hz="$(getconf CLK_TCK)"
echo "A/B: old=$old ($(git -C "$old" rev-parse --short HEAD)) new=$new ($(git -C "$new" rev-parse --short HEAD))"
echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"

# cpu ticks (utime + stime) of a pid and its children that have been waited for
ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat" 2>/dev/null || echo ""; }

train() { # tree label round
  local tree="$1" label="$2" out="$tmp/$2-$3"
  (cd "$tree" && exec deno run -A --unstable-webgpu tasks/train.ts --data "$data" --steps "$steps" \
    --pretrain-text 1 --backend native --out "$out" --quiet "${extra[@]}") >"$out.log" 2>&1 &
  local pid=$! t0="" c0="" t1="" c1=""
  while kill -0 "$pid" 2>/dev/null; do
    # the deno process itself (the subshell exec'd into it)
    local c
    c="$(ticks "$pid")"
    if [[ -n "$c" ]]; then
      if [[ -z "$t0" && -f "$out/losses.csv" && "$(wc -l <"$out/losses.csv")" -ge 3 ]]; then
        t0="$(date +%s.%N)"; c0="$c"
      fi
      if [[ -n "$t0" ]]; then t1="$(date +%s.%N)"; c1="$c"; fi
    fi
    sleep 0.5
  done
  wait "$pid" || { echo "$label: train failed, see $out.log"; return 1; }
  local line rate cores
  line="$(grep -a 'stopped by' "$out.log" | tail -1)"
  rate="$(sed -E 's/.* ([0-9.]+) img\/s.*/\1/' <<<"$line")"
  cores="$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" -v hz="$hz" \
    'BEGIN { if (e > s) printf "%.2f", (b - a) / hz / (e - s); else print "?" }')"
  echo "$label round $3: train $rate img/s, $cores cores during steps (load $(cut -d' ' -f1 /proc/loadavg))"
  echo "$label $rate $cores" >>"$tmp/train.txt"
}

infer() { # tree label
  local tree="$1" label="$2" ck="$tmp/$2-1"
  local text one=()
  # Best of 8 at one guidance scale in both trees: the same work, whatever a tree's default.
  if grep -q "candidates" "$tree/tasks/infer.ts"; then one=(--candidates 8); fi
  if grep -q "guidance" "$tree/tasks/infer.ts"; then one+=(--guidance 1.5); fi
  text="$(cd "$tree" && deno run -A --unstable-webgpu tasks/infer.ts --checkpoint "$ck" \
    --captions "$data/test_captions.csv" --out "$ck/inference-$RANDOM" --backend native \
    "${one[@]}" 2>&1)"
  local rate
  rate="$(grep -aoE 'wrote 819 images .*\(([0-9.]+) img/s\)' <<<"$text" | sed -E 's/.*\(([0-9.]+) img\/s\)/\1/')"
  echo "$label infer: ${rate:-failed} captions/s (best of 8) (load $(cut -d' ' -f1 /proc/loadavg))"
  echo "$label $rate" >>"$tmp/infer.txt"
}

for r in $(seq 1 "$rounds"); do
  train "$old" old "$r"
  train "$new" new "$r"
done
for r in $(seq 1 $((${INFER:-1} ? 2 : 0))); do
  infer "$old" old
  infer "$new" new
done
summ() { awk -v k="$1" -v col="$2" '$1 == k && $col != "?" { s += $col; n++ } END { if (n) printf "%.2f", s / n; else print "?" }' "$3"; }
o="$(summ old 2 "$tmp/train.txt")"; n="$(summ new 2 "$tmp/train.txt")"
oc="$(summ old 3 "$tmp/train.txt")"; nc="$(summ new 3 "$tmp/train.txt")"
echo "train: old $o img/s ($oc cores), new $n img/s ($nc cores): $(awk -v a="$o" -v b="$n" 'BEGIN{printf "%.2f", b/a}')×"
if [[ -f "$tmp/infer.txt" ]]; then
  oi="$(summ old 2 "$tmp/infer.txt")"; ni="$(summ new 2 "$tmp/infer.txt")"
  echo "infer: old $oi, new $ni captions/s: $(awk -v a="$oi" -v b="$ni" 'BEGIN{printf "%.2f", b/a}')×"
fi
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg); logs in $tmp"
