import { scLayout, type ScLayout } from '../lab/topology';
import { AgentProc } from './agent-proc';
import type { EmulatorScript } from '../peer/emulator-main';
import { EmulatorProc } from '../peer/emulator-proc';

/**
 * The two-namespace rig the emulator tests share: the SC emulator (a child process in
 * the sc namespace) and the real agent (bin/softwire in the cpe namespace), each
 * removed when the test ends.
 */

export type T = { after: (fn: () => unknown) => void; diagnostic: (m: string) => void };

export function layout(t: T): ScLayout {
  const lay = scLayout();
  t.after(() => lay.topo.destroy());
  return lay;
}

export async function emulator(t: T, lay: ScLayout, script: EmulatorScript): Promise<EmulatorProc> {
  const e = await EmulatorProc.start(lay.sc, { host: lay.scAddress, port: 1701, ...script });
  t.after(() => e.stop());
  return e;
}

/** The agent as user cpe1 dialling `sc` (default: the emulator), with a short reconnect backoff. */
export function agent(t: T, lay: ScLayout, args: string[] = [], sc: string[] = [lay.scAddress]): AgentProc {
  const a = AgentProc.start(lay.cpe, [...sc.flatMap((s) => ['--sc', s]), '--user', 'cpe1', '--reconnect-initial', '0.2', '--reconnect-cap', '8', ...args], {
    password: 'secret1',
  });
  t.after(() => a.stop());
  return a;
}
