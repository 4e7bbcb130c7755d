// `npm run bench`: builds the service, makes the benchmark bundles, runs every scenario (each starts its own
// server processes) and writes bench/results/*.json, bench/README.md and the chart. `--only a,b` runs some.

import { execFileSync } from 'node:child_process'
import { ROOT } from './lib/server.js'
import { report, SCENARIOS } from './report.js'

const only = process.argv.indexOf('--only')
const wanted = only >= 0 ? (process.argv[only + 1] ?? '').split(',') : [...SCENARIOS]
const unknown = wanted.filter((w) => !(SCENARIOS as readonly string[]).includes(w))
if (unknown.length > 0) {
  process.stderr.write(`unknown scenario(s) ${unknown.join(', ')}; known: ${SCENARIOS.join(', ')}\n`)
  process.exit(2)
}

const t0 = performance.now()
process.stderr.write('building (npm run build): the benches run the compiled service, as npm start does\n')
execFileSync('npm', ['run', '-s', 'build'], { cwd: ROOT, stdio: 'inherit' })
for (const name of wanted) {
  const mod = (await import(`./${name}.js`)) as { run: () => Promise<unknown> }
  await mod.run()
}
report()
process.stderr.write(`bench done in ${((performance.now() - t0) / 1000).toFixed(0)} s\n`)
