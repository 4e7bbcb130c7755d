// Turns bench/results/*.json into the tables between the markers in bench/README.md and the chart
// bench/results/http-ceiling.svg. Text outside the markers is kept as written.

import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from './lib/server.js'
import { RESULTS, isMain, readResult, type ScenarioResult } from './lib/result.js'
import { lineChart } from './lib/svg.js'
import { goodputChart } from './goodput.js'

export const SCENARIOS = ['http-ceiling', 'goodput', 'batching', 'input', 'engine', 'backends', 'workers', 'profile'] as const
const README = join(ROOT, 'bench/README.md')
const START = '<!-- results:start (written by bench/report.ts) -->'
const END = '<!-- results:end -->'

function table(rows: Record<string, unknown>[]): string {
  if (rows.length === 0) return '_no rows_\n'
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))]
  const cell = (v: unknown) => (v === undefined ? '' : String(v).replace(/\|/g, '\\|'))
  return [`| ${cols.join(' | ')} |`, `| ${cols.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${cols.map((c) => cell(r[c])).join(' | ')} |`)].join('\n') + '\n'
}

function chart(r: ScenarioResult): string {
  const rows = r.rows as { connections: number; [k: string]: number }[]
  const xs = rows.map((x) => x.connections)
  const pts = (k: string): [number, number][] => rows.map((x) => [x.connections, x[k]!])
  return lineChart(
    [
      {
        title: 'throughput',
        yLabel: 'requests/s',
        series: [
          { name: 'ceiling (bare Fastify)', points: pts('ceilingReqPerSec'), color: '#888' },
          { name: 'ceiling, pino at info', points: pts('loggedCeilingReqPerSec'), color: '#bbb', dashed: true },
          { name: '/predict', points: pts('predictReqPerSec'), color: '#1f77b4' },
        ],
      },
      {
        title: 'latency',
        yLabel: 'ms',
        series: [
          { name: 'ceiling p50', points: pts('ceilingP50Ms'), color: '#888', dashed: true },
          { name: 'ceiling p99', points: pts('ceilingP99Ms'), color: '#888' },
          { name: '/predict p50', points: pts('predictP50Ms'), color: '#1f77b4', dashed: true },
          { name: '/predict p99', points: pts('predictP99Ms'), color: '#1f77b4' },
        ],
      },
    ],
    xs,
    'concurrent connections',
    '/predict as shipped vs the HTTP ceiling (d=768, C=10^6, one JSON instance per request)',
  )
}

export function report(): void {
  const results = SCENARIOS.map((s) => readResult(s)).filter((r): r is ScenarioResult => r !== undefined)
  const out: string[] = [START, '']
  const first = results[0]
  if (first) {
    const m = first.machineBefore
    const loads = results.map((r) => `${r.scenario} ${r.machineBefore.loadAvg[0]}`).join(', ')
    const others = [...new Set(results.flatMap((r) => r.machineBefore.busy.map((b) => b.command.replace(/^.*?(src\/\S+|bench\/\S+|tsc|tap).*$/, '$1'))))]
    out.push(
      `**Machine:** ${m.cpu}, ${m.cores} cores, ${m.memGiB} GiB, Node ${m.node}, ${m.platform}. ` +
        `Run ${first.machineBefore.at.slice(0, 16).replace('T', ' ')} UTC, ${results.reduce((a, r) => a + r.elapsedS, 0).toFixed(0)} s in all.`,
      '',
      `**Load average (1 min) at the start of each scenario:** ${loads}` +
        (others.length > 0 ? `; other busy processes seen: ${others.slice(0, 8).join(', ')}.` : '.'),
      '',
    )
  }
  const checks = results.flatMap((r) => r.checks.map((c) => ({ scenario: r.scenario, ...c, pass: c.pass ? 'yes' : '**no**' })))
  out.push('### The bar', '', table(checks))
  for (const r of results) {
    out.push(`### ${r.title}`, '', `\`${r.command}\` — ${r.elapsedS} s; settings: ${JSON.stringify(r.settings)}`, '', table(r.rows))
    if (r.scenario === 'http-ceiling') {
      writeFileSync(join(RESULTS, 'http-ceiling.svg'), chart(r))
      out.push('![throughput and latency against concurrency](results/http-ceiling.svg)', '')
    }
    if (r.scenario === 'goodput') {
      goodputChart(r)
      out.push('![answers and refusals per second against clients](results/goodput.svg)', '')
    }
    for (const n of r.notes) out.push(`- ${n}`)
    if (r.notes.length > 0) out.push('')
  }
  out.push(END)
  const old = existsSync(README) ? readFileSync(README, 'utf8') : `# Benchmarks\n\n${START}\n${END}\n`
  const a = old.indexOf(START)
  const b = old.indexOf(END)
  const next = a >= 0 && b > a ? old.slice(0, a) + out.join('\n') + old.slice(b + END.length) : `${old}\n${out.join('\n')}\n`
  writeFileSync(README, next)
  process.stderr.write('wrote bench/README.md and bench/results/http-ceiling.svg\n')
}

if (isMain(import.meta.url)) report()
