// Result files (bench/results/<scenario>.json) and the settings shared by every scenario.

import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from './server.js'
import { machine, type Machine } from './machine.js'

export const RESULTS = join(ROOT, 'bench/results')

/** Seconds per measured autocannon run (BENCH_DURATION_S overrides, e.g. 2 for a quick look). */
export const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 5)

export interface Check {
  name: string
  target: string
  value: string
  pass: boolean
}

export interface ScenarioResult {
  scenario: string
  title: string
  command: string
  machineBefore: Machine
  machineAfter: Machine
  elapsedS: number
  settings: Record<string, unknown>
  rows: Record<string, unknown>[]
  checks: Check[]
  notes: string[]
}

export function writeResult(r: ScenarioResult): void {
  mkdirSync(RESULTS, { recursive: true })
  writeFileSync(join(RESULTS, `${r.scenario}.json`), JSON.stringify(r, null, 2) + '\n')
  process.stderr.write(`wrote bench/results/${r.scenario}.json\n`)
}

export function readResult(scenario: string): ScenarioResult | undefined {
  const f = join(RESULTS, `${scenario}.json`)
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as ScenarioResult) : undefined
}

/** Wraps a scenario: records the machine before and after and the elapsed time. */
export async function scenario(
  name: string,
  title: string,
  body: (r: ScenarioResult) => Promise<void>,
): Promise<ScenarioResult> {
  const t0 = performance.now()
  const r: ScenarioResult = {
    scenario: name,
    title,
    command: `npx tsx bench/${name}.ts`,
    machineBefore: machine(),
    machineAfter: machine(),
    elapsedS: 0,
    settings: { durationS: DURATION_S },
    rows: [],
    checks: [],
    notes: [],
  }
  process.stderr.write(`== ${name}: ${title}\n`)
  await body(r)
  r.machineAfter = machine()
  r.elapsedS = Math.round((performance.now() - t0) / 100) / 10
  writeResult(r)
  return r
}

export const round = (x: number, digits = 2): number => Math.round(x * 10 ** digits) / 10 ** digits

/** True when this module is the script node was started with (so scenario files also run alone). */
export function isMain(url: string): boolean {
  return process.argv[1] !== undefined && new URL(url).pathname === process.argv[1]
}
