/* An LD_PRELOAD shim for wrk, used by bench/proxy_bench.py for its TLS rows.
 *
 * wrk keeps one SSL object per connection slot; when a connection ends (with `Connection:
 * close`, after every request) it calls SSL_shutdown and SSL_clear and reconnects with the same
 * object, and SSL_clear keeps the session of a cleanly shut down connection: so every new
 * connection offers the last session ticket and the server resumes it (an abbreviated handshake,
 * no certificate, no signature; in TLS 1.3 still an X25519 exchange). This shim wraps SSL_clear
 * (which OpenSSL also calls by itself when a handshake starts: those calls are not counted):
 *
 *   - it counts the connections wrk ends and how many of them were resumed, and prints
 *     "TLSSHIM closed=N resumed=M fresh=0|1" to stderr when wrk exits;
 *   - with WRK_TLS_FRESH=1 it drops the session first, so that the next connection makes a
 *     full handshake (certificate, ECDSA signature, key exchange), as a new client would.
 *
 * Built per run by the harness: cc -shared -fPIC -O2 -o wrk_tls_shim.so wrk_tls_shim.c -ldl
 * (the SSL_* functions it calls are found in wrk's own libssl at run time).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct ssl_st SSL;
typedef struct ssl_session_st SSL_SESSION;
extern int SSL_session_reused(const SSL *s);
extern int SSL_set_session(SSL *s, SSL_SESSION *session);
extern int SSL_in_before(const SSL *s);

static unsigned long closed, resumed;
static int fresh = -1;

int SSL_clear(SSL *s) {
    static int (*real_clear)(SSL *);
    if (real_clear == NULL)
        real_clear = (int (*)(SSL *))dlsym(RTLD_NEXT, "SSL_clear");
    if (fresh < 0) {
        const char *v = getenv("WRK_TLS_FRESH");
        fresh = v != NULL && v[0] == '1';
    }
    if (!SSL_in_before(s)) { /* wrk ending a connection, not OpenSSL starting a handshake */
        __atomic_add_fetch(&closed, 1, __ATOMIC_RELAXED);
        if (SSL_session_reused(s))
            __atomic_add_fetch(&resumed, 1, __ATOMIC_RELAXED);
    }
    if (fresh)
        SSL_set_session(s, NULL); /* the next SSL_connect starts without a session to offer */
    return real_clear(s);
}

__attribute__((destructor)) static void report(void) {
    fprintf(stderr, "TLSSHIM closed=%lu resumed=%lu fresh=%d\n", closed, resumed, fresh > 0);
}
