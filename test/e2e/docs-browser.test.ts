// /docs in a real headless Chromium: Swagger UI renders from the app's own assets (no CDN), shows every
// documented operation, and "Try it out" on GET /api/loans reaches the running app.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { ORIGINAL_LOANS, seedOriginalLoans } from '../../src/loans/seed.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { launchChromium, skipWithoutChromium } from '../helpers/browser.ts';

const UI_TIMEOUT_MS = 15_000;
// A name that is not localhost makes the page an ordinary insecure origin, as on a LAN address or a
// container name; the browser resolves it to 127.0.0.1, so nothing leaves the machine.
const PLAIN_HOST = 'docs.test';
const SEEDED_IDS_NEWEST_FIRST = ORIGINAL_LOANS.map(({ id }) => id).reverse();
const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);
// The routes the contract (API.md) names; the document may hold more, and the page must show them all.
const CONTRACT_OPERATIONS = [
  'GET /api/loans',
  'GET /api/loans/{id}',
  'GET /api/stats',
  'GET /health',
  'GET /liveness',
  'GET /readiness',
  'POST /api/loans',
];

describe.skipIf(skipWithoutChromium())('/docs in a browser', () => {
  let t: TestApp | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext;
  let origin: string;
  /** The origin of the page under test: every request it makes must go there. */
  let pageOrigin: string;
  let documented: string[];
  /** What went wrong in the page of the current test; the docs must work offline, from the app alone. */
  const foreignRequests: string[] = [];
  const failedRequests: string[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    browser = await launchChromium([`--host-resolver-rules=MAP ${PLAIN_HOST} 127.0.0.1`]);
    t = await buildTestApp({ LOG_LEVEL: 'warn' });
    await seedOriginalLoans(t.pool, t.config);
    origin = await t.app.listen({ host: '127.0.0.1', port: 0 });

    const doc = (await (await fetch(`${origin}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    documented = Object.entries(doc.paths)
      .flatMap(([path, item]) =>
        Object.keys(item)
          .filter((method) => HTTP_METHODS.has(method))
          .map((method) => `${method.toUpperCase()} ${path}`),
      )
      .sort();

    context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    context.setDefaultTimeout(UI_TIMEOUT_MS);
    context.on('request', (request) => {
      if (!request.url().startsWith(`${pageOrigin}/`) && !request.url().startsWith('data:')) {
        foreignRequests.push(request.url());
      }
    });
    context.on('requestfailed', (request) => {
      failedRequests.push(`${request.url()}: ${request.failure()?.errorText}`);
    });
  });

  afterAll(async () => {
    try {
      await browser?.close();
    } finally {
      await t?.close();
    }
  });

  async function openDocs(at = origin): Promise<Page> {
    pageOrigin = at;
    for (const list of [foreignRequests, failedRequests, pageErrors]) list.length = 0;
    const page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
    onTestFailed(async () => {
      const path = join(tmpdir(), `docs-browser-${Date.now()}.png`);
      await page.screenshot({ path, fullPage: true }).catch(() => undefined);
      console.error(`Screenshot of the failed page: ${path}`);
    });
    const response = await page.goto(`${at}/docs`);
    expect(response?.status()).toBe(200);
    await page.locator('.opblock').first().waitFor();
    return page;
  }

  it('renders every documented operation from the app’s own assets', async () => {
    expect(documented).toEqual(expect.arrayContaining(CONTRACT_OPERATIONS));
    const page = await openDocs();
    await expect.poll(() => page.locator('.opblock').count()).toBe(documented.length);

    const shown: string[] = [];
    for (const block of await page.locator('.opblock').all()) {
      const method = await block.locator('.opblock-summary-method').innerText();
      const path = await block.locator('.opblock-summary-path').getAttribute('data-path');
      shown.push(`${method.trim()} ${path}`);
    }
    expect(shown.sort()).toEqual(documented);
    await expect.poll(() => page.locator('.info .title').innerText()).toContain('Branch Loans API');

    expect(foreignRequests).toEqual([]);
    expect(failedRequests).toEqual([]);
    expect(pageErrors).toEqual([]);
    await page.close();
  });

  it('"Try it out" on GET /api/loans shows the seeded loans, newest first', async () => {
    const page = await openDocs();
    const operation = page
      .locator('.opblock.opblock-get')
      .filter({ has: page.locator('.opblock-summary-path[data-path="/api/loans"]') });
    await expect.poll(() => operation.count()).toBe(1);
    await operation.locator('.opblock-summary').click();

    // tryItOutEnabled opens operations ready to execute; otherwise the button has to be pressed.
    const tryItOut = operation.getByRole('button', { name: 'Try it out' });
    if (await tryItOut.isVisible()) await tryItOut.click();
    await operation.getByRole('button', { name: 'Execute' }).click();

    const live = operation.locator('.live-responses-table tbody tr.response');
    await live.waitFor();
    expect((await live.locator('.response-col_status').innerText()).trim()).toBe('200');
    expect((await operation.locator('.request-url pre').innerText()).trim()).toBe(
      `${origin}/api/loans?limit=50`,
    );
    const body = JSON.parse(await live.locator('.highlight-code code.language-json').innerText()) as {
      id: string;
    }[];
    expect(body.map((loan) => loan.id)).toEqual(SEEDED_IDS_NEWEST_FIRST);

    expect(foreignRequests).toEqual([]);
    expect(failedRequests).toEqual([]);
    expect(pageErrors).toEqual([]);
    await page.close();
  });

  it('renders over plain http under a host name other than localhost', async () => {
    const page = await openDocs(origin.replace('127.0.0.1', PLAIN_HOST));
    await expect.poll(() => page.locator('.opblock').count()).toBe(documented.length);
    expect(foreignRequests).toEqual([]);
    expect(failedRequests).toEqual([]);
    expect(pageErrors).toEqual([]);
    await page.close();
  });
});
