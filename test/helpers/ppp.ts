import { applyTimer } from '../../src/core/scheduler';
import type { Automaton, AutomatonOutput } from '../../src/ppp/automaton';
import { type ControlPacket, decodePacket, encodePacket } from '../../src/ppp/frame';
import { FakeClock } from './fake-clock';

/** Repeatable "random" bytes for Magic-Numbers, IIDs and CHAP challenges in PPP tests. */
export function seqRandom(seed = 1): (n: number) => Buffer {
  let x = seed;
  return (n: number) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      b[i] = (x >>> 16) & 0xff;
    }
    return b;
  };
}

/**
 * One automaton wired to a FakeClock (its Restart timer) that records what it
 * sends, decoded, and what it signals (this-layer-up, finished, ...).
 */
export class AutomatonRig {
  readonly clock = new FakeClock();
  readonly sent: ControlPacket[] = [];
  readonly events: AutomatonOutput[] = [];
  constructor(readonly fsm: Automaton) {}

  take = (outs: AutomatonOutput[]): void => {
    for (const o of outs) {
      if (o.type === 'send') this.sent.push(decodePacket(o.bytes));
      else if (o.type === 'timer-start' || o.type === 'timer-stop') applyTimer(this.clock, 'restart', o, () => this.take(this.fsm.timeout()));
      else this.events.push(o);
    }
  };

  /** Open + Up: the automaton sends its first Configure-Request. */
  start(): this {
    this.take(this.fsm.open());
    this.take(this.fsm.up());
    return this;
  }

  rx = (code: number, id: number, data: Buffer = Buffer.alloc(0)): void => {
    this.take(this.fsm.receive(encodePacket(code, id, data)));
  };

  last(): ControlPacket {
    return this.sent[this.sent.length - 1]!;
  }

  signals(type: string): AutomatonOutput[] {
    return this.events.filter((e) => e.type === type);
  }
}
