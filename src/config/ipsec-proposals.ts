/**
 * IKE and ESP proposal defaults and the check that keeps weak algorithms out
 * unless the user asks for them. Pure. It sits in src/config, not src/ipsec,
 * because the schema's defaults and the loader's check need it and config is
 * the lowest layer.
 *
 * Defaults use what Debian's and OpenWrt's stock charon can do with its default
 * plugins (aes, sha2, hmac, gmp): AES with SHA-2 and MODP 2048 (group 14) for IKE,
 * AES-GCM or AES-CBC+HMAC-SHA-256 for ESP, which the kernel does.
 */

export const DEFAULT_IKE_PROPOSALS = ['aes256-sha256-modp2048', 'aes128-sha256-modp2048', 'aes256-sha384-modp3072'];
export const DEFAULT_ESP_PROPOSALS = ['aes256gcm16', 'aes128gcm16', 'aes256-sha256', 'aes128-sha256'];

/**
 * Algorithm keywords (strongSwan spelling) that are weak: broken hashes, 64-bit
 * block ciphers, and DH groups below 14 (RFC 8247 / RFC 8221 say MUST NOT or
 * SHOULD NOT). `null` is ESP without encryption.
 */
const WEAK = [/^md5/, /^sha1$/, /^sha$/, /^sha1_160$/, /^prfmd5$/, /^prfsha1$/, /^3des$/, /^des$/, /^blowfish/, /^cast128$/, /^null$/, /^modp(768|1024|1536)$/, /^modp1024s160$/, /^ecp192$/, /^ecp224$/];

/** The weak keywords in one proposal string such as "aes128-sha1-modp1024". */
export function weakParts(proposal: string): string[] {
  return proposal
    .toLowerCase()
    .split('-')
    .filter((k) => WEAK.some((w) => w.test(k)));
}

/** Problems with a proposal list, one line each; empty when acceptable. */
export function proposalProblems(key: string, proposals: readonly string[], allowWeak: boolean): string[] {
  const out: string[] = [];
  for (const p of proposals) {
    if (!/^[a-z0-9_-]+$/i.test(p)) out.push(`${key}: "${p}" is not a strongSwan proposal (letters, digits, - and _ only)`);
    else if (!allowWeak) {
      const weak = weakParts(p);
      if (weak.length) out.push(`${key}: "${p}" uses ${weak.join(', ')}, which is weak (no MD5, SHA-1, DES/3DES or DH groups below 14); set ipsecAllowWeak to use it anyway`);
    }
  }
  return out;
}
