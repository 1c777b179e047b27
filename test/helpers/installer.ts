import type { Netlink } from '../../src/platform/netlink';

/** A kernel that accepts every change the Installer makes and records nothing: for tests that watch other parts (NAT44, DHCPv4). */
export function acceptingNetlink(): Netlink {
  return {
    addAddress: async () => undefined,
    deleteAddress: async () => undefined,
    addRoute: async () => undefined,
    deleteRoute: async () => undefined,
    setMtu: async () => undefined,
    setLinkUp: async () => undefined,
    linkIndex: async () => 9,
    listRoutes: async () => [],
  } as unknown as Netlink;
}
