/*
 * A closed-loop LDAP load generator in C, so that the client is never what
 * limits a benchmark of a server that answers in ~20 microseconds.
 *
 * Each connection keeps exactly one request outstanding (as SSSD, nslcd, PAM
 * and ldapsearch do): it sends a request, waits for its final response, and
 * sends the next. Every request is the template (one hex-encoded LDAPMessage
 * whose message id is a single content byte) with a decimal number written
 * at each of the given offsets: a uniformly random entry number below SIZE,
 * zero-padded to the width of the digits in the template ("user0000000" ->
 * "user0042137"), so that the requests spread over the whole directory.
 *
 * It prints one JSON line, as benchmarks/_loadgen.py does: operations,
 * errors (final responses whose result code is not success), seconds, p50
 * and p99 latency in microseconds, and its own CPU seconds.
 *
 *     cc -O2 -o cloadgen _cloadgen.c
 *     ./cloadgen [-n COUNT] PORT SECONDS CONNECTIONS SIZE SEED TEMPLATE_HEX DIGITS MSGID_OFFSET OFFSET...
 *
 * With -n, it stops sending after COUNT requests in all (or SECONDS, whichever
 * comes first): a fixed amount of work, for instruction counts.
 *
 * DIGITS is the width of each number; MSGID_OFFSET the offset of the message
 * id's content byte (cycled through 1..127).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_OFFSETS 8
#define BUCKETS 1000000 /* latency histogram: one bucket a microsecond, up to 1 s */

struct conn {
    int fd;
    uint64_t state; /* xorshift64 */
    unsigned char msgid;
    double sent;
    unsigned char buf[1 << 16];
    size_t have;
};

static unsigned char *template_;
static size_t templateLength;
static int digits;
static size_t msgidOffset;
static size_t offsets[MAX_OFFSETS];
static int noffsets;
static long size;
static uint32_t *histogram;
static long operations, errors;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void sendRequest(struct conn *c) {
    unsigned char request[4096];
    char number[32];
    uint64_t x = c->state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c->state = x;
    snprintf(number, sizeof number, "%0*ld", digits, (long)(x % (uint64_t)size));
    memcpy(request, template_, templateLength);
    for (int i = 0; i < noffsets; i++)
        memcpy(request + offsets[i], number, digits);
    c->msgid = c->msgid % 127 + 1;
    request[msgidOffset] = c->msgid;
    c->sent = now();
    size_t done = 0;
    while (done < templateLength) {
        ssize_t n = write(c->fd, request + done, templateLength - done);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            die("write");
        }
        done += n;
    }
}

/* Parse complete messages; return 1 when the final response arrived. */
static int consume(struct conn *c) {
    size_t pos = 0;
    int finished = 0;
    while (c->have - pos >= 2) {
        unsigned char *m = c->buf + pos;
        size_t head, length;
        if (m[1] < 0x80) {
            head = 2;
            length = m[1];
        } else {
            size_t n = m[1] & 0x7f;
            if (c->have - pos < 2 + n)
                break;
            head = 2 + n;
            length = 0;
            for (size_t i = 0; i < n; i++)
                length = length << 8 | m[2 + i];
        }
        if (c->have - pos < head + length)
            break;
        size_t op = head + 2 + m[head + 1];
        if (m[op] != 0x64 && m[op] != 0x73) {
            /* LDAPResult: tag, length, then ENUMERATED resultCode */
            size_t content = op + 2 + (m[op + 1] & 0x80 ? (m[op + 1] & 0x7f) : 0);
            if (m[content] == 0x0a && m[content + 2] != 0)
                errors++;
            finished = 1;
        }
        pos += head + length;
    }
    memmove(c->buf, c->buf + pos, c->have - pos);
    c->have -= pos;
    return finished;
}

static int connectTo(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int hexValue(char h) {
    return h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10;
}

static double percentile(double p) {
    long target = (long)(operations * p), seen = 0;
    for (long i = 0; i < BUCKETS; i++) {
        seen += histogram[i];
        if (seen > target)
            return i;
    }
    return BUCKETS;
}

int main(int argc, char **argv) {
    long limit = -1;
    if (argc > 2 && strcmp(argv[1], "-n") == 0) {
        limit = atol(argv[2]);
        argv += 2;
        argc -= 2;
    }
    if (argc < 10) {
        fprintf(stderr, "usage: %s PORT SECONDS CONNECTIONS SIZE SEED TEMPLATE_HEX DIGITS "
                        "MSGID_OFFSET OFFSET...\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    double seconds = atof(argv[2]);
    int nconns = atoi(argv[3]);
    size = atol(argv[4]);
    uint64_t seed = strtoull(argv[5], NULL, 10);
    const char *hex = argv[6];
    digits = atoi(argv[7]);
    msgidOffset = strtoul(argv[8], NULL, 10);
    templateLength = strlen(hex) / 2;
    template_ = malloc(templateLength);
    for (size_t i = 0; i < templateLength; i++)
        template_[i] = hexValue(hex[2 * i]) << 4 | hexValue(hex[2 * i + 1]);
    for (int i = 9; i < argc && noffsets < MAX_OFFSETS; i++)
        offsets[noffsets++] = strtoul(argv[i], NULL, 10);
    histogram = calloc(BUCKETS, sizeof *histogram);
    struct conn *conns = calloc(nconns, sizeof *conns);
    int ep = epoll_create1(0);
    for (int i = 0; i < nconns; i++) {
        conns[i].fd = connectTo(port);
        conns[i].state = seed * 2654435761u + i * 40503u + 1;
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = &conns[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &e);
    }
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    double start = now(), end = start + seconds;
    int outstanding = nconns;
    long sent = 0;
    for (int i = 0; i < nconns; i++) {
        if (limit >= 0 && sent >= limit) {
            outstanding--;
            continue;
        }
        sendRequest(&conns[i]);
        sent++;
    }
    struct epoll_event events[256];
    while (outstanding > 0) {
        int n = epoll_wait(ep, events, 256, 1000);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (c->have == sizeof c->buf) {
                fprintf(stderr, "a response larger than %zu bytes\n", sizeof c->buf);
                return 1;
            }
            ssize_t got = read(c->fd, c->buf + c->have, sizeof c->buf - c->have);
            if (got < 0) {
                if (errno == EINTR || errno == EAGAIN)
                    continue;
                die("read");
            }
            if (got == 0) {
                fprintf(stderr, "the server closed a connection\n");
                return 1;
            }
            c->have += got;
            if (!consume(c))
                continue;
            double t = now();
            long us = (long)((t - c->sent) * 1e6);
            if (us >= BUCKETS)
                us = BUCKETS - 1;
            histogram[us]++;
            operations++;
            if (t < end && (limit < 0 || sent < limit)) {
                sendRequest(c);
                sent++;
            } else
                outstanding--;
        }
    }
    double elapsed = now() - start;
    getrusage(RUSAGE_SELF, &r1);
    double cpu = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) + (r1.ru_stime.tv_sec - r0.ru_stime.tv_sec)
                 + ((r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) + (r1.ru_stime.tv_usec - r0.ru_stime.tv_usec)) / 1e6;
    printf("{\"operations\": %ld, \"errors\": %ld, \"seconds\": %.6f, \"p50_us\": %.0f, "
           "\"p99_us\": %.0f, \"client_cpu_s\": %.6f, \"pid\": %d}\n",
           operations, errors, elapsed, operations ? percentile(0.50) : 0.0,
           operations ? percentile(0.99) : 0.0, cpu, (int)getpid());
    return 0;
}
