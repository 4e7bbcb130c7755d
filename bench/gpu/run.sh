#!/usr/bin/env bash
# The GPU check on the GPU machine (the device tool), from the project root, after `bash bench/gpu/pack.sh` here:
#   run  command: bash bench/gpu/run.sh    carry: [".gpu"]    timeout_s: 600
# Writes gpu.json, gpu.md and log.txt (and the logs of servers that failed) into $OUT; copy gpu.json into
# bench/results/ and the tables of gpu.md into the README (bench/gpu/README.md says how).
set -uo pipefail
source .gpu/prelude.sh
out=${OUT:-/tmp/mhe-gpu-out}; mkdir -p "$out"
# Within the 10-minute call: the check stops starting new steps after --deadline seconds.
timeout 570 node .gpu/bench/main.mjs --backend "${GPU_CHECK_BACKEND:-webgpu}" --deadline 500 --out "$out" "$@" 2>&1 | tee "$out/log.txt"
