/*
 * The bench's baseline (npm run bench, scenario "relay"): a minimal TUN <-> UDP relay,
 * one of a pair, with the batching a user-space tunnel gets without kernel offloads:
 * up to 64 TUN reads then one sendmmsg, one recvmmsg of up to 64 then a write each.
 * Every datagram carries a 10-byte header (the size of the softwire's L2TP+PPP header)
 * so that the relay moves the same bytes per packet as the agent. No protocol, no
 * checks: the upper bound of "one packet per system call", which the data path's
 * offloads are measured against.
 *
 *   relay TUN-NAME LOCAL-IPV4 LOCAL-PORT PEER-IPV4 PEER-PORT
 *
 * Built by scripts/bench.ts with the system C compiler; runs until killed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

enum { BATCH = 64, SLOT = 2048, HDR = 10 };

static unsigned char tx[BATCH][SLOT], rx[BATCH][SLOT + HDR], hdr[HDR] = {0x00, 0x02, 0, 1, 0, 1, 0xff, 0x03, 0x00, 0x21};

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: relay TUN-NAME LOCAL-IPV4 LOCAL-PORT PEER-IPV4 PEER-PORT\n");
    return 2;
  }
  int tun = open("/dev/net/tun", O_RDWR | O_NONBLOCK);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
  if (tun < 0 || ioctl(tun, TUNSETIFF, &ifr) < 0) {
    perror("tun");
    return 1;
  }
  int udp = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  int buf = 4 << 20;
  setsockopt(udp, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf);
  setsockopt(udp, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof buf);
  struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[3]))};
  struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[5]))};
  inet_pton(AF_INET, argv[2], &me.sin_addr);
  inet_pton(AF_INET, argv[4], &peer.sin_addr);
  if (bind(udp, (struct sockaddr *)&me, sizeof me) < 0 || connect(udp, (struct sockaddr *)&peer, sizeof peer) < 0) {
    perror("udp");
    return 1;
  }
  printf("ready\n");
  fflush(stdout);
  struct mmsghdr out[BATCH], in[BATCH];
  struct iovec oiov[BATCH][2], iiov[BATCH];
  for (int i = 0; i < BATCH; i++) {
    iiov[i].iov_base = rx[i];
    iiov[i].iov_len = sizeof rx[i];
  }
  struct pollfd pf[2] = {{tun, POLLIN, 0}, {udp, POLLIN, 0}};
  for (;;) {
    if (poll(pf, 2, -1) < 0) continue;
    if (pf[0].revents & POLLIN) {
      int n = 0;
      for (; n < BATCH; n++) {
        ssize_t r = read(tun, tx[n], SLOT);
        if (r <= 0) break;
        oiov[n][0].iov_base = hdr;
        oiov[n][0].iov_len = HDR;
        oiov[n][1].iov_base = tx[n];
        oiov[n][1].iov_len = (size_t)r;
        memset(&out[n].msg_hdr, 0, sizeof out[n].msg_hdr);
        out[n].msg_hdr.msg_iov = oiov[n];
        out[n].msg_hdr.msg_iovlen = 2;
      }
      if (n > 0) sendmmsg(udp, out, (unsigned)n, 0);
    }
    if (pf[1].revents & POLLIN) {
      for (int i = 0; i < BATCH; i++) {
        memset(&in[i].msg_hdr, 0, sizeof in[i].msg_hdr);
        in[i].msg_hdr.msg_iov = &iiov[i];
        in[i].msg_hdr.msg_iovlen = 1;
      }
      int n = recvmmsg(udp, in, BATCH, MSG_DONTWAIT, NULL);
      for (int i = 0; i < n; i++)
        if (in[i].msg_len > HDR && write(tun, rx[i] + HDR, in[i].msg_len - HDR) < 0) {
          /* a full TUN queue drops the packet, as a tunnel would */
        }
    }
  }
}
