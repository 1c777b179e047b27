/*
 * Offload helpers of the data path (issue 17), included by softwire.c: pure functions
 * on bytes, no system calls, so that tests can drive them through the addon.
 *
 *   - gso_split: a packet read from a TUN opened with IFF_VNET_HDR comes with a
 *     virtio-net header and may be a GSO super-packet (TCP up to 64 KB, or UDP with
 *     USO). The softwire carries MTU-sized IP packets, so it is cut into the packets
 *     the kernel would have sent: per segment the IP length and (IPv4) id, the TCP
 *     sequence number, FIN/PSH only on the last and CWR only on the first segment,
 *     and checksums computed in full (the kernel leaves them partial: TUN_F_CSUM).
 *
 *   - gro_coalesce: the reverse for packets written to the TUN. Consecutive in-order
 *     TCP segments of one flow whose checksums verify are joined into one super-packet
 *     with a virtio-net header, so the kernel forwards one packet instead of many; with
 *     USO on the TUN, runs of equal-sized UDP datagrams of one flow likewise. A
 *     segment whose checksum fails is never joined (the kernel would recompute the
 *     checksum when it resegments and so hide the corruption); it goes out alone and
 *     the receiver drops it.
 *
 * The checksum is the Internet checksum (RFC 1071) summed in host order 32 bits at a
 * time and swapped once at the end (RFC 1071 2(B): the sum is byte-order independent).
 */
#ifndef SOFTWIRE_OFFLOAD_H
#define SOFTWIRE_OFFLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The kernel's struct virtio_net_hdr (linux/virtio_net.h), in host byte order as TUN uses it. */
typedef struct {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
} vnet_hdr;
#define VNET_HDR_LEN 10
#define VNET_F_NEEDS_CSUM 1
#define VNET_GSO_NONE 0
#define VNET_GSO_TCPV4 1
#define VNET_GSO_TCPV6 4
#define VNET_GSO_UDP_L4 5
#define VNET_GSO_ECN 0x80

/* Largest segment count one super-packet may produce: 64 KB at TCP's smallest MSS (48). */
#define GSO_MAX_SEGS 1400
/* Largest IP+L4 header we cut: IPv4 with options (60) + TCP with options (60). */
#define GSO_MAX_HDR 120

/* Why a packet was not split; the read path counts these by name. */
enum split_error {
  SPLIT_BAD_HEADER = -1,   /* virtio-net header inconsistent with the packet */
  SPLIT_UNSUPPORTED = -2,  /* GSO type we do not cut (UFO, extension headers) */
  SPLIT_NO_ROOM = -3,      /* output area or segment slots too small */
};

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t rd32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void wr16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static inline void wr32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* ---- checksum ------------------------------------------------------------------ */

static inline uint32_t fold32(uint64_t s) {
  s = (s & 0xffffffffu) + (s >> 32);
  s = (s & 0xffffffffu) + (s >> 32);
  return (uint32_t)s;
}

static inline uint16_t fold16(uint32_t s) {
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return (uint16_t)s;
}

/*
 * Adds the bytes p[0..n) to a running checksum `acc` (a network-order value, unfolded).
 * p must start at an even offset of the checksummed data; only the last chunk may be odd.
 */
static uint32_t csum_add(uint32_t acc, const uint8_t *p, size_t n) {
  uint64_t s = 0;
  while (n >= 32) {
    uint32_t w[8];
    memcpy(w, p, 32);
    s += (uint64_t)w[0] + w[1] + w[2] + w[3] + w[4] + w[5] + w[6] + w[7];
    p += 32;
    n -= 32;
  }
  while (n >= 4) {
    uint32_t w;
    memcpy(&w, p, 4);
    s += w;
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    uint16_t w;
    memcpy(&w, p, 2);
    s += w;
    p += 2;
    n -= 2;
  }
  /* The odd byte is the high byte of a network-order word. */
  uint16_t h = fold16(fold32(s));
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  h = (uint16_t)((h >> 8) | (h << 8));
#endif
  if (n) h = fold16((uint32_t)h + ((uint32_t)p[0] << 8));
  return acc + h;
}

static inline uint16_t csum_finish(uint32_t acc) { return (uint16_t)~fold16(acc); }

/* The IPv4/IPv6 pseudo header (RFC 793 3.1, RFC 8200 8.1) for a transport segment of l4len bytes. */
static uint32_t pseudo_sum(const uint8_t *ip, bool v6, uint8_t proto, uint32_t l4len) {
  uint32_t acc = v6 ? csum_add(0, ip + 8, 32) : csum_add(0, ip + 12, 8);
  return acc + proto + (l4len >> 16) + (l4len & 0xffff);
}

static void ipv4_set_checksum(uint8_t *ip, size_t ihl) {
  wr16(ip + 10, 0);
  wr16(ip + 10, csum_finish(csum_add(0, ip, ihl)));
}

/* ---- locating headers ------------------------------------------------------------ */

typedef struct {
  bool v6;
  uint8_t proto;
  uint16_t iphl; /* IP header length (IPv6: 40, no extension headers) */
  uint16_t l4hl; /* TCP header length with options, or 8 for UDP */
} l4_loc;

/* Finds IP and TCP/UDP headers; false when the packet is not plain TCP/UDP over IPv4/IPv6
 * whose IP length matches `len`. IPv4 fragments and IPv6 extension headers are not plain. */
static bool locate_l4(const uint8_t *p, size_t len, l4_loc *o) {
  if (len < 20) return false;
  uint8_t ver = p[0] >> 4;
  if (ver == 4) {
    o->v6 = false;
    o->iphl = (uint16_t)((p[0] & 0x0f) * 4);
    if (o->iphl < 20 || rd16(p + 2) != len || (rd16(p + 6) & 0x3fff) != 0) return false;
    o->proto = p[9];
  } else if (ver == 6) {
    if (len < 40 || (size_t)rd16(p + 4) + 40 != len) return false;
    o->v6 = true;
    o->iphl = 40;
    o->proto = p[6];
  } else {
    return false;
  }
  if (o->proto == 6) {
    if ((size_t)o->iphl + 20 > len) return false;
    o->l4hl = (uint16_t)((p[o->iphl + 12] >> 4) * 4);
    if (o->l4hl < 20) return false;
  } else if (o->proto == 17) {
    o->l4hl = 8;
  } else {
    return false;
  }
  return (size_t)o->iphl + o->l4hl <= len;
}

/* ---- splitting ------------------------------------------------------------------- */

/* Completes a partial checksum (the field holds the pseudo-header sum): VIRTIO_NET_HDR_F_NEEDS_CSUM. */
static bool complete_partial(uint8_t *p, size_t len, size_t start, size_t offset) {
  if (start + offset + 2 > len) return false;
  uint16_t c = csum_finish(csum_add(0, p + start, len - start));
  /* A UDP checksum of 0 means "none"; the same sum is sent as all ones (RFC 768). */
  if (c == 0 && offset == 6) c = 0xffff;
  wr16(p + start + offset, c);
  return true;
}

/* The checksum of a TCP/UDP segment whose headers and payload are contiguous at l4. */
static void l4_set_checksum(uint8_t *ip, const l4_loc *l, uint8_t *l4, size_t l4len) {
  size_t at = l->proto == 6 ? 16 : 6;
  wr16(l4 + at, 0);
  uint16_t c = csum_finish(csum_add(pseudo_sum(ip, l->v6, l->proto, (uint32_t)l4len), l4, l4len));
  if (c == 0 && l->proto == 17) c = 0xffff;
  wr16(l4 + at, c);
}

/*
 * Cuts the packet `pkt[0..len)` (after its virtio-net header `h`) into out[0..cap):
 * segment i at out + offs[i], lens[i] bytes. Returns the segment count (1 when there was
 * nothing to cut; the packet is then copied with its checksum completed) or a
 * split_error. `pkt` is left unchanged.
 */
static int gso_split(const vnet_hdr *h, const uint8_t *pkt, size_t len, uint8_t *out, size_t cap, int32_t *offs,
                     int32_t *lens, int max_segs) {
  uint8_t gso = h->gso_type & (uint8_t)~VNET_GSO_ECN;
  if (max_segs < 1) return SPLIT_NO_ROOM;
  if (gso == VNET_GSO_NONE) {
    if (len > cap) return SPLIT_NO_ROOM;
    memcpy(out, pkt, len);
    if ((h->flags & VNET_F_NEEDS_CSUM) && !complete_partial(out, len, h->csum_start, h->csum_offset))
      return SPLIT_BAD_HEADER;
    offs[0] = 0;
    lens[0] = (int32_t)len;
    return 1;
  }
  if (gso != VNET_GSO_TCPV4 && gso != VNET_GSO_TCPV6 && gso != VNET_GSO_UDP_L4) return SPLIT_UNSUPPORTED;
  l4_loc l;
  /* IPv6 extension headers (locate_l4 sees their type as the protocol) are not cut. */
  if (!locate_l4(pkt, len, &l)) return SPLIT_UNSUPPORTED;
  if ((gso == VNET_GSO_TCPV4 && (l.v6 || l.proto != 6)) || (gso == VNET_GSO_TCPV6 && (!l.v6 || l.proto != 6)) ||
      (gso == VNET_GSO_UDP_L4 && l.proto != 17) || h->gso_size == 0)
    return SPLIT_BAD_HEADER;
  size_t hl = (size_t)l.iphl + l.l4hl;
  if (hl > GSO_MAX_HDR) return SPLIT_UNSUPPORTED;
  size_t payload = len - hl, mss = h->gso_size;
  size_t nseg = payload == 0 ? 1 : (payload + mss - 1) / mss;
  if (nseg > (size_t)max_segs || len + (nseg - 1) * hl > cap) return SPLIT_NO_ROOM;
  uint16_t id = l.v6 ? 0 : rd16(pkt + 4);
  uint32_t seq = l.proto == 6 ? rd32(pkt + l.iphl + 4) : 0;
  uint8_t flags = l.proto == 6 ? pkt[l.iphl + 13] : 0;
  size_t pos = 0;
  for (size_t i = 0; i < nseg; i++) {
    size_t from = i * mss, n = payload - from < mss ? payload - from : mss;
    uint8_t *s = out + pos, *l4 = s + l.iphl;
    memcpy(s, pkt, hl);
    memcpy(s + hl, pkt + hl + from, n);
    size_t slen = hl + n;
    if (l.v6) {
      wr16(s + 4, (uint16_t)(slen - 40));
    } else {
      wr16(s + 2, (uint16_t)slen);
      wr16(s + 4, (uint16_t)(id + i));
      ipv4_set_checksum(s, l.iphl);
    }
    if (l.proto == 6) {
      wr32(l4 + 4, seq + (uint32_t)from);
      uint8_t f = flags;
      if (i + 1 < nseg) f &= (uint8_t)~0x09; /* FIN, PSH: the last segment's */
      if (i > 0) f &= (uint8_t)~0x80;        /* CWR: the first segment's (RFC 3168 6.1.2) */
      l4[13] = f;
    } else {
      wr16(l4 + 4, (uint16_t)(8 + n));
    }
    l4_set_checksum(s, &l, l4, slen - l.iphl);
    offs[i] = (int32_t)pos;
    lens[i] = (int32_t)slen;
    pos += slen;
  }
  return (int)nseg;
}

/* ---- coalescing -------------------------------------------------------------------- */

/* One packet handed to gro_coalesce. */
typedef struct {
  uint8_t *p;
  size_t len;
} gro_pkt;

/* One packet to write: packets [first, first + count) of the input, joined when count > 1
 * (the first packet's headers, edited in place, then every packet's payload). */
typedef struct {
  uint32_t first, count;
  uint16_t hl; /* header bytes of each joined packet (skipped for all but the first) */
  vnet_hdr vh;
} gro_out;

/* Joined packets stay within IP's 64 KB and the kernel's 64-segment GSO limit. */
#define GRO_MAX_LEN 65535
#define GRO_MAX_SEGS 64

/* A segment that can take part: TCP plain ACK or PSH|ACK with data; with `udp`, a UDP
 * datagram with data and a checksum (IPv4 may send none: that cannot be verified). The
 * checksum must verify. */
static bool gro_candidate(const uint8_t *p, size_t len, l4_loc *l, bool udp) {
  if (!locate_l4(p, len, l) || (!l->v6 && l->iphl != 20)) return false;
  const uint8_t *t = p + l->iphl;
  if (len == (size_t)l->iphl + l->l4hl) return false;
  if (l->proto == 6) {
    if ((t[13] & ~0x08) != 0x10) return false;
  } else if (!udp || rd16(t + 4) != len - l->iphl || rd16(t + 6) == 0) {
    return false;
  }
  return csum_finish(csum_add(pseudo_sum(p, l->v6, l->proto, (uint32_t)(len - l->iphl)), t, len - l->iphl)) == 0;
}

/* Same flow, same IP fields that GSO copies to every segment, same TCP header but for seq/flags/checksum. */
static bool gro_same(const uint8_t *a, const uint8_t *b, const l4_loc *la, const l4_loc *lb) {
  if (la->v6 != lb->v6 || la->proto != lb->proto || la->l4hl != lb->l4hl) return false;
  if (la->v6) {
    /* version/traffic class/flow label, next header, hop limit, addresses */
    if (memcmp(a, b, 4) != 0 || memcmp(a + 6, b + 6, 34) != 0) return false;
  } else {
    /* version/IHL/TOS; DF; TTL/protocol; addresses */
    if (a[0] != b[0] || a[1] != b[1] || (a[6] & 0x40) != (b[6] & 0x40) || a[8] != b[8] || a[9] != b[9] ||
        memcmp(a + 12, b + 12, 8) != 0)
      return false;
  }
  const uint8_t *ta = a + la->iphl, *tb = b + lb->iphl;
  if (la->proto == 17) return memcmp(ta, tb, 4) == 0; /* ports */
  /* ports; ack, data offset; window; urgent pointer and options */
  return memcmp(ta, tb, 4) == 0 && memcmp(ta + 8, tb + 8, 5) == 0 && memcmp(ta + 14, tb + 14, 2) == 0 &&
         memcmp(ta + 18, tb + 18, la->l4hl - 18u) == 0;
}

/* Makes the joined packet's headers: lengths, IPv4 checksum, the last segment's PSH, and a
 * partial TCP/UDP checksum (pseudo header only) that the kernel completes or offloads. */
static void gro_finish(gro_pkt *in, gro_out *o, const l4_loc *l, size_t total, uint16_t mss) {
  uint8_t *p = in[o->first].p, *t = p + l->iphl;
  bool tcp = l->proto == 6;
  if (l->v6) {
    wr16(p + 4, (uint16_t)(total - 40));
  } else {
    wr16(p + 2, (uint16_t)total);
    ipv4_set_checksum(p, l->iphl);
  }
  if (tcp) {
    const uint8_t *last = in[o->first + o->count - 1].p;
    t[13] |= last[l->iphl + 13] & 0x08;
  } else {
    wr16(t + 4, (uint16_t)(total - l->iphl));
  }
  wr16(t + (tcp ? 16 : 6), fold16(pseudo_sum(p, l->v6, l->proto, (uint32_t)(total - l->iphl))));
  o->vh.flags = VNET_F_NEEDS_CSUM;
  o->vh.gso_type = !tcp ? VNET_GSO_UDP_L4 : l->v6 ? VNET_GSO_TCPV6 : VNET_GSO_TCPV4;
  o->vh.hdr_len = o->hl;
  o->vh.gso_size = mss;
  o->vh.csum_start = l->iphl;
  o->vh.csum_offset = tcp ? 16 : 6;
}

/*
 * Groups in[0..n) into out (at most n entries) and edits the first packet of each
 * joined group in place. Only neighbours join: a segment joins the group before it if
 * it is the same flow, its sequence number follows on, it carries no more data than the
 * group's first, the group's last segment was full-sized and had no PSH. Returns the
 * number of output packets. Order is kept.
 */
static uint32_t gro_coalesce(gro_pkt *in, uint32_t n, gro_out *out, bool udp) {
  uint32_t nout = 0;
  l4_loc hl, cl;
  bool open = false; /* out[nout-1] can take more */
  size_t total = 0, mss = 0, lastpay = 0;
  uint32_t next = 0;
  for (uint32_t i = 0; i < n; i++) {
    uint8_t *p = in[i].p;
    size_t len = in[i].len;
    bool cand = gro_candidate(p, len, &cl, udp);
    if (open && cand) {
      gro_out *o = &out[nout - 1];
      size_t pay = len - cl.iphl - cl.l4hl;
      const uint8_t *head = in[o->first].p;
      const uint8_t *prev = in[o->first + o->count - 1].p;
      bool tcp = cl.proto == 6;
      if (gro_same(head, p, &hl, &cl) && pay <= mss && lastpay == mss && total + pay <= GRO_MAX_LEN &&
          o->count < GRO_MAX_SEGS && (!tcp || (rd32(p + cl.iphl + 4) == next && !(prev[hl.iphl + 13] & 0x08)))) {
        o->count++;
        total += pay;
        next += (uint32_t)pay;
        lastpay = pay;
        continue;
      }
    }
    if (open && out[nout - 1].count > 1) gro_finish(in, &out[nout - 1], &hl, total, (uint16_t)mss);
    gro_out *o = &out[nout++];
    memset(o, 0, sizeof *o);
    o->first = i;
    o->count = 1;
    open = cand;
    if (cand) {
      hl = cl;
      o->hl = (uint16_t)(cl.iphl + cl.l4hl);
      total = len;
      mss = lastpay = len - o->hl;
      next = cl.proto == 6 ? rd32(p + cl.iphl + 4) + (uint32_t)mss : 0;
    }
  }
  if (open && out[nout - 1].count > 1) gro_finish(in, &out[nout - 1], &hl, total, (uint16_t)mss);
  return nout;
}

#endif
