// The committed OpenAPI document passes Spectral (spectral:oas, .spectral.yaml) and Redocly (recommended,
// redocly.yaml) with no error and no warning; Redocly's few exceptions are listed with reasons in
// .redocly.lint-ignore.yaml, and that list is checked too, so that it cannot grow unnoticed.
import t from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const DOC = 'openapi/openapi.json'

/** The linter's report on stdout; a linter that finds problems exits non-zero, and its report is what to show. */
async function lintReport(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  try {
    return (await promisify(execFile)(command, args, { env })).stdout
  } catch (err) {
    const stdout = (err as { stdout?: string }).stdout
    if (!stdout) throw err
    return stdout
  }
}

t.test('Spectral, spectral:oas: no result at all', async (t) => {
  const stdout = await lintReport('node_modules/.bin/spectral', ['lint', DOC, '--ruleset', '.spectral.yaml', '--format', 'json', '--fail-severity', 'hint'])
  // Spectral prints its JSON, then a summary line.
  const results = JSON.parse(stdout.slice(0, stdout.lastIndexOf(']') + 1)) as { code: string; path: string[]; message: string }[]
  t.same(results.map((r) => `${r.code} at ${r.path.join('.')}: ${r.message}`), [])
})

t.test('Redocly, recommended: no error, no warning', async (t) => {
  const env = { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' }
  const stdout = await lintReport('node_modules/.bin/redocly', ['lint', DOC, '--config', 'redocly.yaml', '--format', 'json'], env)
  const report = JSON.parse(stdout) as { totals: { errors: number; warnings: number; ignored: number }; problems: { ruleId: string; message: string }[] }
  t.same(report.problems.map((p) => `${p.ruleId}: ${p.message}`), [])
  t.same(report.totals, { errors: 0, warnings: 0, ignored: 6 }, 'the 6 exceptions of .redocly.lint-ignore.yaml, no more')
})
