// HTTP/1.1 over a raw socket, for what fetch will not send: malformed requests, bodies that stop, slow headers,
// Expect: 100-continue. Reads the answers the server sends (interim 1xx included) until it closes or a deadline.
import { connect, type Socket } from 'node:net'

export interface RawAnswer {
  status: number
  headers: Record<string, string>
  body: string
}

export interface RawExchange {
  /** Every answer parsed from the bytes received, in order (a 100 Continue included). */
  answers: RawAnswer[]
  /** The server closed the connection (rather than the deadline ending the wait). */
  closed: boolean
  /** Every byte received. */
  raw: string
}

/** Parses the answers in `raw` (Content-Length bodies only: all this server sends). */
export function parseAnswers(raw: string): RawAnswer[] {
  const out: RawAnswer[] = []
  let rest = raw
  for (;;) {
    const end = rest.indexOf('\r\n\r\n')
    if (end < 0) return out
    const [statusLine, ...lines] = rest.slice(0, end).split('\r\n')
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine!)?.[1] ?? NaN)
    const headers: Record<string, string> = {}
    for (const l of lines) {
      const i = l.indexOf(':')
      headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim()
    }
    const length = Number(headers['content-length'] ?? 0)
    const body = rest.slice(end + 4, end + 4 + length)
    out.push({ status, headers, body })
    rest = rest.slice(end + 4 + length)
  }
}

/** A connection that collects what the server sends. */
export class RawConnection {
  readonly socket: Socket
  private received = ''
  closed = false
  private readonly opened: Promise<void>
  private readonly ended: Promise<void>

  constructor(url: string) {
    const { hostname, port } = new URL(url)
    this.socket = connect(Number(port), hostname)
    this.socket.setEncoding('latin1')
    this.socket.on('data', (s: string) => (this.received += s))
    this.socket.on('error', () => {}) // a reset is a close, for these tests
    this.opened = new Promise((resolve) => this.socket.once('connect', () => resolve()))
    this.ended = new Promise((resolve) =>
      this.socket.once('close', () => {
        this.closed = true
        resolve()
      }),
    )
  }

  async send(data: string | Buffer): Promise<void> {
    await this.opened
    if (!this.socket.destroyed) await new Promise<void>((resolve) => this.socket.write(data, () => resolve()))
  }

  get answers(): RawAnswer[] {
    return parseAnswers(this.received)
  }

  /** Waits until `done` holds for what was received, or the server closes, or `ms` pass (a hang guard). */
  async wait(done: (x: RawExchange) => boolean, ms = 20_000): Promise<RawExchange> {
    const deadline = Date.now() + ms
    while (Date.now() < deadline && !this.closed && !done(this.exchange())) await new Promise((r) => setTimeout(r, 10))
    return this.exchange()
  }

  /** Waits for the server to close the connection (at most `ms`). */
  async untilClosed(ms = 20_000): Promise<RawExchange> {
    await Promise.race([this.ended, new Promise((r) => setTimeout(r, ms))])
    return this.exchange()
  }

  exchange(): RawExchange {
    return { answers: this.answers, closed: this.closed, raw: this.received }
  }

  destroy(): void {
    this.socket.destroy()
  }
}

/** Sends `data` on a fresh connection and waits for the server to answer `count` final (non-1xx) answers or close. */
export async function rawRequest(url: string, data: string | Buffer, count = 1, ms = 20_000): Promise<RawExchange> {
  const c = new RawConnection(url)
  await c.send(data)
  let x = await c.wait((e) => e.answers.filter((a) => a.status >= 200).length >= count, ms)
  // An answer that says it closes the connection: wait for the close too (it follows the bytes).
  if (x.answers.at(-1)?.headers.connection === 'close') x = await c.untilClosed(ms)
  c.destroy()
  return x
}
