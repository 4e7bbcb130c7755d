// Request logging that costs next to nothing when nothing goes wrong (bench/README.md, "Logging"):
// - one access line per request, when the answer has gone (as nginx does), instead of Fastify's two; at info for
//   errors (status >= 400) and requests slower than MHE_SLOW_REQUEST_MS, at debug for the rest, so LOG_LEVEL=debug
//   (or MHE_SLOW_REQUEST_MS=0) gives the full access log;
// - 503 refusals (overload, draining, not ready) one line each only while they are rare: under overload the first of
//   every second gets its line and the others are counted into one line a second. A line per refusal was ~600
//   lines/s at 512 clients, CPU taken from the requests that were admitted (bench/README.md, session 7);
//   mhe_rejections_total still counts every one by reason;
// - each request's child logger (bound to its reqId) made only when the request logs something: a pino child per
//   request cost ~15 µs, more than the line it would write.

import { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest } from 'fastify'
import type { Bindings, ChildLoggerOptions } from 'pino'
import { loggedUrl } from './request-id.js'

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'
/** pino's loggers have it; a logger without it gets an eager child. */
type Leveled = FastifyBaseLogger & { isLevelEnabled: (level: string) => boolean }

/** While 503s keep coming, one line for each window of this length. */
export const REFUSAL_WINDOW_MS = 1000

export class AccessLog extends LogController {
  private readonly refusals = new RefusalLines()

  constructor(private readonly slowMs: number) {
    super()
  }

  override incomingRequest(): void {
    // One line per request, at the end.
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const ms = reply.elapsedTime
    const statusCode = reply.statusCode
    const line = (): object => ({ method: request.method, url: loggedUrl(request.url), statusCode, responseTime: Math.round(ms * 100) / 100 })
    if (error) reply.log.error({ ...line(), err: error }, 'request errored')
    else if (statusCode === 503 && !this.refusals.ownLine(reply.server.log)) return
    else if (statusCode >= 400 || ms >= this.slowMs) reply.log.info(line(), 'request completed')
    else if (isEnabled(reply.log, 'debug')) reply.log.debug(line(), 'request completed')
  }
}

/** Which 503s get a line of their own: the first of a window; the others are counted and summed up as it ends. */
class RefusalLines {
  private counted = 0
  private timer: ReturnType<typeof setTimeout> | undefined

  ownLine(log: FastifyBaseLogger): boolean {
    if (this.timer !== undefined) {
      this.counted++
      return false
    }
    this.open(log)
    return true
  }

  private open(log: FastifyBaseLogger): void {
    this.timer = setTimeout(() => {
      const refused = this.counted
      this.counted = 0
      this.timer = undefined
      if (refused === 0) return
      log.info({ statusCode: 503, refused, windowMs: REFUSAL_WINDOW_MS }, 'more requests refused with 503 (one line each only for the first of a second)')
      this.open(log) // still refusing: the next line is the next second's count
    }, REFUSAL_WINDOW_MS)
    this.timer.unref()
  }
}

function isEnabled(log: FastifyBaseLogger, level: Level): boolean {
  const f = (log as Partial<Leveled>).isLevelEnabled
  return typeof f === 'function' ? f.call(log, level) : true
}

/** A request's logger that becomes a real child of `parent` on the first line it writes at an enabled level. */
class LazyChild {
  private made: FastifyBaseLogger | undefined

  constructor(
    private readonly parent: Leveled,
    private readonly bindings: Bindings,
  ) {}

  get level(): string {
    return this.made?.level ?? this.parent.level
  }

  set level(level: string) {
    this.real().level = level
  }

  fatal(...args: unknown[]): void {
    this.write('fatal', args)
  }

  error(...args: unknown[]): void {
    this.write('error', args)
  }

  warn(...args: unknown[]): void {
    this.write('warn', args)
  }

  info(...args: unknown[]): void {
    this.write('info', args)
  }

  debug(...args: unknown[]): void {
    this.write('debug', args)
  }

  trace(...args: unknown[]): void {
    this.write('trace', args)
  }

  silent(): void {}

  child(bindings: Bindings, opts?: ChildLoggerOptions): FastifyBaseLogger {
    return this.real().child(bindings, opts)
  }

  isLevelEnabled(level: string): boolean {
    return this.made ? isEnabled(this.made, level as Level) : this.parent.isLevelEnabled(level)
  }

  private real(): FastifyBaseLogger {
    return (this.made ??= this.parent.child(this.bindings))
  }

  private write(level: Level, args: unknown[]): void {
    if (!this.made && !this.parent.isLevelEnabled(level)) return
    ;(this.real()[level] as (...a: unknown[]) => void)(...args)
  }
}

/** Fastify's childLoggerFactory: lazy children, unless the route asks for its own level or serializers. */
export function lazyChildLogger(logger: FastifyBaseLogger, bindings: Bindings, opts: ChildLoggerOptions): FastifyBaseLogger {
  if (typeof (logger as Partial<Leveled>).isLevelEnabled !== 'function' || opts.level !== undefined || opts.serializers !== undefined) {
    return logger.child(bindings, opts)
  }
  return new LazyChild(logger as Leveled, bindings) as unknown as FastifyBaseLogger
}
