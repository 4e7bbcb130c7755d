// The service's state and its transitions, owned here: every other module asks this one where the service stands
// or asks it to move, so a state is never written in two places or moved back (closing never returns to draining).

/** In order: a state only ever moves to one after it, never back. */
export const SERVICE_STATES = ['starting', 'ready', 'draining', 'closing', 'failed'] as const

/**
 * starting: listening, the model loading and warming up; ready: predicting; draining: not ready but serving (load
 * balancers stop sending); closing: no new connections, open ones answered then closed; failed: nothing can be
 * predicted any more (the model did not load, or the engine thread died).
 */
export type ServiceState = (typeof SERVICE_STATES)[number]

const rank = (s: ServiceState): number => SERVICE_STATES.indexOf(s)

export class Lifecycle {
  private current: ServiceState = 'starting'

  get state(): ServiceState {
    return this.current
  }

  /** Ready for /health/ready: model loaded, warmed up, not draining. */
  get ready(): boolean {
    return this.current === 'ready'
  }

  /** Alive for /health/live: the process can still predict (or will, once started). */
  get alive(): boolean {
    return this.current !== 'failed'
  }

  /**
   * Moves to `next` when it comes after the current state; returns whether it moved. A later state wins a race:
   * a model that finishes loading after a drain began does not make the service ready again.
   */
  to(next: ServiceState): boolean {
    if (rank(next) <= rank(this.current)) return false
    this.current = next
    return true
  }
}
