// Reuses Float32Arrays of one length. A typed array of a few KB gets an off-heap backing store; allocating one per
// request (and a batch buffer per batch) showed up as GC and allocation time in the service's CPU profile.

export class FloatPool {
  private readonly free: Float32Array[] = []

  /** `length` floats per array; at most `keep` arrays wait for reuse. */
  constructor(
    readonly length: number,
    private readonly keep: number,
  ) {}

  /** A pooled array (contents undefined: the caller overwrites it) or a new one. */
  take(): Float32Array {
    return this.free.pop() ?? new Float32Array(this.length)
  }

  /** Hands an array back for reuse; ignored unless it is exactly one whole buffer of this pool's length. */
  give(a: Float32Array): void {
    if (this.free.length >= this.keep || a.length !== this.length || a.byteOffset !== 0 || a.buffer.byteLength !== a.byteLength) return
    this.free.push(a)
  }

  /** Takes back the whole buffer under `view` when it is one of this pool's length (an engine handing a batch back). */
  reclaim(view: Float32Array): void {
    const b = view.buffer
    if (b instanceof ArrayBuffer && b.byteLength === this.length * Float32Array.BYTES_PER_ELEMENT) this.give(new Float32Array(b))
  }
}
