/*
 * Raw HTTP/1.1 over a loopback socket, for what libcurl hides from a test: the exact bytes of
 * an answer (a HEAD answer that carries content, the header fields as sent). One request per
 * connection ("Connection: close").
 */
#ifndef TF_RAWHTTP_H
#define TF_RAWHTTP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct tft_raw_response {
    int status;      /* from the status line; 0 when none arrived */
    char *head;      /* status line and header lines, each ending in "\r\n"; malloc'd */
    char *body;      /* every byte after the blank line; malloc'd, NUL-terminated */
    size_t body_len; /* bytes in body */
    bool ended;      /* the server closed the connection (false: timeout_ms passed first) */
} tft_raw_response;

/* Sends `method path HTTP/1.1` with Host, Connection: close and `extra_headers` (complete
 * "Name: value\r\n" lines, or NULL) to 127.0.0.1:port, and reads until the server closes or
 * timeout_ms passes (an endless stream: whatever came by then). False when nothing that starts
 * with a status line and a complete header block arrived. Free with tft_raw_free. */
bool tft_raw_request(int port, const char *method, const char *path, const char *extra_headers,
                     int timeout_ms, tft_raw_response *out);
void tft_raw_free(tft_raw_response *r);

/* A connection to 127.0.0.1:port (-1 when refused): the caller closes it. */
int tft_raw_connect(int port);
/* Sends the request like tft_raw_request but keeps the connection open (an event stream held
 * by the test): reads until the header block is complete (out->status, out->head; out->body is
 * what else came) and returns the connection, or -1. The caller closes it and frees out. */
int tft_raw_open(int port, const char *method, const char *path, const char *extra_headers,
                 int timeout_ms, tft_raw_response *out);

/* The value of header `name` (case-insensitive) in r->head, copied into out; false if absent. */
bool tft_raw_header(const tft_raw_response *r, const char *name, char *out, size_t size);

/* HEAD mirrors GET (RFC 9110 9.3.2): the same status and header fields with the same values,
 * and no content. Date is not compared, nor the fields named in `volatile_fields` (NULL-ended,
 * may be NULL: values that change between the two requests, such as a Content-Length of data
 * that moves on); Transfer-Encoding may be left out of the HEAD answer (RFC 9112 6.1).
 * False with the reason in `why`. */
bool tft_raw_head_matches_get(int port, const char *path, const char *extra_headers,
                              const char *const *volatile_fields, char *why, size_t why_size);

#endif
