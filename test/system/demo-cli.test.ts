// `npm run demo` as a new user runs it: the real server serving the shipped models/demo bundle, the demo CLI
// (re-ranked top-5 with confidences, "not sure" for nonsense, and a whole sentence corrected).

import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import t from 'tap'
import { childEnv, startServer, TS_NODE_FLAGS } from '../helpers/process.js'

const run = promisify(execFile)

t.test('npm run demo against the shipped bundle', async (t) => {
  const server = await startServer({ MHE_MODEL: 'models/demo', MHE_BACKEND: 'wasm' })
  t.teardown(() => server.child.kill('SIGKILL'))
  const demo = async (...args: string[]) =>
    (await run(process.execPath, [...TS_NODE_FLAGS, 'tools/demo/cli.ts', ...args], { env: childEnv({ MHE_URL: server.url, MHE_MODEL: 'models/demo' }) })).stdout

  const words = (await demo('accomodate', 'thier', 'recieve', 'qzxqvjkw')).trim().split('\n')
  t.equal(words.length, 4)
  t.match(words[0], /^accomodate: 1\. accommodate 0\.\d{3} {3}2\. /)
  t.match(words[1], /^thier: 1\. their /)
  t.match(words[2], /^recieve: 1\. receive /)
  t.notMatch(words[1], /not sure/, 'a one-transposition typo of a top-100 word is answered with confidence')
  t.match(words[3], /\(not sure\)$/, 'a string far from every word is not answered with confidence')

  const sentence = (await demo('I beleive thier going to the libary, Definately.')).split('\n')
  t.equal(sentence[0], 'I believe their going to the library, Definitely.', 'unknown words corrected, known ones and punctuation kept')
  t.match(sentence.slice(1).join('\n'), /beleive -> believe 0\.\d{3}/)
  t.notMatch(sentence.slice(1).join('\n'), /going|library ->/, 'known words are not listed')
})
