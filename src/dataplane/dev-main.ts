/**
 * The CLI with the native UDP transport in place of Node's dgram one, for tests and
 * the bench run from source (node --import tsx src/dataplane/dev-main.ts run ...).
 * Once the agent opens its transport with openDataTransport() this patch is not
 * needed; until then it is how the data fast path gets exercised end to end.
 */
import { UdpTransport } from '../agent/transport';
import { main } from '../cli/main';
import { NativeUdpTransport } from './udp';

(UdpTransport as unknown as { open: typeof NativeUdpTransport.open }).open = NativeUdpTransport.open;

main(process.argv).catch((e: unknown) => {
  process.stderr.write(`softwire: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
