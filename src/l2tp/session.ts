import type { Bearer, Framing, ResultCode } from './avps';
import type { DataSequencing } from './data';
import { type SessionActionName, type SessionEvent, sessionTransition, TableMachine } from './fsm';
import type { DownAction, LacAction, SessionState } from './lac-types';
import type { MessageName, RequiredValues } from './messages';

/**
 * The incoming call of RFC 2661 7.4.1 as the LAC places it (ICRQ -> ICRP -> ICCN, CDN),
 * run from the session table in fsm.ts. The tunnel carries its messages (`host.send`).
 */

export interface SessionHost {
  send<K extends MessageName>(name: K, sessionId: number, values: Omit<RequiredValues<K>, 'messageType'>): LacAction[];
  drop(reason: string): void;
  random(n: number): Uint8Array;
  tunnelIds(): { local: number; remote: number };
}

export interface SessionSettings {
  txConnectSpeed: number;
  framingType: Framing;
  bearerType?: Bearer;
  /** Sends Sequencing Required in ICCN. */
  dataSequencing: boolean;
}

/** What the event's actions need. */
export interface SessionContext {
  /** Close: the CDN's Result Code. */
  cdn?: ResultCode;
  /** Close, RCDN, TunnelDown: the 'down' to report. */
  down?: DownAction;
  /** RICRP: the SC's Assigned Session ID. */
  assignedSessionId?: number;
}

const nonZero16 = (b: Uint8Array): number => (b[0]! << 8) | b[1]! || 1;

export class SessionMachine extends TableMachine<SessionState, SessionEvent, SessionActionName, SessionContext, LacAction> {
  localId: number | undefined;
  remoteId: number | undefined;
  callSerial: number;

  constructor(
    private readonly host: SessionHost,
    private readonly settings: SessionSettings,
    readonly data: DataSequencing,
  ) {
    super('idle', sessionTransition);
    const cs = host.random(4);
    this.callSerial = ((cs[0]! << 24) | (cs[1]! << 16) | (cs[2]! << 8) | cs[3]!) >>> 0;
  }

  override dispatch(event: SessionEvent, ctx: SessionContext = {}): LacAction[] {
    return super.dispatch(event, ctx);
  }

  protected run(a: SessionActionName, ctx: SessionContext): LacAction[] {
    switch (a) {
      case 'icrq': {
        this.localId = nonZero16(this.host.random(2));
        this.remoteId = undefined;
        this.callSerial = (this.callSerial + 1) >>> 0;
        this.data.reset();
        const values: Omit<RequiredValues<'ICRQ'>, 'messageType'> = { assignedSessionId: this.localId, callSerialNumber: this.callSerial };
        if (this.settings.bearerType) values.bearerType = this.settings.bearerType;
        return this.host.send('ICRQ', 0, values);
      }
      case 'iccn': {
        this.remoteId = ctx.assignedSessionId!;
        const iccn: Omit<RequiredValues<'ICCN'>, 'messageType'> = { txConnectSpeed: this.settings.txConnectSpeed, framingType: this.settings.framingType };
        if (this.settings.dataSequencing) iccn.sequencingRequired = true;
        // 7.4.1: the LAC's session is established once ICCN is sent; the SC starts LCP right away.
        return this.host.send('ICCN', this.remoteId, iccn);
      }
      case 'up': {
        const ids = this.host.tunnelIds();
        return [
          {
            type: 'session-up',
            info: {
              localSessionId: this.localId!,
              remoteSessionId: this.remoteId!,
              localTunnelId: ids.local,
              remoteTunnelId: ids.remote,
              callSerialNumber: this.callSerial,
              sequencing: this.data.on,
            },
          },
        ];
      }
      case 'cdn':
        return this.host.send('CDN', this.remoteId ?? 0, { resultCode: ctx.cdn!, assignedSessionId: this.localId! });
      case 'down':
        return [ctx.down!];
      case 'drop':
        this.host.drop('unexpected-message');
        return [];
    }
  }
}
