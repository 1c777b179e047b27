/**
 * The LAC's two state machines as data: the control connection (RFC 2661 7.2, LAC side,
 * as RFC 5571 5.1 profiles it) and the incoming-call session (7.4.1). Like
 * src/ppp/automaton.ts and go-l2tp's FSM tables, the code that runs them (tunnel.ts,
 * session.ts) is an interpreter: it classifies an input into one event, looks up the
 * cell, moves to the next state and runs the cell's actions in order. The table test
 * checks every cell.
 *
 * A cell is `actions/next` or just `next` (a state index), or `-`: the event cannot
 * happen in that state or means nothing there; the machine ignores it and stays put.
 */
import { SESSION_STATES, type SessionState, TUNNEL_STATES, type TunnelState } from './lac-types';

export interface Transition<S extends string, A extends string> {
  actions: A[];
  next: S;
}

/**
 * The interpreter both machines share: look up the cell for (state, event), move to its
 * next state, run its actions in order. An action can itself dispatch (a send that fails
 * the channel raises Failed, which moves the tunnel and its session on); the remaining
 * actions of the first cell then belong to a transition that no longer holds and are
 * skipped.
 */
export abstract class TableMachine<S extends string, E extends string, A extends string, C, O> {
  /** The last event and the table actions it ran (for tests and traces). */
  lastEvent: E | undefined;
  lastActions: A[] = [];
  private generation = 0;

  protected constructor(
    public state: S,
    private readonly lookup: (state: S, event: E) => Transition<S, A> | null,
  ) {}

  dispatch(event: E, ctx: C): O[] {
    const t = this.lookup(this.state, event);
    if (!t) return [];
    const gen = ++this.generation;
    this.lastEvent = event;
    this.lastActions = t.actions;
    this.state = t.next;
    const out: O[] = [];
    for (const a of t.actions) {
      out.push(...this.run(a, ctx));
      if (this.generation !== gen) break;
    }
    return out;
  }

  protected abstract run(action: A, ctx: C): O[];
}

function parseTable<S extends string, E extends string, A extends string>(
  states: readonly S[],
  events: readonly E[],
  raw: Record<E, string>,
): Map<string, Transition<S, A> | null> {
  const m = new Map<string, Transition<S, A> | null>();
  for (const ev of events) {
    const cells = raw[ev].split(' ');
    if (cells.length !== states.length) throw new Error(`table row ${ev} has ${cells.length} cells`);
    cells.forEach((cell, i) => {
      const key = `${states[i]}|${ev}`;
      if (cell === '-') {
        m.set(key, null);
        return;
      }
      const slash = cell.indexOf('/');
      const actions = slash < 0 ? [] : (cell.slice(0, slash).split(',') as A[]);
      const next = states[Number(slash < 0 ? cell : cell.slice(slash + 1))];
      if (next === undefined) throw new Error(`table cell ${key} '${cell}' names no next state`);
      m.set(key, { actions, next });
    });
  }
  return m;
}

// ------------------------------------------------------------------ tunnel

/**
 * Open: open(). Close: clear with StopCCN (close(), or a protocol error) once the SC has
 * told us its Tunnel ID; Abort: the same before it has (nothing to address a StopCCN to).
 * RSCCRP: an acceptable SCCRP (version, Tunnel ID and challenge checked). RStopCCN: the
 * SC's StopCCN, whatever its Result Code looks like. TO-quiet / TO-busy: the HELLO timer
 * ran out with nothing / something received meanwhile. Acked: our StopCCN is acknowledged.
 * Linger: the linger timer ran out. Failed: the control channel gave up (retries, queue).
 */
export const TUNNEL_EVENTS = ['Open', 'Close', 'Abort', 'RSCCRP', 'RStopCCN', 'TO-quiet', 'TO-busy', 'Acked', 'Linger', 'Failed'] as const;
export type TunnelEvent = (typeof TUNNEL_EVENTS)[number];

/**
 * sccrq/scccn/stopccn/hello: send that message. zlb: acknowledge at once. up: report
 * tunnel-up. down: report the tunnel (and any session) down, stop HELLO. arm: (re)start
 * the HELLO timer. session: place the call if autoSession. linger: start the linger timer.
 * finish: stop the channel and report closed. drop: count an unexpected message.
 */
export type TunnelActionName = 'sccrq' | 'scccn' | 'stopccn' | 'hello' | 'zlb' | 'up' | 'down' | 'arm' | 'session' | 'linger' | 'finish' | 'drop';

// States: 0 idle, 1 wait-ctl-reply, 2 established, 3 closing, 4 closed.
const TUNNEL_TABLE_RAW: Record<TunnelEvent, string> = {
  Open: 'sccrq/1 - - - -',
  Close: '- stopccn,down/3 stopccn,down/3 - -',
  Abort: '4 down,finish/4 - - -',
  RSCCRP: '- scccn,up,arm,session/2 drop/2 - -',
  RStopCCN: '- zlb,down,linger/3 zlb,down,linger/3 - -',
  'TO-quiet': '- - hello,arm/2 - -',
  'TO-busy': '- - arm/2 - -',
  Acked: '- - - linger/3 -',
  Linger: '- - - finish/4 -',
  Failed: '- down,finish/4 down,finish/4 finish/4 -',
};

const TUNNEL_TABLE = parseTable<TunnelState, TunnelEvent, TunnelActionName>(TUNNEL_STATES, TUNNEL_EVENTS, TUNNEL_TABLE_RAW);

export function tunnelTransition(state: TunnelState, event: TunnelEvent): Transition<TunnelState, TunnelActionName> | null {
  return TUNNEL_TABLE.get(`${state}|${event}`) ?? null;
}

// ------------------------------------------------------------------ session

/**
 * Open: place the call (openSession(), or autoSession once the tunnel is up). Close:
 * clear it with CDN (closeSession(), or a session-level protocol error). RICRP: an
 * acceptable ICRP. RCDN: the SC's CDN, whatever its Result Code looks like. TunnelDown:
 * the tunnel under the session went down.
 */
export const SESSION_EVENTS = ['Open', 'Close', 'RICRP', 'RCDN', 'TunnelDown'] as const;
export type SessionEvent = (typeof SESSION_EVENTS)[number];

/** icrq/iccn/cdn: send that message. up: report session-up. down: report the session down. drop: count it. */
export type SessionActionName = 'icrq' | 'iccn' | 'up' | 'cdn' | 'down' | 'drop';

// States: 0 idle, 1 wait-reply, 2 established.
const SESSION_TABLE_RAW: Record<SessionEvent, string> = {
  Open: 'icrq/1 - -',
  Close: '- cdn,down/0 cdn,down/0',
  RICRP: '- iccn,up/2 drop/2',
  RCDN: '- down/0 down/0',
  TunnelDown: '- down/0 down/0',
};

const SESSION_TABLE = parseTable<SessionState, SessionEvent, SessionActionName>(SESSION_STATES, SESSION_EVENTS, SESSION_TABLE_RAW);

export function sessionTransition(state: SessionState, event: SessionEvent): Transition<SessionState, SessionActionName> | null {
  return SESSION_TABLE.get(`${state}|${event}`) ?? null;
}
