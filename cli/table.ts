/** Renders rows as a plain text table with a header rule; long cells are cut to `max` characters. */
export function table(rows: readonly Record<string, unknown>[], columns: readonly string[], max = 60): string {
  const cell = (v: unknown): string => {
    const s = v === undefined || v === null ? '' : typeof v === 'string' ? v : String(v);
    const flat = s.replace(/\s+/g, ' ');
    return flat.length > max ? flat.slice(0, max - 1) + '…' : flat;
  };
  const body = rows.map((r) => columns.map((c) => cell(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}
