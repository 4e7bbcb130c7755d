// Lets the TypeScript sources start worker threads (the engine thread) when run through a loader, as tests, benches
// and tools do. Node 20 does not pass the main thread's loader hooks (tsx, tap's) to a worker (nodejs/node#47747),
// so a worker whose entry is a .ts file would not load; preloaded with `--import`, this module starts such workers
// through a two-line boot that registers tsx inside the worker first. The built server runs .js and needs none of it.
import workerThreads, { type WorkerOptions } from 'node:worker_threads'
import { syncBuiltinESMExports } from 'node:module'
import { pathToFileURL } from 'node:url'

const tsx = import.meta.resolve('tsx/esm/api')
const isTsEntry = (href: string): boolean => /\.[cm]?ts$/.test(new URL(href).pathname)

class TsWorker extends workerThreads.Worker {
  constructor(entry: string | URL, options: WorkerOptions = {}) {
    const href = entry instanceof URL ? entry.href : options.eval ? undefined : pathToFileURL(entry).href
    if (href === undefined || !isTsEntry(href)) {
      super(entry, options)
      return
    }
    const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(href)}) })`
    super(boot, { ...options, eval: true })
  }
}

workerThreads.Worker = TsWorker
syncBuiltinESMExports() // `import { Worker } from 'node:worker_threads'` now sees TsWorker too
