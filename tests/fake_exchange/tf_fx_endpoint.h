/* tf_fx_endpoint: the ids of the mimicked endpoints (used by faults and stats) and the venue
 * each belongs to (which decides error bodies and headers). */
#ifndef TF_FX_ENDPOINT_H
#define TF_FX_ENDPOINT_H

enum tf_fx_ep {
    TF_FX_EP_BITHUMB_TICKER,
    TF_FX_EP_BITHUMB_ORDERBOOK,
    TF_FX_EP_BINANCE_BOOK_TICKER,
    TF_FX_EP_BINANCE_PREMIUM_INDEX,
    TF_FX_EP_BINANCE_TICKER_PRICE,
    TF_FX_EP_DUNAMU_FOREX,
    TF_FX_EP_ER_API_LATEST,
    TF_FX_EP_EXCHANGERATE_HOST_LIVE,
    TF_FX_EP_KOREAEXIM_EXCHANGE,
    TF_FX_EP_UPBIT_TICKER,
    TF_FX_EP_OKX_TICKER,
    TF_FX_EP_OKX_TICKERS,
    TF_FX_EP_BYBIT_TICKERS,
    TF_FX_EP_COUNT
};

enum tf_fx_venue {
    TF_FX_VENUE_BITHUMB,
    TF_FX_VENUE_BINANCE,
    TF_FX_VENUE_DUNAMU,
    TF_FX_VENUE_ER_API,
    TF_FX_VENUE_EXCHANGERATE_HOST,
    TF_FX_VENUE_KOREAEXIM,
    TF_FX_VENUE_UPBIT,
    TF_FX_VENUE_OKX,
    TF_FX_VENUE_BYBIT
};

const char *tf_fx_ep_name(enum tf_fx_ep ep);
enum tf_fx_venue tf_fx_ep_venue(enum tf_fx_ep ep);
const char *tf_fx_ep_host(enum tf_fx_ep ep);         /* the real host, for error pages */
const char *tf_fx_ep_content_type(enum tf_fx_ep ep); /* as the real venue labels JSON */
int tf_fx_ep_find(const char *name);                 /* -1 if unknown */

/* Binance request weight (NOTES.md 2a): bulk calls cost more than single-symbol ones. */
int tf_fx_ep_binance_weight(enum tf_fx_ep ep, int has_symbol);

#endif
