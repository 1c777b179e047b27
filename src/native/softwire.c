/*
 * softwire's native addon: the two kernel interfaces Node cannot reach by itself.
 *
 *   - TUN devices (IFF_TUN | IFF_NO_PI): the agent's side of the softwire.
 *   - Raw ICMPv6 sockets bound to one interface: Router Solicitations and
 *     Advertisements must be sent with hop limit 255 and RS arrive on ff02::2.
 *   - The tunnel's UDP socket with recvmmsg/sendmmsg: the data path sends a header
 *     template plus a payload straight from the TUN ring, and writes decapsulated
 *     packets to the TUN straight from the UDP ring (src/dataplane).
 *
 * Both are a "channel": a non-blocking fd watched by uv_poll on Node's own loop, so
 * a wake-up costs no thread-pool hop. A wake-up drains up to `batch` packets into a
 * ring that JS allocated once (a Buffer of batch * slot bytes plus an Int32Array of
 * per-slot metadata) and calls the JS callback once with the count. Nothing is
 * allocated per packet; the price is that the ring is overwritten by the next
 * wake-up, so JS views into it are only valid during the callback.
 *
 * Errors are JS Errors with `code` ('EAGAIN', ...), `errno` (negative, as in Node's
 * own system errors) and a message naming the operation. EAGAIN on a write is not an
 * error for a packet pump, so writes return how many packets went out instead.
 */
#include <node_api.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "offload.h"
#include "rxdata.h"

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
/* Newer than some libc headers (Linux 6.2). */
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif

/* Per-slot metadata layout, mirrored in addon.ts. */
/* [bytes, ifindex, hop limit (-1 unknown), flags, offset of the bytes in the ring]. With
 * offloads one read may yield many packets, packed in the ring, hence the offset. */
#define META_STRIDE 5
#define ADDR_STRIDE 32 /* [source address, destination address] for ICMPv6 */
#define FLAG_TRUNCATED 1

enum kind { KIND_TUN = 1, KIND_ICMP6 = 2, KIND_UDP = 3 };

/* Lets us refuse objects that merely look like our handles (napi_unwrap would not). */
static const napi_type_tag channel_tag = {0x736f667477697265ULL, 0x6368616e6e656c31ULL};

typedef struct {
  napi_env env;
  int kind;
  int fd; /* -1 once closed */
  int ifindex;
  /* Allocated apart from the channel: uv_close finishes on a later loop turn, when
   * the JS object (and with it this struct) may already be gone. */
  uv_poll_t *poll;
  napi_ref self;     /* held strong while reading: an active reader must not be collected */
  napi_ref on_read;  /* JS callback while reading */
  napi_async_context async;
  bool reading;
  bool self_held;
  bool dispatching; /* inside the JS callback, which may close or pause us */
  uint32_t batch, slot;
  uint8_t *ring;
  int32_t *meta;
  uint8_t *addrs;
  /* UDP only: where the data fast path sends (set by JS, which owns the peer choice). */
  struct sockaddr_storage peer;
  socklen_t peer_len;
  /* Offloads (issue 17). entries = metadata slots (batch * segments a read may yield). */
  uint32_t entries;
  bool vnet;           /* TUN: IFF_VNET_HDR; every read and write carries a virtio-net header */
  uint32_t tun_offload; /* TUN: the TUNSETOFFLOAD bits the kernel took */
  bool gso, gro;       /* UDP: UDP_SEGMENT on send, UDP_GRO on receive */
  uint32_t gso_max;    /* UDP: datagrams per GSO train */
  bool coalesce;       /* TUN: join TCP segments on write (off after the kernel refused one) */
  uint8_t *scratch;    /* TUN with vnet: one read, before it is cut into the ring */
  bool pending;        /* scratch holds a read that did not fit the ring yet */
  size_t pending_len;
  double *stats;       /* STAT_* counters, a Float64Array in JS */
} channel;

/* Offload counters (mirrored in addon.ts). */
enum {
  STAT_SUPER_IN,      /* TUN reads that were GSO super-packets */
  STAT_SEGMENTS_OUT,  /* packets cut from them */
  STAT_SPLIT_DROPS,   /* reads that could not be cut (bad header, unsupported type) */
  STAT_GRO_TRAINS,    /* UDP receives that returned more than one datagram */
  STAT_GRO_DATAGRAMS, /* datagrams in them */
  STAT_JOINED_OUT,    /* super-packets written to the TUN */
  STAT_JOINED_SEGS,   /* segments joined into them */
  STAT_GSO_TRAINS,    /* UDP sends of more than one datagram */
  STAT_GSO_DATAGRAMS, /* datagrams in them */
  STAT_GRO_DROPS,     /* UDP: datagrams of a train beyond the metadata slots */
  STAT_COUNT
};

/* ---- errors ------------------------------------------------------------------ */

static napi_value sys_error(napi_env env, int err, const char *fmt, ...) {
  char name[48], what[160], msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  /* libuv knows the names Node uses for codes, but not every errno (EBADFD); libc knows all texts. */
  uv_err_name_r(-err, name, sizeof name);
  if (strncmp(name, "Unknown", 7) == 0) snprintf(name, sizeof name, "UNKNOWN");
  snprintf(msg, sizeof msg, "%s: %s (%s)", what, strerror(err), name);
  napi_value code, message, error, num;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, code, message, &error);
  napi_create_int32(env, -err, &num);
  napi_set_named_property(env, error, "errno", num);
  return error;
}

/* Throws; returns NULL so that callbacks can `return THROW_SYS(...)`. */
static napi_value throw_value(napi_env env, napi_value error) {
  napi_throw(env, error);
  return NULL;
}
#define THROW_SYS(env, err, ...) throw_value((env), sys_error((env), (err), __VA_ARGS__))

static napi_value type_error(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

/* N-API calls fail only on misuse or a pending exception; surface whichever applies. */
static void throw_napi(napi_env env, const char *call) {
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  const char *msg = info && info->error_message ? info->error_message : "failed";
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) {
    char buf[256];
    snprintf(buf, sizeof buf, "softwire addon: %s: %s", call, msg);
    napi_throw_error(env, NULL, buf);
  }
}

#define NAPI(call)                \
  do {                            \
    if ((call) != napi_ok) {      \
      throw_napi(env, #call);     \
      return NULL;                \
    }                             \
  } while (0)

/* ---- argument helpers ------------------------------------------------------ */

static bool get_u32(napi_env env, napi_value v, uint32_t lo, uint32_t hi, uint32_t *out, const char *msg) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number || napi_get_value_uint32(env, v, out) != napi_ok ||
      *out < lo || *out > hi) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return false;
  }
  return true;
}

/* Copies a JS string into buf; `len` gets its full UTF-8 length so callers can reject overlong input. */
static bool get_string(napi_env env, napi_value v, char *buf, size_t cap, size_t *len, const char *msg) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string ||
      napi_get_value_string_utf8(env, v, NULL, 0, len) != napi_ok ||
      napi_get_value_string_utf8(env, v, buf, cap, NULL) != napi_ok) {
    type_error(env, msg);
    return false;
  }
  return true;
}

static bool get_bytes(napi_env env, napi_value v, const uint8_t **data, size_t *len) {
  bool is_ta = false;
  napi_typedarray_type type;
  void *p = NULL;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, v, &type, len, &p, NULL, NULL) != napi_ok || type != napi_uint8_array)
    return false;
  *data = p;
  return true;
}

static bool get_in6(napi_env env, napi_value v, struct in6_addr *out, const char *op) {
  char buf[INET6_ADDRSTRLEN + 1];
  size_t len = 0;
  if (!get_string(env, v, buf, sizeof buf, &len, "IPv6 address must be a string")) return false;
  if (len >= sizeof buf || inet_pton(AF_INET6, buf, out) != 1) {
    THROW_SYS(env, EINVAL, "%s: '%s' is not an IPv6 address", op, buf);
    return false;
  }
  return true;
}

static channel *get_channel(napi_env env, napi_value v, int kind, bool need_open, const char *op) {
  bool tagged = false;
  channel *ch = NULL;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_object ||
      napi_check_object_type_tag(env, v, &channel_tag, &tagged) != napi_ok || !tagged ||
      napi_unwrap(env, v, (void **)&ch) != napi_ok || (kind && ch->kind != kind)) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s: expected a %s handle", op,
             kind == KIND_TUN ? "TUN" : kind == KIND_UDP ? "UDP" : kind ? "ICMPv6" : "softwire");
    type_error(env, msg);
    return NULL;
  }
  if (need_open && ch->fd < 0) {
    THROW_SYS(env, EBADF, "%s: handle is closed", op);
    return NULL;
  }
  return ch;
}

/* ---- channel lifetime -------------------------------------------------------- */

static void free_poll(uv_handle_t *h) { free(h); }

/* Drops what keeps a paused or closed channel alive; deferred while JS is inside our callback. */
static void settle(napi_env env, channel *ch) {
  if (ch->dispatching) return;
  if (!ch->reading && ch->self_held) {
    napi_reference_unref(env, ch->self, NULL);
    ch->self_held = false;
  }
  if (ch->fd < 0 && ch->async) {
    napi_async_destroy(env, ch->async);
    ch->async = NULL;
  }
}

static void free_scratch(channel *ch) {
  free(ch->scratch);
  ch->scratch = NULL;
}

static void stop_reading(napi_env env, channel *ch) {
  if (ch->poll) uv_poll_stop(ch->poll);
  ch->reading = false;
  if (ch->on_read) {
    napi_delete_reference(env, ch->on_read);
    ch->on_read = NULL;
  }
}

static void shutdown_channel(napi_env env, channel *ch) {
  stop_reading(env, ch);
  if (ch->poll) {
    ch->poll->data = NULL;
    uv_close((uv_handle_t *)ch->poll, free_poll);
    ch->poll = NULL;
  }
  /* Only after uv_close: libuv must stop watching an fd before it is closed. */
  if (ch->fd >= 0) {
    close(ch->fd);
    ch->fd = -1;
  }
  settle(env, ch);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  channel *ch = data;
  shutdown_channel(env, ch);
  if (ch->self) napi_delete_reference(env, ch->self);
  free_scratch(ch);
  free(ch);
}

static void on_readable(uv_poll_t *p, int status, int events);

/* Wraps an open fd in a JS handle; from napi_wrap on, the finalizer owns the fd. */
static napi_value new_channel(napi_env env, int kind, int fd, int ifindex, uint32_t batch, uint32_t slot,
                              uint32_t entries) {
  channel *ch = calloc(1, sizeof *ch);
  if (!ch) {
    close(fd);
    return THROW_SYS(env, ENOMEM, "allocating a channel");
  }
  ch->env = env;
  ch->kind = kind;
  ch->fd = fd;
  ch->ifindex = ifindex;
  ch->batch = batch;
  ch->slot = slot;
  ch->entries = entries;

  napi_value obj, ring, meta_ab, meta, addrs, name, v_fd, v_ifindex, v_batch, v_slot, stats_ab, stats;
  if (napi_create_object(env, &obj) != napi_ok ||
      napi_wrap(env, obj, ch, finalize, NULL, &ch->self) != napi_ok) {
    close(fd);
    free(ch);
    throw_napi(env, "napi_wrap");
    return NULL;
  }
  NAPI(napi_type_tag_object(env, obj, &channel_tag));
  NAPI(napi_create_buffer(env, (size_t)batch * slot, (void **)&ch->ring, &ring));
  NAPI(napi_create_arraybuffer(env, (size_t)entries * META_STRIDE * sizeof(int32_t), (void **)&ch->meta, &meta_ab));
  NAPI(napi_create_typedarray(env, napi_int32_array, (size_t)entries * META_STRIDE, meta_ab, 0, &meta));
  NAPI(napi_create_buffer(env, kind != KIND_TUN ? (size_t)entries * ADDR_STRIDE : 0, (void **)&ch->addrs, &addrs));
  NAPI(napi_create_arraybuffer(env, STAT_COUNT * sizeof(double), (void **)&ch->stats, &stats_ab));
  NAPI(napi_create_typedarray(env, napi_float64_array, STAT_COUNT, stats_ab, 0, &stats));
  NAPI(napi_create_int32(env, fd, &v_fd));
  NAPI(napi_create_int32(env, ifindex, &v_ifindex));
  NAPI(napi_create_uint32(env, batch, &v_batch));
  NAPI(napi_create_uint32(env, slot, &v_slot));
  /* Read-only: C writes into these buffers, so JS must not be able to swap them out. */
  napi_property_descriptor props[] = {
      {"fd", NULL, NULL, NULL, NULL, v_fd, napi_enumerable, NULL},
      {"ifindex", NULL, NULL, NULL, NULL, v_ifindex, napi_enumerable, NULL},
      {"batch", NULL, NULL, NULL, NULL, v_batch, napi_enumerable, NULL},
      {"slotSize", NULL, NULL, NULL, NULL, v_slot, napi_enumerable, NULL},
      {"ring", NULL, NULL, NULL, NULL, ring, napi_enumerable, NULL},
      {"meta", NULL, NULL, NULL, NULL, meta, napi_enumerable, NULL},
      {"addrs", NULL, NULL, NULL, NULL, addrs, napi_enumerable, NULL},
      {"stats", NULL, NULL, NULL, NULL, stats, napi_enumerable, NULL},
  };
  NAPI(napi_define_properties(env, obj, sizeof props / sizeof props[0], props));

  NAPI(napi_create_string_utf8(env, kind == KIND_TUN ? "softwire:tun" : kind == KIND_UDP ? "softwire:udp" : "softwire:icmp6", NAPI_AUTO_LENGTH, &name));
  NAPI(napi_async_init(env, obj, name, &ch->async));

  uv_loop_t *loop;
  NAPI(napi_get_uv_event_loop(env, &loop));
  ch->poll = malloc(sizeof *ch->poll);
  if (!ch->poll) return THROW_SYS(env, ENOMEM, "allocating a poll handle");
  int rc = uv_poll_init(loop, ch->poll, fd);
  if (rc < 0) {
    free(ch->poll);
    ch->poll = NULL;
    return THROW_SYS(env, -rc, "uv_poll_init(fd %d)", fd);
  }
  ch->poll->data = ch;
  return obj;
}

/* ---- reading ----------------------------------------------------------------- */

static int32_t *slot_meta(channel *ch, uint32_t i) { return ch->meta + (size_t)i * META_STRIDE; }

/* The largest read from a TUN with a virtio-net header: header plus a 64 KB super-packet. */
#define VNET_READ_MAX (VNET_HDR_LEN + 65535)
/* What a vnet TUN ring must hold so that any one read fits it when empty. */
#define VNET_RING_MIN (65535 + (size_t)GSO_MAX_SEGS * GSO_MAX_HDR)

static uint32_t read_tun_plain(channel *ch, int *err) {
  uint32_t n = 0;
  while (n < ch->batch) {
    ssize_t r = read(ch->fd, ch->ring + (size_t)n * ch->slot, ch->slot);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) *err = errno;
      break;
    }
    int32_t *m = slot_meta(ch, n);
    /* TUN reports the full packet length even when it only copied `slot` bytes. */
    m[0] = r > (ssize_t)ch->slot ? (int32_t)ch->slot : (int32_t)r;
    m[1] = ch->ifindex;
    m[2] = -1;
    m[3] = r > (ssize_t)ch->slot ? FLAG_TRUNCATED : 0;
    m[4] = (int32_t)((size_t)n * ch->slot);
    n++;
  }
  return n;
}

/*
 * With IFF_VNET_HDR: each read goes to scratch and is cut (gso_split) into the ring,
 * packed, one metadata entry per packet. A read that no longer fits stays pending for
 * the next round (on_readable runs rounds until none is pending); `more` false
 * processes only the pending one, so that a round always ends.
 */
static uint32_t read_tun_vnet(channel *ch, int *err, bool more) {
  uint32_t n = 0;
  size_t pos = 0, cap = (size_t)ch->batch * ch->slot;
  int32_t offs[GSO_MAX_SEGS], lens[GSO_MAX_SEGS];
  for (;;) {
    if (!ch->pending) {
      if (!more) break;
      ssize_t r = read(ch->fd, ch->scratch, VNET_READ_MAX);
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) *err = errno;
        break;
      }
      if (r <= VNET_HDR_LEN) {
        ch->stats[STAT_SPLIT_DROPS]++;
        continue;
      }
      ch->pending = true;
      ch->pending_len = (size_t)r;
    }
    vnet_hdr h;
    memcpy(&h, ch->scratch, sizeof h);
    uint32_t room = ch->entries - n < GSO_MAX_SEGS ? ch->entries - n : GSO_MAX_SEGS;
    int k = gso_split(&h, ch->scratch + VNET_HDR_LEN, ch->pending_len - VNET_HDR_LEN, ch->ring + pos, cap - pos, offs,
                      lens, (int)room);
    if (k == SPLIT_NO_ROOM && n > 0) break; /* the next round starts with an empty ring */
    ch->pending = false;
    if (k < 0) {
      ch->stats[STAT_SPLIT_DROPS]++;
      continue;
    }
    if (h.gso_type != VNET_GSO_NONE) {
      ch->stats[STAT_SUPER_IN]++;
      ch->stats[STAT_SEGMENTS_OUT] += k;
    }
    size_t used = 0;
    for (int i = 0; i < k; i++) {
      int32_t *m = slot_meta(ch, n++);
      m[0] = lens[i];
      m[1] = ch->ifindex;
      m[2] = -1;
      m[3] = 0;
      m[4] = (int32_t)(pos + (size_t)offs[i]);
      used = (size_t)offs[i] + (size_t)lens[i];
    }
    pos += used;
    if (n == ch->entries) break;
  }
  return n;
}

static uint32_t read_tun(channel *ch, int *err, bool more) {
  return ch->vnet ? read_tun_vnet(ch, err, more) : read_tun_plain(ch, err);
}

static uint32_t read_icmp6(channel *ch, int *err) {
  uint32_t n = 0;
  while (n < ch->batch) {
    struct sockaddr_in6 from;
    union {
      char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(int))];
      struct cmsghdr align;
    } ctl;
    struct iovec iov = {ch->ring + (size_t)n * ch->slot, ch->slot};
    struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    ssize_t r = recvmsg(ch->fd, &mh, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) *err = errno;
      break;
    }
    int32_t *m = slot_meta(ch, n);
    uint8_t *a = ch->addrs + (size_t)n * ADDR_STRIDE;
    m[0] = (int32_t)r;
    m[1] = (int32_t)from.sin6_scope_id;
    m[2] = -1;
    m[3] = (mh.msg_flags & MSG_TRUNC) ? FLAG_TRUNCATED : 0;
    m[4] = (int32_t)((size_t)n * ch->slot);
    memcpy(a, &from.sin6_addr, 16);
    memset(a + 16, 0, 16);
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level != IPPROTO_IPV6) continue;
      if (c->cmsg_type == IPV6_PKTINFO) {
        struct in6_pktinfo pi;
        memcpy(&pi, CMSG_DATA(c), sizeof pi);
        memcpy(a + 16, &pi.ipi6_addr, 16);
        m[1] = (int32_t)pi.ipi6_ifindex;
      } else if (c->cmsg_type == IPV6_HOPLIMIT) {
        memcpy(&m[2], CMSG_DATA(c), sizeof(int));
      }
    }
    n++;
  }
  return n;
}

/*
 * UDP (the L2TP tunnel): one recvmmsg per wake-up. Entry metadata is
 * [length, source port, source family (4|6), flags, offset]; addrs holds the source
 * address (IPv4 in its first 4 bytes). With UDP_GRO a message may be a train of
 * datagrams of gso_size bytes (the last may be shorter): each gets its own entry, in
 * order, pointing into the message where it lies. The JS side decides what is control
 * and what is data.
 */
static uint32_t read_udp(channel *ch, int *err) {
  enum { MAXB = 256 };
  struct mmsghdr msgs[MAXB];
  struct iovec iovs[MAXB];
  struct sockaddr_storage from[MAXB];
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl[MAXB];
  uint32_t want = ch->batch < MAXB ? ch->batch : MAXB;
  for (uint32_t i = 0; i < want; i++) {
    iovs[i].iov_base = ch->ring + (size_t)i * ch->slot;
    iovs[i].iov_len = ch->slot;
    memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
    msgs[i].msg_hdr.msg_name = &from[i];
    msgs[i].msg_hdr.msg_namelen = sizeof from[i];
    msgs[i].msg_hdr.msg_iov = &iovs[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    if (ch->gro) {
      msgs[i].msg_hdr.msg_control = ctl[i].buf;
      msgs[i].msg_hdr.msg_controllen = sizeof ctl[i].buf;
    }
  }
  int r;
  do {
    r = recvmmsg(ch->fd, msgs, want, MSG_DONTWAIT, NULL);
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    /* ICMP errors (port unreachable) surface as ECONNREFUSED on a later read: not fatal. */
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNREFUSED && errno != EHOSTUNREACH &&
        errno != ENETUNREACH)
      *err = errno;
    return 0;
  }
  uint32_t n = 0;
  for (int i = 0; i < r; i++) {
    size_t len = msgs[i].msg_len, seg = len;
    if (ch->gro) {
      struct msghdr *mh = &msgs[i].msg_hdr;
      for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
          int g;
          memcpy(&g, CMSG_DATA(c), sizeof g);
          if (g > 0 && (size_t)g < len) seg = (size_t)g;
        }
      }
    }
    if (seg < len) {
      ch->stats[STAT_GRO_TRAINS]++;
      ch->stats[STAT_GRO_DATAGRAMS] += (double)((len + seg - 1) / seg);
    }
    int32_t flags = (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) ? FLAG_TRUNCATED : 0;
    for (size_t at = 0; at < len || (len == 0 && at == 0); at += seg) {
      if (n == ch->entries) {
        ch->stats[STAT_GRO_DROPS]++;
        break;
      }
      int32_t *m = slot_meta(ch, n);
      uint8_t *a = ch->addrs + (size_t)n * ADDR_STRIDE;
      m[0] = (int32_t)(len - at < seg ? len - at : seg);
      m[3] = flags;
      m[4] = (int32_t)((size_t)i * ch->slot + at);
      memset(a, 0, 16);
      if (from[i].ss_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&from[i];
        memcpy(a, &s6->sin6_addr, 16);
        m[1] = ntohs(s6->sin6_port);
        m[2] = 6;
      } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&from[i];
        memcpy(a, &s4->sin_addr, 4);
        m[1] = ntohs(s4->sin_port);
        m[2] = 4;
      }
      n++;
      if (len == 0) break;
    }
  }
  return n;
}

static void dispatch(napi_env env, channel *ch, uint32_t n, int err) {
  napi_value cb, recv, argv[2], result;
  if (napi_get_reference_value(env, ch->on_read, &cb) != napi_ok || !cb) return;
  napi_get_global(env, &recv); /* make_callback needs an object receiver */
  napi_create_uint32(env, n, &argv[0]);
  if (err) {
    argv[1] = sys_error(env, err, "%s read", ch->kind == KIND_TUN ? "TUN" : ch->kind == KIND_UDP ? "UDP" : "ICMPv6");
    /* A persistent error would wake us forever; JS decides whether to resume. */
    stop_reading(env, ch);
  } else {
    napi_get_undefined(env, &argv[1]);
  }
  ch->dispatching = true;
  /* make_callback, not call_function: it runs the microtask and nextTick queues afterwards. */
  napi_status s = napi_make_callback(env, ch->async, recv, cb, 2, argv, &result);
  ch->dispatching = false;
  if (s == napi_pending_exception) {
    napi_value ex;
    napi_get_and_clear_last_exception(env, &ex);
    napi_fatal_exception(env, ex);
  }
  settle(env, ch);
}

static void on_readable(uv_poll_t *p, int status, int events) {
  (void)events;
  channel *ch = p->data;
  if (!ch || !ch->reading) return;
  napi_env env = ch->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  int err = status < 0 ? -status : 0;
  uint32_t n = 0;
  if (!err)
    n = ch->kind == KIND_TUN ? read_tun(ch, &err, true) : ch->kind == KIND_UDP ? read_udp(ch, &err) : read_icmp6(ch, &err);
  if (n || err) dispatch(env, ch, n, err);
  /* A TUN read that did not fit the ring is already out of the kernel: deliver it now,
   * in further rounds; the last round reads nothing new, so this ends. */
  for (int round = 0; ch->kind == KIND_TUN && ch->pending && ch->reading && ch->fd >= 0; round++) {
    err = 0;
    n = read_tun(ch, &err, round < 8);
    if (n || err) dispatch(env, ch, n, err);
  }
  napi_close_handle_scope(env, scope);
}

/* readStart(handle, callback(count, error?)) */
static napi_value js_read_start(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_valuetype t;
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  channel *ch = get_channel(env, argv[0], 0, true, "readStart");
  if (!ch) return NULL;
  if (argc < 2 || napi_typeof(env, argv[1], &t) != napi_ok || t != napi_function)
    return type_error(env, "readStart: callback must be a function");
  if (ch->on_read) napi_delete_reference(env, ch->on_read);
  ch->on_read = NULL;
  NAPI(napi_create_reference(env, argv[1], 1, &ch->on_read));
  int rc = uv_poll_start(ch->poll, UV_READABLE, on_readable);
  if (rc < 0) return THROW_SYS(env, -rc, "readStart: uv_poll_start");
  ch->reading = true;
  if (!ch->self_held) {
    NAPI(napi_reference_ref(env, ch->self, NULL));
    ch->self_held = true;
  }
  return NULL;
}

/* readStop(handle): pauses; packets queue in the kernel until readStart. */
static napi_value js_read_stop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  channel *ch = get_channel(env, argv[0], 0, false, "readStop");
  if (!ch) return NULL;
  stop_reading(env, ch);
  settle(env, ch);
  return NULL;
}

/* setRef(handle, bool): an unref'd channel does not keep the process alive. */
static napi_value js_set_ref(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  bool on = true;
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  channel *ch = get_channel(env, argv[0], 0, true, "setRef");
  if (!ch) return NULL;
  if (argc > 1) NAPI(napi_get_value_bool(env, argv[1], &on));
  if (on)
    uv_ref((uv_handle_t *)ch->poll);
  else
    uv_unref((uv_handle_t *)ch->poll);
  return NULL;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  channel *ch = get_channel(env, argv[0], 0, false, "close");
  if (ch) shutdown_channel(env, ch);
  return NULL;
}

/* ---- TUN ----------------------------------------------------------------------- */

/*
 * SOFTWIRE_OFFLOADS_OFF=name,... (names as offloads() gives them) switches single
 * offloads off in a process that asked for them: for measuring what each one costs or
 * gains (docs/PERFORMANCE.md), without a rebuild or a config key per offload.
 */
static bool offload_vetoed(const char *name) {
  const char *list = getenv("SOFTWIRE_OFFLOADS_OFF");
  size_t n = strlen(name);
  for (const char *p = list; p && *p;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == n && memcmp(p, name, n) == 0) return true;
    p = end ? end + 1 : NULL;
  }
  return false;
}

/*
 * TUNSETOFFLOAD with what this kernel has: checksum, TSO and (Linux 6.2+) USO; older
 * kernels refuse unknown bits with EINVAL, so ask again with fewer. Returns the bits taken.
 */
static uint32_t tun_set_offload(int fd) {
  static const uint32_t tries[] = {
      TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_USO4 | TUN_F_USO6,
      TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN,
      TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6,
      TUN_F_CSUM,
  };
  for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++)
    if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)tries[i]) == 0) return tries[i];
  return 0;
}

/*
 * tunOpen(name, batch, slotSize, offload?): '' lets the kernel pick tunN. With offload
 * the device gets IFF_VNET_HDR and TUNSETOFFLOAD; the ring (batch * slotSize bytes, batch
 * entries) must then hold one cut 64 KB super-packet. If the kernel refuses, the device
 * is opened as before (the handle's offloads() says which).
 */
#define PLAIN_FALLBACK_BATCH 64
#define PLAIN_FALLBACK_SLOT 4096
static napi_value js_tun_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  char name[IFNAMSIZ];
  size_t len = 0;
  uint32_t batch, slot;
  bool offload = false;
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) return type_error(env, "tunOpen(name, batch, slotSize, offload?)");
  if (argc > 3) {
    napi_valuetype t;
    NAPI(napi_typeof(env, argv[3], &t));
    if (t == napi_boolean) NAPI(napi_get_value_bool(env, argv[3], &offload));
  }
  if (!get_string(env, argv[0], name, sizeof name, &len, "tunOpen: name must be a string")) return NULL;
  if (len >= IFNAMSIZ) return THROW_SYS(env, EINVAL, "tunOpen(%s...): interface name longer than %d bytes", name, IFNAMSIZ - 1);
  if (!get_u32(env, argv[1], 1, 4096, &batch, "tunOpen: batch must be 1..4096")) return NULL;
  if (!get_u32(env, argv[2], 64, 65536 + 64, &slot, "tunOpen: slotSize must be 64..65600")) return NULL;

  bool asked = offload;
  if (offload && ((size_t)batch * slot < VNET_RING_MIN || batch < GSO_MAX_SEGS || offload_vetoed("vnet-hdr"))) offload = false;

  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return THROW_SYS(env, errno, "tunOpen(%s): open /dev/net/tun", name);
  struct ifreq ifr;
  uint32_t taken = 0;
  bool vnet = false;
  if (offload) {
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR;
    memcpy(ifr.ifr_name, name, len);
    int hdrsz = VNET_HDR_LEN;
    if (ioctl(fd, TUNSETIFF, &ifr) == 0 && ioctl(fd, TUNSETVNETHDRSZ, &hdrsz) == 0) {
      vnet = true;
      taken = tun_set_offload(fd);
    } else {
      /* Fall back to the plain device on a fresh fd (TUNSETIFF binds the fd once). */
      close(fd);
      fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
      if (fd < 0) return THROW_SYS(env, errno, "tunOpen(%s): open /dev/net/tun", name);
    }
  }
  if (!vnet) {
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    memcpy(ifr.ifr_name, name, len);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
      int e = errno;
      close(fd);
      return THROW_SYS(env, e, "tunOpen(%s): ioctl TUNSETIFF", name);
    }
  }
  /* A ring sized for cut super-packets has slots too small for whole packets: a plain
   * device (header refused or vetoed) gets the plain path's layout, or every packet
   * longer than a slot would be dropped as truncated. */
  if (asked && !vnet && slot < PLAIN_FALLBACK_SLOT) {
    batch = PLAIN_FALLBACK_BATCH;
    slot = PLAIN_FALLBACK_SLOT;
  }
  uint8_t *scratch = vnet ? malloc(VNET_READ_MAX) : NULL;
  if (vnet && !scratch) {
    close(fd);
    return THROW_SYS(env, ENOMEM, "tunOpen(%s): read buffer", name);
  }
  napi_value h = new_channel(env, KIND_TUN, fd, (int)if_nametoindex(ifr.ifr_name), batch, slot, batch);
  if (!h) {
    free(scratch);
    return NULL;
  }
  channel *ch = get_channel(env, h, KIND_TUN, true, "tunOpen");
  if (!ch) return NULL;
  ch->vnet = vnet;
  ch->tun_offload = taken;
  ch->coalesce = vnet && !offload_vetoed("tcp-coalesce");
  ch->scratch = scratch;
  napi_value actual;
  NAPI(napi_create_string_utf8(env, ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ), &actual));
  NAPI(napi_set_named_property(env, h, "name", actual));
  return h;
}

/* 1 if the packet went out, 0 on EAGAIN, -errno otherwise. */
static int write_iov(int fd, const struct iovec *iov, int n) {
  for (;;) {
    if (writev(fd, iov, n) >= 0) return 1;
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
  }
}

/* One plain packet; a vnet TUN gets an all-zero virtio-net header (no GSO, checksum done). */
static int write_packet(channel *ch, const uint8_t *data, size_t len) {
  static const uint8_t zero[VNET_HDR_LEN];
  struct iovec iov[2] = {{(void *)zero, VNET_HDR_LEN}, {(void *)data, len}};
  return ch->vnet ? write_iov(ch->fd, iov, 2) : write_iov(ch->fd, iov + 1, 1);
}

/* write(handle, packet) -> 1 written, 0 the kernel queue is full (EAGAIN). */
static napi_value js_write(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  const uint8_t *data;
  size_t len;
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  channel *ch = get_channel(env, argv[0], KIND_TUN, true, "write");
  if (!ch) return NULL;
  if (argc < 2 || !get_bytes(env, argv[1], &data, &len)) return type_error(env, "write: packet must be a Uint8Array");
  int r = write_packet(ch, data, len);
  if (r < 0) return THROW_SYS(env, -r, "write(%zu bytes) to TUN", len);
  NAPI(napi_create_uint32(env, (uint32_t)r, &out));
  return out;
}

/*
 * writeBatch(handle, packets[]) -> how many went out, in order; stops at EAGAIN.
 * Another error throws with `index` set to the failing packet (those before it went out).
 */
static napi_value js_write_batch(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  bool is_array = false;
  uint32_t count = 0, i;
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  channel *ch = get_channel(env, argv[0], KIND_TUN, true, "writeBatch");
  if (!ch) return NULL;
  if (argc < 2 || napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array)
    return type_error(env, "writeBatch: packets must be an array");
  NAPI(napi_get_array_length(env, argv[1], &count));
  for (i = 0; i < count; i++) {
    napi_value el;
    const uint8_t *data;
    size_t len;
    NAPI(napi_get_element(env, argv[1], i, &el));
    int r = get_bytes(env, el, &data, &len) ? write_packet(ch, data, len) : -EINVAL;
    if (r == 0) break;
    if (r < 0) {
      napi_value err = sys_error(env, -r, "writeBatch: packet %u of %u to TUN", i, count), idx;
      NAPI(napi_create_uint32(env, i, &idx));
      NAPI(napi_set_named_property(env, err, "index", idx));
      napi_throw(env, err);
      return NULL;
    }
  }
  NAPI(napi_create_uint32(env, i, &out));
  return out;
}

/* ---- ICMPv6 -------------------------------------------------------------------- */

/* icmp6Open(ifname, batch, slotSize, hopLimit) */
static napi_value js_icmp6_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  char name[IFNAMSIZ];
  size_t len = 0;
  uint32_t batch, slot, hops;
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return type_error(env, "icmp6Open(ifname, batch, slotSize, hopLimit)");
  if (!get_string(env, argv[0], name, sizeof name, &len, "icmp6Open: ifname must be a string")) return NULL;
  if (len >= IFNAMSIZ || len == 0) return THROW_SYS(env, EINVAL, "icmp6Open(%s): interface name must be 1..15 bytes", name);
  if (!get_u32(env, argv[1], 1, 4096, &batch, "icmp6Open: batch must be 1..4096")) return NULL;
  if (!get_u32(env, argv[2], 64, 65536, &slot, "icmp6Open: slotSize must be 64..65536")) return NULL;
  if (!get_u32(env, argv[3], 1, 255, &hops, "icmp6Open: hopLimit must be 1..255")) return NULL;

  int ifindex = (int)if_nametoindex(name);
  if (!ifindex) return THROW_SYS(env, errno, "icmp6Open(%s): if_nametoindex", name);
  int fd = socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMPV6);
  if (fd < 0) return THROW_SYS(env, errno, "icmp6Open(%s): socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6)", name);
  int on = 1, off = 0, hl = (int)hops;
  /* ND messages are only valid with hop limit 255 (RFC 4861 6.1), so both kinds of
   * sends use it; looped-back multicast would show us our own RAs. */
  struct {
    int level, opt;
    const void *val;
    socklen_t len;
    const char *what;
  } opts[] = {
      {SOL_SOCKET, SO_BINDTODEVICE, name, (socklen_t)len + 1, "SO_BINDTODEVICE"},
      {IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hl, sizeof hl, "IPV6_UNICAST_HOPS"},
      {IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hl, sizeof hl, "IPV6_MULTICAST_HOPS"},
      {IPPROTO_IPV6, IPV6_MULTICAST_IF, &ifindex, sizeof ifindex, "IPV6_MULTICAST_IF"},
      {IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &off, sizeof off, "IPV6_MULTICAST_LOOP"},
      {IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof on, "IPV6_RECVPKTINFO"},
      {IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &on, sizeof on, "IPV6_RECVHOPLIMIT"},
  };
  for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
    if (setsockopt(fd, opts[i].level, opts[i].opt, opts[i].val, opts[i].len) < 0) {
      int e = errno;
      close(fd);
      return THROW_SYS(env, e, "icmp6Open(%s): setsockopt %s", name, opts[i].what);
    }
  }
  return new_channel(env, KIND_ICMP6, fd, ifindex, batch, slot, batch);
}

/* icmp6Send(handle, message, address, scopeId) -> 1 sent, 0 EAGAIN. scopeId 0 = the bound interface. */
static napi_value js_icmp6_send(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], out;
  const uint8_t *data;
  size_t len;
  uint32_t scope = 0;
  char text[INET6_ADDRSTRLEN];
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  channel *ch = get_channel(env, argv[0], KIND_ICMP6, true, "icmp6Send");
  if (!ch) return NULL;
  if (argc < 4 || !get_bytes(env, argv[1], &data, &len)) return type_error(env, "icmp6Send: message must be a Uint8Array");
  struct sockaddr_in6 to;
  memset(&to, 0, sizeof to);
  to.sin6_family = AF_INET6;
  if (!get_in6(env, argv[2], &to.sin6_addr, "icmp6Send")) return NULL;
  if (!get_u32(env, argv[3], 0, UINT32_MAX, &scope, "icmp6Send: scopeId must be a uint32")) return NULL;
  to.sin6_scope_id = scope ? scope : (uint32_t)ch->ifindex;
  for (;;) {
    if (sendto(ch->fd, data, len, 0, (struct sockaddr *)&to, sizeof to) >= 0) {
      NAPI(napi_create_uint32(env, 1, &out));
      return out;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      NAPI(napi_create_uint32(env, 0, &out));
      return out;
    }
    int e = errno;
    inet_ntop(AF_INET6, &to.sin6_addr, text, sizeof text);
    return THROW_SYS(env, e, "icmp6Send(%s%%%u, %zu bytes)", text, to.sin6_scope_id, len);
  }
}

/* icmp6Membership(handle, group, join): joins or leaves a group on the bound interface. */
static napi_value js_icmp6_membership(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  bool join = true;
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  channel *ch = get_channel(env, argv[0], KIND_ICMP6, true, "icmp6Membership");
  if (!ch) return NULL;
  struct ipv6_mreq mr;
  memset(&mr, 0, sizeof mr);
  if (argc < 3 || !get_in6(env, argv[1], &mr.ipv6mr_multiaddr, "icmp6Membership")) return NULL;
  NAPI(napi_get_value_bool(env, argv[2], &join));
  mr.ipv6mr_interface = (unsigned)ch->ifindex;
  if (setsockopt(ch->fd, IPPROTO_IPV6, join ? IPV6_ADD_MEMBERSHIP : IPV6_DROP_MEMBERSHIP, &mr, sizeof mr) < 0) {
    char text[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &mr.ipv6mr_multiaddr, text, sizeof text);
    return THROW_SYS(env, errno, "icmp6Membership: %s %s", join ? "join" : "leave", text);
  }
  return NULL;
}

/* icmp6Filter(handle, types[] | null): the kernel drops other types before they wake us. */
static napi_value js_icmp6_filter(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_valuetype t = napi_null;
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  channel *ch = get_channel(env, argv[0], KIND_ICMP6, true, "icmp6Filter");
  if (!ch) return NULL;
  struct icmp6_filter f;
  if (argc > 1) NAPI(napi_typeof(env, argv[1], &t));
  if (t == napi_null || t == napi_undefined) {
    ICMP6_FILTER_SETPASSALL(&f);
  } else {
    bool is_array = false;
    uint32_t count = 0;
    if (napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array)
      return type_error(env, "icmp6Filter: types must be an array or null");
    NAPI(napi_get_array_length(env, argv[1], &count));
    ICMP6_FILTER_SETBLOCKALL(&f);
    for (uint32_t i = 0; i < count; i++) {
      napi_value el;
      uint32_t type;
      NAPI(napi_get_element(env, argv[1], i, &el));
      if (!get_u32(env, el, 0, 255, &type, "icmp6Filter: types must be 0..255")) return NULL;
      ICMP6_FILTER_SETPASS(type, &f);
    }
  }
  if (setsockopt(ch->fd, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof f) < 0)
    return THROW_SYS(env, errno, "icmp6Filter: setsockopt ICMP6_FILTER");
  return NULL;
}


/* ---- UDP (L2TP tunnel) --------------------------------------------------------- */

static bool get_sockaddr(napi_env env, napi_value addr, napi_value port, struct sockaddr_storage *ss, socklen_t *len,
                         const char *op) {
  char buf[INET6_ADDRSTRLEN + 1];
  size_t n = 0;
  uint32_t p = 0;
  if (!get_string(env, addr, buf, sizeof buf, &n, "address must be a string")) return false;
  if (!get_u32(env, port, 0, 65535, &p, "port must be 0..65535")) return false;
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
  if (n < sizeof buf && inet_pton(AF_INET, buf, &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)p);
    *len = sizeof *s4;
    return true;
  }
  if (n < sizeof buf && inet_pton(AF_INET6, buf, &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)p);
    *len = sizeof *s6;
    return true;
  }
  THROW_SYS(env, EINVAL, "%s: '%s' is not an IP address", op, buf);
  return false;
}

#define GSO_TRAIN_MAX 64        /* the kernel's UDP_MAX_SEGMENTS */
#define GSO_TRAIN_BYTES 65000   /* a train is one UDP datagram before the cut: < 64 KB */

/* Large socket buffers absorb the bursts a batch makes; FORCE works as root past rmem_max. */
static void grow_buffer(int fd, int opt_force, int opt, int bytes) {
  if (setsockopt(fd, SOL_SOCKET, opt_force, &bytes, sizeof bytes) < 0) setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes);
}

/*
 * udpOpen(bindAddress, port, batch, slotSize, bufferBytes, offload?): the family follows
 * the bind address. With offload, UDP_SEGMENT (send) and UDP_GRO (receive) are used where
 * the kernel has them; GRO needs 64 KB slots, so a smaller slotSize leaves it off.
 */
static napi_value js_udp_open(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  uint32_t batch, slot, bufbytes;
  bool offload = false;
  struct sockaddr_storage ss;
  socklen_t sslen;
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) return type_error(env, "udpOpen(bindAddress, port, batch, slotSize, bufferBytes, offload?)");
  if (argc > 5) {
    napi_valuetype t;
    NAPI(napi_typeof(env, argv[5], &t));
    if (t == napi_boolean) NAPI(napi_get_value_bool(env, argv[5], &offload));
  }
  if (!get_sockaddr(env, argv[0], argv[1], &ss, &sslen, "udpOpen")) return NULL;
  if (!get_u32(env, argv[2], 1, 256, &batch, "udpOpen: batch must be 1..256")) return NULL;
  if (!get_u32(env, argv[3], 64, 65536, &slot, "udpOpen: slotSize must be 64..65536")) return NULL;
  if (!get_u32(env, argv[4], 0, 1 << 28, &bufbytes, "udpOpen: bufferBytes out of range")) return NULL;
  int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return THROW_SYS(env, errno, "udpOpen: socket");
  if (bufbytes) {
    grow_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, (int)bufbytes);
    grow_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, (int)bufbytes);
  }
  if (bind(fd, (struct sockaddr *)&ss, sslen) < 0) {
    int e = errno;
    close(fd);
    return THROW_SYS(env, e, "udpOpen: bind");
  }
  int zero = 0, one = 1;
  bool gso = offload && !offload_vetoed("udp-gso") && setsockopt(fd, SOL_UDP, UDP_SEGMENT, &zero, sizeof zero) == 0;
  bool gro = offload && !offload_vetoed("udp-gro") && slot >= 65536 && setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one) == 0;
  /* A GRO train holds at most 64 datagrams (the kernel's UDP_GRO_CNT_MAX). */
  napi_value h = new_channel(env, KIND_UDP, fd, 0, batch, slot, gro ? batch * GRO_MAX_SEGS : batch);
  if (!h) return NULL;
  channel *ch = get_channel(env, h, KIND_UDP, true, "udpOpen");
  if (!ch) return NULL;
  ch->gso = gso;
  ch->gro = gro;
  /* SOFTWIRE_GSO_MAX=n caps the datagrams per train (measurement: the trains' effect on the SC). */
  const char *gm = getenv("SOFTWIRE_GSO_MAX");
  ch->gso_max = gm && atoi(gm) > 0 && atoi(gm) <= GSO_TRAIN_MAX ? (uint32_t)atoi(gm) : GSO_TRAIN_MAX;
  struct sockaddr_storage local;
  socklen_t ll = sizeof local;
  char text[INET6_ADDRSTRLEN] = "";
  uint32_t port = 0;
  if (getsockname(fd, (struct sockaddr *)&local, &ll) == 0) {
    if (local.ss_family == AF_INET6) {
      inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&local)->sin6_addr, text, sizeof text);
      port = ntohs(((struct sockaddr_in6 *)&local)->sin6_port);
    } else {
      inet_ntop(AF_INET, &((struct sockaddr_in *)&local)->sin_addr, text, sizeof text);
      port = ntohs(((struct sockaddr_in *)&local)->sin_port);
    }
  }
  napi_value v_addr, v_port;
  NAPI(napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &v_addr));
  NAPI(napi_create_uint32(env, port, &v_port));
  NAPI(napi_set_named_property(env, h, "localAddress", v_addr));
  NAPI(napi_set_named_property(env, h, "localPort", v_port));
  return h;
}

/* udpSetPeer(handle, address, port): the destination of udpSend and udpSendFrames. */
static napi_value js_udp_set_peer(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  channel *ch = get_channel(env, argv[0], KIND_UDP, true, "udpSetPeer");
  if (!ch) return NULL;
  if (argc < 3) return type_error(env, "udpSetPeer(handle, address, port)");
  struct sockaddr_storage ss;
  socklen_t len;
  if (!get_sockaddr(env, argv[1], argv[2], &ss, &len, "udpSetPeer")) return NULL;
  ch->peer = ss;
  ch->peer_len = len;
  return NULL;
}

static int send_errno_ok(int e) {
  /* A datagram lost to a full queue or an ICMP error is loss, which L2TP and TCP handle. */
  return e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS || e == ECONNREFUSED || e == EHOSTUNREACH ||
         e == ENETUNREACH || e == EMSGSIZE;
}

/* udpSend(handle, bytes) -> 1 sent, 0 dropped (full queue or transient error). */
static napi_value js_udp_send(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  const uint8_t *data;
  size_t len;
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  channel *ch = get_channel(env, argv[0], KIND_UDP, true, "udpSend");
  if (!ch) return NULL;
  if (argc < 2 || !get_bytes(env, argv[1], &data, &len)) return type_error(env, "udpSend: bytes must be a Uint8Array");
  if (!ch->peer_len) return THROW_SYS(env, EDESTADDRREQ, "udpSend: no peer set");
  int ok = 0;
  for (;;) {
    if (sendto(ch->fd, data, len, 0, (struct sockaddr *)&ch->peer, ch->peer_len) >= 0) {
      ok = 1;
      break;
    }
    if (errno == EINTR) continue;
    if (send_errno_ok(errno)) break;
    return THROW_SYS(env, errno, "udpSend(%zu bytes)", len);
  }
  NAPI(napi_create_uint32(env, (uint32_t)ok, &out));
  return out;
}

#define DESC_STRIDE 3 /* [offset in source buffer, length, header index] */

static bool get_desc(napi_env env, napi_value v, int32_t **desc, size_t *n) {
  bool is_ta = false;
  napi_typedarray_type type;
  void *p = NULL;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, v, &type, n, &p, NULL, NULL) != napi_ok || type != napi_int32_array)
    return false;
  *desc = p;
  return true;
}

/*
 * udpSendFrames(handle, headers, headerLen, source, desc, count) -> datagrams sent.
 * Datagram i is headers[desc[3i+2] * headerLen ...+headerLen] followed by
 * source[desc[3i] ...+desc[3i+1]]: the L2TP+PPP header is a per-session template, the
 * payload is sent from where it was read, so nothing is copied in JS. A full queue
 * ends the batch early; the caller counts the rest as dropped.
 *
 * With UDP_SEGMENT, a run of equal-sized datagrams (the last may be shorter) is one
 * message whose iovecs the kernel cuts at the datagram size: one trip through the
 * stack per train instead of per datagram. The kernel refuses GSO with EIO where the
 * route cannot take it; then GSO is switched off for the socket and the train resent.
 */
static int send_frames(channel *ch, const uint8_t *hdrs, uint32_t hlen, const uint8_t *src, const int32_t *desc,
                       uint32_t count, uint32_t *done_out);
static napi_value js_udp_send_frames(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6], out;
  const uint8_t *hdrs, *src;
  size_t hdrs_len, src_len, desc_len;
  int32_t *desc;
  uint32_t hlen, count;
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  channel *ch = get_channel(env, argv[0], KIND_UDP, true, "udpSendFrames");
  if (!ch) return NULL;
  if (argc < 6 || !get_bytes(env, argv[1], &hdrs, &hdrs_len) || !get_bytes(env, argv[3], &src, &src_len) ||
      !get_desc(env, argv[4], &desc, &desc_len))
    return type_error(env, "udpSendFrames(handle, headers, headerLen, source, desc: Int32Array, count)");
  if (!get_u32(env, argv[2], 1, 64, &hlen, "udpSendFrames: headerLen must be 1..64")) return NULL;
  if (!get_u32(env, argv[5], 0, (uint32_t)(desc_len / DESC_STRIDE), &count, "udpSendFrames: count exceeds desc")) return NULL;
  if (!ch->peer_len) return THROW_SYS(env, EDESTADDRREQ, "udpSendFrames: no peer set");
  for (uint32_t i = 0; i < count; i++) {
    const int32_t *d = desc + (size_t)i * DESC_STRIDE;
    if (d[0] < 0 || d[1] < 0 || (size_t)d[0] + (size_t)d[1] > src_len || d[2] < 0 || ((size_t)d[2] + 1) * hlen > hdrs_len)
      return THROW_SYS(env, EINVAL, "udpSendFrames: descriptor %u out of bounds", i);
  }
  uint32_t done = 0;
  int e = send_frames(ch, hdrs, hlen, src, desc, count, &done);
  if (e) return THROW_SYS(env, e, "udpSendFrames: sendmmsg");
  NAPI(napi_create_uint32(env, done, &out));
  return out;
}

/* Sends desc's datagrams (checked by the caller); *done says how many went out. Returns 0 or a fatal errno. */
static int send_frames(channel *ch, const uint8_t *hdrs, uint32_t hlen, const uint8_t *src, const int32_t *desc,
                       uint32_t count, uint32_t *done_out) {
  enum { MAXB = 256, MAXIOV = 1024 };
  struct mmsghdr msgs[MAXB];
  struct iovec iovs[MAXIOV];
  uint32_t per[MAXB]; /* datagrams in message i */
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } ctl[MAXB];
  uint32_t done = 0;
  while (done < count) {
    uint32_t built = 0, next = done, niov = 0;
    while (next < count && built < MAXB && niov + 2 <= MAXIOV) {
      const int32_t *d = desc + (size_t)next * DESC_STRIDE;
      size_t size = hlen + (size_t)d[1], bytes = 0;
      uint32_t k = 0;
      struct iovec *first = &iovs[niov];
      while (next + k < count && niov + 2 <= MAXIOV) {
        const int32_t *e = desc + (size_t)(next + k) * DESC_STRIDE;
        size_t sz = hlen + (size_t)e[1];
        if (k > 0 && (!ch->gso || k == ch->gso_max || sz > size || bytes + sz > GSO_TRAIN_BYTES)) break;
        iovs[niov].iov_base = (void *)(hdrs + (size_t)e[2] * hlen);
        iovs[niov++].iov_len = hlen;
        iovs[niov].iov_base = (void *)(src + e[0]);
        iovs[niov++].iov_len = (size_t)e[1];
        bytes += sz;
        k++;
        if (sz < size) break; /* a shorter datagram ends the train */
      }
      struct msghdr *mh = &msgs[built].msg_hdr;
      memset(mh, 0, sizeof *mh);
      mh->msg_name = &ch->peer;
      mh->msg_namelen = ch->peer_len;
      mh->msg_iov = first;
      mh->msg_iovlen = 2 * k;
      if (k > 1) {
        memset(ctl[built].buf, 0, sizeof ctl[built].buf);
        mh->msg_control = ctl[built].buf;
        mh->msg_controllen = sizeof ctl[built].buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(mh);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        uint16_t g = (uint16_t)size;
        memcpy(CMSG_DATA(c), &g, sizeof g);
      }
      per[built++] = k;
      next += k;
    }
    int r = sendmmsg(ch->fd, msgs, built, MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EIO && ch->gso && per[0] > 1) {
        ch->gso = false; /* this route cannot segment: plain datagrams from now on */
        continue;
      }
      if (send_errno_ok(errno)) break;
      *done_out = done;
      return errno;
    }
    for (int i = 0; i < r; i++) {
      done += per[i];
      if (per[i] > 1) {
        ch->stats[STAT_GSO_TRAINS]++;
        ch->stats[STAT_GSO_DATAGRAMS] += per[i];
      }
    }
    if ((uint32_t)r < built) break;
  }
  *done_out = done;
  return 0;
}

static bool get_params(napi_env env, napi_value v, rx_params *p) {
  int32_t *a;
  size_t n;
  if (!get_desc(env, v, &a, &n) || n < 6) return false;
  p->tunnel = (uint16_t)a[0];
  p->session = (uint16_t)a[1];
  p->open4 = a[2] != 0;
  p->open6 = a[3] != 0;
  p->mss4 = a[4];
  p->mss6 = a[5];
  return true;
}

/* Whether receive entry i came from the peer address (the SC udpSetPeer named). */
static bool from_peer(channel *ch, uint32_t i) {
  const int32_t *m = slot_meta(ch, i);
  const uint8_t *a = ch->addrs + (size_t)i * ADDR_STRIDE;
  if (ch->peer.ss_family == AF_INET)
    return m[2] == 4 && memcmp(a, &((struct sockaddr_in *)&ch->peer)->sin_addr, 4) == 0;
  if (ch->peer.ss_family == AF_INET6)
    return m[2] == 6 && memcmp(a, &((struct sockaddr_in6 *)&ch->peer)->sin6_addr, 16) == 0;
  return false;
}

/*
 * udpTakeData(udp, from, count, params, desc, descStart, descMax, out) -> next entry.
 * From receive entry `from` on, takes the datagrams that are our session's IP data
 * (rxdata.h; from the peer's address, not truncated), clamps their MSS and appends
 * [IP offset in the ring, IP length, 0] to desc from descStart, stopping at the first
 * entry it does not take, at `count` or when desc holds descMax. out = [desc entries
 * now, SYNs clamped]. The TypeScript sink writes desc to the TUN and handles the entry
 * it stopped at as before, so order is kept.
 */
static napi_value js_udp_take_data(napi_env env, napi_callback_info info) {
  size_t argc = 8, desc_len, out_len;
  napi_value argv[8], res;
  uint32_t from, count, start, max;
  int32_t *desc, *out;
  rx_params p;
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  channel *ch = get_channel(env, argv[0], KIND_UDP, true, "udpTakeData");
  if (!ch) return NULL;
  if (argc < 8 || !get_params(env, argv[3], &p) || !get_desc(env, argv[4], &desc, &desc_len) ||
      !get_desc(env, argv[7], &out, &out_len) || out_len < 2)
    return type_error(env, "udpTakeData(udp, from, count, params: Int32Array(6), desc: Int32Array, descStart, descMax, out: Int32Array(2))");
  if (!get_u32(env, argv[2], 0, ch->entries, &count, "udpTakeData: count exceeds the entries") ||
      !get_u32(env, argv[1], 0, count, &from, "udpTakeData: from exceeds count") ||
      !get_u32(env, argv[6], 0, (uint32_t)(desc_len / DESC_STRIDE), &max, "udpTakeData: descMax exceeds desc") ||
      !get_u32(env, argv[5], 0, max, &start, "udpTakeData: descStart exceeds descMax"))
    return NULL;
  size_t ring_len = (size_t)ch->batch * ch->slot;
  uint32_t i = from, n = start;
  int32_t clamped = 0;
  for (; i < count && n < max; i++) {
    const int32_t *m = slot_meta(ch, i);
    if (m[3] != 0 || m[0] < 0 || m[4] < 0 || (size_t)m[4] + (size_t)m[0] > ring_len || !from_peer(ch, i)) break;
    size_t at, len;
    bool c = false;
    if (!rx_take(ch->ring + m[4], (size_t)m[0], &p, &at, &len, &c)) break;
    clamped += c;
    int32_t *d = desc + (size_t)n * DESC_STRIDE;
    d[0] = m[4] + (int32_t)at;
    d[1] = (int32_t)len;
    d[2] = 0;
    n++;
  }
  out[0] = (int32_t)n;
  out[1] = clamped;
  NAPI(napi_create_uint32(env, i, &res));
  return res;
}

/* rxTake(datagram, params) -> [IP offset, IP length, 1 if the MSS was clamped] or null: rx_take as a test hook. Edits the datagram. */
static napi_value js_rx_take(napi_env env, napi_callback_info info) {
  size_t argc = 2, len;
  napi_value argv[2], res, v;
  const uint8_t *data;
  rx_params p;
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || !get_bytes(env, argv[0], &data, &len) || !get_params(env, argv[1], &p))
    return type_error(env, "rxTake(datagram: Uint8Array, params: Int32Array(6))");
  size_t at = 0, ip = 0;
  bool c = false;
  if (!rx_take((uint8_t *)data, len, &p, &at, &ip, &c)) {
    NAPI(napi_get_null(env, &res));
    return res;
  }
  NAPI(napi_create_array_with_length(env, 3, &res));
  NAPI(napi_create_uint32(env, (uint32_t)at, &v));
  NAPI(napi_set_element(env, res, 0, v));
  NAPI(napi_create_uint32(env, (uint32_t)ip, &v));
  NAPI(napi_set_element(env, res, 1, v));
  NAPI(napi_create_uint32(env, c ? 1 : 0, &v));
  NAPI(napi_set_element(env, res, 2, v));
  return res;
}

/*
 * udpSendTun(udp, headers, headerLen, source, meta, slots, from, to, params, out) -> sent.
 * The send half of the data fast path in C (dataplane.ts sendChunk's rules): TUN
 * packets from..to of a batch (slot slots[i], its offset and length in meta, bytes in
 * source) are checked (IP version, its NCP open: params [open4, open6, mss4, mss6]),
 * their SYNs' MSS clamped, and sent as udpSendFrames does, header template 0 for IPv4
 * and 1 for IPv6. out = [sent, ipv6 not open, ipv4 not carried, bad version, SYNs
 * clamped, octets sent].
 */
static napi_value js_udp_send_tun(napi_env env, napi_callback_info info) {
  size_t argc = 10, hdrs_len, src_len, meta_len, slots_len, plen, out_len;
  napi_value argv[10], res;
  const uint8_t *hdrs, *src;
  int32_t *meta, *pa, *out;
  uint16_t *slots;
  uint32_t hlen, from, to;
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  channel *ch = get_channel(env, argv[0], KIND_UDP, true, "udpSendTun");
  if (!ch) return NULL;
  bool is_ta = false;
  napi_typedarray_type type;
  void *sp = NULL;
  if (argc < 10 || !get_bytes(env, argv[1], &hdrs, &hdrs_len) || !get_bytes(env, argv[3], &src, &src_len) ||
      !get_desc(env, argv[4], &meta, &meta_len) || napi_is_typedarray(env, argv[5], &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, argv[5], &type, &slots_len, &sp, NULL, NULL) != napi_ok || type != napi_uint16_array ||
      !get_desc(env, argv[8], &pa, &plen) || plen < 4 || !get_desc(env, argv[9], &out, &out_len) || out_len < 6)
    return type_error(env, "udpSendTun(udp, headers, headerLen, source, meta: Int32Array, slots: Uint16Array, from, to, params: Int32Array(4), out: Int32Array(6))");
  slots = sp;
  if (!get_u32(env, argv[2], 1, 64, &hlen, "udpSendTun: headerLen must be 1..64")) return NULL;
  if (hdrs_len < 2 * (size_t)hlen) return THROW_SYS(env, EINVAL, "udpSendTun: two header templates needed");
  if (!get_u32(env, argv[7], 0, (uint32_t)slots_len, &to, "udpSendTun: to exceeds slots") ||
      !get_u32(env, argv[6], 0, to, &from, "udpSendTun: from exceeds to"))
    return NULL;
  if (!ch->peer_len) return THROW_SYS(env, EDESTADDRREQ, "udpSendTun: no peer set");
  bool open4 = pa[0] != 0, open6 = pa[1] != 0;
  enum { CHUNK = 512 };
  int32_t desc[CHUNK * DESC_STRIDE];
  memset(out, 0, 6 * sizeof *out);
  for (uint32_t i = from; i < to;) {
    uint32_t n = 0;
    int64_t octets = 0;
    for (; i < to && n < CHUNK; i++) {
      size_t m = (size_t)slots[i] * META_STRIDE;
      if (m + META_STRIDE > meta_len) return THROW_SYS(env, EINVAL, "udpSendTun: slot %u out of bounds", slots[i]);
      int32_t off = meta[m + 4], len = meta[m];
      if (off < 0 || len < 0 || (size_t)off + (size_t)len > src_len) return THROW_SYS(env, EINVAL, "udpSendTun: packet %u out of bounds", i);
      int version = len > 0 ? src[off] >> 4 : 0;
      int tmpl;
      if (version == 6) {
        if (!open6) {
          out[1]++;
          continue;
        }
        tmpl = 1;
      } else if (version == 4) {
        if (!open4) {
          out[2]++;
          continue;
        }
        tmpl = 0;
      } else {
        out[3]++;
        continue;
      }
      /* The TUN ring is ours until the next read: the clamp edits it in place, as the JS path does. */
      if (rx_clamp_mss((uint8_t *)src + off, (size_t)len, pa[2], pa[3])) out[4]++;
      int32_t *d = desc + (size_t)n * DESC_STRIDE;
      d[0] = off;
      d[1] = len;
      d[2] = tmpl;
      octets += len;
      n++;
    }
    if (n == 0) continue;
    uint32_t done = 0;
    int e = send_frames(ch, hdrs, hlen, src, desc, n, &done);
    if (e) return THROW_SYS(env, e, "udpSendTun: sendmmsg");
    for (uint32_t k = done; k < n; k++) octets -= desc[k * DESC_STRIDE + 1];
    out[0] += (int32_t)done;
    out[5] += (int32_t)octets;
    if (done < n) {
      /* A full queue: the rest of the batch is dropped, as udpSendFrames' callers count it. */
      break;
    }
  }
  NAPI(napi_create_int32(env, out[0], &res));
  return res;
}

/* Writes one gro_coalesce result: a plain packet, or the head's headers and every payload. */
static int write_joined(channel *ch, const gro_pkt *in, const gro_out *o) {
  struct iovec iov[2 + GRO_MAX_SEGS];
  vnet_hdr vh = o->vh;
  iov[0].iov_base = &vh;
  iov[0].iov_len = VNET_HDR_LEN;
  iov[1].iov_base = in[o->first].p;
  iov[1].iov_len = in[o->first].len;
  for (uint32_t j = 1; j < o->count; j++) {
    iov[1 + j].iov_base = in[o->first + j].p + o->hl;
    iov[1 + j].iov_len = in[o->first + j].len - o->hl;
  }
  return write_iov(ch->fd, iov, (int)(1 + o->count));
}

/*
 * tunWriteFrames(tun, source, desc, count) -> packets written. Packet i is
 * source[desc[3i] ...+desc[3i+1]] (desc[3i+2] is ignored): the decapsulated IP packets
 * are written from the UDP receive ring where they arrived. On a vnet TUN, consecutive
 * TCP segments of a flow are first joined (gro_coalesce; the first one's headers are
 * edited in the source buffer) and written as one super-packet.
 */
static napi_value js_tun_write_frames(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], out;
  const uint8_t *src;
  size_t src_len, desc_len;
  int32_t *desc;
  uint32_t count, i;
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  channel *ch = get_channel(env, argv[0], KIND_TUN, true, "tunWriteFrames");
  if (!ch) return NULL;
  if (argc < 4 || !get_bytes(env, argv[1], &src, &src_len) || !get_desc(env, argv[2], &desc, &desc_len))
    return type_error(env, "tunWriteFrames(tun, source, desc: Int32Array, count)");
  if (!get_u32(env, argv[3], 0, (uint32_t)(desc_len / DESC_STRIDE), &count, "tunWriteFrames: count exceeds desc")) return NULL;
  for (i = 0; i < count; i++) {
    const int32_t *d = desc + (size_t)i * DESC_STRIDE;
    if (d[0] < 0 || d[1] < 0 || (size_t)d[0] + (size_t)d[1] > src_len)
      return THROW_SYS(env, EINVAL, "tunWriteFrames: descriptor %u out of bounds", i);
  }
  if (ch->coalesce) {
    enum { CHUNK = 256 };
    gro_pkt in[CHUNK];
    gro_out outs[CHUNK];
    uint32_t written = 0;
    for (uint32_t base = 0; base < count; base += CHUNK) {
      uint32_t n = count - base < CHUNK ? count - base : CHUNK;
      for (uint32_t j = 0; j < n; j++) {
        const int32_t *d = desc + (size_t)(base + j) * DESC_STRIDE;
        in[j].p = (uint8_t *)src + d[0];
        in[j].len = (size_t)d[1];
      }
      uint32_t nout = gro_coalesce(in, n, outs, ch->tun_offload & (TUN_F_USO4 | TUN_F_USO6));
      for (uint32_t k = 0; k < nout; k++) {
        int r = write_joined(ch, in, &outs[k]);
        if (r == 0) goto done;
        if (r < 0 && r != -EINVAL) return THROW_SYS(env, -r, "tunWriteFrames: write");
        /* The kernel refused a super-packet it should take: stop joining (its segments are lost). */
        if (r < 0 && outs[k].count > 1) ch->coalesce = false;
        if (r > 0 && outs[k].count > 1) {
          ch->stats[STAT_JOINED_OUT]++;
          ch->stats[STAT_JOINED_SEGS] += outs[k].count;
        }
        written += outs[k].count;
      }
    }
  done:
    NAPI(napi_create_uint32(env, written, &out));
    return out;
  }
  for (i = 0; i < count; i++) {
    const int32_t *d = desc + (size_t)i * DESC_STRIDE;
    int r = write_packet(ch, src + d[0], (size_t)d[1]);
    if (r == 0) break;
    /* A packet the kernel refuses (EINVAL for garbage) is dropped, not fatal for the rest. */
    if (r < 0 && r != -EINVAL) return THROW_SYS(env, -r, "tunWriteFrames: write");
  }
  NAPI(napi_create_uint32(env, i, &out));
  return out;
}

/* offloads(handle) -> the offloads in use, by name (for status). */
static napi_value js_offloads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], arr, v;
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  channel *ch = get_channel(env, argv[0], 0, false, "offloads");
  if (!ch) return NULL;
  const char *names[12];
  uint32_t n = 0;
  if (ch->kind == KIND_TUN && ch->vnet) {
    names[n++] = "vnet-hdr";
    if (ch->tun_offload & TUN_F_CSUM) names[n++] = "csum";
    if (ch->tun_offload & TUN_F_TSO4) names[n++] = "tso4";
    if (ch->tun_offload & TUN_F_TSO6) names[n++] = "tso6";
    if (ch->tun_offload & TUN_F_USO4) names[n++] = "uso4";
    if (ch->tun_offload & TUN_F_USO6) names[n++] = "uso6";
    if (ch->coalesce) names[n++] = "tcp-coalesce";
    if (ch->coalesce && (ch->tun_offload & (TUN_F_USO4 | TUN_F_USO6))) names[n++] = "udp-coalesce";
  }
  if (ch->kind == KIND_UDP) {
    if (ch->gso) names[n++] = "udp-gso";
    if (ch->gro) names[n++] = "udp-gro";
  }
  NAPI(napi_create_array_with_length(env, n, &arr));
  for (uint32_t i = 0; i < n; i++) {
    NAPI(napi_create_string_utf8(env, names[i], NAPI_AUTO_LENGTH, &v));
    NAPI(napi_set_element(env, arr, i, v));
  }
  return arr;
}

/* ---- offload functions on bytes, for tests ----------------------------------------- */

static napi_value buffers_array(napi_env env, uint32_t n, const uint8_t *const *parts, const size_t *lens) {
  napi_value arr, b;
  NAPI(napi_create_array_with_length(env, n, &arr));
  for (uint32_t i = 0; i < n; i++) {
    void *data;
    NAPI(napi_create_buffer_copy(env, lens[i], parts[i], &data, &b));
    NAPI(napi_set_element(env, arr, i, b));
  }
  return arr;
}

/* gsoSplit(vnetHeaderAndPacket) -> Buffer[] (the packets) or a negative split_error. */
static napi_value js_gso_split(napi_env env, napi_callback_info info) {
  size_t argc = 1, len;
  napi_value argv[1], res;
  const uint8_t *data;
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !get_bytes(env, argv[0], &data, &len)) return type_error(env, "gsoSplit(bytes: Uint8Array)");
  if (len < VNET_HDR_LEN) {
    NAPI(napi_create_int32(env, SPLIT_BAD_HEADER, &res));
    return res;
  }
  size_t cap = VNET_RING_MIN;
  uint8_t *outb = malloc(cap);
  int32_t *offs = malloc(sizeof(int32_t) * GSO_MAX_SEGS), *lens = malloc(sizeof(int32_t) * GSO_MAX_SEGS);
  const uint8_t **parts = malloc(sizeof(*parts) * GSO_MAX_SEGS);
  size_t *plens = malloc(sizeof(size_t) * GSO_MAX_SEGS);
  if (!outb || !offs || !lens || !parts || !plens) {
    free(outb), free(offs), free(lens), free(parts), free(plens);
    return THROW_SYS(env, ENOMEM, "gsoSplit");
  }
  vnet_hdr h;
  memcpy(&h, data, sizeof h);
  int k = gso_split(&h, data + VNET_HDR_LEN, len - VNET_HDR_LEN, outb, cap, offs, lens, GSO_MAX_SEGS);
  if (k < 0) {
    napi_create_int32(env, k, &res);
  } else {
    for (int i = 0; i < k; i++) {
      parts[i] = outb + offs[i];
      plens[i] = (size_t)lens[i];
    }
    res = buffers_array(env, (uint32_t)k, parts, plens);
  }
  free(outb), free(offs), free(lens), free(parts), free(plens);
  return res;
}

/* groCoalesce(packets[], udp?) -> Buffer[]: what would be written to a vnet TUN (with USO
 * when udp), each a virtio-net header followed by the (possibly joined) packet. The inputs are edited. */
static napi_value js_gro_coalesce(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], arr, el, b;
  bool is_array = false, udp = false;
  uint32_t n = 0;
  NAPI(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc > 1) {
    napi_valuetype t;
    NAPI(napi_typeof(env, argv[1], &t));
    if (t == napi_boolean) NAPI(napi_get_value_bool(env, argv[1], &udp));
  }
  if (argc < 1 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array)
    return type_error(env, "groCoalesce(packets: Uint8Array[])");
  NAPI(napi_get_array_length(env, argv[0], &n));
  if (n > 1024) return THROW_SYS(env, E2BIG, "groCoalesce: at most 1024 packets");
  gro_pkt in[1024];
  gro_out outs[1024];
  for (uint32_t i = 0; i < n; i++) {
    const uint8_t *p;
    size_t len;
    NAPI(napi_get_element(env, argv[0], i, &el));
    if (!get_bytes(env, el, &p, &len)) return type_error(env, "groCoalesce: packets must be Uint8Arrays");
    in[i].p = (uint8_t *)p;
    in[i].len = len;
  }
  uint32_t nout = gro_coalesce(in, n, outs, udp);
  NAPI(napi_create_array_with_length(env, nout, &arr));
  for (uint32_t k = 0; k < nout; k++) {
    const gro_out *o = &outs[k];
    size_t total = VNET_HDR_LEN + in[o->first].len;
    for (uint32_t j = 1; j < o->count; j++) total += in[o->first + j].len - o->hl;
    uint8_t *d;
    NAPI(napi_create_buffer(env, total, (void **)&d, &b));
    memcpy(d, &o->vh, VNET_HDR_LEN);
    size_t at = VNET_HDR_LEN;
    memcpy(d + at, in[o->first].p, in[o->first].len);
    at += in[o->first].len;
    for (uint32_t j = 1; j < o->count; j++) {
      memcpy(d + at, in[o->first + j].p + o->hl, in[o->first + j].len - o->hl);
      at += in[o->first + j].len - o->hl;
    }
    NAPI(napi_set_element(env, arr, k, b));
  }
  return arr;
}

/* ---- module -------------------------------------------------------------------- */

static napi_value init(napi_env env, napi_value exports) {
  static const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {
      {"tunOpen", js_tun_open},           {"icmp6Open", js_icmp6_open},   {"readStart", js_read_start},
      {"readStop", js_read_stop},         {"setRef", js_set_ref},         {"close", js_close},
      {"write", js_write},                {"writeBatch", js_write_batch}, {"icmp6Send", js_icmp6_send},
      {"icmp6Membership", js_icmp6_membership}, {"icmp6Filter", js_icmp6_filter},
      {"udpOpen", js_udp_open},           {"udpSetPeer", js_udp_set_peer}, {"udpSend", js_udp_send},
      {"udpSendFrames", js_udp_send_frames}, {"tunWriteFrames", js_tun_write_frames},
      {"offloads", js_offloads},          {"gsoSplit", js_gso_split},     {"groCoalesce", js_gro_coalesce},
      {"udpTakeData", js_udp_take_data},  {"udpSendTun", js_udp_send_tun},  {"rxTake", js_rx_take},
  };
  static const struct {
    const char *name;
    int value;
  } consts[] = {{"META_STRIDE", META_STRIDE}, {"ADDR_STRIDE", ADDR_STRIDE}, {"FLAG_TRUNCATED", FLAG_TRUNCATED},
                {"DESC_STRIDE", DESC_STRIDE}, {"META_OFFSET", 4}};
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    NAPI(napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f));
    NAPI(napi_set_named_property(env, exports, fns[i].name, f));
  }
  for (size_t i = 0; i < sizeof consts / sizeof consts[0]; i++) {
    napi_value v;
    NAPI(napi_create_int32(env, consts[i].value, &v));
    NAPI(napi_set_named_property(env, exports, consts[i].name, v));
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
