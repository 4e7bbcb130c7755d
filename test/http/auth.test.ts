// src/http/auth.ts on its own: the hook called with bare requests, no server.
import t from 'tap'
import type { FastifyRequest } from 'fastify'
import { bearerAuth } from '../../src/http/auth.js'

const request = (authorization?: string | string[]): FastifyRequest =>
  ({ headers: authorization === undefined ? {} : { authorization } }) as unknown as FastifyRequest

t.test('no keys: no hook, every request passes', async (t) => {
  t.equal(bearerAuth([]), undefined)
})

t.test('accepts any configured token, in the forms RFC 6750 allows', async (t) => {
  const hook = bearerAuth(['alpha', 'beta-2'])!
  t.type(hook, 'function')
  for (const header of ['Bearer alpha', 'Bearer beta-2', 'bearer alpha', 'BEARER alpha', 'Bearer   alpha', 'Bearer alpha  ', 'Bearer\talpha']) {
    await t.resolves(hook(request(header)), JSON.stringify(header))
  }
})

t.test('rejects with 401 MHE_UNAUTHORIZED: missing, wrong, partial or malformed tokens', async (t) => {
  const hook = bearerAuth(['alpha', 'beta-2'])!
  const refused = [
    undefined,
    '',
    'Bearer',
    'Bearer ',
    'Bearer gamma',
    'Bearer alph', // a prefix of a key
    'Bearer alphaa', // a key and more
    'Bearer alpha beta-2', // two tokens
    'Bearer alpha,beta-2',
    'alpha', // no scheme
    'Basic alpha',
    'Bearer: alpha',
    'Token alpha',
    ' Bearer alpha', // the scheme must come first
    ['Bearer alpha', 'Bearer alpha'], // repeated header
  ]
  for (const header of refused) {
    await t.rejects(hook(request(header)), { code: 'MHE_UNAUTHORIZED', statusCode: 401 }, JSON.stringify(header))
  }
})
