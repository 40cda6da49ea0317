import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { agent, createSystem, memoryJournal, type ActorSystem } from '../../system/index.js';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const noBrowser = existsSync(CHROMIUM) ? '' : `chromium is not installed at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`;
if (noBrowser !== '') process.stderr.write(`\n[baton] skipping the browser tests: ${noBrowser}\n\n`);

/** A raw HTTP call with the Host header we choose (fetch will not let us lie about it). */
function call(url: string, options: { method?: string; host?: string; token?: string } = {}): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: options.method ?? 'GET', headers: { host: options.host ?? u.host, ...(options.token ? { 'x-baton-token': options.token } : {}) } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A system with a journaled pipeline whose stage 'parse' dead-letters negative inputs until `fixed`. */
async function observed(readOnly = false) {
  const system = createSystem({ logger: false, journal: memoryJournal() });
  const fix = { fixed: false };
  const pipe = system.spawnPipeline<number, number>({
    name: 'legal',
    stages: [agent({ name: 'parse', retry: { maxAttempts: 1 }, handle: async (x: number) => { await new Promise((r) => setTimeout(r, 2)); if (x < 0 && !fix.fixed) throw new Error(`corrupt ${x}`); return x; } }), agent({ name: 'store', handle: (x: number) => x })],
  });
  const page = await system.observe({ readOnly, intervalMs: 100 });
  return { system, pipe, page, fix };
}

const systems: ActorSystem[] = [];
afterAll(async () => {
  await Promise.all(systems.map((s) => s.shutdown()));
});

describe('system.observe()', () => {
  it('serves the page, a snapshot and metrics on 127.0.0.1, to its own Host only', async () => {
    const { system, pipe, page } = await observed();
    systems.push(system);
    await pipe.send(1, { id: 'a' });
    await pipe.drain();
    expect(page.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const html = await call(page.url);
    expect(html.status).toBe(200);
    expect(html.body).toContain(page.token);
    expect(JSON.parse((await call(`${page.url}snapshot`)).body).pipelines[0]).toMatchObject({ name: 'legal', completed: 1 });
    expect((await call(`${page.url}metrics`)).body).toMatch(/^baton_pipeline_tasks_completed_total\{pipeline="legal"\} 1$/m);
    expect((await call(page.url, { host: 'evil.example:80' })).status).toBe(403);
    expect((await call(`${page.url}snapshot`, { host: `attacker.test:${new URL(page.url).port}` })).status).toBe(403);
  });

  it('refuses an action without the token, and any action when read-only', async () => {
    const { system, pipe, page } = await observed();
    systems.push(system);
    await pipe.send(-1, { id: 'bad' });
    await pipe.drain();
    expect((await call(`${page.url}replay?pipeline=legal&id=bad`, { method: 'POST' })).status).toBe(403);
    expect((await call(`${page.url}replay?pipeline=legal&id=bad`, { method: 'POST', token: 'guess' })).status).toBe(403);
    const audit: unknown[] = [];
    system.events.on('replayed', (e) => audit.push(e));
    const ok = await call(`${page.url}replay?pipeline=legal&id=bad`, { method: 'POST', token: page.token });
    expect(ok).toMatchObject({ status: 200 });
    expect(JSON.parse(ok.body)).toEqual({ replayed: 1 });
    // The action is audited: an event that says what was replayed and who asked.
    expect(audit).toMatchObject([{ type: 'replayed', path: 'legal', taskIds: ['bad'], by: expect.stringMatching(/^live page 127\.0\.0\.1:\d+, client 127\.0\.0\.1:\d+$/) }]);

    const ro = await observed(true);
    systems.push(ro.system);
    expect((await call(ro.page.url)).body).not.toContain(ro.page.token);
    expect((await call(`${ro.page.url}replay?pipeline=legal&id=x`, { method: 'POST', token: ro.page.token })).status).toBe(403);
  });
});

describe.skipIf(noBrowser !== '')('the live page in a real browser (chromium)', () => {
  it('renders the tree, updates live, and replays a dead letter after a confirmation', async () => {
    const { chromium } = await import('playwright-core');
    const { system, pipe, page: observer, fix } = await observed();
    systems.push(system);
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage();
      await page.goto(observer.url);
      await page.waitForSelector('tr[data-stage="legal/parse"]');
      expect(await page.textContent('#status')).toBe('live');
      for (let i = 0; i < 30; i++) await pipe.send(i, { id: `d${i}` });
      await pipe.send(-5, { id: 'corrupt-5' });
      await pipe.drain();
      // The next snapshot shows the counts (a live update, no reload).
      await page.waitForFunction(`document.querySelector('tr[data-stage="legal/store"] .completed')?.textContent === '30'`, undefined, { timeout: 5_000 });
      await page.waitForSelector('tr[data-dead="corrupt-5"] button[data-replay]');
      fix.fixed = true;
      page.once('dialog', (d) => void d.accept());
      await page.click('tr[data-dead="corrupt-5"] button[data-replay]');
      await page.waitForFunction(`document.getElementById('events')?.textContent?.includes('replayed 1')`, undefined, { timeout: 5_000 });
      await pipe.drain();
      expect(pipe.outcome('corrupt-5')).toMatchObject({ status: 'completed', output: -5 });
      await page.waitForFunction(`!document.querySelector('tr[data-dead="corrupt-5"]')`, undefined, { timeout: 5_000 });
    } finally {
      await browser.close();
    }
  }, 60_000);
});
