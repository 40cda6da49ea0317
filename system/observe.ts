import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { BatonError, invalidOption, toErrorInfo } from '../src/errors.js';
import { checkKeys } from '../src/options.js';
import type { BatonEvent } from '../src/events.js';
import { OBSERVE_PAGE } from './observe-page.js';
import type { SystemSnapshot } from './prometheus.js';

/** What `system.observe()` takes. Every option is optional. */
export interface ObserveOptions {
  /** Optional; defaults to 0 (a free port: read it from the result's `url`). */
  readonly port?: number;
  /** The address to listen on. Optional; defaults to '127.0.0.1' (this machine only). */
  readonly host?: string;
  /** No actions (replay): the page only shows. Optional; defaults to false. */
  readonly readOnly?: boolean;
  /** How often the page gets a fresh snapshot, ms. Optional; defaults to 500. */
  readonly intervalMs?: number;
}

/** A running live page. */
export interface Observer {
  /** Where the page is, e.g. 'http://127.0.0.1:53124/'. */
  readonly url: string;
  /** The per-process token every action must carry (the page has it; a script needs it too). */
  readonly token: string;
  /** Stops serving (the system's shutdown does it too). */
  close(): Promise<void>;
}

/** What the live page needs from the system. */
export interface Observed {
  snapshot(): SystemSnapshot;
  metrics(): string;
  onEvent(listener: (e: BatonEvent) => void): () => void;
  deadLetters(pipeline: string): unknown[];
  /** `by`: who asked, for the audit event (the page and the client's address). */
  replay(pipeline: string, ids: readonly string[], by: string): number;
}

/**
 * The live page: one static page (no build step) and a Server-Sent Events stream of snapshots and
 * lifecycle events, served by node:http. Safe by default: bound to 127.0.0.1; a request whose Host is
 * not this server's address is refused (a page elsewhere cannot reach it through DNS rebinding); every
 * action needs the per-process token; `readOnly` refuses actions altogether.
 * Routes: GET / (the page), GET /events (SSE), GET /snapshot, GET /metrics (Prometheus text),
 * GET /dead-letters?pipeline=, POST /replay?pipeline=&id=... (header x-baton-token).
 */
export async function observe(system: Observed, options: ObserveOptions = {}): Promise<Observer> {
  if (options === null || typeof options !== 'object') throw invalidOption('observe(options)', options, 'an object (or nothing)');
  checkKeys(options, ['port', 'host', 'readOnly', 'intervalMs'], 'observe(options)');
  const port = options.port ?? 0;
  if (!(Number.isInteger(port) && port >= 0 && port <= 65_535)) throw invalidOption('observe(options).port', port, 'a port number 0-65535 (0: any free port)');
  const host = options.host ?? '127.0.0.1';
  if (typeof host !== 'string' || host.length === 0) throw invalidOption('observe(options).host', host, "an address such as '127.0.0.1'");
  const intervalMs = options.intervalMs ?? 500;
  if (!(Number.isInteger(intervalMs) && intervalMs >= 50)) throw invalidOption('observe(options).intervalMs', intervalMs, 'an integer number of ms >= 50');
  const readOnly = options.readOnly === true;
  const token = randomBytes(16).toString('hex');
  const clients = new Set<ServerResponse>();
  let allowedHosts: Set<string> = new Set();

  const send = (res: ServerResponse, status: number, type: string, body: string): void => {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    res.end(body);
  };
  const json = (res: ServerResponse, status: number, value: unknown): void => send(res, status, 'application/json', JSON.stringify(value));
  const broadcast = (kind: string, data: unknown): void => {
    const frame = `event: ${kind}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const c of clients) c.write(frame);
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    // DNS rebinding: a foreign page may resolve its own name to 127.0.0.1; its requests carry its Host.
    if (!allowedHosts.has(String(req.headers.host ?? '').toLowerCase())) return json(res, 403, { error: 'this page answers only to its own address (Host header refused)' });
    const url = new URL(req.url ?? '/', 'http://local');
    if (req.method === 'GET' && url.pathname === '/') {
      return send(res, 200, 'text/html; charset=utf-8', OBSERVE_PAGE.replace('__TOKEN__', readOnly ? '' : token).replace('__READONLY__', String(readOnly)));
    }
    if (req.method === 'GET' && url.pathname === '/snapshot') return json(res, 200, system.snapshot());
    if (req.method === 'GET' && url.pathname === '/metrics') return send(res, 200, 'text/plain; version=0.0.4', system.metrics());
    if (req.method === 'GET' && url.pathname === '/dead-letters') {
      try {
        return json(res, 200, system.deadLetters(url.searchParams.get('pipeline') ?? ''));
      } catch (err) {
        return json(res, 400, { error: toErrorInfo(err).message });
      }
    }
    if (req.method === 'GET' && url.pathname === '/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
      res.write(`event: snapshot\ndata: ${JSON.stringify(system.snapshot())}\n\n`);
      clients.add(res);
      req.on('close', () => clients.delete(res));
      return;
    }
    if (req.method === 'POST' && url.pathname === '/replay') {
      if (readOnly) return json(res, 403, { error: 'this page is read-only (observe({ readOnly: true }))' });
      if (req.headers['x-baton-token'] !== token) return json(res, 403, { error: 'an action needs the page token (header x-baton-token)' });
      try {
        const by = `live page ${String(req.headers.host)}, client ${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
        const n = system.replay(url.searchParams.get('pipeline') ?? '', url.searchParams.getAll('id'), by);
        broadcast('action', { action: 'replay', pipeline: url.searchParams.get('pipeline'), ids: url.searchParams.getAll('id'), replayed: n });
        return json(res, 200, { replayed: n });
      } catch (err) {
        return json(res, 400, { error: toErrorInfo(err).message });
      }
    }
    return json(res, 404, { error: `no ${req.method} ${url.pathname} here` });
  };

  const server: Server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (err) {
      if (!res.headersSent) json(res, 500, { error: toErrorInfo(err).message });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new BatonError('ERR_INVALID_OPTION', `observe: cannot listen on ${host}:${port} (${toErrorInfo(err).message}); choose another port.`, { option: 'port' }, err)));
    server.listen(port, host, () => resolve());
  });
  const actual = (server.address() as { port: number }).port;
  const named = host.includes(':') ? `[${host}]` : host;
  allowedHosts = new Set([`${named}:${actual}`, `localhost:${actual}`].map((h) => h.toLowerCase()));
  const timer = setInterval(() => clients.size > 0 && broadcast('snapshot', system.snapshot()), intervalMs);
  timer.unref();
  const off = system.onEvent((e) => {
    if (clients.size > 0 && (e.type === 'dead-lettered' || e.type === 'crashed' || e.type === 'restarted' || e.type.startsWith('breaker') || e.type.startsWith('throttle') || e.type === 'escalated')) broadcast('event', e);
  });
  return {
    url: `http://${named}:${actual}/`,
    token,
    close: async () => {
      clearInterval(timer);
      off();
      for (const c of clients) c.end();
      clients.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
