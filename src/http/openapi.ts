// The frame of the OpenAPI document (info, servers, the bearer scheme, tags) for @fastify/swagger; the operations
// come from the route schemas. Every subschema with an `$id` becomes a named schema in components.schemas and a
// `$ref` where it is used, so every client generator names the types the same (PredictRequest, ErrorBody...).
// The routes keep their schemas inline, so validation and the handlers' types are untouched.

import type { FastifySchema } from 'fastify'
import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger'
import { NAMED_SCHEMAS } from './schemas.js'
import { V2_NAMED_SCHEMAS } from './v2-schemas.js'

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null

/** `schema` with every subschema that has an `$id` replaced by a `$ref` to components.schemas. */
function referenceNamed(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(referenceNamed)
  if (!isObject(schema)) return schema
  if (typeof schema.$id === 'string') {
    if (!Object.hasOwn(components, schema.$id)) throw new Error(`schema ${schema.$id} is not in NAMED_SCHEMAS (src/http/schemas.ts)`)
    return { $ref: `#/components/schemas/${schema.$id}` }
  }
  return Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, referenceNamed(v)]))
}

/** components.schemas: each named schema without its `$id`, the named schemas inside it by reference. */
const components: Record<string, unknown> = {}
for (const schema of [...NAMED_SCHEMAS, ...V2_NAMED_SCHEMAS]) {
  const { $id, ...rest } = schema as unknown as { $id: string }
  components[$id] = rest
}
for (const name of Object.keys(components)) components[name] = referenceNamed(components[name])

export const OPENAPI_INFO = {
  title: 'MHE prediction service',
  description:
    'Serves Multi-Head Encoding (MHE) extreme-label classifiers: feature vectors in, label ids, names and scores out. ' +
    'Every error answers an `ErrorBody` with a stable `code`.',
  version: '0.1.0',
  license: { name: 'MIT', url: 'https://opensource.org/licenses/MIT' },
  contact: { name: 'mhe-serve maintainers' },
}

/** A route as the document shows it (a route's own `config.swaggerTransform` replaces the global one: call this). */
export const documented = (schema: FastifySchema, url: string) => ({ schema: referenceNamed(schema) as FastifySchema, url })

export const swaggerOptions: FastifyDynamicSwaggerOptions = {
  openapi: {
    openapi: '3.0.3',
    info: OPENAPI_INFO,
    servers: [{ url: 'http://127.0.0.1:8080', description: 'npm start with its defaults (HOST, PORT)' }],
    tags: [
      { name: 'predict', description: 'Predictions' },
      { name: 'model', description: 'What is served' },
      { name: 'health', description: 'Probes and metrics' },
      { name: 'v2', description: 'Open Inference Protocol (KServe V2 REST): metadata, health, infer' },
    ],
    components: {
      schemas: components as Record<string, object>,
      // Declared whatever the configuration: a client generated once works against servers with and without keys.
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'one of the server\'s MHE_API_KEYS; the server asks for it only when MHE_API_KEYS is set',
        },
      },
    },
  },
  transform: ({ schema, url }) => documented(schema, url),
}

type Security = { [scheme: string]: string[] }[]

/** Operation security: predictions take the bearer token when the server has keys. */
export const BEARER: Security = [{ bearer: [] }]
/** Operation security where the token is asked for only in some configurations (MHE_METRICS_AUTH). */
export const OPTIONAL_BEARER: Security = [{}, { bearer: [] }]
/** Operation security of an open operation. */
export const OPEN: Security = []
