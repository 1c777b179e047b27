/** The PPP sans-I/O core: see link.ts for the orchestrator most callers want. */
export * from './automaton';
export * from './auth';
export * from './echo';
export * from './frame';
export * from './ipcp';
export * from './ipv6cp';
export * from './lcp';
export * from './link';
