import { decode, encode } from '../src/codec.js';
import type { StoredTask } from '../src/journal/journal.js';

// The ids and the record of a fanned-out task in a journal (supervisors/fan-join.ts joins them; across
// processes, supervisors/distributed-joins.ts keeps a record of its own in a KV bucket, and the ids).

/** The stage a fanned-out task's row waits at, holding its join record: a name no stage can have. */
export const FAN_STAGE = '~fan-out';

const BRANCH = /^([\s\S]*)#fan(\d+)$/;

/** The id of branch `i` of task `parent`. */
export function branchId(parent: string, i: number): string {
  return `${parent}#fan${i}`;
}

/** Whether a task id has the form of a branch's (send refuses such ids: ERR_INVALID_OPTION). */
export function isBranchId(id: string): boolean {
  return BRANCH.test(id);
}

/** The parent's id and the index of a branch's id (`'t-7#fan1'` -> `{ parent: 't-7', index: 1 }`); undefined for any other id. */
export function branchOf(id: string | undefined): { parent: string; index: number } | undefined {
  const m = id === undefined ? null : BRANCH.exec(id);
  return m === null ? undefined : { parent: m[1]!, index: Number(m[2]) };
}

/** The ids of the branches of a task stored at FAN_STAGE (none for any other row). */
export function branchIdsOf(row: StoredTask): string[] {
  if (row.stage !== FAN_STAGE) return [];
  const rec = readJoin(row.payload);
  return rec === undefined ? [] : rec.to.map((_, i) => branchId(row.id, i));
}

/** How a branch ended, as the join record keeps it: [index, stage, 1, output] or [index, stage, 0, code, history, attempts]. */
export type BranchEnd = [i: number, stage: string, ok: 1, output: Uint8Array] | [i: number, stage: string, ok: 0, code: string, errors: Uint8Array, attempts: number];

/** A join record's bytes: msgpack [1, from, stages, input, ends]. */
export function encodeJoin(join: { readonly from: string; readonly to: readonly string[]; readonly input: Uint8Array; readonly ended: readonly BranchEnd[] }): Uint8Array {
  return encode([1, join.from, join.to, join.input, join.ended], 'a fan-out record');
}

/** A join record as stored, or undefined if the bytes are not one. */
export function readJoin(bytes: Uint8Array): { from: string; to: string[]; input: Uint8Array; ended: BranchEnd[] } | undefined {
  let v: unknown;
  try {
    v = decode(bytes);
  } catch {
    return undefined;
  }
  if (!Array.isArray(v) || v[0] !== 1 || typeof v[1] !== 'string' || !Array.isArray(v[2]) || !v[2].every((s) => typeof s === 'string') || !(v[3] instanceof Uint8Array) || !Array.isArray(v[4])) return undefined;
  const ended = v[4] as unknown[];
  const ok = ended.every((e) => Array.isArray(e) && typeof e[0] === 'number' && typeof e[1] === 'string' && ((e[2] === 1 && e[3] instanceof Uint8Array) || (e[2] === 0 && typeof e[3] === 'string' && e[4] instanceof Uint8Array)));
  return ok ? { from: v[1], to: v[2] as string[], input: v[3], ended: ended as BranchEnd[] } : undefined;
}
