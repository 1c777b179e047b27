import dgram from 'node:dgram';
import { isIP } from 'node:net';
import { type Rng, seededRng } from '../../src/util/random';

/**
 * A seeded user-space impairment relay for UDP (this kernel has no netem).
 * It listens on one address, forwards every datagram from its client to the
 * target and the target's answers back to the last client seen, and on the way
 * drops, duplicates, reorders, delays or corrupts them. The same seed and the
 * same traffic give the same impairments, so a failing run can be repeated.
 */

export interface Impairment {
  /** Probability that a datagram is dropped. */
  loss: number;
  /** Probability that a datagram is sent twice. */
  duplicate: number;
  /** Probability that a datagram is held back and sent after the next one. */
  reorder: number;
  /** Probability that one byte of a datagram is flipped. */
  corrupt: number;
  /** Fixed delay added to every datagram, ms. */
  delayMs: number;
}

export const CLEAN: Impairment = { loss: 0, duplicate: 0, reorder: 0, corrupt: 0, delayMs: 0 };

export interface RelayStats {
  forwarded: number;
  dropped: number;
  duplicated: number;
  reordered: number;
  corrupted: number;
}

export interface RelayOptions {
  listenHost: string;
  listenPort?: number;
  targetHost: string;
  targetPort: number;
  seed: number;
  impairment?: Partial<Impairment>;
  /** Longest a reordered datagram is held when no other one follows, ms. */
  holdMs?: number;
}

type Direction = 'up' | 'down';

export class UdpRelay {
  private readonly front: dgram.Socket;
  private readonly back: dgram.Socket;
  private client: { address: string; port: number } | undefined;
  private readonly rng: Rng;
  private imp: Impairment;
  private readonly held = new Map<Direction, { msg: Buffer; timer: NodeJS.Timeout }>();
  private readonly timers = new Set<NodeJS.Timeout>();
  readonly stats: Record<Direction, RelayStats> = {
    up: { forwarded: 0, dropped: 0, duplicated: 0, reordered: 0, corrupted: 0 },
    down: { forwarded: 0, dropped: 0, duplicated: 0, reordered: 0, corrupted: 0 },
  };

  private constructor(private readonly opts: RelayOptions) {
    const type = isIP(opts.listenHost) === 6 ? 'udp6' : 'udp4';
    const backType = isIP(opts.targetHost) === 6 ? 'udp6' : 'udp4';
    this.front = dgram.createSocket(type);
    this.back = dgram.createSocket(backType);
    this.rng = seededRng(opts.seed);
    this.imp = { ...CLEAN, ...opts.impairment };
  }

  static async start(opts: RelayOptions): Promise<UdpRelay> {
    const r = new UdpRelay(opts);
    r.front.on('message', (msg, rinfo) => {
      r.client = { address: rinfo.address, port: rinfo.port };
      r.pass('up', msg);
    });
    r.back.on('message', (msg) => r.pass('down', msg));
    await new Promise<void>((res) => r.front.bind(opts.listenPort ?? 0, opts.listenHost, res));
    await new Promise<void>((res) => r.back.bind(0, res));
    return r;
  }

  get port(): number {
    return this.front.address().port;
  }

  setImpairment(imp: Partial<Impairment>): void {
    this.imp = { ...CLEAN, ...imp };
  }

  private emit(dir: Direction, msg: Buffer): void {
    this.stats[dir].forwarded++;
    if (dir === 'up') this.back.send(msg, this.opts.targetPort, this.opts.targetHost);
    else if (this.client) this.front.send(msg, this.client.port, this.client.address);
  }

  private later(ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
    return t;
  }

  private pass(dir: Direction, input: Buffer): void {
    const s = this.stats[dir];
    // Draw every decision up front so the random sequence does not depend on which branch runs.
    const [dLoss, dDup, dReorder, dCorrupt, dByte] = [this.rng(), this.rng(), this.rng(), this.rng(), this.rng()];
    if (dLoss < this.imp.loss) {
      s.dropped++;
      return;
    }
    let msg = input;
    if (dCorrupt < this.imp.corrupt && msg.length > 0) {
      msg = Buffer.from(msg);
      msg[Math.floor(dByte * msg.length)] ^= 0xff;
      s.corrupted++;
    }
    const copies = dDup < this.imp.duplicate ? 2 : 1;
    if (copies === 2) s.duplicated++;
    const send = () => {
      for (let i = 0; i < copies; i++) this.emit(dir, msg);
      // A held datagram goes out right after the one that overtook it.
      const h = this.held.get(dir);
      if (h && h.msg !== msg) {
        clearTimeout(h.timer);
        this.timers.delete(h.timer);
        this.held.delete(dir);
        this.emit(dir, h.msg);
      }
    };
    if (dReorder < this.imp.reorder && !this.held.has(dir)) {
      s.reordered++;
      const timer = this.later(this.opts.holdMs ?? 50, () => {
        this.held.delete(dir);
        this.emit(dir, msg);
      });
      this.held.set(dir, { msg, timer });
      return;
    }
    if (this.imp.delayMs > 0) this.later(this.imp.delayMs, send);
    else send();
  }

  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.held.clear();
    this.front.close();
    this.back.close();
  }
}
