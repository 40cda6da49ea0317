export function handle(x: number | { spinMs: number }): number;
export default function (x: number): number;
export function spin(ms: number): number;
