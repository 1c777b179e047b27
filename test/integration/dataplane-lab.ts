import type { Netns } from '../lab/netns';
import { AgentProc } from '../helpers/agent-proc';

/**
 * Starts the shipped bundle (`bin/softwire run`) in `ns` for the dataplane tests and
 * scripts/bench.ts. The agent opens the native UDP transport itself, so this is the
 * data fast path exactly as deployed (rebuild dist/ after changing src/).
 */
export function startFastAgent(ns: Netns, args: string[], password: string, env?: Record<string, string>): AgentProc {
  return AgentProc.start(ns, args, { password, env });
}
