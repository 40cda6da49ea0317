// A fake LLM completion server on loopback (real HTTP, node:http), for the rate-limit example and its
// test. POST /v1/complete { prompt } answers { text } after `latencyMs`. During a storm (the first
// `stormMs` after start) it refuses every other call with 429 and a Retry-After of `retryAfterS`.
import { createServer, type Server } from 'node:http';

export interface ModelServer {
  readonly url: string;
  /** Calls received, and how many were refused with 429. */
  readonly stats: { calls: number; refused: number };
  close(): Promise<void>;
}

export async function startModelServer(options: { stormMs?: number; retryAfterS?: number; latencyMs?: number } = {}): Promise<ModelServer> {
  const stormMs = options.stormMs ?? 5_000;
  const retryAfterS = options.retryAfterS ?? 1;
  const latencyMs = options.latencyMs ?? 20;
  const started = Date.now();
  const stats = { calls: 0, refused: 0 };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const call = stats.calls++;
      if (Date.now() - started < stormMs && call % 2 === 0) {
        stats.refused++;
        res.writeHead(429, { 'content-type': 'application/json', 'retry-after': String(retryAfterS) });
        res.end(JSON.stringify({ error: 'rate_limited' }));
        return;
      }
      setTimeout(() => {
        let prompt = '';
        try {
          prompt = String((JSON.parse(body) as { prompt?: unknown }).prompt ?? '');
        } catch {
          res.writeHead(400).end(JSON.stringify({ error: 'bad json' }));
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ text: `summary of ${prompt.length} chars` }));
      }, latencyMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    stats,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
