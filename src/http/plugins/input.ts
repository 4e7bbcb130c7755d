// What a request may carry and how it is checked: JSON bodies strictly (no coercion of "1" to 1, no silent dropping
// of unknown fields: no silent wrong answers), query strings coerced (they are text), raw float32 bodies
// (application/octet-stream) handed to the route as a Buffer for it to check. JSON nesting is bounded on the bytes
// before parsing (src/http/json-depth.ts): a route declares how deep its schema goes (`config.jsonDepth`).

import fp from 'fastify-plugin'
import type { FastifyContextConfig, FastifyRequest } from 'fastify'
import type { Readable } from 'node:stream'
import { Ajv } from 'ajv'
import { errors } from '../../errors.js'
import { JSON_BODY_RSS_FACTOR, jsonThreadHeapBytes } from '../../config.js'
import { nestsDeeperThan } from '../json-depth.js'
import { JsonThread } from '../json-thread.js'
import { isPackedBody, packedBody } from '../packed-rows.js'
import { INSTANCES_DEPTH, rowReader, scanInstances } from '../scan-instances.js'
import { readBody } from '../read-body.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The deepest nesting of arrays and objects the route's JSON body can have; deeper bodies get 400 unparsed. */
    jsonDepth?: number
    /** The route takes {"instances": [[...]], "top_k"}: a large body is parsed off the event loop into PackedRows. */
    packInstances?: boolean
  }
}

/** For routes that do not say: deep enough for any body this service takes, shallow enough to cost nothing. */
export const DEFAULT_JSON_DEPTH = 16
/** Bodies from this size are parsed on the JSON thread: below it, the hop to the thread costs more than the parse. */
export const OFF_LOOP_BYTES = 256 * 1024

/** JSON.parse on the event loop, every failure as our error. */
function parseHere(body: Buffer): { value?: unknown; error?: Error } {
  try {
    return { value: JSON.parse(body.toString('utf8')) }
  } catch (err) {
    return { error: errors.malformedJson((err as Error).message) }
  }
}

export default fp(
  async function input(app) {
    const options = { removeAdditional: false, useDefaults: true, strict: false, validateFormats: false, verbose: true } as const
    const strict = new Ajv({ ...options, coerceTypes: false })
    const coercing = new Ajv({ ...options, coerceTypes: true })
    app.setValidatorCompiler(({ schema, httpPart }) => {
      if ('format' in schema && schema.format === 'binary') return () => true
      if (httpPart !== 'body') return coercing.compile(schema)
      const check = strict.compile(schema)
      // A body packed on the JSON thread was checked there against the same shape.
      const validate = (data: unknown) => {
        if (isPackedBody(data)) return true
        const ok = check(data)
        validate.errors = check.errors
        return ok
      }
      validate.errors = check.errors
      return validate
    })
    app.log.info(`JSON rows read ${rowReader()}`)
    app.removeContentTypeParser('text/plain')
    /** The request's body whole, within its route's body limit (read-body.ts: one socket read is used in place). */
    const readRequestBody = (request: FastifyRequest, payload: Readable, bodyLimit: number | undefined, done: (err: Error | null, body?: Buffer) => void) =>
      readBody(payload, Number(request.headers['content-length']), bodyLimit ?? app.config.bodyLimit, done)
    // Raw float32 bodies are read as JSON ones are; the route copies them.
    app.addContentTypeParser('application/octet-stream', (request, payload, done) => readRequestBody(request, payload, request.routeOptions.bodyLimit, done))
    // Plain JSON.parse: a "__proto__" key becomes an own property (JSON.parse never sets a prototype), which the
    // body schemas refuse by name as an unknown field.
    app.removeContentTypeParser('application/json')
    const onJson = (config: FastifyContextConfig, body: Buffer, done: (err: Error | null, body?: unknown) => void) => {
      if (body.length === 0) return done(errors.badRequest('expected a JSON body, got an empty body'))
      const depth = config.jsonDepth ?? DEFAULT_JSON_DEPTH
      const pack = config.packInstances === true
      // Large: the depth scan, the parse and the packing all happen on the JSON thread.
      if (pack && body.length >= OFF_LOOP_BYTES) {
        jsonThread.parse(body, depth).then((r) => {
          if ('tooDeep' in r) return done(errors.jsonTooDeep(depth))
          if ('tooBig' in r) return done(errors.jsonTooBig(heapMb))
          if ('instances' in r) return done(null, r)
          const { value, error } = parseHere(r.unpacked) // not the request's shape: described as usual
          done(error ?? null, value)
        }, done)
        return
      }
      // The usual shape, read straight into float32 rows; any other body is parsed and checked as JSON.
      const usual = pack && depth >= INSTANCES_DEPTH ? scanInstances(body) : undefined
      if (usual !== undefined) return done(null, packedBody(usual))
      if (nestsDeeperThan(body, depth)) return done(errors.jsonTooDeep(depth))
      const { value, error } = parseHere(body)
      done(error ?? null, value)
    }
    // Read by readBody, not Fastify's parseAs: no concatenation of a large body in one event-loop turn.
    app.addContentTypeParser('application/json', (request, payload, done) => {
      // routeOptions is an object Fastify builds on every read: read once.
      const { bodyLimit, config } = request.routeOptions
      readRequestBody(request, payload, bodyLimit, (err, body) => (err || !body ? done(err) : onJson(config, body, done)))
    })
    const heapBytes = jsonThreadHeapBytes(app.config.bodyLimit)
    const heapMb = Math.ceil(heapBytes / (1024 * 1024))
    const jsonThread = new JsonThread(heapBytes, JSON_BODY_RSS_FACTOR * app.config.bodyLimit)
    app.addHook('onClose', async () => jsonThread.close())
  },
  { name: 'mhe-input', decorators: { fastify: ['config'] } },
)
