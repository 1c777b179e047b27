import { spawn } from 'node:child_process';
import type { Logger } from '../log';
import type { AgentState } from './status';

/** A notify command that has not exited by then is killed: the next change must not wait for ever. */
export const NOTIFY_KILL_MS = 30_000;

/**
 * The status handed to the command in SOFTWIRE_STATUS (what `softwire status --json` would
 * print). Asking the agent back over the control socket costs a second Node process per
 * notify (~50 MB on a router); the variable makes that unnecessary. Larger than this and
 * it is left out (Linux caps one environment string at 128 KiB): the command asks instead.
 */
export const NOTIFY_STATUS_MAX = 64 * 1024;

/**
 * Runs the notify command (e.g. OpenWrt's netifd handler) with the state. One run at
 * a time; changes that arrive meanwhile are merged into a single run after it, so
 * the receiver sees updates in order and is never flooded. When to notify is the
 * Supervisor's rule (supervisor.ts); `again` asks it whether the merged run may go.
 */
export class NotifyCommand {
  private running = false;
  private pending = false;

  constructor(
    private readonly log: Logger,
    private readonly again: () => void,
    private readonly stopping: () => boolean,
  ) {}

  /** `status` is read when the command starts, so a merged run carries the newest one. */
  run(cmd: string, state: AgentState, status: () => unknown): void {
    if (!cmd) return;
    if (this.running) {
      this.pending = true;
      return;
    }
    this.running = true;
    this.pending = false;
    const done = () => {
      this.running = false;
      if (this.pending) this.again();
    };
    try {
      const json = JSON.stringify(status());
      const env = { ...process.env, SOFTWIRE_STATUS: json.length <= NOTIFY_STATUS_MAX ? json : '' };
      const p = spawn(cmd, [state], { stdio: 'ignore', env });
      const timer = setTimeout(() => p.kill('SIGKILL'), NOTIFY_KILL_MS);
      p.on('error', (e) => {
        clearTimeout(timer);
        this.log.warn({ cmd, err: e.message }, 'notify command failed to start');
        done();
      });
      p.on('exit', (code) => {
        clearTimeout(timer);
        // One still running when we are told to stop reaches a receiver that is tearing
        // down (netifd answers PERMISSION_DENIED): expected, not worth a warning.
        if (code && this.stopping()) this.log.info({ cmd, code }, 'notify command refused while stopping');
        else if (code) this.log.warn({ cmd, code }, 'notify command failed');
        done();
      });
    } catch (e) {
      this.log.warn({ cmd, err: (e as Error).message }, 'notify command failed to start');
      done();
    }
  }
}
