#!/usr/bin/env bash
# Every GPU figure the README quotes, in one run of under five minutes, printed as one table:
#   - the CUDA-only tests (pytest -m gpu: mixed precision, CUDA graphs, no host syncs),
#   - Gatys at 512 px: ms/iteration of the seed-style reference and of ours in fp32 and bf16,
#     each eager and with CUDA graphs (bench/gatys_bench.py),
#   - blend: images/s batched, fp32 and bf16 (bench/blend_bench.py).
#
#   bash bench/gpu_check.sh              # on a machine with CUDA; PYTHON=... picks the interpreter
#
# Without CUDA it says so and exits 0 (nothing to measure). Random weights throughout: the timings
# are real, the images are not style transfer.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
OUT="$(mktemp -d)"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" STYLEQUEUE_RANDOM_WEIGHTS=1

if ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "gpu_check: no CUDA device visible to $PYTHON (torch.cuda.is_available() is false or torch is" \
       "missing): nothing to measure. Run this on a GPU machine (PYTHON=... to pick its interpreter)."
  exit 0
fi
"$PYTHON" -c 'import torch; print(f"gpu_check: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")'
started=$SECONDS

# 1. The CUDA-only tests (about a minute).
timeout 120 "$PYTHON" -m pytest -q -m gpu -p no:cacheprovider tests/test_gatys.py tests/test_lbfgs.py \
  tests/test_blend.py >"$OUT/tests.txt" 2>&1
echo "tests rc $?" >>"$OUT/tests.txt"

# 2. Gatys at 512 px (about a minute on an H100/H200).
timeout 150 "$PYTHON" bench/gatys_bench.py --random-weights --device cuda --sizes 512 --iterations 20 \
  --repeats 3 --precisions fp32 bf16 --cuda-graphs --json "$OUT/gatys.json" >"$OUT/gatys.txt" 2>&1

# 3. Blend, batched (about a minute).
timeout 90 "$PYTHON" bench/blend_bench.py --random-weights --device cuda --sizes 512 --batch 32 --jobs 128 \
  --repeats 2 --no-peer >"$OUT/blend.txt" 2>&1

"$PYTHON" - "$OUT" "$((SECONDS - started))" <<'EOF'
import json, re, sys
from pathlib import Path

out, seconds = Path(sys.argv[1]), sys.argv[2]
rows = []
tests = (out / "tests.txt").read_text(errors="replace")
summary = re.findall(r"^=+ (.*) in [\d.]+s", tests, re.M) or re.findall(r"^(\d+ passed.*)$", tests, re.M)
rows.append(("tests -m gpu", summary[-1] if summary else "no summary: see " + str(out / "tests.txt")))
gatys = out / "gatys.json"
if gatys.is_file():
    for result in json.loads(gatys.read_text())["results"]:
        for r in result["rows"]:
            rows.append((f"gatys {result['size']} px {r['variant']}",
                         f"{r['ms_per_iteration']:.1f} ms/iter, {r['speedup']:.2f}x ref, loss {100 * r['vs_fp32']:+.1f}% vs fp32"))
else:
    rows.append(("gatys 512 px", "no result: see " + str(out / "gatys.txt")))
blend = (out / "blend.txt").read_text(errors="replace") if (out / "blend.txt").exists() else ""
found = re.findall(r"^\s*(fp32|bf16|fp16)\s+(\d+)\s+(on|off)\s+([\d.]+)\s+([\d.]+)", blend, re.M)
for precision, batch, cache, rate, latency in found:
    rows.append((f"blend 512 px {precision} batch {batch} cache {cache}", f"{rate} images/s, {latency} ms latency"))
if not found:
    rows.append(("blend 512 px", "no result: see " + str(out / "blend.txt")))
width = max(len(name) for name, _ in rows)
print(f"\n{'figure':<{width}}  value")
for name, value in rows:
    print(f"{name:<{width}}  {value}")
print(f"({seconds} s; raw outputs in {out})")
EOF
