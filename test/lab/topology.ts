import { link, type Netns, Topology } from './netns';

/**
 * The two-host layout every SC test starts from: the SC namespace and the CPE
 * (where the agent runs), joined by one veth on 192.0.2.0/24 (TEST-NET-1).
 */
export interface ScLayout {
  topo: Topology;
  sc: Netns;
  cpe: Netns;
  scAddress: string;
  cpeAddress: string;
  scDev: string;
  cpeDev: string;
}

export function scLayout(): ScLayout {
  const topo = new Topology();
  const sc = topo.ns('sc');
  const cpe = topo.ns('cpe');
  const l = link(sc, '192.0.2.1/24', cpe, '192.0.2.2/24');
  return { topo, sc, cpe, scAddress: '192.0.2.1', cpeAddress: '192.0.2.2', scDev: l.a, cpeDev: l.b };
}
