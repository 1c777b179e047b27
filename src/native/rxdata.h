/*
 * The receive half of the data fast path in C: which L2TP datagrams carry our session's
 * IP data, where the IP packet lies in them, and TCP MSS clamping of SYNs.
 *
 * Why here and not only in src/dataplane: the agent runs V8 without its optimising
 * compiler (bin/softwire, for memory), where the per-datagram checks in TypeScript cost
 * about 0.8 µs a packet; a TCP download through l2tpns moves ~700,000 datagrams per GB
 * one at a time, so that alone was ~15% of the agent's CPU. The rules are the ones of
 * src/dataplane/frame.ts (locateIp, ipv6NeedsCores) and src/dataplane/mss.ts
 * (clampMss); test/unit/dataplane-rx-native.test.ts checks that both give the same
 * answer on valid and mangled datagrams. Anything this does not take (control, LCP,
 * NCPs, sequenced data, ICMPv6, DHCPv6, another session) is left to the TypeScript
 * path, which hands it to the cores as before.
 */
#ifndef SOFTWIRE_RXDATA_H
#define SOFTWIRE_RXDATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PPP_IPV4 0x0021
#define PPP_IPV6 0x0057

/* What the session allows, refreshed by the TypeScript side once per wake-up. */
typedef struct {
  uint16_t tunnel, session; /* our ids, as the SC's data carries them */
  bool open4, open6;        /* IPCP / IPV6CP open */
  int mss4, mss6;           /* clamp SYNs to these */
} rx_params;

static inline uint16_t rx_rd16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

/*
 * RFC 2661 3.1 data message of our tunnel and session carrying PPP IPv4 or IPv6
 * (frame.ts locateIp): no T or S bit, version 2, optional Length and Offset, optional
 * address/control, one- or two-octet protocol. Returns the PPP protocol (0 if not ours)
 * and sets *at and *ip_len to the IP packet.
 */
static int rx_locate(const uint8_t *b, size_t len, uint16_t tunnel, uint16_t session, size_t *at_out, size_t *ip_len) {
  if (len < 6) return 0;
  uint8_t f0 = b[0];
  if ((f0 & (0x80 | 0x08)) || (b[1] & 0x0f) != 2) return 0;
  size_t at = 2, end = len;
  if (f0 & 0x40) {
    size_t l = rx_rd16(b + at);
    if (l > len) return 0;
    end = l;
    at += 2;
  }
  if (at + 4 > end) return 0;
  if (rx_rd16(b + at) != tunnel || rx_rd16(b + at + 2) != session) return 0;
  at += 4;
  if (f0 & 0x02) {
    if (at + 2 > end) return 0;
    at += 2 + (size_t)rx_rd16(b + at);
  }
  if (at + 2 <= end && b[at] == 0xff && b[at + 1] == 0x03) at += 2;
  if (at >= end) return 0;
  int proto;
  if (b[at] & 1) {
    proto = b[at];
    at += 1;
  } else {
    if (at + 2 > end) return 0;
    proto = rx_rd16(b + at);
    at += 2;
  }
  if (proto != PPP_IPV4 && proto != PPP_IPV6) return 0;
  if (at >= end) return 0;
  *at_out = at;
  *ip_len = end - at;
  return proto;
}

/* IPv6 the cores must see (frame.ts ipv6NeedsCores): all but plain TCP and UDP not to port 546 (DHCPv6 client). */
static bool rx_ipv6_needs_cores(const uint8_t *p, size_t len) {
  if (len < 40) return true;
  uint8_t nh = p[6];
  if (nh == 6) return false;
  if (nh == 17) return len < 48 || rx_rd16(p + 42) == 546;
  return true;
}

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'). */
static uint16_t rx_csum_replace(uint16_t cs, uint16_t old_w, uint16_t new_w) {
  uint32_t sum = (uint32_t)(uint16_t)~cs + (uint16_t)~old_w + new_w;
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

/* mss.ts clampMss: lowers the MSS option of a TCP SYN in place (checksum updated); true if changed. */
static bool rx_clamp_mss(uint8_t *b, size_t len, int mss4, int mss6) {
  if (len < 20) return false;
  int version = b[0] >> 4;
  size_t tcp;
  int max;
  if (version == 4) {
    if (b[9] != 6) return false;
    if ((rx_rd16(b + 6) & 0x1fff) != 0) return false;
    tcp = (size_t)(b[0] & 0x0f) * 4;
    max = mss4;
  } else if (version == 6) {
    if (len < 40) return false;
    uint8_t nh = b[6];
    tcp = 40;
    for (int i = 0; nh != 6; i++) {
      if (i == 4 || (nh != 0 && nh != 43 && nh != 60) || tcp + 8 > len) return false;
      nh = b[tcp];
      tcp += ((size_t)b[tcp + 1] + 1) * 8;
    }
    max = mss6;
  } else {
    return false;
  }
  if (tcp + 20 > len || !(b[tcp + 13] & 0x02)) return false;
  size_t opt_end = tcp + (size_t)(b[tcp + 12] >> 4) * 4;
  if (opt_end > len) opt_end = len;
  size_t o = tcp + 20;
  while (o < opt_end) {
    uint8_t kind = b[o];
    if (kind == 0) return false;
    if (kind == 1) {
      o++;
      continue;
    }
    if (o + 1 >= opt_end) return false;
    size_t olen = b[o + 1];
    if (olen < 2 || o + olen > opt_end) return false;
    if (kind == 2 && olen == 4) {
      int old = rx_rd16(b + o + 2);
      if (old <= max) return false;
      b[o + 2] = (uint8_t)(max >> 8);
      b[o + 3] = (uint8_t)max;
      /* An odd offset from the TCP header straddles checksum words: swapped values (RFC 1071 2(B)). */
      bool odd = ((o + 2 - tcp) & 1) == 1;
      uint16_t ow = (uint16_t)old, nw = (uint16_t)max;
      if (odd) {
        ow = (uint16_t)((ow << 8) | (ow >> 8));
        nw = (uint16_t)((nw << 8) | (nw >> 8));
      }
      uint16_t cs = rx_csum_replace(rx_rd16(b + tcp + 16), ow, nw);
      b[tcp + 16] = (uint8_t)(cs >> 8);
      b[tcp + 17] = (uint8_t)cs;
      return true;
    }
    o += olen;
  }
  return false;
}

/*
 * One datagram: true if the fast path takes it (then *ip_at and *ip_len locate the IP
 * packet and its MSS is clamped, *clamped says whether it was); false leaves it as it is.
 */
static bool rx_take(uint8_t *b, size_t len, const rx_params *p, size_t *ip_at, size_t *ip_len, bool *clamped) {
  int proto = rx_locate(b, len, p->tunnel, p->session, ip_at, ip_len);
  if (proto == PPP_IPV6) {
    if (!p->open6 || rx_ipv6_needs_cores(b + *ip_at, *ip_len)) return false;
  } else if (proto == PPP_IPV4) {
    if (!p->open4) return false;
  } else {
    return false;
  }
  *clamped = rx_clamp_mss(b + *ip_at, *ip_len, p->mss4, p->mss6);
  return true;
}

#endif
