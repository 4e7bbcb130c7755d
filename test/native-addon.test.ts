// nativeAddon: loads native/build/NAME.node once per thread, and says why there is none: not built, not a library,
// a build of another version (a pull without a reinstall). Callers then run their JS or wasm path.
import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { nativeAddon } from '../src/native-addon.js'
import { hasCompiler } from './helpers/native.js'

t.test('why there is no addon', async (t) => {
  t.match(nativeAddon('dense', 2, [join(tmpdir(), 'no-such-dir', 'dense.node')]), { reason: /dense\.node is not built/ }, 'not built')
  const dir = mkdtempSync(join(tmpdir(), 'mhe-native-'))
  writeFileSync(join(dir, 'scan.node'), 'not a shared library')
  t.match(nativeAddon('scan', 1, [join(dir, 'scan.node')]), { reason: /failed to load/ }, 'a broken file')
})

t.test('a build of another version is refused', { skip: !hasCompiler && 'no C++ compiler' }, async (t) => {
  const built = fileURLToPath(new URL('../native/build/scan.node', import.meta.url))
  t.match(nativeAddon('scan', 99, [built]), { reason: /is version 1, not 99: rebuild it/ }, 'names both versions')
  const found = nativeAddon('scan', 1)
  t.ok('addon' in found, 'the right version loads')
  t.equal(nativeAddon('scan', 1), found, 'once per thread')
})
