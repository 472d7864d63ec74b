/** A task this process runs on a timer until stopped. */
export interface Periodic {
  /** Stops the timer and waits for a run in progress. */
  stop(): Promise<void>
}

/**
 * Runs `task` every `intervalMs` in this process. Used for housekeeping that several instances may
 * do at once (purging expired rows), so a run is safe to repeat; a failure is reported and the next
 * run tries again.
 */
export function every(intervalMs: number, task: () => Promise<unknown>, onError: (error: Error) => void): Periodic {
  let running: Promise<unknown> = Promise.resolve()
  const timer = setInterval(() => {
    running = task().catch(onError)
  }, intervalMs)
  // It must not keep the process alive on its own.
  timer.unref()
  return {
    async stop() {
      clearInterval(timer)
      await running
    },
  }
}
