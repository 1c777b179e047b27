import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { Command } from 'commander';
import { type ControlHandler, type ControlRequest, ControlServer } from '../../src/agent/control';
import { emptyStatus, type Status } from '../../src/agent/status';
import { type CliIo, registerClientVerbs } from '../../src/cli/client-verbs';
import { RealScheduler, type Scheduler } from '../../src/core/scheduler';
import { FakeClock } from '../helpers/fake-clock';

class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

interface Result {
  out: string;
  err: string;
  code: number | undefined;
}

/** Runs `softwire <args>` in-process with the client verbs registered, capturing output and exit status. */
async function run(args: string[], clock: Scheduler = new RealScheduler()): Promise<Result> {
  const r: Result = { out: '', err: '', code: undefined };
  const io: CliIo = {
    out: (t) => {
      r.out += t;
    },
    err: (t) => {
      r.err += t;
    },
    stdin: Readable.from([]),
    setExitCode: (c) => {
      r.code = c;
    },
    exit: (c) => {
      throw new Exit(c);
    },
    clock,
  };
  const program = new Command('softwire').exitOverride();
  registerClientVerbs(program, io);
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (e) {
    if (!(e instanceof Exit)) throw e;
    r.code = e.code;
  }
  return r;
}

/** Runs the verb while moving a fake clock to each armed timer, so polling takes no real time. */
async function runWithClock(args: string[], clock: FakeClock): Promise<Result> {
  let done = false;
  const p = run(args, clock).finally(() => {
    done = true;
  });
  while (!done) {
    const due = clock.nextDue();
    if (due !== undefined) clock.advance(due - clock.now());
    else await new Promise((res) => setImmediate(res));
  }
  return p;
}

async function agent(t: { after(fn: () => Promise<void>): void }, handler: ControlHandler): Promise<{ path: string; seen: ControlRequest[] }> {
  const path = join(mkdtempSync(join(tmpdir(), 'swcli-')), 'softwire.sock');
  const seen: ControlRequest[] = [];
  const srv = await ControlServer.listen(path, (req) => {
    seen.push(req);
    return handler(req);
  });
  t.after(() => srv.close());
  return { path, seen };
}

function upStatus(): Status {
  const s = emptyStatus(new Date());
  s.state = 'up';
  s.sc = { address: '192.0.2.1', port: 1701 };
  s.ipv6 = {
    linkLocal: 'fe80::1',
    address: '2001:db8:1::2',
    delegatedPrefix: { prefix: '2001:db8:100::', length: 56, preferredUntil: null, validUntil: null },
    dns: ['2001:db8::53'],
    domains: [],
    defaultRoute: true,
    lan: [],
  };
  return s;
}

test('status prints the human summary by default and the exact Status JSON with --json', async (t) => {
  const status = upStatus();
  const { path, seen } = await agent(t, () => ({ ok: true, status }));
  const human = await run(['status', '--control-socket', path]);
  assert.equal(human.code, 0);
  assert.equal(human.err, '');
  assert.match(human.out, /^state {7}up for \d+s/);
  assert.match(human.out, /^SC {10}192\.0\.2\.1:1701$/m);
  assert.match(human.out, /^ {2}prefix {4}2001:db8:100::\/56, preferred infinite, valid infinite$/m);
  const json = await run(['status', '--json', '--control-socket', path]);
  assert.equal(json.code, 0);
  assert.deepEqual(JSON.parse(json.out), status);
  assert.deepEqual(
    seen.map((r) => r.cmd),
    ['status', 'status'],
  );
});

test('up, down and reconnect send their command and print the reply message', async (t) => {
  const { path, seen } = await agent(t, (req) =>
    req.cmd === 'reconnect' ? { ok: true } : { ok: true, message: `softwire going ${req.cmd}` },
  );
  for (const verb of ['up', 'down']) {
    const r = await run([verb, '--control-socket', path]);
    assert.deepEqual(r, { out: `softwire going ${verb}\n`, err: '', code: 0 });
  }
  assert.deepEqual(await run(['reconnect', '--control-socket', path]), { out: 'reconnect: accepted\n', err: '', code: 0 });
  assert.deepEqual(
    seen.map((r) => r.cmd),
    ['up', 'down', 'reconnect'],
  );
});

test('an error reply from the agent exits 3 with its message', async (t) => {
  const { path } = await agent(t, () => ({ ok: false, error: 'already down' }));
  const r = await run(['down', '--control-socket', path]);
  assert.equal(r.code, 3);
  assert.equal(r.out, '');
  assert.equal(r.err, 'softwire: the agent says: already down\n');
  assert.equal((await run(['status', '--control-socket', path])).code, 3);
});

test('no agent on the socket: exit 2 with a hint, for every verb', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'swcli-')), 'absent.sock');
  for (const args of [['status'], ['up'], ['down'], ['reconnect'], ['wait', '--state', 'up']]) {
    const r = await run([...args, '--control-socket', path]);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.err, /cannot reach .*absent\.sock: ENOENT \(is "softwire run" running with this --control-socket\?\)/);
  }
});

test('wait sends {cmd: wait, state, timeoutMs} and exits 0 when the agent says the state is reached', async (t) => {
  const { path, seen } = await agent(t, (req) => (req.cmd === 'wait' ? { ok: true, state: req.state } : { ok: false, error: 'no' }));
  const r = await run(['wait', '--state', 'up', '--timeout', '2.5', '--control-socket', path]);
  assert.deepEqual(r, { out: 'state: up\n', err: '', code: 0 });
  assert.deepEqual(seen, [{ cmd: 'wait', state: 'up', timeoutMs: 2500 }]);
});

test('wait exits 1 when the agent answers timeout', async (t) => {
  const { path } = await agent(t, () => ({ ok: false, error: 'timeout' }));
  const r = await run(['wait', '--state', 'down', '--timeout', '1', '--control-socket', path]);
  assert.equal(r.code, 1);
  assert.equal(r.err, 'softwire: not down after 1 s\n');
});

test('an agent without the wait command is polled with status every 200 ms until the state is reached', async (t) => {
  let polls = 0;
  const { path } = await agent(t, (req) => {
    if (req.cmd === 'wait') return { ok: false, error: 'unknown command "wait"' };
    polls++;
    return { ok: true, status: { ...emptyStatus(), state: polls >= 4 ? 'up' : 'connecting' } };
  });
  const clock = new FakeClock();
  const r = await runWithClock(['wait', '--state', 'up', '--timeout', '10', '--control-socket', path], clock);
  assert.deepEqual(r, { out: 'state: up\n', err: '', code: 0 });
  assert.equal(polls, 4);
  assert.equal(clock.now(), 600);
});

test('polling gives up at the timeout with exit 1 and names the current state', async (t) => {
  let polls = 0;
  const { path } = await agent(t, (req) => {
    if (req.cmd === 'wait') return { ok: false, error: 'unknown command "wait"' };
    polls++;
    return { ok: true, status: { ...emptyStatus(), state: 'connecting' } };
  });
  const clock = new FakeClock();
  const r = await runWithClock(['wait', '--state', 'up', '--timeout', '1', '--control-socket', path], clock);
  assert.equal(r.code, 1);
  assert.equal(r.err, 'softwire: not up after 1 s (state is connecting)\n');
  assert.equal(clock.now(), 1000);
  assert.equal(polls, 6);
});

test('usage errors exit 2; --help exits 0 and documents exit codes with examples', async () => {
  for (const args of [['wait'], ['wait', '--state', 'sideways'], ['wait', '--state', 'up', '--timeout', '0'], ['status', '--bogus']]) {
    const r = await run(args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.err, /error: /, args.join(' '));
  }
  for (const verb of ['status', 'up', 'down', 'reconnect', 'wait']) {
    const h = await run([verb, '--help']);
    assert.equal(h.code, 0, verb);
    assert.match(h.out, /--control-socket <PATH>/);
    assert.match(h.out, /default:\s+"\/run\/softwire\/softwire\.sock"/);
    assert.match(h.out, /Exit status:\n {2}0 {2}.*\n[\s\S]* {2}2 {2}.*cannot be reached/);
    assert.match(h.out, /Examples:\n {2}softwire /);
  }
  assert.match((await run(['wait', '--help'])).out, / {2}1 {2}the timeout passed first/);
});
