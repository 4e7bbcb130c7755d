// Summarises a V8 .cpuprofile (node --cpu-prof): self time by function and by package/file, to show where a
// server's CPU goes without a GUI.

import { readFileSync } from 'node:fs'

interface Node {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
  children?: number[]
}

export interface ProfileSummary {
  totalMs: number
  byFunction: { name: string; ms: number; pct: number }[]
  byArea: { area: string; ms: number; pct: number }[]
}

function area(url: string, fn: string): string {
  if (url === '') return fn.startsWith('(') ? fn : '(native)'
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (m) return m[1]!
  if (url.startsWith('node:')) return url
  const s = /\/(src|bench|dist\/src)\/(.*)$/.exec(url)
  return s ? `${s[1]}/${s[2]}` : url
}

export function summarise(file: string, top = 25): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] }
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const self = new Map<number, number>()
  p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000))
  const totalMs = [...self.values()].reduce((a, b) => a + b, 0)
  const fnMs = new Map<string, number>()
  const areaMs = new Map<string, number>()
  for (const [id, ms] of self) {
    const n = byId.get(id)!
    const cf = n.callFrame
    const name = `${cf.functionName || '(anonymous)'} ${cf.url.replace(/^.*\/(node_modules|src|dist)\//, '$1/')}:${cf.lineNumber + 1}`
    fnMs.set(name, (fnMs.get(name) ?? 0) + ms)
    const a = area(cf.url, cf.functionName)
    areaMs.set(a, (areaMs.get(a) ?? 0) + ms)
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top)
  return {
    totalMs,
    byFunction: sorted(fnMs).map(([name, ms]) => ({ name, ms: Math.round(ms), pct: Math.round((1000 * ms) / totalMs) / 10 })),
    byArea: sorted(areaMs).map(([area, ms]) => ({ area, ms: Math.round(ms), pct: Math.round((1000 * ms) / totalMs) / 10 })),
  }
}

if (process.argv[1]?.endsWith('profile-summary.ts')) {
  const s = summarise(process.argv[2]!, Number(process.argv[3] ?? 25))
  console.log(`total ${Math.round(s.totalMs)} ms`)
  for (const a of s.byArea) console.log(`${String(a.pct).padStart(5)}%  ${a.area}`)
  console.log('---')
  for (const f of s.byFunction) console.log(`${String(f.pct).padStart(5)}%  ${f.name}`)
}
