import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// A local nats-server for tests, examples and benchmarks: JetStream on a free loopback port with a
// temporary store. Tests of a pipeline on natsJetStream() use it the way Baton's own tests do.

/** The nats-server binary (NATS_SERVER, or on the PATH), or undefined when it is not installed. */
export const natsServerBinary: string | undefined = (() => {
  for (const candidate of [process.env.NATS_SERVER, 'nats-server', '/usr/sbin/nats-server', '/usr/bin/nats-server']) {
    if (candidate === undefined) continue;
    const r = spawnSync(candidate, ['--version'], { encoding: 'utf8' });
    if (r.status === 0) return candidate;
  }
  return undefined;
})();

/** Why NATS tests cannot run on this machine, naming the install command ('' when they can). */
export const natsMissing = natsServerBinary === undefined ? 'nats-server is not installed: apt-get install -y nats-server (or set NATS_SERVER=/path/to/nats-server)' : '';

/** Says once per process, on stderr, that NATS tests skip here and how to install the server. */
export function warnNatsMissing(): void {
  if (natsMissing === '' || warned) return;
  warned = true;
  process.stderr.write(`\n[baton] skipping the NATS tests: ${natsMissing}\n\n`);
}
let warned = false;

/** A nats-server started by startNatsServer(). */
export interface NatsServer {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  /** SIGKILLs the server (its store stays). */
  kill(): Promise<void>;
  /** Starts it again on the same port and store. */
  restart(): Promise<void>;
  /** Stops it and deletes its store. */
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = tcpConnect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nats-server did not listen on ${port} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts nats-server with JetStream (unless `jetstream: false`) on a free loopback port and a
 * temporary store; `extraArgs` go to the server (`['--user', 'u', '--pass', 'p']`). Throws when the
 * binary is missing (see natsMissing).
 */
export async function startNatsServer(extraArgs: readonly string[] = [], options: { readonly jetstream?: boolean } = {}): Promise<NatsServer> {
  if (natsServerBinary === undefined) throw new Error(natsMissing);
  const port = await freePort();
  const storeDir = mkdtempSync(join(tmpdir(), 'baton-nats-'));
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    const js = options.jetstream === false ? [] : ['-js', '-sd', storeDir];
    child = spawn(natsServerBinary!, ['-a', '127.0.0.1', '-p', String(port), ...js, ...extraArgs], { stdio: 'ignore' });
    await waitForPort(port, 10_000);
  };
  const kill = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (c === undefined || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  };
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    kill,
    restart: start,
    stop: async () => {
      await kill();
      rmSync(storeDir, { recursive: true, force: true });
    },
  };
}
