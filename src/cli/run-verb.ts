import type { Command } from 'commander';
import { Agent } from '../agent/agent';
import type { InstallerHooks } from '../agent/installer';
import type { Endpoint } from '../io/udp-socket';
import { ConfigError, maskSecrets, resolveSecrets } from '../config/load';
import { createLogger } from '../log';
import { Netlink } from '../platform/netlink';
import { privilegeProblems } from '../platform/privileges';
import { Sysctl } from '../platform/sysctl';
import { TunDevice } from '../platform/tun';
import { ResolvWriter } from '../platform/resolv';
import { StateStore } from '../platform/state-store';
import { LanProvisioner } from '../lan/provisioner';
import { RealScheduler } from '../core/scheduler';
import { generateDuid } from '../ipv6/duid';
import type { Logger } from '../log';
import type { Config } from '../config/schema';
import { scFromSdpFile } from './sdp-verb';
import { ipsecGuardFor } from '../ipsec/guard';
import { addConfigFlags, configFromFlags } from './config-flags';

/** Exit codes of `softwire run`. */
export const EXIT = { OK: 0, CONFIG: 2, STARTUP: 3, SIGNAL_TWICE: 130 } as const;

export function registerRunVerb(program: Command): void {
  const run = program
    .command('run')
    .description('dial the Softwire Concentrator and keep the softwire up until stopped (SIGTERM/SIGINT)')
    .addHelpText(
      'after',
      `
The layers come up in order: L2TP tunnel and session, PPP (LCP, CHAP/PAP, IPV6CP
or IPCP), then provisioning (Router Solicitation, SLAAC, DHCPv6 prefix delegation,
routes, LAN addresses and Router Advertisements). Any failure tears down the
layers above it and the agent dials again after a jittered backoff.

Signals: SIGTERM/SIGINT shut down gracefully (DHCPv6 Release, LCP Terminate,
StopCCN, then every route, address and file the agent made is removed) within
3 s; a second signal exits at once. SIGHUP re-reads the config file and
reconnects only if a setting that needs it changed.

Exit codes: 0 stopped by a signal, 2 bad configuration, 3 could not start
(e.g. no permission for netlink/TUN, control socket in use), 130 second signal.

Examples:
  softwire run --sc 192.0.2.1 --user cpe1 --password-file /etc/softwire/pw
  softwire run --sc sc.example.net --mode router --lan br-lan --ra builtin
  softwire run -c /etc/softwire.json --log-level debug | pino-pretty`,
    );
  addConfigFlags(run);
  run.action(async (_opts, cmd: Command) => {
    const code = await runAgent(cmd);
    // "stopped" means stopped: whatever is left (a notify command that hangs, a socket
    // whose close failed, a stray timer) must not keep the process alive. Logs are
    // written synchronously (log.ts), so nothing is lost.
    process.exit(code);
  });
}

async function runAgent(cmd: Command): Promise<number> {
  let loaded;
  let secrets;
  try {
    loaded = configFromFlags(cmd, true);
    secrets = resolveSecrets(loaded.config, loaded.warnings);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`softwire: ${e.message}\n`);
      return EXIT.CONFIG;
    }
    throw e;
  }
  const config = loaded.config;
  const log = createLogger({ level: config.logLevel as never });
  for (const w of loaded.warnings) log.warn(w);
  log.debug({ config: maskSecrets(config) }, 'effective configuration');

  // Fail at once, naming the capability, rather than redial forever and fail at the TUN each time.
  const lanServices = config.mode === 'router' && config.lan.length > 0;
  const ipv4Routed = config.ncp !== 'ipv6' || config.ipv4DefaultRoute;
  const missing = privilegeProblems({
    rawIcmp6: lanServices && config.ra === 'builtin',
    dhcpServer: lanServices && config.dhcpv4 && ipv4Routed && config.provision === 'agent',
  });
  if (missing.length > 0) {
    for (const m of missing) log.fatal(m);
    return EXIT.STARTUP;
  }

  let netlink: Netlink;
  try {
    netlink = await Netlink.open();
  } catch (e) {
    log.fatal({ err: (e as Error).message }, 'cannot open netlink');
    return EXIT.STARTUP;
  }
  let scOverride: Endpoint[] | undefined;
  if (config.scSdp) {
    try {
      const sc = await scFromSdpFile(config.scSdp);
      scOverride = [{ address: sc.host, port: sc.port }];
      log.info({ sc: `${sc.host}:${sc.port}`, file: config.scSdp }, 'SC taken from the SDP answer');
    } catch (e) {
      process.stderr.write(`softwire: --sc-sdp ${config.scSdp}: ${(e as Error).message}\n`);
      return EXIT.CONFIG;
    }
  }

  // DUID and last prefix survive restarts so the SC hands back the same prefix (RFC 5571 section 7).
  const store = new StateStore(config.stateDir);
  const { state, warnings } = await store.load();
  for (const w of warnings) log.warn(w);
  let duid: Uint8Array;
  if (state.duid) duid = Buffer.from(state.duid, 'hex');
  else {
    duid = generateDuid(Math.random);
    await store.update((s) => ({ ...s, duid: Buffer.from(duid).toString('hex') })).catch((e: Error) => log.warn({ err: e.message }, 'cannot save state'));
  }
  const lanScheduler = new RealScheduler();
  const hooks = lanHooks(config, netlink, lanScheduler, log);

  let ipsec;
  try {
    ipsec = ipsecGuardFor(config, secrets.ipsecPsk, log);
  } catch (e) {
    process.stderr.write(`softwire: ipsec: cannot read a certificate or key: ${(e as Error).message}\n`);
    return EXIT.CONFIG;
  }
  const agent = new Agent({
    config,
    secrets,
    log,
    netlink,
    sysctl: new Sysctl(),
    openTun: (name, o) => TunDevice.open(name, { slotSize: o?.slotSize, offload: config.offloads }),
    duid,
    previousPrefix: state.lastPrefix,
    savePrefix: (p) => {
      store.update((s) => ({ ...s, lastPrefix: { prefix: p.prefix, length: p.length } })).catch((e: Error) => log.warn({ err: e.message }, 'cannot save state'));
    },
    installerHooks: hooks,
    scOverride,
    ipsec,
  });

  let signals = 0;
  const onStop = (sig: string) => {
    signals++;
    if (signals > 1) {
      log.warn({ signal: sig }, 'second signal: exiting at once');
      process.exit(EXIT.SIGNAL_TWICE);
    }
    log.info({ signal: sig }, 'shutting down');
    void agent.stop();
  };
  process.on('SIGTERM', () => onStop('SIGTERM'));
  process.on('SIGINT', () => onStop('SIGINT'));
  process.on('SIGHUP', () => {
    try {
      const next = configFromFlags(cmd, true);
      agent.reload(next.config, resolveSecrets(next.config, next.warnings));
      for (const w of next.warnings) log.warn(w);
    } catch (e) {
      log.error({ err: (e as Error).message }, 'reload failed; keeping the running configuration');
    }
  });

  try {
    await agent.run();
  } catch (e) {
    log.fatal({ err: (e as Error).message }, 'cannot start');
    await agent.stop();
    netlink.close();
    return EXIT.STARTUP;
  }
  await agent.stop();
  lanScheduler.clearAll();
  netlink.close();
  log.info('stopped');
  return EXIT.OK;
}

/** What the installer calls for DNS and (router role) the LAN: resolv file, LAN addresses and RAs. */
function lanHooks(config: Config, netlink: Netlink, scheduler: RealScheduler, log: Logger): InstallerHooks {
  const resolv = new ResolvWriter(config.resolvFile);
  const lan =
    config.mode === 'router' && config.lan.length > 0
      ? new LanProvisioner({
          lan: config.lan,
          backend: config.ra,
          netlink,
          sysctl: new Sysctl(),
          scheduler,
          rng: Math.random,
          onWarning: (m) => log.warn({ part: 'lan' }, m),
        })
      : null;
  let dns = { servers: [] as string[], domains: [] as string[] };
  // Issue 16 item 3: the softwire MTU, announced in the LAN's RAs.
  let mtu: number | undefined;
  let lastNumbered = '';
  return {
    onDns: async (d) => {
      dns = d;
      try {
        if (d.servers.length === 0 && d.domains.length === 0) await resolv.remove();
        else await resolv.write(d);
      } catch (e) {
        // A refused value (ResolvError) or an unwritable file must not keep the DNS from the LAN's RAs.
        log.error({ part: 'dns', file: resolv.path, err: (e as Error).message }, 'cannot write the resolv file');
      }
      await lan?.updateServices({ dns: d.servers, domains: d.domains, mtu, defaultRoute: true });
    },
    onMtu: async (m) => {
      mtu = m;
      await lan?.updateServices({ dns: dns.servers, domains: dns.domains, mtu, defaultRoute: true });
    },
    onPrefix: async (lease) => {
      if (!lan) return;
      if (lease === null) {
        lastNumbered = '';
        await lan.clear();
        return;
      }
      const r = await lan.apply(lease, { dns: dns.servers, domains: dns.domains, mtu, defaultRoute: true });
      for (const e of r.errors) log.error({ part: 'lan' }, e);
      // The moment LAN hosts can be numbered: operators (and the interop tests) time provisioning by it.
      // Renewals re-apply the same plan every T1; only a change is worth a line.
      const numbered = (r.plan?.lans ?? []).map((a) => `${a.ifname} ${a.routerAddress}/${a.prefix.length}`).join(', ');
      if (numbered && numbered !== lastNumbered) log.info({ layer: 'lan' }, `LAN numbered from ${lease.prefix}/${lease.length}: ${numbered}`);
      lastNumbered = numbered;
    },
    lanStatus: () => lan?.status() ?? [],
    // After a reconnect the same numbering is worth its line again: it says when the LAN is confirmed.
    onLanHeld: () => (lastNumbered = ''),
  };
}
