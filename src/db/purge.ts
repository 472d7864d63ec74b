export interface Purge {
  stop(): Promise<void>
}

/**
 * Runs `purge` every `intervalMs` in this process (expired throttling counters, which throttle
 * nothing any more). Several instances may purge at once: deleting expired rows is safe to repeat.
 */
export function startPeriodicPurge(
  purge: () => Promise<unknown>,
  options: { intervalMs: number; onError: (error: Error) => void },
): Purge {
  let running: Promise<unknown> = Promise.resolve()
  const timer = setInterval(() => {
    running = purge().catch(options.onError)
  }, options.intervalMs)
  // It must not keep the process alive on its own.
  timer.unref()
  return {
    async stop() {
      clearInterval(timer)
      await running
    },
  }
}
