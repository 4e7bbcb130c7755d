// The repository folder without a server: the policy file's forms and its messages, which versions each policy
// serves, what a scan counts as a model or a version, and when a version folder counts as completely written.
import t from 'tap'
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { BundleError } from '../../src/errors.js'
import { folderStamp, incompleteReason, listModels, parsePolicy, readPolicy, scanModel, selectVersions } from '../../src/bundle/repository.js'
import { addVersion, tempRepository } from '../helpers/repository.js'

const F = '/repo/m/policy.json'
const message = (raw: unknown): string => {
  try {
    parsePolicy(raw, F)
    return 'no error'
  } catch (err) {
    return err instanceof BundleError ? err.message : `not a BundleError: ${String(err)}`
  }
}

t.test('parsePolicy: the three forms, and what each mistake is told', async (t) => {
  t.same(parsePolicy({ latest: 3 }, F), { latest: 3 })
  t.same(parsePolicy({ all: true }, F), { all: true })
  t.same(parsePolicy({ specific: [3, 1, 3] }, F), { specific: [1, 3] }, 'sorted, duplicates dropped')
  const expected = 'expected one of {"latest": N}, {"all": true}, {"specific": [versions]}'
  t.equal(message([]), `${F}: ${expected}, got []`)
  t.equal(message('latest'), `${F}: ${expected}, got "latest"`)
  t.equal(message({}), `${F}: ${expected}, got the keys []`)
  t.equal(message({ latest: 1, all: true }), `${F}: ${expected}, got the keys ["latest","all"]`)
  t.equal(message({ newest: 1 }), `${F}: ${expected}, got the key "newest"`)
  for (const bad of [0, -1, 1.5, '2', null]) {
    t.equal(message({ latest: bad }), `${F}: "latest" must be a positive integer (how many of the newest versions), got ${JSON.stringify(bad)}`)
  }
  t.equal(message({ all: false }), `${F}: "all" must be true, got false`)
  for (const bad of [[], [0], ['1'], 2]) {
    t.equal(message({ specific: bad }), `${F}: "specific" must be a non-empty array of positive integer versions, got ${JSON.stringify(bad)}`)
  }
})

t.test('selectVersions', async (t) => {
  const available = [3, 1, 10, 2]
  t.same(selectVersions({ latest: 1 }, available), [10], 'numerically newest, not by name (10 > 3)')
  t.same(selectVersions({ latest: 2 }, available), [3, 10])
  t.same(selectVersions({ latest: 9 }, available), [1, 2, 3, 10], 'fewer than N: all')
  t.same(selectVersions({ all: true }, available), [1, 2, 3, 10])
  t.same(selectVersions({ specific: [2, 7] }, available), [2], 'versions not present are left out')
  t.same(selectVersions({ latest: 1 }, []), [])
})

t.test('scan: model and version folders, ignoring what is neither; the policy file read', async (t) => {
  const repo = await tempRepository(t)
  for (const dir of ['a/1', 'a/2', 'a/10', 'a/01', 'a/0', 'a/v3', 'a/.tmp-4', 'b', '.hidden/1', 'bad name/1']) await mkdir(join(repo, dir), { recursive: true })
  await writeFile(join(repo, 'README.txt'), 'not a model')
  await writeFile(join(repo, 'a', '5'), 'a file named like a version')
  await symlink(join(repo, 'a', '2'), join(repo, 'a', '11'))
  t.same(await listModels(repo), ['a', 'b'])
  const a = await scanModel(repo, 'a')
  t.same(a.available, [1, 2, 10, 11], 'positive integers without leading zeros; links to folders count')
  t.same(a.wanted, [11], 'default policy: the latest')
  t.same(a.policy, { latest: 1 })
  await writeFile(join(repo, 'a', 'policy.json'), '{"latest": 2}')
  t.same((await scanModel(repo, 'a')).wanted, [10, 11])
  t.same(await readPolicy(join(repo, 'b')), { latest: 1 }, 'no policy file: latest 1')
  await writeFile(join(repo, 'a', 'policy.json'), '{"latest": 2')
  await t.rejects(scanModel(repo, 'a'), { name: 'BundleError', message: new RegExp(`^${join(repo, 'a', 'policy.json')}: is not valid JSON`) })
  await t.rejects(scanModel(repo, 'zz'), { message: `${join(repo, 'zz')}: model folder not found in the repository ${repo}` })
  await t.rejects(listModels(join(repo, 'none')), { message: `${join(repo, 'none')}: model repository folder not found (expected DIR/<name>/<version>/ bundle folders)` })
  await t.rejects(listModels(join(repo, 'README.txt')), { message: /is not a folder, expected a model repository folder/ })
})

t.test('incompleteReason: what a half-written version folder lacks; folderStamp moves with its files', async (t) => {
  const repo = await tempRepository(t)
  const { dir } = await addVersion(repo, 'a', 1, { featureDim: 4, heads: [3, 3], numLabels: 9 })
  t.equal(await incompleteReason(dir), undefined, 'a complete folder')
  const stamp = await folderStamp(dir)
  t.equal(await folderStamp(dir), stamp, 'unchanged files, same stamp')

  const weights = await readFile(join(dir, 'weights.bin'))
  await writeFile(join(dir, 'weights.bin'), weights.subarray(0, 8))
  t.match(await incompleteReason(dir), `${join(dir, 'model.json')}: its weight files hold 8 of ${weights.length} bytes`)
  t.not(await folderStamp(dir), stamp, 'a file changed: the stamp changes')
  await rm(join(dir, 'weights.bin'))
  t.equal(await incompleteReason(dir), `${join(dir, 'weights.bin')} is missing`)
  await writeFile(join(dir, 'weights.bin'), weights)

  const labels = await readFile(join(dir, 'labels.txt'), 'utf8')
  await writeFile(join(dir, 'labels.txt'), labels.split('\n').slice(0, 4).join('\n'))
  t.equal(await incompleteReason(dir), `${join(dir, 'labels.txt')} has 4 of 9 labels`)
  await writeFile(join(dir, 'labels.txt'), labels.trimEnd()) // no final line break: still complete
  t.equal(await incompleteReason(dir), undefined)

  const manifest = await readFile(join(dir, 'mhe.json'), 'utf8')
  await writeFile(join(dir, 'mhe.json'), manifest.slice(0, 20))
  t.match(await incompleteReason(dir), /mhe\.json: is not valid JSON/, 'a manifest being written')
  await rm(join(dir, 'mhe.json'))
  t.equal(await incompleteReason(dir), `${join(dir, 'mhe.json')}: missing`)
  t.match(await folderStamp(join(dir, 'gone')), /^unreadable: /)
})
