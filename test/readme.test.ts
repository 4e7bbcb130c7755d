// The README stays true: its two commands, every setting the code knows, its example (error codes: test/errors.test.ts).
import t from 'tap'
import { readFileSync } from 'node:fs'
import { OPTIONS } from '../src/config.js'
import { childEnv } from './helpers/process.js'

const readme = readFileSync('README.md', 'utf8')
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }

t.test('no merge conflict markers left in the documentation', async (t) => {
  for (const file of ['README.md', 'bench/README.md', 'models/demo/README.md']) {
    const marker = /^(<{7}|={7}|>{7})( |$)/m.exec(readFileSync(file, 'utf8'))
    t.notOk(marker, `${file}: ${marker ? `conflict marker "${marker[0]}"` : 'clean'}`)
  }
})

t.test('the two commands', async (t) => {
  t.match(readme, 'npm ci && npm start')
  t.match(readme, 'npm test')
  t.ok(pkg.scripts.start && pkg.scripts.test, 'package.json has start and test')
  t.match(readFileSync('.ci/run', 'utf8'), /npm ci\s*\nnpm test/, '.ci/run runs npm ci then npm test')
})

t.test('every setting is in the configuration table with its flag and default', async (t) => {
  for (const o of Object.values(OPTIONS)) {
    const row = readme.split('\n').find((l) => l.startsWith(`| \`${o.env}\` |`))
    t.ok(row, `${o.env} documented`)
    t.match(row ?? '', `\`--${o.flag}\``, `${o.env} flag`)
    t.match(row ?? '', o.default === '' ? '(empty)' : `| ${o.default} |`, `${o.env} default`)
  }
})

t.test('the README example request, run against the demo bundle, gives the answer it shows', async (t) => {
  const { execFileSync } = await import('node:child_process')
  const { buildApp } = await import('../src/http/app.js')
  const { loadConfig } = await import('../src/config.js')
  const cmd = /npx tsx tools\/demo\/request\.ts (.*) > request\.json/.exec(readme)
  t.ok(cmd, 'README shows the request command')
  const body = execFileSync(process.execPath, ['--import', 'tsx', 'tools/demo/request.ts', ...cmd![1]!.split(/\s+/).filter((w) => !w.startsWith('#'))], { encoding: 'utf8', env: childEnv() })
  const shownAnswer = /```json\n(\{"model":"demo"[\s\S]*?)\n```/.exec(readme)
  t.ok(shownAnswer, 'README shows the answer')
  const shown = JSON.parse(shownAnswer![1]!.replace(/\n/g, '')) as { predictions: { top_k: { label: string; label_id: number; score: number }[] }[] }
  const app = await buildApp(loadConfig({ MHE_BACKEND: 'wasm', LOG_LEVEL: 'silent' }))
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/predict', headers: { 'content-type': 'application/json' }, payload: body })
  t.equal(res.statusCode, 200)
  const got = res.json() as typeof shown
  t.same(got.predictions[0]!.top_k.map((c) => [c.label_id, c.label]), shown.predictions[0]!.top_k.map((c) => [c.label_id, c.label]), 'same labels as the README shows (retrained? update the README example)')
  got.predictions[0]!.top_k.forEach((c, i) => t.ok(Math.abs(c.score - shown.predictions[0]!.top_k[i]!.score) < 1e-4, 'same scores'))

  // The binary example: the same words as raw float32 to POST /predict/binary, the same labels.
  const binCmd = /npx tsx tools\/demo\/request\.ts (.*) > request\.f32/.exec(readme)
  const binUrl = /curl -s 'localhost:8080(\/predict\/binary\?top_k=\d+)' -H 'content-type: application\/octet-stream' --data-binary @request\.f32/.exec(readme)
  t.ok(binCmd && binUrl, 'README shows the binary request and its curl')
  const raw = execFileSync(process.execPath, ['--import', 'tsx', 'tools/demo/request.ts', ...binCmd![1]!.split(/\s+/)], { env: childEnv() })
  const bin = await app.inject({ method: 'POST', url: binUrl![1]!, headers: { 'content-type': 'application/octet-stream' }, payload: raw })
  t.equal(bin.statusCode, 200)
  t.same((bin.json() as typeof shown).predictions[0]!.top_k.map((c) => c.label), shown.predictions[0]!.top_k.map((c) => c.label), 'binary: the same labels')
})

t.test('the Clients section names the generator versions installed', async (t) => {
  const pkgs = ['openapi-typescript', 'openapi-fetch', '@hey-api/openapi-ts', 'orval', 'oazapfts', '@oazapfts/runtime']
  for (const name of pkgs) {
    const { version } = JSON.parse(readFileSync(`node_modules/${name}/package.json`, 'utf8')) as { version: string }
    t.ok(readme.includes(`${name} ${version}`), `README names ${name} ${version}`)
  }
})

t.test('the README V2 example request, run against the demo bundle, gives the answer it shows', async (t) => {
  const { execFileSync } = await import('node:child_process')
  const { buildApp } = await import('../src/http/app.js')
  const { loadConfig } = await import('../src/config.js')
  const cmd = /npx tsx tools\/demo\/request\.ts (--v2 .*) > v2-request\.json/.exec(readme)
  t.ok(cmd, 'README shows the V2 request command')
  const body = execFileSync(process.execPath, ['--import', 'tsx', 'tools/demo/request.ts', ...cmd![1]!.split(/\s+/).filter((w) => !w.startsWith('#'))], { encoding: 'utf8' })
  const shownAnswer = /```json\n(\{"model_name":"demo"[\s\S]*?)\n```/.exec(readme)
  t.ok(shownAnswer, 'README shows the V2 answer')
  const shown = JSON.parse(shownAnswer![1]!.replace(/\n/g, '')) as { outputs: { name: string; data: unknown[] }[] }
  const app = await buildApp(loadConfig({ MHE_BACKEND: 'wasm', LOG_LEVEL: 'silent' }))
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'POST', url: '/v2/models/demo/infer', headers: { 'content-type': 'application/json' }, payload: body })
  t.equal(res.statusCode, 200)
  const got = res.json() as typeof shown
  t.same(got.outputs.map((o) => o.name), shown.outputs.map((o) => o.name))
  for (const name of ['label_ids', 'labels', 'head_ids']) {
    t.same(got.outputs.find((o) => o.name === name)?.data, shown.outputs.find((o) => o.name === name)?.data, `${name} as shown`)
  }
  const scores = (a: typeof shown) => a.outputs.find((o) => o.name === 'scores')!.data as number[]
  scores(got).forEach((s, i) => t.ok(Math.abs(s - scores(shown)[i]!) < 1e-4, 'same scores'))
})
