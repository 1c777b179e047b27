import type { ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import type { Netns } from '../lab/netns';
import type { ControlRecord, DataRecord, EmulatorCounters, EmulatorEvent, TunnelView } from './emulator';
import type { EmulatorCommand, EmulatorScript } from './emulator-main';
import type { RelayStats } from './relay';

/** Test-side handle on an emulator-main.ts child running in a namespace. */

const MAIN = resolve(__dirname, 'emulator-main.ts');

export interface EmulatorStatus {
  counters: EmulatorCounters;
  tunnels: TunnelView[];
  received: ControlRecord[];
  relay?: Record<'up' | 'down', RelayStats>;
  /** Data mode: packets written into the emulator's TUN / sent to the agent, and drops. */
  data?: { toTun: number; toAgent: number; tunDrops: number; udpDrops: number } | null;
  /** The agent's latest data messages: Ns or not, header length, PPP protocol. */
  dataRx: DataRecord[];
}

export class EmulatorProc {
  readonly events: EmulatorEvent[] = [];
  readonly stderr: string[] = [];
  private readonly pending = new Map<number, (r: Record<string, unknown>) => void>();
  private nextId = 1;
  private readyResolve!: (r: { address: { address: string; port: number }; relayPort?: number }) => void;
  readonly ready: Promise<{ address: { address: string; port: number }; relayPort?: number }>;
  private readonly exited: Promise<void>;

  private constructor(readonly proc: ChildProcess) {
    this.ready = new Promise((res) => (this.readyResolve = res));
    let buf = '';
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (d: string) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let o: Record<string, unknown>;
        try {
          o = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        if (o.ready) this.readyResolve(o as never);
        else if (o.ev) this.events.push(o.ev as EmulatorEvent);
        else if (typeof o.reply === 'number') {
          this.pending.get(o.reply)?.(o);
          this.pending.delete(o.reply);
        }
      }
    });
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (d: string) => this.stderr.push(d));
    this.exited = new Promise((res) => proc.on('exit', () => res()));
  }

  /** Starts the emulator in `ns` and waits until it listens. */
  static async start(ns: Netns, script: EmulatorScript, ms = 15_000): Promise<EmulatorProc> {
    const p = new EmulatorProc(ns.spawn('node', ['--import', 'tsx', MAIN, JSON.stringify(script)], { stdio: ['pipe', 'pipe', 'pipe'] }));
    const timer = new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`emulator did not start: ${p.stderr.join('')}`)), ms).unref());
    const exit = p.exited.then(() => {
      throw new Error(`emulator exited: ${p.stderr.join('')}`);
    });
    await Promise.race([p.ready, timer, exit]);
    return p;
  }

  async command(c: EmulatorCommand): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    const r = new Promise<Record<string, unknown>>((res) => this.pending.set(id, res));
    this.proc.stdin!.write(`${JSON.stringify({ id, ...c })}\n`);
    const out = await r;
    if (!out.ok) throw new Error(`emulator ${c.cmd}: ${String(out.error)}`);
    return out;
  }

  async status(): Promise<EmulatorStatus> {
    return (await this.command({ cmd: 'status' })) as unknown as EmulatorStatus;
  }

  /** Waits for an event matching `pred` (including ones already seen). */
  async waitEvent(pred: (e: EmulatorEvent) => boolean, ms: number, what = 'event'): Promise<EmulatorEvent> {
    const end = Date.now() + ms;
    for (;;) {
      const e = this.events.find(pred);
      if (e) return e;
      if (Date.now() > end) throw new Error(`emulator: no ${what} within ${ms} ms; saw ${JSON.stringify(this.events.slice(-12))}\n${this.stderr.join('')}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Control messages received of one type, from the event stream. */
  received(type: string): ControlRecord[] {
    return this.events.flatMap((e) => (e.type === 'rx' && e.record.type === type ? [e.record] : []));
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 2000);
    await this.exited;
    clearTimeout(t);
  }
}
