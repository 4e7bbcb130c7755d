// The README stays true: its two commands, every setting and every error code the code knows.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { OPTIONS } from '../src/config.js'
import { ERROR_CODES } from '../src/errors.js'

const readme = readFileSync('README.md', 'utf8')
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }

t.test('the two commands', async (t) => {
  t.match(readme, 'npm ci && npm start')
  t.match(readme, 'npm test')
  t.ok(pkg.scripts.start && pkg.scripts.test, 'package.json has start and test')
  t.match(readFileSync('.ci/run', 'utf8'), /npm ci\s*\nnpm test/, '.ci/run runs npm ci then npm test')
})

t.test('every setting is in the configuration table with its flag and default', async (t) => {
  for (const o of Object.values(OPTIONS)) {
    const row = readme.split('\n').find((l) => l.startsWith(`| \`${o.env}\` |`))
    t.ok(row, `${o.env} documented`)
    t.match(row ?? '', `\`--${o.flag}\``, `${o.env} flag`)
    t.match(row ?? '', o.default === '' ? '(empty)' : `| ${o.default} |`, `${o.env} default`)
  }
})

t.test('every error code is documented', async (t) => {
  for (const code of Object.keys(ERROR_CODES)) t.match(readme, `| \`${code}\` |`, code)
})
