/*
 * pktgen_syn: raw TCP SYN generator (copied from /work/shared/bench; bench/live.py compiles
 * it with gcc into a temp dir at run time and uses it in its lvb-* namespaces).
 *
 * Sends prebuilt Ethernet/IPv4/TCP SYN frames through an AF_PACKET socket
 * (PACKET_QDISC_BYPASS, sendmmsg batches) on one interface, cycling over
 * NSRC source addresses starting at SRC_BASE (e.g. 10.66.1.1 .. 10.66.1.NSRC),
 * with varying source ports and sequence numbers, to DST_IP:DPORT.
 *
 * Safety: refuses destination / source addresses outside 10.66.0.0/23.
 * -w (wide, "spoofed"): the sources are instead 65,536 distinct addresses of 10.67.0.0/16,
 * one per frame of the pool (bench/flood.py); they exist only inside the namespaces.
 *
 * build: gcc -O2 -Wall -o pktgen_syn pktgen_syn.c
 * usage: pktgen_syn -i IFACE -m DST_MAC [-d 10.66.0.1] [-s 10.66.1.1] [-n 64]
 *                   [-p 22] [-t SECONDS] [-r PPS(0=max)] [-b BATCH] [-o rr|rand]
 *                   [-c COUNT] [-w]
 * Prints one JSON line: {"sent":..,"errors":..,"elapsed":..,"pps":..,"utime":..,"stime":..}
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define FRAME_LEN 54 /* 14 eth + 20 ip + 20 tcp */
#define POOL 65536
#define MAXB 1024

static volatile sig_atomic_t stop;
static void on_sig(int s) { (void)s; stop = 1; }

static uint16_t csum16(const void *data, size_t len, uint32_t sum)
{
    const uint8_t *p = data;
    while (len > 1) { sum += (p[0] << 8) | p[1]; p += 2; len -= 2; }
    if (len) sum += p[0] << 8;
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int parse_mac(const char *s, uint8_t m[6])
{
    return sscanf(s, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) == 6 ? 0 : -1;
}

static int in_allowed(uint32_t a_host) /* 10.66.0.0/23 */
{
    return (a_host & 0xfffffe00u) == 0x0a420000u;
}

int main(int argc, char **argv)
{
    const char *ifname = NULL, *dmac_s = NULL, *dst_s = "10.66.0.1", *src_s = "10.66.1.1", *order = "rr";
    int nsrc = 64, dport = 22, batch = 64;
    double duration = 10, rate = 0;
    long long count = -1;
    int opt, wide = 0;
    while ((opt = getopt(argc, argv, "i:m:d:s:n:p:t:r:b:o:c:w")) != -1) {
        switch (opt) {
        case 'i': ifname = optarg; break;
        case 'm': dmac_s = optarg; break;
        case 'd': dst_s = optarg; break;
        case 's': src_s = optarg; break;
        case 'n': nsrc = atoi(optarg); break;
        case 'p': dport = atoi(optarg); break;
        case 't': duration = atof(optarg); break;
        case 'r': rate = atof(optarg); break;
        case 'b': batch = atoi(optarg); break;
        case 'o': order = optarg; break;
        case 'c': count = atoll(optarg); break;
        case 'w': wide = 1; break;
        default: fprintf(stderr, "bad args\n"); return 2;
        }
    }
    if (!ifname || !dmac_s) { fprintf(stderr, "need -i IFACE -m DST_MAC\n"); return 2; }
    if (batch < 1) batch = 1;
    if (batch > MAXB) batch = MAXB;
    if (nsrc < 1 || nsrc > 510) { fprintf(stderr, "nsrc 1..510\n"); return 2; }

    uint8_t dmac[6], smac[6];
    if (parse_mac(dmac_s, dmac)) { fprintf(stderr, "bad mac\n"); return 2; }
    struct in_addr dst, srcb;
    if (!inet_aton(dst_s, &dst) || !inet_aton(src_s, &srcb)) { fprintf(stderr, "bad ip\n"); return 2; }
    uint32_t dst_h = ntohl(dst.s_addr), src_h = ntohl(srcb.s_addr);
    if (!in_allowed(dst_h) || !in_allowed(src_h) || !in_allowed(src_h + nsrc - 1)) {
        fprintf(stderr, "refusing: addresses must be inside 10.66.0.0/23\n");
        return 2;
    }

    int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_IP));
    if (fd < 0) { perror("socket"); return 1; }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
    if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0) { perror("SIOCGIFINDEX"); return 1; }
    int ifindex = ifr.ifr_ifindex;
    if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) { perror("SIOCGIFHWADDR"); return 1; }
    memcpy(smac, ifr.ifr_hwaddr.sa_data, 6);
    int one = 1;
    setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
    int sndbuf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_ifindex = ifindex;
    sll.sll_protocol = htons(ETH_P_IP);
    if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) { perror("bind"); return 1; }
    /* we do not want to receive: shrink rcvbuf, packets to ETH_P_IP would otherwise be copied */
    int rb = 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof rb);

    /* frame pool */
    uint8_t *pool = aligned_alloc(64, (size_t)POOL * 64);
    if (!pool) { perror("alloc"); return 1; }
    uint32_t rnd = 0x12345678u ^ (uint32_t)getpid();
    for (int i = 0; i < POOL; i++) {
        uint8_t *f = pool + (size_t)i * 64;
        memset(f, 0, 64);
        memcpy(f, dmac, 6);
        memcpy(f + 6, smac, 6);
        f[12] = 0x08; f[13] = 0x00;
        struct iphdr *ip = (struct iphdr *)(f + 14);
        struct tcphdr *th = (struct tcphdr *)(f + 34);
        int sidx;
        rnd = rnd * 1664525u + 1013904223u;
        if (order[0] == 'r' && order[1] == 'a') sidx = (rnd >> 8) % nsrc; else sidx = i % nsrc;
        ip->version = 4; ip->ihl = 5; ip->tos = 0;
        ip->tot_len = htons(40); ip->id = htons((uint16_t)i); ip->frag_off = htons(0x4000);
        ip->ttl = 64; ip->protocol = IPPROTO_TCP;
        ip->saddr = htonl(wide ? 0x0a430000u + (uint32_t)i : src_h + sidx);
        ip->daddr = htonl(dst_h);
        ip->check = 0; ip->check = htons(csum16(ip, 20, 0));
        th->source = htons(1024 + (i % 60000));
        th->dest = htons(dport);
        rnd = rnd * 1664525u + 1013904223u;
        th->seq = htonl(rnd);
        th->doff = 5; th->syn = 1; th->window = htons(64240);
        /* pseudo header checksum */
        uint8_t ph[12 + 20];
        memcpy(ph, &ip->saddr, 4); memcpy(ph + 4, &ip->daddr, 4);
        ph[8] = 0; ph[9] = IPPROTO_TCP; ph[10] = 0; ph[11] = 20;
        memcpy(ph + 12, th, 20);
        th->check = htons(csum16(ph, sizeof ph, 0));
    }

    struct mmsghdr msgs[MAXB];
    struct iovec iov[MAXB];
    memset(msgs, 0, sizeof msgs);
    for (int k = 0; k < MAXB; k++) {
        iov[k].iov_len = FRAME_LEN;
        msgs[k].msg_hdr.msg_iov = &iov[k];
        msgs[k].msg_hdr.msg_iovlen = 1;
    }

    signal(SIGINT, on_sig);
    signal(SIGTERM, on_sig);
    long long sent = 0, errors = 0;
    unsigned cursor = 0;
    double t0 = now_s(), tend = t0 + duration, t = t0;
    int b = batch;
    if (rate > 0) { /* smaller batches when pacing so the rate is smooth */
        int want = (int)(rate / 20000.0);
        if (want < 1) want = 1;
        if (want < b) b = want;
    }
    while (!stop) {
        if (count >= 0 && sent >= count) break;
        int nb = b;
        if (count >= 0 && count - sent < nb) nb = (int)(count - sent);
        if (rate > 0) {
            double due = t0 + sent / rate;
            while ((t = now_s()) < due) { if (due - t > 0.0002) usleep(50); }
        } else if ((sent & 0x3ff) < (unsigned)nb) {
            t = now_s();
        }
        if (t >= tend) break;
        for (int k = 0; k < nb; k++) {
            iov[k].iov_base = pool + (size_t)((cursor + k) & (POOL - 1)) * 64;
        }
        int r = sendmmsg(fd, msgs, nb, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            errors++;
            if (errno == ENOBUFS || errno == EAGAIN) { usleep(10); continue; }
            perror("sendmmsg");
            break;
        }
        sent += r;
        cursor += r;
        if (r < nb) errors++;
    }
    double el = now_s() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"sent\": %lld, \"errors\": %lld, \"elapsed\": %.4f, \"pps\": %.0f, \"utime\": %.3f, \"stime\": %.3f, \"nsrc\": %d, \"rate_target\": %.0f}\n",
           sent, errors, el, sent / el, ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6,
           ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6, nsrc, rate);
    return 0;
}
