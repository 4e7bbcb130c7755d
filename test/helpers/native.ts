// Whether this machine builds the native addons (native/build.mjs): a C++ compiler and Node's headers. Where it
// does, `npm ci` built them, and the tests that need them run instead of skipping.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'

export const hasCompiler = ((): boolean => {
  try {
    execFileSync(process.env.CXX || 'c++', ['--version'], { stdio: 'ignore' })
    return existsSync(join(dirname(process.execPath), '..', 'include', 'node', 'node_api.h'))
  } catch {
    return false
  }
})()
