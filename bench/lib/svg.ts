// A tiny SVG line chart (no dependencies): several series of (x, y) points, log-2 x axis, linear y axis.

export interface Series {
  name: string
  points: [number, number][]
  color: string
  dashed?: boolean
}

export interface Panel {
  title: string
  yLabel: string
  series: Series[]
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

function niceMax(v: number): number {
  if (v <= 0) return 1
  const p = 10 ** Math.floor(Math.log10(v))
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p
  return 10 * p
}

/** Panels side by side sharing the x values (e.g. concurrency 1, 16, 64, 256). */
export function lineChart(panels: Panel[], xs: number[], xLabel: string, title: string): string {
  const W = 420
  const H = 300
  const m = { l: 60, r: 15, t: 40, b: 70 }
  const width = W * panels.length
  const lx = (x: number) => Math.log2(x)
  const [x0, x1] = [lx(Math.min(...xs)), lx(Math.max(...xs))]
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${H + 20}" viewBox="0 0 ${width} ${H + 20}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">${esc(title)}</text>`,
  ]
  panels.forEach((p, i) => {
    const ox = i * W
    const pw = W - m.l - m.r
    const ph = H - m.t - m.b
    const ymax = niceMax(Math.max(...p.series.flatMap((s) => s.points.map(([, y]) => y))))
    const px = (x: number) => ox + m.l + (x1 === x0 ? pw / 2 : ((lx(x) - x0) / (x1 - x0)) * pw)
    const py = (y: number) => m.t + ph - (y / ymax) * ph
    parts.push(`<text x="${ox + m.l + pw / 2}" y="${m.t - 8}" text-anchor="middle" font-size="12">${esc(p.title)}</text>`)
    for (let k = 0; k <= 4; k++) {
      const y = (ymax * k) / 4
      parts.push(
        `<line x1="${ox + m.l}" x2="${ox + m.l + pw}" y1="${py(y)}" y2="${py(y)}" stroke="#ddd"/>`,
        `<text x="${ox + m.l - 5}" y="${py(y) + 4}" text-anchor="end">${Math.round(y * 100) / 100}</text>`,
      )
    }
    for (const x of xs) {
      parts.push(`<text x="${px(x)}" y="${m.t + ph + 15}" text-anchor="middle">${x}</text>`)
    }
    parts.push(
      `<line x1="${ox + m.l}" x2="${ox + m.l}" y1="${m.t}" y2="${m.t + ph}" stroke="#333"/>`,
      `<line x1="${ox + m.l}" x2="${ox + m.l + pw}" y1="${m.t + ph}" y2="${m.t + ph}" stroke="#333"/>`,
      `<text x="${ox + m.l + pw / 2}" y="${m.t + ph + 30}" text-anchor="middle">${esc(xLabel)}</text>`,
      `<text transform="translate(${ox + 14} ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">${esc(p.yLabel)}</text>`,
    )
    p.series.forEach((s, j) => {
      const d = s.points.map(([x, y], k) => `${k === 0 ? 'M' : 'L'}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ')
      parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5,3"' : ''}/>`)
      for (const [x, y] of s.points) parts.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${s.color}"/>`)
      const ly = m.t + ph + 45 + Math.floor(j / 2) * 14
      const lxp = ox + m.l + (j % 2) * (pw / 2)
      parts.push(
        `<line x1="${lxp}" x2="${lxp + 18}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5,3"' : ''}/>`,
        `<text x="${lxp + 22}" y="${ly}">${esc(s.name)}</text>`,
      )
    })
  })
  parts.push('</svg>')
  return parts.join('\n') + '\n'
}
