// What the numbers were measured on: CPU, cores, memory, node, and how busy the machine was (these are shared).

import { cpus, loadavg, totalmem } from 'node:os'
import { execFileSync } from 'node:child_process'

export interface Machine {
  cpu: string
  cores: number
  memGiB: number
  node: string
  platform: string
  loadAvg: number[]
  /** Other processes using CPU when the run started (name and %CPU), to judge noise. */
  busy: { pid: number; cpu: number; command: string }[]
  at: string
}

export function machine(): Machine {
  let busy: Machine['busy'] = []
  try {
    const ps = execFileSync('ps', ['-eo', 'pid=,pcpu=,args=', '--sort=-pcpu'], { encoding: 'utf8' })
    busy = ps
      .split('\n')
      .map((l) => /^\s*(\d+)\s+([\d.]+)\s+(.*)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null && Number(m[1]) !== process.pid && Number(m[2]) >= 10)
      .slice(0, 5)
      .map((m) => ({ pid: Number(m[1]), cpu: Number(m[2]), command: m[3]!.slice(0, 120) }))
  } catch {
    // ps missing: report no busy list
  }
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    loadAvg: loadavg().map((x) => Math.round(x * 100) / 100),
    busy,
    at: new Date().toISOString(),
  }
}
