// orval's "mutator" (its documented hook for a custom fetch): the fetch its generated client calls, here to put the
// server's base URL, chosen at run time, in front of each path. Answers { status, data, headers } as orval expects.

let baseUrl = ''

export function setOrvalBaseUrl(url: string): void {
  baseUrl = url
}

export async function orvalFetch<T>(path: string, options: RequestInit): Promise<T> {
  const res = await fetch(baseUrl + path, options)
  const text = [204, 205, 304].includes(res.status) ? '' : await res.text()
  const data: unknown = (res.headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) : text
  return { status: res.status, data, headers: res.headers } as T
}
