/* The service manager's readiness protocol (sd_notify(3)), spoken without
 * libsystemd: one datagram of "KEY=VALUE" lines to the AF_UNIX socket
 * named by $NOTIFY_SOCKET. Without that variable (not started by systemd
 * with Type=notify) every call does nothing and returns 0. */
#ifndef CALLVAULT_NOTIFY_H
#define CALLVAULT_NOTIFY_H

/* Sends `state` ("READY=1", "STOPPING=1", "STATUS=...", several separated
 * by newlines). Returns 0, or an errno if $NOTIFY_SOCKET is set but the
 * message could not be sent (the caller logs it; a daemon goes on). Safe
 * from any thread; never blocks for long (the socket is a datagram socket
 * opened per call). */
int notify_send(const char *state);

/* notify_send() of a formatted message, cut at 1024 bytes. */
int notify_sendf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
