// A one-line progress bar with ETA on stderr (redrawn in place on a terminal, every few seconds otherwise).

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--'
  const s = Math.round(seconds)
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const pad = (n: number) => String(n).padStart(2, '0')
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${pad(m)}:${pad(s % 60)}`
}

export class ProgressBar {
  private readonly start = performance.now()
  private lastDraw = 0
  private readonly tty: boolean

  constructor(
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly width = 30,
  ) {
    this.tty = out.isTTY === true
  }

  /** Draws `done` of `total` with a free-text suffix; throttled (10/s on a TTY, every 10 s in a log). */
  update(done: number, total: number, suffix: string): void {
    const now = performance.now()
    if (done < total && now - this.lastDraw < (this.tty ? 100 : 10_000)) return
    this.lastDraw = now
    const frac = total > 0 ? done / total : 1
    const elapsed = (now - this.start) / 1000
    const eta = done > 0 ? (elapsed * (total - done)) / done : Number.NaN
    const filled = Math.round(frac * this.width)
    const bar = '#'.repeat(filled) + '.'.repeat(this.width - filled)
    const line = `[${bar}] ${(frac * 100).toFixed(1).padStart(5)}% ${done}/${total} ${formatDuration(elapsed)} ETA ${formatDuration(eta)} ${suffix}`
    this.out.write(this.tty ? `\r${line}\x1b[K` : `${line}\n`)
  }

  /** Prints a full line (e.g. an epoch summary) without breaking the bar. */
  log(line: string): void {
    this.out.write(this.tty ? `\r\x1b[K${line}\n` : `${line}\n`)
  }
}
