import { type Socket, createConnection } from 'node:net';
import { PacketType, type ViciMessage, ViciDecodeError, ViciFramer, decodePacket, encodePacket } from './vici-codec';

/**
 * The thin I/O edge to charon: one unix-socket connection carrying commands (one
 * at a time, as VICI requires) and the events we registered for, which charon may
 * interleave with answers. Every wait has a deadline; a bad packet is counted and
 * dropped, a stream that cannot be framed any more is closed.
 */

export interface ViciPort {
  /** Sends one command; resolves with its response message, rejects on timeout, close or an unknown command. */
  request(cmd: string, msg: ViciMessage, timeoutMs: number): Promise<ViciMessage>;
  /** Asks charon to send `event` packets; rejects when it does not know the event. */
  register(event: string, timeoutMs: number): Promise<void>;
  onEvent(cb: (name: string, msg: ViciMessage) => void): void;
  onClose(cb: (why: string) => void): void;
  readonly drops: Record<string, number>;
  close(): void;
}

/** Why a connection to charon failed, in the words a user acts on. */
export function explainConnectError(path: string, err: NodeJS.ErrnoException): string {
  if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED')
    return `the strongSwan IKE daemon (charon) is not running or not installed: no VICI socket at ${path} (install strongswan-charon and strongswan-swanctl, on OpenWrt strongswan-full, and start it)`;
  if (err.code === 'EACCES') return `no permission to open charon's VICI socket ${path} (it is root-only by default)`;
  return `cannot connect to charon's VICI socket ${path}: ${err.message}`;
}

export function connectVici(path: string, timeoutMs: number): Promise<ViciPort> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`charon did not accept a connection on ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(explainConnectError(path, e as NodeJS.ErrnoException)));
    });
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.removeAllListeners('error');
      resolve(new ViciSocket(sock));
    });
  });
}

interface Waiter {
  expect: 'response' | 'confirm';
  done: (m: ViciMessage) => void;
  fail: (e: Error) => void;
}

class ViciSocket implements ViciPort {
  readonly drops: Record<string, number> = {};
  private readonly framer = new ViciFramer();
  private eventCb: (name: string, msg: ViciMessage) => void = () => {};
  private closeCb: (why: string) => void = () => {};
  private current: Waiter | null = null;
  /** Commands wait their turn: VICI answers one request at a time per connection. */
  private chain: Promise<unknown> = Promise.resolve();
  private closed: string | null = null;

  constructor(private readonly sock: Socket) {
    sock.on('data', (chunk: Buffer) => this.onData(chunk));
    sock.on('error', (e) => this.shut(`VICI socket error: ${e.message}`));
    sock.on('close', () => this.shut('charon closed the VICI connection'));
  }

  private count(reason: string): void {
    this.drops[reason] = (this.drops[reason] ?? 0) + 1;
  }

  private onData(chunk: Buffer): void {
    let bodies: Buffer[];
    try {
      bodies = this.framer.push(chunk);
    } catch (e) {
      this.count('unframeable');
      this.shut((e as Error).message);
      return;
    }
    for (const b of bodies) {
      try {
        this.onPacket(decodePacket(b));
      } catch (e) {
        if (e instanceof ViciDecodeError) this.count('malformed');
        else throw e;
      }
    }
  }

  private onPacket(p: ReturnType<typeof decodePacket>): void {
    const w = this.current;
    switch (p.type) {
      case PacketType.EVENT:
        try {
          this.eventCb(p.name ?? '', p.message);
        } catch {
          this.count('event-handler-threw');
        }
        return;
      case PacketType.CMD_RESPONSE:
      case PacketType.EVENT_CONFIRM:
        if (!w || (w.expect === 'response') !== (p.type === PacketType.CMD_RESPONSE)) return this.count('unexpected');
        this.current = null;
        return w.done(p.message);
      case PacketType.CMD_UNKNOWN:
      case PacketType.EVENT_UNKNOWN:
        if (!w) return this.count('unexpected');
        this.current = null;
        return w.fail(new Error(p.type === PacketType.CMD_UNKNOWN ? 'charon does not know this VICI command' : 'charon does not know this VICI event'));
      default:
        this.count('unexpected');
    }
  }

  private shut(why: string): void {
    if (this.closed) return;
    this.closed = why;
    this.sock.destroy();
    const w = this.current;
    this.current = null;
    w?.fail(new Error(why));
    this.closeCb(why);
  }

  private exchange(type: number, name: string, msg: ViciMessage, expect: Waiter['expect'], timeoutMs: number): Promise<ViciMessage> {
    const run = () =>
      new Promise<ViciMessage>((resolve, reject) => {
        if (this.closed) return reject(new Error(this.closed));
        const timer = setTimeout(() => {
          if (this.current === w) this.current = null;
          // A late answer would be taken for the next command's: the connection is spent.
          this.shut(`charon did not answer "${name}" within ${timeoutMs} ms`);
        }, timeoutMs);
        const w: Waiter = {
          expect,
          done: (m) => {
            clearTimeout(timer);
            resolve(m);
          },
          fail: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        };
        this.current = w;
        this.sock.write(encodePacket({ type, name, message: msg }));
      });
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  request(cmd: string, msg: ViciMessage, timeoutMs: number): Promise<ViciMessage> {
    return this.exchange(PacketType.CMD_REQUEST, cmd, msg, 'response', timeoutMs);
  }

  async register(event: string, timeoutMs: number): Promise<void> {
    await this.exchange(PacketType.EVENT_REGISTER, event, {}, 'confirm', timeoutMs);
  }

  onEvent(cb: (name: string, msg: ViciMessage) => void): void {
    this.eventCb = cb;
  }

  onClose(cb: (why: string) => void): void {
    this.closeCb = cb;
  }

  close(): void {
    this.shut('closed');
  }
}
