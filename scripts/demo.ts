/**
 * `npm run demo`: the whole job on an embedded default (see test/lab/demo.ts).
 * The lab is test infrastructure, so it is not part of the shipped bundle; this
 * script drives the shipped program (bin/softwire, or --agent PATH, e.g. the
 * softwire of an extracted ipk) from outside.
 *
 *   node --import tsx scripts/demo.ts [--agent PATH] [--timeout S]
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runDemo } from '../test/lab/demo';

const { values } = parseArgs({
  options: { agent: { type: 'string' }, timeout: { type: 'string', default: '30' }, help: { type: 'boolean' } },
});
if (values.help) {
  process.stdout.write(`usage: npm run demo [-- --agent PATH] [-- --timeout S]

Builds three network namespaces (an SC running l2tpns + FreeRADIUS, a router
running "softwire run --mode router", and a LAN host with no configuration),
shows the layers coming up, prints the status, pings the SC side from the LAN
host across the softwire, and removes everything it made. Needs root.

Exit codes: 0 the ping crossed the softwire, 1 a step failed, 2 missing root or packages.
`);
  process.exit(0);
}
const agentCommand = values.agent
  ? [resolve(values.agent)]
  : [process.execPath, resolve(__dirname, '..', 'bin', 'softwire')];
void runDemo({
  agentCommand,
  out: (l) => process.stdout.write(`${l}\n`),
  timeoutMs: Math.max(1, Number(values.timeout) || 30) * 1000,
}).then((code) => {
  process.exitCode = code;
});
