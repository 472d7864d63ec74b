import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { type Browser, chromium } from 'playwright-core'
import { root } from './server.js'

export const CHROMIUM = '/usr/bin/chromium'
/** Screenshots that CI keeps. */
export const ARTIFACTS = join(root, 'test-artifacts')

/**
 * Why a browser test is skipped, or false to run it. CI sets REQUIRE_BROWSER=1, so that it never
 * skips one; locally a missing Chromium skips it with what to do.
 */
export const browserMissing =
  !existsSync(CHROMIUM) && !process.env.REQUIRE_BROWSER
    ? `no Chromium at ${CHROMIUM}: install it (apt-get install chromium) and run again, or set REQUIRE_BROWSER=1 to make this a failure`
    : false

/** Debian's Chromium, headless, with none of its background connections (the machine has no network). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
}
