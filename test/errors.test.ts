// src/errors.ts against the README's Errors table: every code declared there is documented, every documented code is
// declared, with the same status and Retry-After; and an error takes both from its code alone.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { ERROR_CODES, RETRY_AFTER_SECONDS, ServiceError, errors, type ErrorCode } from '../src/errors.js'

/** Rows of the table under "## Errors": code -> [status, Retry-After]. */
function readmeTable(): Map<string, { status: number; retryAfter: string }> {
  const readme = readFileSync('README.md', 'utf8')
  const section = readme.slice(readme.indexOf('\n## Errors\n'), readme.indexOf('\n## ', readme.indexOf('\n## Errors\n') + 1))
  const rows = new Map<string, { status: number; retryAfter: string }>()
  for (const line of section.split('\n')) {
    const m = /^\| `(\w+)` \| (\d+) \|([^|]*)\|/.exec(line)
    if (m) rows.set(m[1]!, { status: Number(m[2]), retryAfter: m[3]!.trim() })
  }
  return rows
}

t.test('the README Errors table and ERROR_CODES list the same codes, statuses and Retry-After', async (t) => {
  const table = readmeTable()
  t.ok(table.size > 0, 'the table is found')
  t.same([...table.keys()].sort(), Object.keys(ERROR_CODES).sort(), 'same codes, both ways')
  for (const [code, spec] of Object.entries(ERROR_CODES)) {
    const row = table.get(code)
    t.equal(row?.status, spec.status, `${code}: status`)
    t.equal(row?.retryAfter, 'retry' in spec ? String(RETRY_AFTER_SECONDS) : '', `${code}: Retry-After`)
  }
})

t.test('a ServiceError takes status and headers from its code', async (t) => {
  for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
    const e = new ServiceError(code, 'm')
    t.equal(e.statusCode, ERROR_CODES[code].status, code)
    t.equal(e.headers['Retry-After'], e.statusCode === 503 ? String(RETRY_AFTER_SECONDS) : undefined, `${code}: every 503, and only a 503, says Retry-After`)
  }
  t.match(errors.unauthorized().headers, { 'WWW-Authenticate': /^Bearer/ })
  t.equal(errors.engineFailed().code, 'MHE_NOT_READY', 'a dead engine thread is "not ready": retry elsewhere')
  t.equal(errors.badTopK('3', 50).message, 'top_k must be an integer from 1 to 50, got "3"')
  t.equal(errors.badTopK(Infinity, 5).message, 'top_k must be an integer from 1 to 5, got Infinity')
})
