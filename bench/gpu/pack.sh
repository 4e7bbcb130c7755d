#!/usr/bin/env bash
# Packs what bench/gpu/run.sh needs on the GPU machine (no Node, no npm, no network there) into .gpu/ (git-ignored):
# a Node binary, the Vulkan loader and GL dispatch libraries (Debian amd64 packages), the built server (dist/), a
# production node_modules with linux-x64 binaries only (webgpu and tfjs-backend-webgpu included; the tfjs-node
# packages left out: their libtensorflow downloads at install, which cannot happen there) and the check itself,
# bundled by esbuild into .gpu/bench/check.mjs. After the recipe in ../shared/gpu/pack.sh, which was run there.
# Usage, from the project root: bash bench/gpu/pack.sh     (then the device call: carry [".gpu"], see README.md)
set -eu
root=$(git rev-parse --show-toplevel); cd "$root"
rm -rf .gpu && mkdir -p .gpu/gl .gpu/bench
xz -T0 -6 -c "$(readlink -f "$(command -v node)")" > .gpu/node.xz
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
mkdir -p /tmp/amd64/partial; apt-get $o update >/dev/null 2>&1
(cd .gpu/gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null 2>&1)
npm run --silent build
tmp=$(mktemp -d); cp package.json package-lock.json "$tmp"/
(cd "$tmp" && npm ci --omit=dev --ignore-scripts --silent >/dev/null 2>&1)
nm=$tmp/node_modules
rm -rf "$nm/@tensorflow/tfjs-node" "$nm/@tensorflow/tfjs-node-gpu"
test -f "$nm/webgpu/dist/linux-x64/dawn.node" && test -d "$nm/@tensorflow/tfjs-backend-webgpu" || { echo 'pack: webgpu packages missing' >&2; exit 1; }
find "$nm" -name '*.map' -delete
find "$nm" -type d -path '*/dist/*' \( -name 'darwin-*' -o -name 'win32-*' -o -name 'linux-arm64' \) -prune -exec rm -rf {} +
find "$nm/@tensorflow" -type f \( -name '*.min.js' -o -name '*.es2017.js' -o -name '*.fesm.js' -o -name '*.d.ts' \) -delete 2>/dev/null || true
tar -C "$tmp" -cf - node_modules | xz -T0 -6 > .gpu/node_modules.tar.xz
tar -cf - dist | xz -T0 -6 > .gpu/dist.tar.xz
rm -rf "$tmp"
# The check and what it imports (bench/, tools/, src/, autocannon) in one file; tfjs and Dawn come from node_modules.
# It sits two folders down like bench/gpu/check.ts, so its ROOT (import.meta.url + '../..') is the project root.
npx esbuild bench/gpu/check.ts --bundle --platform=node --format=esm --target=node20 --log-level=warning \
  --external:@tensorflow/* --external:webgpu --outfile=.gpu/bench/check.mjs \
  --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
# A launcher: with check.mjs itself as process.argv[1], the bundled tools/bench-model.ts would take it for its own
# command line and run.
echo "await import('./check.mjs')" > .gpu/bench/main.mjs
cp bench/gpu/prelude.sh .gpu/prelude.sh
tree_b=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
gpu_b=$(du -sb .gpu | cut -f1)
echo "packed .gpu: $((gpu_b/1048576)) MiB; tracked files: $((tree_b/1048576)) MiB; limit 64 MiB together (untracked files that git does not ignore travel too)"
