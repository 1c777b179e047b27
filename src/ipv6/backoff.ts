/**
 * The retransmission schedule of RFC 8415 section 15, shared by DHCPv6 and by the
 * Router Solicitation backoff of RFC 7559 (which reuses it with IRT = 4 s).
 *
 *   RT(1) = IRT + RAND*IRT, RT(n) = 2*RT(n-1) + RAND*RT(n-1),
 *   capped as MRT + RAND*MRT, RAND uniform in [-0.1, +0.1].
 *
 * All values are milliseconds; 0 for MRT, MRC or MRD means "no limit".
 */

import type { Rng } from '../util/random';

export type { Rng };

export interface RetransParams {
  irt: number;
  mrt: number;
  mrc: number;
  mrd: number;
}

export interface NextWait {
  /** How long to wait for an answer before the next transmission. */
  ms: number;
  /** True when the exchange fails if nothing arrives within `ms`. */
  final: boolean;
}

/** setTimeout cannot wait longer than this; longer waits are re-armed when they fire. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export function clampTimer(ms: number): number {
  return Math.max(0, Math.min(MAX_TIMER_MS, Math.ceil(ms)));
}

function unit(rng: Rng): number {
  const x = rng();
  return Number.isFinite(x) ? Math.min(Math.max(x, 0), 1) : 0;
}

/** RAND in [-0.1, +0.1]. */
export function jitter(rng: Rng): number {
  return (unit(rng) * 2 - 1) * 0.1;
}

/** A uniform delay in [0, max], e.g. SOL_MAX_DELAY or MAX_RTR_SOLICITATION_DELAY. */
export function randomDelay(rng: Rng, max: number): number {
  return Math.floor(unit(rng) * max);
}

export class Retransmission {
  private rt = 0;
  private sent = 0;
  private waited = 0;

  /**
   * @param firstRandPositive RFC 8415 18.2.1: while collecting Advertises, the first
   *   RT must be strictly greater than IRT, so RAND is drawn from (0, 0.1].
   */
  constructor(
    private readonly p: RetransParams,
    private readonly rng: Rng,
    private readonly firstRandPositive = false,
  ) {}

  /** Transmissions so far. */
  get count(): number {
    return this.sent;
  }

  /** Milliseconds between the first transmission and the latest one. */
  get elapsed(): number {
    return this.waited;
  }

  /** Call right after each transmission. */
  next(): NextWait {
    if (this.sent > 0) this.waited += this.rt;
    this.sent++;
    if (this.sent === 1) {
      const rand = this.firstRandPositive ? 0.1 * (1 - unit(this.rng)) || 0.1 : jitter(this.rng);
      this.rt = this.p.irt + rand * this.p.irt;
    } else {
      this.rt = 2 * this.rt + jitter(this.rng) * this.rt;
    }
    if (this.p.mrt > 0 && this.rt > this.p.mrt) this.rt = this.p.mrt + jitter(this.rng) * this.p.mrt;
    let final = this.p.mrc > 0 && this.sent >= this.p.mrc;
    if (this.p.mrd > 0 && this.waited + this.rt >= this.p.mrd) {
      this.rt = Math.max(0, this.p.mrd - this.waited);
      final = true;
    }
    return { ms: Math.round(this.rt), final };
  }
}
