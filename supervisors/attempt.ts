import type { Clock } from '../src/clock.js';
import { BatonError } from '../src/errors.js';

/**
 * The waiting parts of a supervised call (supervise.ts): one attempt under a deadline, a backoff
 * wait and a wait for a shared promise, each of which ends as soon as the caller's signal aborts.
 * Nothing here decides anything; the decisions are the breaker, backoff and intensity functions.
 */

/** Starts the task with the attempt's own signal. */
export type AttemptCall<O> = (signal: AbortSignal) => O | PromiseLike<O>;

/**
 * Runs `call` once with a signal that aborts when the caller's does or when `timeoutMs` passes.
 * Settles with the task's result, the caller's abort reason, or ERR_TIMEOUT, whichever comes
 * first; a result that arrives later is dropped, so one call never produces two answers. With
 * timeoutMs 500, a task still running at 500 ms sees `signal.aborted` with an ERR_TIMEOUT reason
 * and the attempt fails at 500 ms even if the task ignores the signal and returns at 900 ms.
 */
export async function runAttempt<O>(call: AttemptCall<O>, opts: { readonly name: string; readonly timeoutMs: number; readonly clock: Clock; readonly caller: AbortSignal | undefined }): Promise<O> {
  const { name, timeoutMs, clock, caller } = opts;
  const controller = new AbortController();
  // The abort event fires once; a caller that aborted before we listened would never tell us.
  if (caller?.aborted) throw caller.reason;
  let stop: ((reason: unknown) => void) | undefined;
  const stopped = new Promise<never>((_, reject) => (stop = reject));
  const onCallerAbort = (): void => {
    controller.abort(caller!.reason);
    stop!(caller!.reason);
  };
  caller?.addEventListener('abort', onCallerAbort, { once: true });
  const timer =
    timeoutMs === Infinity
      ? undefined
      : clock.setTimer(timeoutMs, () => {
          const err = new BatonError('ERR_TIMEOUT', `'${name}' took longer than timeoutMs (${timeoutMs} ms); its signal was aborted and a late result will be dropped. Raise timeoutMs if such runs are normal.`, { task: name, timeoutMs });
          controller.abort(err);
          stop!(err);
        });
  try {
    // A synchronous throw from the task lands in the catch below, like a rejection.
    return await Promise.race([Promise.resolve(call(controller.signal)), stopped]);
  } catch (err) {
    // Once our signal has fired, its reason is the truth: a task that answers the abort with its
    // own AbortError at once must still read as a timeout (retried), not as the caller leaving.
    throw controller.signal.aborted ? controller.signal.reason : err;
  } finally {
    timer?.cancel();
    caller?.removeEventListener('abort', onCallerAbort);
  }
}

/** Waits `ms` on `clock`; rejects with the signal's reason as soon as it aborts (a backoff cut short). */
export function sleep(clock: Clock, ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = (): void => {
      timer.cancel();
      reject(signal!.reason);
    };
    const timer = clock.setTimer(ms, () => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    });
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** `p`, or the signal's reason if it aborts first (the shared work behind `p` goes on for others). */
export function untilAborted<T>(p: Promise<T>, signal: AbortSignal | null | undefined): Promise<T> {
  if (signal == null) return p;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/**
 * `make()`'s result, or `timeout()` thrown once `ms` have passed on the clock (Infinity: no
 * deadline). The timer is cancelled as soon as make() settles, so nothing is left running.
 */
export function withinDeadline<T>(make: () => T | PromiseLike<T>, ms: number, clock: Clock, timeout: () => Error): Promise<T> {
  let result: T | PromiseLike<T>;
  try {
    result = make();
  } catch (err) {
    return Promise.reject(err);
  }
  if (ms === Infinity) return Promise.resolve(result);
  return new Promise<T>((resolve, reject) => {
    const timer = clock.setTimer(ms, () => reject(timeout()));
    Promise.resolve(result).then(
      (v) => {
        timer.cancel();
        resolve(v);
      },
      (e: unknown) => {
        timer.cancel();
        reject(e);
      },
    );
  });
}
