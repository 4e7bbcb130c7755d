// Builds the native addons with the machine's C++ compiler and Node's own headers: native/dense.cc (the engine's
// Dense-layer kernel, src/engine/native-dense.ts) into native/build/dense.node, native/scan.cc (the JSON reader's rows,
// src/http/scan-instances.ts) into native/build/scan.node. Runs after `npm ci`/`npm install` (package.json
// "postinstall"); `npm run build:native` reruns it after an edit. An addon that does not build is said so and left
// out (exit 0): the server then runs Dense layers on the tfjs backend's kernel, or reads JSON rows in JS, only slower.
// `--required` makes any failure fatal (the Docker build, which must not ship an image without them unnoticed).
/* global process, console */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const required = process.argv.includes('--required')
/** Each addon, and what runs without it. */
const ADDONS = { dense: "Dense layers run on the tfjs backend's kernel", scan: 'JSON rows are read in JS' }
const names = Object.keys(ADDONS)

/** Says why `addons` were not built and what runs instead; with --required, fails the install. */
function notBuilt(why, addons) {
  for (const a of addons) {
    const line = `native/build.mjs: ${a}.node not built (${why}); ${ADDONS[a]} instead`
    if (required) console.error(line)
    else console.warn(line)
  }
}

function skip(why) {
  notBuilt(why, names)
  process.exit(required ? 1 : 0)
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
let failed = false
for (const addon of names) {
  const out = join(here, 'build', `${addon}.node`)
  const temporary = `${out}.${process.pid}.tmp`
  try {
    execFileSync(compiler, [...flags, join(here, `${addon}.cc`), '-o', temporary], { stdio: ['ignore', 'inherit', 'inherit'] })
    renameSync(temporary, out)
    console.log(`native/build.mjs: built ${out}`)
  } catch (err) {
    rmSync(temporary, { force: true })
    rmSync(out, { force: true }) // not an older build of other source under the same version
    // No compiler: none of them can be built. A compile error (an older compiler without std::from_chars for double,
    // say) costs this addon only.
    if (err.code === 'ENOENT') skip(`no C++ compiler '${compiler}' (set CXX)`)
    notBuilt(`${compiler} failed on ${addon}.cc`, [addon])
    failed = true
  }
}
if (failed && required) process.exit(1)
