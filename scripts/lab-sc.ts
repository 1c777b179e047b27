// Starts the SC layout (namespaces + l2tpns + FreeRADIUS) for manual experiments
// and prints the namespace names; Ctrl-C (or SIGTERM) tears everything down.
import { L2tpnsSc } from '../test/lab/l2tpns';
import { scLayout } from '../test/lab/topology';

async function main(): Promise<void> {
  const lay = scLayout();
  const sc = await L2tpnsSc.start(lay.sc, { bindAddress: lay.scAddress, tunnelSecret: process.env.SC_SECRET });
  process.stdout.write(`${JSON.stringify({ sc: lay.sc.name, cpe: lay.cpe.name, scAddress: lay.scAddress, dir: sc.dir })}\n`);
  const stop = async () => {
    await sc.stop();
    lay.topo.destroy();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  setInterval(() => {}, 1 << 30);
}
void main();
