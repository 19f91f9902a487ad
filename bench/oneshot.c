/* A closed-loop load generator with one TCP connection per request (P2P-DI's rule).
 *
 * Keeps C exchanges in flight against 127.0.0.1:PORT. Each exchange connects, sends one
 * request, reads until the server closes, and closes; the next one starts at once, for
 * SECONDS seconds or at most MAXREQ exchanges in all. Requests are read from a file,
 * separated by a NUL byte, and used round-robin (so MAXREQ = their number sends each
 * once). A reply counts as good when it starts with EXPECT and holds exactly the body its
 * Content-Length announces; anything else (a refused or reset connection, another status,
 * a short body) is counted in errors. Latency runs from connect to the server's close.
 * Prints one line:
 *   requests=N seconds=S rps=R p50_us=X p99_us=Y errors=E reply_bytes=B
 * (reply_bytes: the mean size of the good replies). With OUT_FILE, each good reply's
 * first 4 KiB is written there as "INDEX SP REPLY NUL", INDEX counting the requests
 * from 0 in file order: how a benchmark learns what the server answered (e.g. cookies).
 * Written in C so that the client is never the bottleneck of a Python server on 2 cores.
 *
 * Usage: oneshot PORT CONCURRENCY SECONDS MAXREQ EXPECT REQUESTS_FILE [OUT_FILE]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "latency.h"

#define HEAD_KEEP 4096

typedef struct {
    int fd;         /* -1: idle */
    long req;       /* index of the request being sent */
    size_t sent;    /* request bytes written so far */
    long got;       /* reply bytes read so far */
    double start;   /* when connect was called */
    size_t kept;    /* bytes of head[] filled */
    char head[HEAD_KEEP];
} conn_t;

/* The total reply size its head announces (head + Content-Length), or -1 if unknown. */
static long announced(const char *buf, size_t len) {
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (!end) return -1;
    long head = end - buf + 4, body = 0;
    for (const char *p = buf; p < end; p++) {
        if ((p == buf || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0) {
            body = atol(p + 15);
            break;
        }
    }
    return head + body;
}

static char *reqbuf; static char **starts; static size_t *lens; static long nreq;
static struct sockaddr_in addr;
static int ep;

static int begin(conn_t *x, long req) {
    x->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (x->fd < 0) return -1;
    int one = 1; setsockopt(x->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    x->req = req; x->sent = 0; x->got = 0; x->kept = 0; x->start = now();
    if (connect(x->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) {
        close(x->fd); x->fd = -1; return -1;
    }
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = x};
    epoll_ctl(ep, EPOLL_CTL_ADD, x->fd, &ev);
    return 0;
}

static void finish(conn_t *x) { close(x->fd); x->fd = -1; }

int main(int argc, char **argv) {
    if (argc != 7 && argc != 8) {
        fprintf(stderr, "usage: oneshot PORT C SECONDS MAXREQ EXPECT REQUESTS_FILE [OUT_FILE]\n");
        return 2;
    }
    int port = atoi(argv[1]), nconn = atoi(argv[2]);
    double seconds = atof(argv[3]);
    long maxreq = atol(argv[4]);
    const char *expect = argv[5]; size_t expect_len = strlen(expect);
    FILE *f = fopen(argv[6], "rb");
    if (!f) { perror("requests"); return 2; }
    struct stat st; fstat(fileno(f), &st);
    reqbuf = malloc(st.st_size + 1);
    size_t total = fread(reqbuf, 1, st.st_size, f); fclose(f);
    long cap_req = 1024;
    starts = malloc(cap_req * sizeof *starts); lens = malloc(cap_req * sizeof *lens);
    for (size_t i = 0, s = 0; i < total; i++) {
        if (reqbuf[i] != 0) continue;
        if (nreq == cap_req) {
            cap_req *= 2;
            starts = realloc(starts, cap_req * sizeof *starts);
            lens = realloc(lens, cap_req * sizeof *lens);
        }
        starts[nreq] = reqbuf + s; lens[nreq++] = i - s; s = i + 1;
    }
    if (!nreq || nconn < 1) { fprintf(stderr, "no requests or no clients\n"); return 2; }
    FILE *out = NULL;
    if (argc == 8 && !(out = fopen(argv[7], "wb"))) { perror("out"); return 2; }
    struct rlimit rl = {nconn + 64, nconn + 64}; setrlimit(RLIMIT_NOFILE, &rl);
    ep = epoll_create1(0);
    conn_t *c = calloc(nconn, sizeof *c);
    addr.sin_family = AF_INET; addr.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    long cap = maxreq < 20000000 ? maxreq : 20000000;
    float *lat = malloc(sizeof(float) * (cap > 0 ? cap : 1));
    long done = 0, errors = 0, started = 0; double reply_bytes = 0;
    double start = now(), end = start + seconds;
    int active = 0;
    for (int i = 0; i < nconn; i++) c[i].fd = -1;
    for (int i = 0; i < nconn && started < maxreq; i++) {
        started++;
        if (begin(&c[i], (started - 1) % nreq) < 0) { errors++; continue; }
        active++;
    }
    struct epoll_event evs[1024]; static char rbuf[1 << 16];
    while (active > 0) {
        int n = epoll_wait(ep, evs, 1024, 1000);
        double t = now();
        if (n == 0 && t > end + 30) break;  /* a server that stopped answering: give up */
        for (int k = 0; k < n; k++) {
            conn_t *x = evs[k].data.ptr;
            int ended = 0, good = 0;
            if (x->sent < lens[x->req]) {  /* connecting or sending */
                int err = 0; socklen_t el = sizeof err;
                getsockopt(x->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                ssize_t w = err ? -1 : send(x->fd, starts[x->req] + x->sent,
                                             lens[x->req] - x->sent, MSG_NOSIGNAL);
                if (w < 0 && !err && errno == EAGAIN) continue;
                if (w < 0) { ended = 1; }
                else if ((x->sent += w) == lens[x->req]) {
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = x};
                    epoll_ctl(ep, EPOLL_CTL_MOD, x->fd, &ev);
                }
            } else {  /* reading until the server closes */
                ssize_t r = read(x->fd, rbuf, sizeof rbuf);
                if (r < 0 && errno == EAGAIN) continue;
                if (r > 0) {
                    size_t keep = r < (ssize_t)(HEAD_KEEP - x->kept) ? (size_t)r : HEAD_KEEP - x->kept;
                    memcpy(x->head + x->kept, rbuf, keep); x->kept += keep;
                    x->got += r;
                    continue;
                }
                ended = 1;
                good = r == 0 && x->kept >= expect_len && memcmp(x->head, expect, expect_len) == 0
                       && announced(x->head, x->kept) == x->got;
            }
            if (!ended) continue;
            finish(x);
            if (good) {
                if (done < cap) lat[done] = (float)((t - x->start) * 1e6);
                done++; reply_bytes += x->got;
                if (out) {
                    fprintf(out, "%ld ", x->req); fwrite(x->head, 1, x->kept, out); fputc(0, out);
                }
            } else {
                errors++;
            }
            active--;
            while (t < end && started < maxreq) {
                started++;
                if (begin(x, (started - 1) % nreq) == 0) { active++; break; }
                errors++;
            }
        }
    }
    double took = now() - start;
    long m = done < cap ? done : cap;
    qsort(lat, m, sizeof(float), cmp);
    if (out) fclose(out);
    printf("requests=%ld seconds=%.3f rps=%.0f p50_us=%.0f p99_us=%.0f errors=%ld reply_bytes=%.0f\n",
           done, took, done / took, m ? lat[m / 2] : 0.0, m ? lat[(long)(m * 0.99)] : 0.0,
           errors + (started - done - errors > 0 ? started - done - errors : 0),
           done ? reply_bytes / done : 0.0);
    return 0;
}
