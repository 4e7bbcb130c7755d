// What a request may carry and how it is checked: JSON bodies strictly (no coercion of "1" to 1, no silent dropping
// of unknown fields: no silent wrong answers), query strings coerced (they are text), raw float32 bodies
// (application/octet-stream) handed to the route as a Buffer for it to check. JSON nesting is bounded on the bytes
// before parsing (src/http/json-depth.ts): a route declares how deep its schema goes (`config.jsonDepth`).

import fp from 'fastify-plugin'
import { Ajv } from 'ajv'
import { errors } from '../../errors.js'
import { nestsDeeperThan } from '../json-depth.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The deepest nesting of arrays and objects the route's JSON body can have; deeper bodies get 400 unparsed. */
    jsonDepth?: number
  }
}

/** For routes that do not say: deep enough for any body this service takes, shallow enough to cost nothing. */
export const DEFAULT_JSON_DEPTH = 16

export default fp(
  async function input(app) {
    const options = { removeAdditional: false, useDefaults: true, strict: false, validateFormats: false, verbose: true } as const
    const strict = new Ajv({ ...options, coerceTypes: false })
    const coercing = new Ajv({ ...options, coerceTypes: true })
    app.setValidatorCompiler(({ schema, httpPart }) => {
      if ('format' in schema && schema.format === 'binary') return () => true
      return (httpPart === 'body' ? strict : coercing).compile(schema)
    })
    app.removeContentTypeParser('text/plain')
    app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) => done(null, body))
    // Plain JSON.parse: a "__proto__" key becomes an own property (JSON.parse never sets a prototype), which the
    // body schemas refuse by name as an unknown field.
    app.removeContentTypeParser('application/json')
    app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body: Buffer, done) => {
      if (body.length === 0) return done(errors.badRequest('expected a JSON body, got an empty body'))
      const depth = request.routeOptions.config.jsonDepth ?? DEFAULT_JSON_DEPTH
      if (nestsDeeperThan(body, depth)) return done(errors.jsonTooDeep(depth))
      let parsed: unknown
      try {
        parsed = JSON.parse(body.toString('utf8'))
      } catch (err) {
        return done(errors.malformedJson((err as Error).message))
      }
      done(null, parsed)
    })
  },
  { name: 'mhe-input' },
)
