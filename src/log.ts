// The logger the layers below HTTP write to: pino (Fastify's app.log) fits it, and so does a test's silent logger.

export interface Log {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}
