// What a request may carry and how it is checked: JSON bodies strictly (no coercion of "1" to 1, no silent dropping
// of unknown fields: no silent wrong answers), query strings coerced (they are text), raw float32 bodies
// (application/octet-stream) handed to the route as a Buffer for it to check.

import fp from 'fastify-plugin'
import { Ajv } from 'ajv'

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
  },
  { name: 'mhe-input' },
)
