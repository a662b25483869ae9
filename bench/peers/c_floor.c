/*
 * The physical floor of a fan-out on loopback, for PartyQuiz's benchmarks: one epoll loop in C
 * that completes the WebSocket handshake and, on each host command, write()s one pre-built
 * frame to every player socket -- one system call per socket, nothing else. It is a yardstick,
 * not a peer: it never parses JSON beyond spotting "join" and "host", never frames per client,
 * never keeps game state. Built with the machine's gcc into the benchmark cache (bench/install.sh).
 *   c_floor --port P --payload question.json
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FDS 65536
#define BUF_SIZE 8192

/* ---- SHA-1 (FIPS 180-1) and base64, for Sec-WebSocket-Accept ------------------------------ */
static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1(const unsigned char *msg, size_t len, unsigned char out[20]) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    size_t total = ((len + 8) / 64 + 1) * 64;
    unsigned char *m = calloc(total, 1);
    memcpy(m, msg, len);
    m[len] = 0x80;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) m[total - 1 - i] = (unsigned char)(bits >> (8 * i));
    for (size_t off = 0; off < total; off += 64) {
        uint32_t w[80];
        for (int i = 0; i < 16; i++)
            w[i] = (uint32_t)m[off + 4 * i] << 24 | (uint32_t)m[off + 4 * i + 1] << 16 |
                   (uint32_t)m[off + 4 * i + 2] << 8 | m[off + 4 * i + 3];
        for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; i++) {
            uint32_t f, k;
            if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999; }
            else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1; }
            else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC; }
            else { f = b ^ c ^ d; k = 0xCA62C1D6; }
            uint32_t t = rol(a, 5) + f + e + k + w[i];
            e = d; d = c; c = rol(b, 30); b = a; a = t;
        }
        h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
    }
    free(m);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 4; j++) out[4 * i + j] = (unsigned char)(h[i] >> (24 - 8 * j));
}

static void base64(const unsigned char *in, size_t len, char *out) {
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < len ? in[i + 2] : 0);
        out[o++] = t[(v >> 18) & 63];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = i + 1 < len ? t[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? t[v & 63] : '=';
    }
    out[o] = 0;
}

/* ---- connections ------------------------------------------------------------------------- */
struct conn {
    int open;       /* handshake done */
    int is_host;
    int player_slot; /* index in players[] or -1 */
    size_t len;
    unsigned char buf[BUF_SIZE];
};

static struct conn *conns[MAX_FDS];
static int players[MAX_FDS];
static int n_players;
static unsigned char *question;
static size_t question_len;
static unsigned char welcome[128], host_welcome[128];
static size_t welcome_len, host_welcome_len;

static size_t frame(const char *payload, size_t n, unsigned char *out) {
    size_t h;
    out[0] = 0x81;
    if (n < 126) { out[1] = (unsigned char)n; h = 2; }
    else if (n < 65536) { out[1] = 126; out[2] = (unsigned char)(n >> 8); out[3] = (unsigned char)n; h = 4; }
    else { out[1] = 127; for (int i = 0; i < 8; i++) out[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i)); h = 10; }
    memcpy(out + h, payload, n);
    return h + n;
}

static void drop(int epfd, int fd) {
    struct conn *c = conns[fd];
    if (c && c->player_slot >= 0) {
        int last = players[--n_players];
        players[c->player_slot] = last;
        if (conns[last]) conns[last]->player_slot = c->player_slot;
    }
    free(c);
    conns[fd] = NULL;
    epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
}

static void fan_out(void) {
    for (int i = 0; i < n_players; i++) {
        if (write(players[i], question, question_len) < 0 && errno != EAGAIN) { /* peer gone */ }
    }
}

static int handshake(int fd, struct conn *c) {
    unsigned char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (!end) return c->len < BUF_SIZE ? 0 : -1;
    *end = 0;
    char *key = strcasestr((char *)c->buf, "sec-websocket-key:");
    if (!key) return -1;
    key += 18;
    while (*key == ' ') key++;
    size_t klen = strcspn(key, "\r\n ");
    char joined[128];
    if (klen > 60) return -1;
    memcpy(joined, key, klen);
    memcpy(joined + klen, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
    unsigned char digest[20];
    char accept[32];
    sha1((unsigned char *)joined, klen + 36, digest);
    base64(digest, 20, accept);
    char resp[256];
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n\r\n", accept);
    if (write(fd, resp, (size_t)n) != n) return -1;
    size_t used = (size_t)(end - c->buf) + 4;
    memmove(c->buf, c->buf + used, c->len - used);
    c->len -= used;
    c->open = 1;
    return 1;
}

/* Consume complete client frames; returns -1 to close. */
static int frames(int fd, struct conn *c) {
    for (;;) {
        if (c->len < 2) return 0;
        int opcode = c->buf[0] & 0x0F;
        size_t n = c->buf[1] & 0x7F, pos = 2;
        if (n == 126) { if (c->len < 4) return 0; n = (size_t)c->buf[2] << 8 | c->buf[3]; pos = 4; }
        else if (n == 127) return -1; /* never from our clients */
        unsigned char mask[4] = {0, 0, 0, 0};
        if (c->buf[1] & 0x80) { if (c->len < pos + 4) return 0; memcpy(mask, c->buf + pos, 4); pos += 4; }
        if (c->len < pos + n) return n + pos > BUF_SIZE ? -1 : 0;
        unsigned char *p = c->buf + pos;
        for (size_t i = 0; i < n; i++) p[i] ^= mask[i & 3];
        if (opcode == 0x8) return -1;
        if (opcode == 0x1) {
            if (memmem(p, n, "\"type\":\"join\"", 13)) {
                if (c->player_slot < 0) { c->player_slot = n_players; players[n_players++] = fd; }
                if (write(fd, welcome, welcome_len) < 0) return -1;
            } else if (memmem(p, n, "\"type\":\"host\"", 13)) {
                c->is_host = 1;
                if (write(fd, host_welcome, host_welcome_len) < 0) return -1;
            } else if (c->is_host) {
                fan_out();
            }
        }
        memmove(c->buf, c->buf + pos + n, c->len - pos - n);
        c->len -= pos + n;
    }
}

static volatile sig_atomic_t stopping;
static void on_term(int sig) { (void)sig; stopping = 1; }

int main(int argc, char **argv) {
    int port = 0;
    const char *payload = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--payload")) payload = argv[i + 1];
    }
    if (!port || !payload) { fprintf(stderr, "usage: c_floor --port P --payload FILE\n"); return 2; }
    FILE *f = fopen(payload, "rb");
    if (!f) { perror(payload); return 2; }
    char body[65536];
    size_t n = fread(body, 1, sizeof body, f);
    fclose(f);
    while (n && (body[n - 1] == '\n' || body[n - 1] == ' ')) n--;
    question = malloc(n + 10);
    question_len = frame(body, n, question);
    const char *w = "{\"type\":\"welcome\",\"version\":0,\"player_id\":\"p\"}";
    const char *hw = "{\"type\":\"host_welcome\",\"version\":0}";
    welcome_len = frame(w, strlen(w), welcome);
    host_welcome_len = frame(hw, strlen(hw), host_welcome);

    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_term);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(ls, (struct sockaddr *)&addr, sizeof addr) || listen(ls, 1024)) { perror("listen"); return 1; }
    int epfd = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
    epoll_ctl(epfd, EPOLL_CTL_ADD, ls, &ev);
    printf("ready\n");
    fflush(stdout);
    struct epoll_event events[256];
    while (!stopping) {
        int k = epoll_wait(epfd, events, 256, 500);
        for (int e = 0; e < k; e++) {
            int fd = events[e].data.fd;
            if (fd == ls) {
                int c;
                while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    if (c >= MAX_FDS) { close(c); continue; }
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    conns[c] = calloc(1, sizeof(struct conn));
                    conns[c]->player_slot = -1;
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(epfd, EPOLL_CTL_ADD, c, &cev);
                }
                continue;
            }
            struct conn *c = conns[fd];
            if (!c) continue;
            ssize_t got = read(fd, c->buf + c->len, BUF_SIZE - c->len);
            if (got <= 0) { if (got == 0 || errno != EAGAIN) drop(epfd, fd); continue; }
            c->len += (size_t)got;
            int r = c->open ? 0 : handshake(fd, c);
            if (r < 0 || (c->open && frames(fd, c) < 0)) drop(epfd, fd);
        }
    }
    return 0;
}
