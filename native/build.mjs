// Builds native/dense.cc (the engine's Dense-layer kernel, src/engine/native-dense.ts) into native/build/dense.node
// with the machine's C++ compiler and Node's own headers. Runs after `npm ci`/`npm install` (package.json
// "postinstall"); `npm run build:native` reruns it after an edit. Without a compiler or headers it says why and
// exits 0: the server then runs Dense layers on the tfjs backend's kernel, only slower. `--required` makes any
// failure fatal (the Docker build, which must not ship an image without it unnoticed).
/* global process, console */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const required = process.argv.includes('--required')
const out = join(here, 'build', 'dense.node')

function skip(why) {
  const line = `native/build.mjs: dense.node not built (${why}); Dense layers run on the tfjs backend's kernel instead`
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
mkdirSync(dirname(out), { recursive: true })
const temporary = `${out}.${process.pid}.tmp`
// -ffp-contract=off: a multiply and an add stay two roundings, as in the wasm kernel, so the outputs are its own.
const flags = ['-O3', '-std=c++17', '-ffp-contract=off', '-Wno-psabi', '-fPIC', '-shared', '-fvisibility=hidden', `-I${headers}`]
if (process.platform === 'darwin') flags.push('-undefined', 'dynamic_lookup')
try {
  execFileSync(compiler, [...flags, join(here, 'dense.cc'), '-o', temporary], { stdio: ['ignore', 'inherit', 'inherit'] })
  renameSync(temporary, out)
} catch (err) {
  rmSync(temporary, { force: true })
  skip(err.code === 'ENOENT' ? `no C++ compiler '${compiler}' (set CXX)` : `${compiler} failed`)
}
console.log(`native/build.mjs: built ${out}`)
