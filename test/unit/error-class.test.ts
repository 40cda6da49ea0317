import { describe, expect, it } from 'vitest';
import { classifyError, parseRetryAfter, rateLimited, RateLimitedError } from '../../policies/error-class.js';

const NOW = Date.parse('2026-12-05T00:00:00Z');
const http = (status: number, extra: Record<string, unknown> = {}) => Object.assign(new Error(`HTTP ${status}`), { status, ...extra });

describe('error classes', () => {
  it.each([
    [400, 'terminal'],
    [401, 'terminal'],
    [403, 'terminal'],
    [404, 'terminal'],
    [422, 'terminal'],
    [408, 'transient'],
    [500, 'transient'],
    [502, 'transient'],
    [503, 'transient'],
    [504, 'transient'],
    [429, 'rate-limited'],
  ])('takes HTTP status %i as %s', (status, kind) => {
    expect(classifyError(http(status), NOW).kind).toBe(kind);
  });

  it("reads the status where clients put it: status, statusCode, response.status", () => {
    expect(classifyError({ statusCode: 404 }, NOW).kind).toBe('terminal');
    expect(classifyError({ response: { status: 401 } }, NOW).kind).toBe('terminal');
  });

  it('takes a 429 with Retry-After in seconds, as an HTTP date, or as retryAfterMs', () => {
    expect(classifyError(http(429, { headers: { 'retry-after': '2' } }), NOW)).toEqual({ kind: 'rate-limited', retryAfterMs: 2000 });
    expect(classifyError(http(429, { response: { status: 429, headers: new Headers({ 'Retry-After': 'Sat, 05 Dec 2026 00:00:30 GMT' }) } }), NOW)).toEqual({ kind: 'rate-limited', retryAfterMs: 30_000 });
    expect(classifyError(http(429, { retryAfterMs: 1500 }), NOW)).toEqual({ kind: 'rate-limited', retryAfterMs: 1500 });
    expect(classifyError(http(429), NOW)).toEqual({ kind: 'rate-limited' });
  });

  it('takes a 503 with Retry-After as rate-limited (an overloaded provider), without it as transient', () => {
    expect(classifyError(http(503, { headers: { 'retry-after': '5' } }), NOW)).toEqual({ kind: 'rate-limited', retryAfterMs: 5000 });
    expect(classifyError(http(503), NOW).kind).toBe('transient');
  });

  it('takes network errors and anything unknown as transient', () => {
    expect(classifyError(Object.assign(new Error('reset'), { code: 'ECONNRESET' }), NOW).kind).toBe('transient');
    expect(classifyError(Object.assign(new Error('undici'), { code: 'UND_ERR_SOCKET' }), NOW).kind).toBe('transient');
    expect(classifyError(new Error('whatever'), NOW).kind).toBe('transient');
    expect(classifyError('a string', NOW).kind).toBe('transient');
    expect(classifyError(undefined, NOW).kind).toBe('transient');
  });

  it("takes a handler's rateLimited() as rate-limited with its delay", () => {
    const err = rateLimited({ retryAfterMs: 1000 });
    expect(err).toBeInstanceOf(RateLimitedError);
    expect(err.code).toBe('ERR_RATE_LIMITED');
    expect(classifyError(err, NOW)).toEqual({ kind: 'rate-limited', retryAfterMs: 1000 });
    expect(classifyError(rateLimited(), NOW)).toEqual({ kind: 'rate-limited' });
    expect(rateLimited({ retryAfterMs: -5 }).retryAfterMs).toBeUndefined();
  });

  it('never throws on a hostile value: throwing getters and a Proxy whose every trap throws read as transient', () => {
    const getters = Object.defineProperty({}, 'status', { get: () => { throw new Error('no'); } });
    const trap = () => { throw new Error('trap'); };
    const proxy = new Proxy({}, { get: trap, getPrototypeOf: trap, has: trap, ownKeys: trap, getOwnPropertyDescriptor: trap });
    expect(classifyError(getters, NOW).kind).toBe('transient');
    expect(classifyError(proxy, NOW).kind).toBe('transient');
    const hostileHeaders = http(429, { headers: { get: trap } });
    expect(classifyError(hostileHeaders, NOW)).toEqual({ kind: 'rate-limited' });
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates, clamps to [0, 1 h], and ignores what is neither', () => {
    expect(parseRetryAfter('120', NOW)).toBe(120_000);
    expect(parseRetryAfter(' 1.5 ', NOW)).toBe(1500);
    expect(parseRetryAfter(3, NOW)).toBe(3000);
    expect(parseRetryAfter('Fri, 04 Dec 2026 23:00:00 GMT', NOW)).toBe(0);
    expect(parseRetryAfter('86400', NOW)).toBe(3_600_000);
    expect(parseRetryAfter('soon', NOW)).toBeUndefined();
    expect(parseRetryAfter('', NOW)).toBeUndefined();
    expect(parseRetryAfter(Number.NaN, NOW)).toBeUndefined();
    expect(parseRetryAfter({}, NOW)).toBeUndefined();
  });
});
