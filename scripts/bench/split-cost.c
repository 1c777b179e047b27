/*
 * The bench's measure of where segmentation belongs (npm run bench): the time of
 * gso_split (src/native/offload.h) on a 64 KB IPv4 TCP super-packet at MSS 1408, and of
 * gro_coalesce joining the 47 packets back, and of the checksum pass alone, in C.
 * scripts/bench.ts times the same checksum pass in TypeScript next to it. Prints
 * "split_ns checksum_ns segments coalesce_ns".
 */
#include "../../src/native/offload.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  static uint8_t pkt[65535], out[65535 + GSO_MAX_SEGS * GSO_MAX_HDR];
  static int32_t offs[GSO_MAX_SEGS], lens[GSO_MAX_SEGS];
  int n = argc > 1 ? atoi(argv[1]) : 20000;
  for (size_t i = 0; i < sizeof pkt; i++) pkt[i] = (uint8_t)(i * 131 + 7);
  memset(pkt, 0, 52);
  pkt[0] = 0x45;
  wr16(pkt + 2, sizeof pkt);
  pkt[8] = 64;
  pkt[9] = 6;
  pkt[20 + 12] = 8 << 4; /* 32-byte TCP header: timestamps */
  pkt[20 + 13] = 0x18;
  vnet_hdr h = {VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, 52, 1408, 20, 16};
  long segs = 0;
  double t = now();
  for (int i = 0; i < n; i++) segs += gso_split(&h, pkt, sizeof pkt, out, sizeof out, offs, lens, GSO_MAX_SEGS);
  double split = (now() - t) / n;
  uint32_t acc = 0;
  t = now();
  for (int i = 0; i < n; i++) acc += csum_add(0, pkt, sizeof pkt);
  double sum = (now() - t) / n;
  /* Joining edits the first packet's headers in place: put them back before each round. */
  static gro_pkt in[GSO_MAX_SEGS];
  static gro_out outs[GSO_MAX_SEGS];
  int k = gso_split(&h, pkt, sizeof pkt, out, sizeof out, offs, lens, GSO_MAX_SEGS);
  uint8_t head[GSO_MAX_HDR];
  memcpy(head, out, 52);
  uint32_t joined = 0;
  t = now();
  for (int i = 0; i < n; i++) {
    memcpy(out, head, 52);
    for (int j = 0; j < k; j++) {
      in[j].p = out + offs[j];
      in[j].len = (size_t)lens[j];
    }
    joined += gro_coalesce(in, (uint32_t)k, outs, false);
  }
  double join = (now() - t) / n;
  printf("%.0f %.0f %ld %.0f %u\n", split * 1e9, sum * 1e9, segs / n, join * 1e9, (acc + joined) & 1);
  return 0;
}
