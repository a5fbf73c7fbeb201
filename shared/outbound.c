/* outbound.c - see outbound.h. */
#include "outbound.h"

#include "bss_error.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bss_outbound {
    CURL *curl;
    int timeout_ms;
};

bss_outbound *bss_outbound_new(int timeout_ms)
{
    bss_outbound *out = calloc(1, sizeof *out);
    if (out == NULL)
        return NULL;
    out->curl = curl_easy_init();
    if (out->curl == NULL) {
        free(out);
        return NULL;
    }
    out->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    return out;
}

void bss_outbound_free(bss_outbound *out)
{
    if (out == NULL)
        return;
    curl_easy_cleanup(out->curl);
    free(out);
}

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr;
    (void)userdata;
    return size * nmemb;
}

int bss_outbound_post_json(bss_outbound *out, const char *url, const char *idempotency_key,
                           const char *json, char *err)
{
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (idempotency_key != NULL) {
        char key_header[320];
        snprintf(key_header, sizeof key_header, "Idempotency-Key: %s", idempotency_key);
        struct curl_slist *more = curl_slist_append(headers, key_header);
        if (more != NULL)
            headers = more;
    }
    CURL *c = out->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(json));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)out->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode cc = curl_easy_perform(c);
    curl_slist_free_all(headers);
    if (cc != CURLE_OK) {
        bss_seterr(err, "POST %s: %s", url, curl_easy_strerror(cc));
        return BSS_ERR_IO;
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300)
        return BSS_OK;
    bss_seterr(err, "POST %s: HTTP %ld", url, status);
    if (status >= 400 && status < 500 && status != 408 && status != 429)
        return BSS_ERR_INVALID;
    return BSS_ERR_IO;
}
