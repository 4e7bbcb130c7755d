// Container health check: exits 0 when GET /health/ready answers 200, else 1 (503 while starting or draining).
// Used by the Dockerfile HEALTHCHECK and docker-compose.yml; the slim images have no curl, so it runs on node.
/* global process, fetch, AbortSignal, console */

const port = process.env.PORT || '8080'
const bind = process.env.HOST || '0.0.0.0'
// The server listens on HOST; a wildcard address is reached through loopback.
const host = bind === '0.0.0.0' || bind === '::' ? '127.0.0.1' : bind
const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/health/ready`

try {
  const res = await fetch(url, { signal: AbortSignal.timeout(2500) })
  if (!res.ok) console.error(`healthcheck: ${url} answered ${res.status}`)
  process.exit(res.ok ? 0 : 1)
} catch (err) {
  console.error(`healthcheck: ${url}: ${err instanceof Error ? err.message : String(err)}`)
  process.exit(1)
}
