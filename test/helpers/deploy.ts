// Shared by the deploy tests: finding system tools (nginx, promtool) and running deploy/nginx.conf locally.
import { statSync } from 'node:fs'
import { basename, join } from 'node:path'

/** A command on PATH or in an sbin folder (Debian's nginx is /usr/sbin/nginx, off a normal user's PATH). */
export function findTool(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/sbin', '/usr/local/sbin', '/sbin']
  return dirs.map((d) => join(d, name)).find((p) => {
    try {
      return statSync(p).isFile()
    } catch {
      return false
    }
  })
}

const LOCAL_MARK = '# @local'
const RENDERED_MARK = '# @rendered'
/** A directive followed by the marker: "listen 8080;   # @local". */
const isLocal = (line: string): boolean => /;\s*# @local\b/.test(line)

export interface LocalNginx {
  /** Folder for the pid file, logs and temp folders. */
  dir: string
  /** Where nginx listens (127.0.0.1). */
  port: number
  /** The replicas, on 127.0.0.1. */
  upstreamPorts: number[]
}

/**
 * deploy/nginx.conf for 127.0.0.1: only the lines marked "# @local" change (listen address, upstream servers,
 * resolver, file paths); each replacement line is marked "# @rendered". Every other line is kept byte for byte,
 * so the proxy and retry settings under test are the deployed ones. Throws on a marked line it does not know.
 */
export function renderLocalNginx(conf: string, local: LocalNginx): string {
  return conf
    .split('\n')
    .flatMap((line) => {
      if (!isLocal(line)) return [line]
      const indent = /^\s*/.exec(line)![0]
      const [directive = '', ...rest] = line.slice(0, line.indexOf(LOCAL_MARK)).trim().replace(/;$/, '').split(/\s+/)
      const out = (s: string) => `${indent}${s}; ${RENDERED_MARK}`
      switch (directive) {
        case 'listen':
          return [out(`listen 127.0.0.1:${local.port}`)]
        case 'server': // server HOST:PORT resolve PARAMS -> one server per local replica, same PARAMS
          return local.upstreamPorts.map((p) => out(`server 127.0.0.1:${p} ${rest.slice(1).filter((a) => a !== 'resolve').join(' ')}`.trimEnd()))
        case 'resolver': // fixed addresses: nothing to resolve
          return [`${indent}${RENDERED_MARK} (no resolver)`]
        case 'pid':
        case 'error_log':
        case 'access_log':
        case 'client_body_temp_path':
        case 'proxy_temp_path':
        case 'fastcgi_temp_path':
        case 'uwsgi_temp_path':
        case 'scgi_temp_path':
          return [out([directive, join(local.dir, basename(rest[0] ?? '')), ...rest.slice(1)].join(' '))]
        default:
          throw new Error(`deploy/nginx.conf: no local rendering for the ${LOCAL_MARK} line "${line.trim()}"`)
      }
    })
    .join('\n')
}

/** The lines of a rendered config that came unchanged from the original. */
export const keptLines = (rendered: string): string[] => rendered.split('\n').filter((l) => !l.includes(RENDERED_MARK))
/** The lines of the original config that rendering keeps. */
export const unmarkedLines = (conf: string): string[] => conf.split('\n').filter((l) => !isLocal(l))
/** How many directives are marked for local rendering. */
export const markedCount = (conf: string): number => conf.split('\n').filter(isLocal).length
