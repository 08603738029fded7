/**
 * Sizes of an MQAR grid that depend on the task: expressions in the sequence length L (`L/4` kv pairs, `L+1`
 * vocabulary) and DMAttn's keep window, which may also be a multiple of the number of kv pairs K (`K`, `2*K`).
 */
import type { LengthExpr } from './results';

/** Evaluates `L/4`, `L+1`, `2*L`, `64` ... for a sequence length. */
export function evalLengthExpr(expr: LengthExpr, L: number, field: string): number {
  if (typeof expr === 'number') return expr;
  const s = expr.replace(/\s+/g, '');
  const m = /^(?:(\d+)\*)?L(?:([/*+-])(\d+))?$/.exec(s);
  let v: number;
  if (/^\d+$/.test(s)) v = Number(s);
  else if (m) {
    v = (m[1] ? Number(m[1]) : 1) * L;
    const k = Number(m[3]);
    if (m[2] === '/') v = v / k;
    if (m[2] === '*') v = v * k;
    if (m[2] === '+') v = v + k;
    if (m[2] === '-') v = v - k;
  } else throw new Error(`${field}: '${expr}' is not a number or an expression like L/4, L+1, 2*L`);
  if (!Number.isInteger(v)) throw new Error(`${field}: '${expr}' gives ${v} for L=${L}, not an integer`);
  return v;
}

/**
 * DMAttn's keys kept per query for a task of length L with K kv pairs: `K` or `n*K` (multiples of the pairs, as the
 * authors' MQAR script and the tuned curriculum's 2K), `L` (no top-k), a number, or an expression in L.
 */
export function evalKeepWindow(expr: LengthExpr, L: number, K: number): number {
  const m = typeof expr === 'string' ? /^(?:(\d+)\*)?K$/.exec(expr.replace(/\s+/g, '')) : null;
  if (m) return (m[1] ? Number(m[1]) : 1) * K;
  if (typeof expr === 'string' && /K/.test(expr)) throw new Error(`keepWindowSize: '${expr}' is not K, n*K (e.g. 2*K), L, a number or an expression in L`);
  return evalLengthExpr(expr, L, 'keepWindowSize');
}
