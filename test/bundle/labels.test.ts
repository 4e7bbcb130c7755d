// LabelStore: line parsing (LF, CRLF, BOM, final newline), UTF-8, range errors, and memory for a million names;
// reading a file a chunk at a time gives the same store, and release() frees its buffers at once.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { open, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import v8 from 'node:v8'
import vm from 'node:vm'
import { LabelStore } from '../../src/bundle/labels.js'
import { BundleError } from '../../src/errors.js'

const store = (s: string | Uint8Array) => LabelStore.fromBuffer(typeof s === 'string' ? Buffer.from(s, 'utf8') : s, 'labels.txt')
const names = (ls: LabelStore) => Array.from({ length: ls.size }, (_, i) => ls.name(i))
/** Whether this thread's ArrayBuffer memory falls to `bytes` or below within 3 s (freed buffers go in a turn or two). */
async function arrayBuffersFallTo(bytes: number): Promise<boolean> {
  for (const until = Date.now() + 3000; Date.now() < until; await new Promise((r) => setTimeout(r, 5))) {
    if (process.memoryUsage().arrayBuffers <= bytes) return true
  }
  return false
}

t.test('one name per line, a final newline optional', async (t) => {
  t.strictSame(names(store('a\nb\nc\n')), ['a', 'b', 'c'])
  t.strictSame(names(store('a\nb\nc')), ['a', 'b', 'c'])
  t.equal(store('').size, 0)
  t.strictSame(names(store('\n')), [''])
  t.strictSame(names(store('a\n\nc\n')), ['a', '', 'c'], 'an empty line is an (empty) label, so counts stay honest')
  t.strictSame(names(store('a\n\n')), ['a', ''], 'only one final newline is forgiven')
})

t.test('CRLF line ends and a UTF-8 BOM are tolerated', async (t) => {
  t.strictSame(names(store('a\r\nb\r\n')), ['a', 'b'])
  t.strictSame(names(store('a\r\nb')), ['a', 'b'])
  t.strictSame(names(store('\ufeffx\ny\n')), ['x', 'y'])
  t.strictSame(names(store('a\rb\n')), ['a\rb'], 'a lone CR inside a line is kept')
})

t.test('multi-byte UTF-8 names decode intact', async (t) => {
  const list = ['café', '日本語', 'emoji 🚀', 'ß', 'plain']
  t.strictSame(names(store(list.join('\n') + '\n')), list)
})

t.test('works on a view into a larger buffer', async (t) => {
  const big = Buffer.from('XXXXa\nb\nYYYY')
  t.strictSame(names(store(big.subarray(4, 8))), ['a', 'b'])
})

t.test('line breaks are found at every alignment and spacing (the scan reads four bytes at a time)', async (t) => {
  let seed = 7
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n)
  for (let round = 0; round < 40; round++) {
    // Names of 0 to 9 bytes, so that line breaks fall anywhere in a word, several in one, or none in many.
    const list = Array.from({ length: 1 + rnd(60) }, () => 'abcdefghi'.slice(0, rnd(10)))
    list.push('z') // a last empty name would read as a final line break
    const text = Buffer.from(list.join('\n'))
    for (let offset = 0; offset < 4; offset++) {
      const room = Buffer.alloc(text.length + 8)
      text.copy(room, offset)
      t.strictSame(names(store(room.subarray(offset, offset + text.length))), list, `round ${round}, offset ${offset}`)
    }
  }
})

t.test('ranges shorter than a word at any offset, a file that is only a BOM, a last line without a break at any count', async (t) => {
  const big = Buffer.from('\nab\ncd\n')
  for (let from = 0; from < big.length; from++) {
    for (let to = from; to <= big.length; to++) {
      const part = big.subarray(from, to)
      const want = part.toString().split('\n')
      if (want.at(-1) === '') want.pop() // a final line break ends the last line
      t.strictSame(names(store(part)), want, `bytes [${from}, ${to})`)
    }
  }
  t.equal(store(Buffer.from([0xef, 0xbb, 0xbf])).size, 0, 'only a BOM')
  const file = join(t.testdir(), 'labels.txt')
  await writeFile(file, Buffer.from([0xef, 0xbb, 0xbf]))
  t.equal((await LabelStore.read(file)).size, 0, 'a file that is only a BOM')
  // The offsets array starts at 16 entries and doubles: counts around it, the last line without its line break.
  for (const count of [15, 16, 17, 31, 32, 33]) {
    const list = Array.from({ length: count }, (_, i) => `n${i}`)
    t.strictSame(names(store(list.join('\n'))), list, `${count} names, no final line break`)
    await writeFile(file, list.join('\n'))
    t.strictSame(names(await LabelStore.read(file, count - 1)), list, `${count} names read with one line fewer expected`)
  }
})

t.test('out-of-range or non-integer ids throw RangeError', async (t) => {
  const ls = store('a\nb\n')
  for (const id of [-1, 2, 1.5, Number.NaN, Infinity]) t.throws(() => ls.name(id), RangeError, `id ${id}`)
  t.throws(() => ls.name(2), /label id 2 is out of range: labels\.txt has 2 labels/)
})

t.test('invalid UTF-8 is a BundleError naming the file and line', async (t) => {
  const bad = Buffer.concat([Buffer.from('ok\nalso ok\n'), Buffer.from([0x66, 0xff, 0x0a])])
  t.throws(() => store(bad), BundleError)
  t.throws(() => store(bad), /labels\.txt: is not valid UTF-8 \(line 3, label id 2\)/)
})

t.test('a million names stay compact and look up at both ends', async (t) => {
  v8.setFlagsFromString('--expose-gc')
  const gc = vm.runInNewContext('gc') as () => void
  const used = () => {
    gc()
    const m = process.memoryUsage()
    return m.heapUsed + m.external
  }
  const N = 1_000_000
  const before = used()
  const buf = Buffer.allocUnsafe(N * 16)
  let len = 0
  for (let i = 0; i < N; i++) len += buf.write(`label-${i}\n`, len, 'latin1')
  const ls = LabelStore.fromBuffer(buf.subarray(0, len), 'big.txt')
  const growth = used() - before
  t.equal(ls.size, N)
  t.equal(ls.name(0), 'label-0')
  t.equal(ls.name(1), 'label-1')
  t.equal(ls.name(N - 1), `label-${N - 1}`)
  t.equal(ls.name(543_210), 'label-543210')
  t.throws(() => ls.name(N), RangeError)
  t.ok(ls.byteSize < 24 * 2 ** 20, `store holds ${(ls.byteSize / 2 ** 20).toFixed(1)} MB`)
  t.ok(growth < 40 * 2 ** 20, `heap + external grew ${(growth / 2 ** 20).toFixed(1)} MB for ${N} names`)
})

t.test('read() indexes a file a chunk at a time to the same store as fromBuffer', async (t) => {
  const dir = t.testdir()
  // Over 2 MiB, multi-byte names across the 1 MiB chunk boundaries, CRLF and an unterminated last line.
  const list = Array.from({ length: 120_000 }, (_, i) => (i % 3 === 0 ? `日本語-${i}` : i % 3 === 1 ? `café ${i}` : `label-${i}`))
  const text = list.join('\r\n')
  const file = join(dir, 'labels.txt')
  await writeFile(file, text)
  for (const expected of [0, 10, list.length, 2 * list.length]) {
    const ls = await LabelStore.read(file, expected)
    t.equal(ls.size, list.length, `expectedLines ${expected}`)
    t.strictSame(names(ls), list)
  }
  await writeFile(file, '\ufeffx\ny\n')
  t.strictSame(names(await LabelStore.read(file)), ['x', 'y'], 'a BOM is dropped')
  await writeFile(file, '')
  t.equal((await LabelStore.read(file)).size, 0)
  await writeFile(file, Buffer.concat([Buffer.from('ok\n'), Buffer.from([0x66, 0xff, 0x0a])]))
  await t.rejects(LabelStore.read(file), /labels\.txt: is not valid UTF-8 \(line 2, label id 1\)/)
  // Checked a chunk at a time: a bad byte past the first MiB is named by its line all the same.
  const lines = Array.from({ length: 150_000 }, (_, i) => Buffer.from(`label-${i}\n`))
  lines[120_000] = Buffer.from([0x62, 0xc3, 0x0a]) // "b" and a lone lead byte
  await writeFile(file, Buffer.concat(lines))
  await t.rejects(LabelStore.read(file, 150_000), /labels\.txt: is not valid UTF-8 \(line 120001, label id 120000\)/)
  await t.rejects(LabelStore.read(join(dir, 'missing.txt')), { code: 'ENOENT' })
})

t.test('release() frees what read() holds at once (no GC needed); a store over a caller\'s buffer leaves it alone', async (t) => {
  const file = join(t.testdir(), 'labels.txt')
  const N = 400_000 // over 4 MiB: a store that labels.ts rounds up to a mapping of its own
  await writeFile(file, Array.from({ length: N }, (_, i) => `label-${i}`).join('\n') + '\n')
  const ls = await LabelStore.read(file, N)
  const held = (ls as unknown as { bytes: Buffer }).bytes
  const size = ls.byteSize
  const before = process.memoryUsage().arrayBuffers
  t.equal(ls.name(N - 1), `label-${N - 1}`)
  ls.release()
  t.equal(held.byteLength, 0, 'the names buffer is detached, though still referenced here')
  t.equal(ls.byteSize, 0)
  t.equal(ls.size, N, 'the count stays (metadata)')
  t.throws(() => ls.name(0), /were released/)
  t.throws(() => ls.name(N), RangeError)
  ls.release()
  // The backing stores go once the channel they were moved into is closed: a turn or two of the event loop.
  t.ok(await arrayBuffersFallTo(before - size * 0.9), `arrayBuffers fell by at least ${(size / 2 ** 20).toFixed(1)} MB`)

  const mine = Buffer.from('a\nb\n')
  const over = LabelStore.fromBuffer(mine, 'labels.txt')
  over.release()
  t.equal(mine.toString(), 'a\nb\n', "the caller's buffer is intact")
  t.throws(() => over.name(0), /were released/)
})

t.test('files with the same bytes share one store until the last of them is released; other files never do', async (t) => {
  const dir = t.testdir()
  const N = 400_000 // over 4 MiB, as in release() above
  const text = Array.from({ length: N }, (_, i) => `label-${i}`).join('\n') + '\n'
  const [a, b, c, d] = ['a.txt', 'b.txt', 'c.txt', 'd.txt'].map((f) => join(dir, f)) as [string, string, string, string]
  await writeFile(a, text)
  await writeFile(b, text)
  await writeFile(c, text.replace('label-399999', 'label-39999X')) // the same length, the last name's last character differs
  await writeFile(d, '\ufeff' + text.slice(3)) // the same length again, with a BOM
  const bytesOf = (ls: LabelStore) => (ls as unknown as { bytes: Buffer }).bytes.buffer
  const first = await LabelStore.read(a, N)
  const second = await LabelStore.read(b, N)
  const other = await LabelStore.read(c, N)
  const bom = await LabelStore.read(d, N)
  t.equal(bytesOf(second), bytesOf(first), 'b.txt shares the store of a.txt')
  t.not(bytesOf(other), bytesOf(first), 'c.txt differs only in the byte before its last: a store of its own')
  t.not(bytesOf(bom), bytesOf(first))
  t.equal(other.name(N - 1), 'label-39999X')
  t.equal(bom.name(0), 'el-0') // the BOM (3 bytes) in place of "lab"
  t.equal(second.file, b, 'each store names its own file')
  t.throws(() => second.name(N), new RegExp(`${b.replace(/[.]/g, '\\.')} has ${N} labels`))

  // The compare reads the file a MiB at a time into a buffer that is freed at once, not at the next full GC.
  const beforeCompares = process.memoryUsage().arrayBuffers
  for (let i = 0; i < 16; i++) (await LabelStore.read(b, N)).release()
  const grown = process.memoryUsage().arrayBuffers - beforeCompares
  t.ok(grown < 4 * 2 ** 20, `16 compares left ${(grown / 2 ** 20).toFixed(1)} MiB of buffers (< 4)`)

  const before = process.memoryUsage().arrayBuffers
  first.release()
  t.equal(second.name(N - 1), `label-${N - 1}`, 'released by one holder, the names stay for the other')
  t.throws(() => first.name(0), /were released/)
  const third = await LabelStore.read(a, N)
  t.equal(bytesOf(third), bytesOf(second), 'a file read again shares the store that is still held')
  second.release()
  third.release()
  t.ok(await arrayBuffersFallTo(before - second.size * 9), 'the last release freed the shared store')
  const fresh = await LabelStore.read(b, N)
  t.not(bytesOf(fresh), bytesOf(second), 'once all are released, a new read reads again')
  t.equal(fresh.name(12345), 'label-12345')
  for (const ls of [other, bom, fresh]) ls.release()
})

t.test('a store released while a file with its bytes is compared with it stays whole until the compare ends', async (t) => {
  const dir = t.testdir()
  const N = 300_000
  const text = Array.from({ length: N }, (_, i) => `n${i}`).join('\n')
  await writeFile(join(dir, 'a.txt'), text)
  await writeFile(join(dir, 'b.txt'), text)
  const first = await LabelStore.read(join(dir, 'a.txt'), N)
  const held = (first as unknown as { bytes: Buffer }).bytes.buffer
  // The store is released by the compare's first file read: after the second read found it, before it compared a byte.
  const probe = await open(join(dir, 'a.txt'))
  const fileHandle = Object.getPrototypeOf(probe) as { read: (...args: unknown[]) => unknown }
  await probe.close()
  const read = fileHandle.read
  t.teardown(() => void (fileHandle.read = read))
  fileHandle.read = function (this: unknown, ...args: unknown[]) {
    fileHandle.read = read
    first.release()
    return read.apply(this, args)
  }
  const second = await LabelStore.read(join(dir, 'b.txt'), N)
  t.equal(fileHandle.read, read, 'the release came during the compare')
  t.equal((second as unknown as { bytes: Buffer }).bytes.buffer, held, 'the compare held the store: it matched, and is shared')
  t.equal(second.size, N)
  t.equal(second.name(0), 'n0')
  t.equal(second.name(N - 1), `n${N - 1}`)
  second.release()
})

t.test('a large store is rounded up to a mapping of its own only where glibc would not map it anyway', async (t) => {
  const file = join(t.testdir(), 'labels.txt')
  const N = 400_000 // 4.4 MB of names + 1.6 MB of offsets: a large store
  await writeFile(file, Array.from({ length: N }, (_, i) => `label-${i}`).join('\n') + '\n')
  // The threshold is read once, when labels.ts loads: a process of its own for each setting.
  const script = `const { LabelStore } = await import(${JSON.stringify(new URL('../../src/bundle/labels.ts', import.meta.url).href)})
const ls = await LabelStore.read(${JSON.stringify(file)}, ${N})
console.log(ls.bytes.buffer.byteLength)`
  const bufferBytes = (threshold: string | undefined): number => {
    const env: NodeJS.ProcessEnv = { ...process.env }
    delete env.MALLOC_MMAP_THRESHOLD_
    if (threshold !== undefined) env.MALLOC_MMAP_THRESHOLD_ = threshold
    return Number(execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env, encoding: 'utf8' }).trim())
  }
  const needed = 4 * (N + 1) + (await readFile(file)).length
  t.equal(bufferBytes('131072'), needed, 'MALLOC_MMAP_THRESHOLD_ below the store: glibc maps it, no rounding')
  t.equal(bufferBytes(undefined), 32 * 2 ** 20 + 4096, 'not fixed: rounded past the largest threshold glibc may rise to')
  t.equal(bufferBytes(String(64 * 2 ** 20)), 32 * 2 ** 20 + 4096, 'fixed above the store: rounded')
})

t.test('a store released while an earlier one is compared is skipped, and a compare that fails lets go of its store', async (t) => {
  const dir = t.testdir()
  const N = 300_000
  const text = Array.from({ length: N }, (_, i) => `n${i}`).join('\n')
  const [a, b, c] = ['a.txt', 'b.txt', 'c.txt'].map((f) => join(dir, f)) as [string, string, string]
  await writeFile(a, text)
  await writeFile(b, 'm' + text.slice(1)) // the same length as a, another first byte
  await writeFile(c, 'm' + text.slice(1)) // b's bytes
  const probe = await open(a)
  const fileHandle = Object.getPrototypeOf(probe) as { read: (...args: unknown[]) => unknown }
  await probe.close()
  const read = fileHandle.read
  t.teardown(() => void (fileHandle.read = read))
  const held = LabelStore.heldStores()
  const first = await LabelStore.read(a, N)
  const second = await LabelStore.read(b, N)
  const secondBuffer = (second as unknown as { bytes: Buffer }).bytes.buffer
  // The compare with a's store (the first candidate) releases b's, the next one, before it reads a byte.
  fileHandle.read = function (this: unknown, ...args: unknown[]) {
    fileHandle.read = read
    second.release()
    return read.apply(this, args)
  }
  const third = await LabelStore.read(c, N)
  t.not((third as unknown as { bytes: Buffer }).bytes.buffer, secondBuffer, 'the released store is not shared')
  t.equal(third.size, N)
  t.equal(third.name(0), 'm0')
  t.equal(third.name(N - 1), `n${N - 1}`)
  t.equal(LabelStore.heldStores(), held + 2, "a's store and c's")

  // A compare whose read fails: the read rejects, and the store compared with is not held by it.
  fileHandle.read = function () {
    fileHandle.read = read
    return Promise.reject(Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' }))
  }
  await t.rejects(LabelStore.read(c, N), { code: 'EIO' })
  first.release()
  third.release()
  t.equal(LabelStore.heldStores(), held, 'every store freed once its holders let go')
})
