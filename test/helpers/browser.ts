// Headless Chromium for browser tests: Debian's `chromium` package driven by playwright-core, never a
// browser download. CHROMIUM_PATH points at another binary (for example /usr/bin/chromium-browser).
import { type Browser, chromium } from 'playwright-core';
import { executablesMissing, skipWhenMissing } from './process.ts';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

// Playwright gives every launch a fresh temporary profile (--user-data-dir) and removes it on close.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

const LAUNCH_TIMEOUT_MS = 30_000;

/** Why the browser cannot run here, or undefined when it can. */
export const chromiumMissing = () =>
  executablesMissing(
    [CHROMIUM_PATH],
    "install Debian's package (apt-get install -y chromium) or set CHROMIUM_PATH",
  );

export const skipWithoutChromium = () => skipWhenMissing('browser tests', chromiumMissing());

/** Chromium with the flags above; `extraArgs` such as `--host-resolver-rules=MAP docs.test 127.0.0.1`. */
export async function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  const missing = chromiumMissing();
  if (missing) throw new Error(missing);
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [...CHROMIUM_ARGS, ...extraArgs],
    timeout: LAUNCH_TIMEOUT_MS,
  });
}
