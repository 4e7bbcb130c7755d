// Optional bearer-token check for /predict (MHE_API_KEYS). Tokens are compared as SHA-256 digests with
// timingSafeEqual, so the time taken says nothing about how much of a token matched or its length.

import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { errors } from '../errors.js'

const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

/** An onRequest hook that rejects requests without one of `keys` as bearer token; undefined when keys is empty. */
export function bearerAuth(keys: readonly string[]): ((request: FastifyRequest) => Promise<void>) | undefined {
  if (keys.length === 0) return undefined
  const digests = keys.map(digest)
  return async (request) => {
    const header = request.headers.authorization
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null
    const given = digest(match?.[1] ?? '')
    let ok = false
    for (const d of digests) ok = timingSafeEqual(d, given) || ok
    if (!ok || match === null) throw errors.unauthorized()
  }
}
