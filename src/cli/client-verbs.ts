import { existsSync } from 'node:fs';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { type ControlReply, type ControlRequest, controlRequest } from '../agent/control';
import type { Status } from '../agent/status';
import { FIELD_BY_KEY } from '../config/schema';
import { RealScheduler, type Scheduler } from '../core/scheduler';
import { formatStatus } from './format-status';

/**
 * Verbs that talk to a running agent over its control socket: status, up,
 * down, reconnect, wait. Also the small I/O seam (`CliIo`) and exit-code
 * conventions the client-side verbs share, so tests can run them in-process.
 */

export const EXIT_OK = 0;
/** The awaited state was not reached in time, or the SDP answer declined the stream. */
export const EXIT_NOT_REACHED = 1;
/** Wrong usage, unreadable input, or the agent cannot be reached. */
export const EXIT_USAGE = 2;
/** The agent answered with an error. */
export const EXIT_AGENT_ERROR = 3;

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  stdin: NodeJS.ReadableStream;
  /** Exit status for when the verb returns (the process ends normally, flushing output). */
  setExitCode(code: number): void;
  /** Ends at once; only for usage errors commander finds before a verb runs. */
  exit(code: number): never;
  /** Time for polling; a FakeClock in tests. */
  clock: Scheduler;
}

export function processIo(): CliIo {
  return {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    stdin: process.stdin,
    setExitCode: (c) => {
      process.exitCode = c;
    },
    exit: (c) => process.exit(c),
    clock: new RealScheduler(),
  };
}

/**
 * Adds a verb under `parent` whose output goes through `io` and whose usage
 * errors exit with EXIT_USAGE (commander's own default would be 1, which
 * these verbs reserve for "not reached").
 */
export function addVerb(parent: Command, name: string, io: CliIo): Command {
  return parent
    .command(name)
    .configureOutput({ writeOut: (t) => io.out(t), writeErr: (t) => io.err(t) })
    .exitOverride((e) => io.exit(e.exitCode === 0 ? EXIT_OK : EXIT_USAGE));
}

export function exitCodesHelp(codes: ReadonlyArray<readonly [number, string]>): string {
  return `\nExit status:\n${codes.map(([c, what]) => `  ${c}  ${what}`).join('\n')}\n`;
}

const DEFAULT_SOCKET = FIELD_BY_KEY.get('controlSocket')?.default as string;
/** How long to wait for any answer but `wait`'s; the agent answers at once. */
const REQUEST_TIMEOUT_MS = 5000;
/** Extra time `wait` gives the agent beyond the wait itself before giving up on it. */
const WAIT_GRACE_MS = 5000;
const POLL_MS = 200;

function addSocketOption(cmd: Command): Command {
  return cmd.option('--control-socket <PATH>', 'control socket of the running agent', DEFAULT_SOCKET);
}

/** Sends one request; reports "cannot reach" itself (exit 2) and returns undefined then. */
async function ask(io: CliIo, path: string, req: ControlRequest, timeoutMs = REQUEST_TIMEOUT_MS): Promise<ControlReply | undefined> {
  try {
    return await controlRequest(path, req, timeoutMs);
  } catch (e) {
    io.err(`softwire: ${(e as Error).message}\n`);
    io.setExitCode(EXIT_USAGE);
    return undefined;
  }
}

function agentError(io: CliIo, error: string): void {
  io.err(`softwire: the agent says: ${error}\n`);
  io.setExitCode(EXIT_AGENT_ERROR);
}

const COMMON_EXITS = [
  [EXIT_OK, 'done'],
  [EXIT_USAGE, 'wrong usage, or the agent cannot be reached (not running, wrong --control-socket, not root)'],
  [EXIT_AGENT_ERROR, 'the agent answered with an error'],
] as const;

function statusVerb(program: Command, io: CliIo): void {
  const cmd = addVerb(program, 'status', io)
    .description("show the running agent's state: SC, tunnel, PPP, addresses, prefix, counters, last error")
    .option('--json', 'print the status as JSON (stable field names, for scripts)');
  addSocketOption(cmd)
    .addHelpText(
      'after',
      '\nThe human summary is for reading and may change between versions; scripts should\n' +
        'use --json, whose fields are only ever added, never renamed.\n' +
        exitCodesHelp(COMMON_EXITS) +
        '\nExamples:\n' +
        '  softwire status\n' +
        '  softwire status --json | jq -r .ipv6.delegatedPrefix.prefix\n' +
        '  softwire status --control-socket /tmp/sw.sock',
    )
    .action(async (opts: { json?: boolean; controlSocket: string }) => {
      const reply = await ask(io, opts.controlSocket, { cmd: 'status' });
      if (!reply) return;
      if (!reply.ok) return agentError(io, reply.error);
      const status = reply.status;
      if (!status || typeof status !== 'object') return agentError(io, 'reply has no "status" object');
      io.out(opts.json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status as Status));
      io.setExitCode(EXIT_OK);
    });
}

const ACTIONS = [
  ['up', 'bring the softwire up (dial the SC) if it was taken down with "softwire down"', 'softwire up && softwire wait --state up --timeout 60'],
  ['down', 'tear the softwire down and keep it down until "softwire up"', 'softwire down'],
  ['reconnect', 'tear the softwire down and dial again at once, without the reconnect back-off', 'softwire reconnect'],
] as const;

function actionVerb(program: Command, io: CliIo, name: string, description: string, example: string): void {
  addSocketOption(addVerb(program, name, io).description(description))
    .addHelpText(
      'after',
      `\nThe command returns once the agent has accepted the request, not when the state\nhas changed: follow it with "softwire wait" to block until then.\n` +
        exitCodesHelp(COMMON_EXITS) +
        `\nExamples:\n  ${example}\n  softwire ${name} --control-socket /tmp/sw.sock`,
    )
    .action(async (opts: { controlSocket: string }) => {
      const reply = await ask(io, opts.controlSocket, { cmd: name });
      if (!reply) return;
      if (!reply.ok) return agentError(io, reply.error);
      io.out(`${typeof reply.message === 'string' ? reply.message : `${name}: accepted`}\n`);
      io.setExitCode(EXIT_OK);
    });
}

const STATES = ['up', 'down', 'connecting'] as const;
type WaitState = (typeof STATES)[number];

function parseSeconds(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n <= 0 || n > 86400) throw new InvalidArgumentError('expected seconds, more than 0 and at most 86400');
  return n;
}

/** The agent predates the "wait" command: its reply says it does not know it. */
function unknownCommand(reply: ControlReply): boolean {
  return !reply.ok && /unknown (command|cmd)|not (supported|implemented)/i.test(reply.error);
}

function sleep(clock: Scheduler, ms: number): Promise<void> {
  return new Promise((res) => clock.set('wait-poll', ms, res));
}

function waitVerb(program: Command, io: CliIo): void {
  const cmd = addVerb(program, 'wait', io)
    .description('block until the agent reaches a state (up, down or connecting), or time out')
    .addOption(new Option('--state <STATE>', 'state to wait for').choices(STATES).makeOptionMandatory())
    .addOption(new Option('--timeout <SECONDS>', 'give up after this many seconds').argParser(parseSeconds).default(60));
  addSocketOption(cmd)
    .addHelpText(
      'after',
      '\nReturns at once if the agent is already in that state. Useful in boot scripts and\n' +
        'hotplug hooks that need the softwire before going on.\n' +
        exitCodesHelp([
          [EXIT_OK, 'the state was reached'],
          [EXIT_NOT_REACHED, 'the timeout passed first'],
          [EXIT_USAGE, 'wrong usage, or the agent cannot be reached'],
          [EXIT_AGENT_ERROR, 'the agent answered with an error'],
        ]) +
        '\nExamples:\n' +
        '  softwire wait --state up --timeout 120 && ping -6 -c1 2001:db8::1\n' +
        '  softwire down && softwire wait --state down --timeout 10',
    )
    .action(async (opts: { state: WaitState; timeout: number; controlSocket: string }) => {
      const timeoutMs = Math.round(opts.timeout * 1000);
      const deadline = io.clock.now() + timeoutMs;
      // `softwire run & softwire wait ...` in a boot script: the agent may not have made its socket yet.
      let waited = false;
      while (!existsSync(opts.controlSocket) && io.clock.now() < deadline) {
        waited = true;
        await sleep(io.clock, POLL_MS);
      }
      const left = waited ? Math.max(0, Math.round(deadline - io.clock.now())) : timeoutMs;
      const reply = await ask(io, opts.controlSocket, { cmd: 'wait', state: opts.state, timeoutMs: left }, left + WAIT_GRACE_MS);
      if (!reply) return;
      if (reply.ok) return reached(io, opts.state);
      if (reply.error === 'timeout') {
        // The agent may say where it got stuck; the reply type does not promise it.
        const now = (reply as Record<string, unknown>).state;
        return notReached(io, opts, typeof now === 'string' ? now : undefined);
      }
      if (!unknownCommand(reply)) return agentError(io, reply.error);
      // An older agent: watch its status instead.
      for (;;) {
        const r = await ask(io, opts.controlSocket, { cmd: 'status' });
        if (!r) return;
        if (!r.ok) return agentError(io, r.error);
        const state = (r.status as Partial<Status> | undefined)?.state;
        if (state === opts.state) return reached(io, opts.state);
        const left = deadline - io.clock.now();
        if (left <= 0) return notReached(io, opts, state);
        await sleep(io.clock, Math.min(POLL_MS, left));
      }
    });
}

function reached(io: CliIo, state: string): void {
  io.out(`state: ${state}\n`);
  io.setExitCode(EXIT_OK);
}

function notReached(io: CliIo, opts: { state: string; timeout: number }, now: string | undefined): void {
  io.err(`softwire: not ${opts.state} after ${opts.timeout} s${now ? ` (state is ${now})` : ''}\n`);
  io.setExitCode(EXIT_NOT_REACHED);
}

/** Registers status, up, down, reconnect and wait on `program`. */
export function registerClientVerbs(program: Command, io: CliIo = processIo()): void {
  statusVerb(program, io);
  for (const [name, description, example] of ACTIONS) actionVerb(program, io, name, description, example);
  waitVerb(program, io);
}
