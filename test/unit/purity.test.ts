import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { tsFiles } from '../helpers/source-files';

/**
 * Sans-I/O, checked: the protocol and orchestration cores get time as `now` on each
 * input and randomness as a required function, so fake-clock tests drive every
 * transition. None of them may read a clock, draw randomness, arm a timer or touch
 * a socket, file or process on its own. (Issue 15: "never from node:crypto or
 * Date.now inside a core".)
 */

const SRC = resolve(__dirname, '../../src');

/** Whole directories of pure cores. */
const CORE_DIRS = ['l2tp', 'ppp', 'ipv6', 'sdp', 'core'];
/** Pure cores that live beside their drivers. */
const CORE_FILES = ['agent/attempt.ts', 'agent/attempt-ipv6.ts', 'agent/attempt-types.ts', 'agent/supervisor.ts', 'agent/session-core.ts', 'agent/reconnect-policy.ts', 'agent/backoff.ts', 'agent/keepalive.ts', 'util/random.ts'];
/** The edges inside those directories, and why they may do I/O. */
const EDGES: Record<string, string> = {
  'core/scheduler.ts': 'RealScheduler: the one place real timers are armed for every driver',
};

const FORBIDDEN: { what: string; re: RegExp }[] = [
  { what: 'a clock read (Date.now)', re: /\bDate\.now\s*\(/ },
  { what: 'a clock read (new Date())', re: /\bnew Date\(\s*\)/ },
  { what: 'a clock read (performance.now / hrtime)', re: /\bperformance\.now\s*\(|\bprocess\.hrtime/ },
  { what: 'randomness (Math.random)', re: /\bMath\.random\b/ },
  // The injected `this.cfg.randomBytes(n)` is fine; the system's CSPRNG is not.
  { what: 'randomness (node:crypto)', re: /import\s*\{[^}]*\brandom\w*[^}]*\}\s*from\s*['"](node:)?crypto['"]|\bcrypto\.random\w*\s*\(/ },
  { what: 'a real timer', re: /\b(setTimeout|setInterval|setImmediate)\s*\(/ },
  // node:net is allowed: the cores use its isIP, a pure parser.
  { what: 'an I/O module', re: /from ['"]node:(dgram|fs|fs\/promises|child_process|dns|os|http|https)['"]/ },
];


/** The source with comments removed, so prose about Date.now does not count. */
function code(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

test('pure cores read no clock, draw no randomness, arm no timer and open no I/O of their own', () => {
  const files = [...CORE_DIRS.flatMap((d) => tsFiles(join(SRC, d))), ...CORE_FILES.map((f) => join(SRC, f))];
  assert.ok(files.length > 40, `only ${files.length} core files found: the lists above are stale`);
  const found: string[] = [];
  for (const f of files) {
    const rel = relative(SRC, f);
    if (EDGES[rel]) continue;
    const text = code(readFileSync(f, 'utf8'));
    for (const { what, re } of FORBIDDEN) if (re.test(text)) found.push(`${rel}: ${what}`);
  }
  assert.deepEqual(found, []);
});

test("the agent's pure cores import no driver (agent.ts, connection.ts, dialer.ts, installer.ts ...), not even for types", () => {
  const agentCores = CORE_FILES.filter((f) => f.startsWith('agent/'));
  // status.ts holds the Status type and pure helpers both cores fill in.
  const allowed = new Set([...agentCores, 'agent/status.ts']);
  const found: string[] = [];
  for (const f of agentCores) {
    for (const m of readFileSync(join(SRC, f), 'utf8').matchAll(/from '\.\/([\w-]+)'/g)) {
      if (!allowed.has(`agent/${m[1]}.ts`)) found.push(`${f} imports ./${m[1]}`);
    }
  }
  assert.deepEqual(found, []);
});

test('the purity check sees a violation when there is one', () => {
  const bad = code(
    "import dgram from 'node:dgram';\nimport { createHash, randomBytes } from 'node:crypto';\n// Date.now() in prose is fine\nconst t = Date.now();\nconst r = Math.random();\n",
  );
  const hits = FORBIDDEN.filter(({ re }) => re.test(bad)).map((f) => f.what);
  assert.deepEqual(hits, ['a clock read (Date.now)', 'randomness (Math.random)', 'randomness (node:crypto)', 'an I/O module']);
  const fine = code("import { createHash } from 'node:crypto';\nconst b = this.cfg.randomBytes(8);\nconst s = new Date(now);\n");
  assert.deepEqual(FORBIDDEN.filter(({ re }) => re.test(fine)).map((f) => f.what), []);
});
