/**
 * 16-bit sequence-number arithmetic for Ns/Nr (RFC 2661 5.8). Numbers wrap at 65536, so
 * "before" means "less than half the number space behind", as in serial-number arithmetic.
 */
export const SEQ_MOD = 0x10000;

export const seqAdd = (a: number, n: number): number => (a + n) & 0xffff;

/** Distance from `from` forward to `to`, in [0, 65535]. */
export const seqDiff = (to: number, from: number): number => (to - from) & 0xffff;

/** True when `a` comes strictly before `b`. */
export const seqLt = (a: number, b: number): boolean => {
  const d = seqDiff(b, a);
  return d !== 0 && d < 0x8000;
};
