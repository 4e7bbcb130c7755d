// Builds the native addons with the machine's C++ compiler and Node's own headers: native/dense.cc (the engine's
// Dense-layer kernel, src/engine/native-dense.ts) into native/build/dense.node, native/scan.cc (the JSON reader's rows,
// src/http/scan-instances.ts) into native/build/scan.node. Runs after `npm ci`/`npm install` (package.json
// "postinstall"); `npm run build:native` reruns it after an edit. Without a compiler or headers it says why and
// exits 0: the server then runs Dense layers on the tfjs backend's kernel and reads JSON rows in JS, only slower. `--required` makes any
// failure fatal (the Docker build, which must not ship an image without it unnoticed).
/* global process, console */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const required = process.argv.includes('--required')
const ADDONS = ['dense', 'scan']

function skip(why, addons = ADDONS) {
  const line = `native/build.mjs: ${addons.map((a) => `${a}.node`).join(', ')} not built (${why}); Dense layers run on the tfjs backend's kernel and JSON rows are read in JS instead`
  if (required) {
    console.error(line)
    process.exit(1)
  }
  console.warn(line)
  process.exit(0)
}

if (process.platform === 'win32') skip('Windows: not supported by this script')
// Node's headers: beside the binary in release builds and distribution packages; npm_config_nodedir where set.
const headers = [process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include', 'node'), join(dirname(process.execPath), '..', 'include', 'node')]
  .filter(Boolean)
  .find((dir) => existsSync(join(dir, 'node_api.h')))
if (headers === undefined) skip("Node's headers (node_api.h) not found beside the node binary")
const compiler = process.env.CXX || 'c++'
mkdirSync(join(here, 'build'), { recursive: true })
// -ffp-contract=off: a multiply and an add stay two roundings, as in the wasm kernel, so the outputs are its own.
const flags = ['-O3', '-std=c++17', '-ffp-contract=off', '-Wno-psabi', '-fPIC', '-shared', '-fvisibility=hidden', `-I${headers}`]
if (process.platform === 'darwin') flags.push('-undefined', 'dynamic_lookup')
for (const addon of ADDONS) {
  const out = join(here, 'build', `${addon}.node`)
  const temporary = `${out}.${process.pid}.tmp`
  try {
    execFileSync(compiler, [...flags, join(here, `${addon}.cc`), '-o', temporary], { stdio: ['ignore', 'inherit', 'inherit'] })
    renameSync(temporary, out)
  } catch (err) {
    rmSync(temporary, { force: true })
    skip(err.code === 'ENOENT' ? `no C++ compiler '${compiler}' (set CXX)` : `${compiler} failed`, ADDONS.slice(ADDONS.indexOf(addon)))
  }
  console.log(`native/build.mjs: built ${out}`)
}
