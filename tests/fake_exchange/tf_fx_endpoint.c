/* tf_fx_endpoint: endpoint ids, names and venues. */
#include "tf_fx_endpoint.h"

#include <string.h>

static const struct {
    const char *name;
    enum tf_fx_venue venue;
} tf_fx_eps[TF_FX_EP_COUNT] = {
    [TF_FX_EP_BITHUMB_TICKER] = {"bithumb.ticker", TF_FX_VENUE_BITHUMB},
    [TF_FX_EP_BITHUMB_ORDERBOOK] = {"bithumb.orderbook", TF_FX_VENUE_BITHUMB},
    [TF_FX_EP_BINANCE_BOOK_TICKER] = {"binance.book_ticker", TF_FX_VENUE_BINANCE},
    [TF_FX_EP_BINANCE_PREMIUM_INDEX] = {"binance.premium_index", TF_FX_VENUE_BINANCE},
    [TF_FX_EP_BINANCE_TICKER_PRICE] = {"binance.ticker_price", TF_FX_VENUE_BINANCE},
    [TF_FX_EP_DUNAMU_FOREX] = {"dunamu.forex", TF_FX_VENUE_DUNAMU},
    [TF_FX_EP_ER_API_LATEST] = {"er_api.latest", TF_FX_VENUE_ER_API},
    [TF_FX_EP_EXCHANGERATE_HOST_LIVE] = {"exchangerate_host.live", TF_FX_VENUE_EXCHANGERATE_HOST},
    [TF_FX_EP_KOREAEXIM_EXCHANGE] = {"koreaexim.exchange", TF_FX_VENUE_KOREAEXIM},
    [TF_FX_EP_UPBIT_TICKER] = {"upbit.ticker", TF_FX_VENUE_UPBIT},
    [TF_FX_EP_OKX_TICKER] = {"okx.ticker", TF_FX_VENUE_OKX},
    [TF_FX_EP_OKX_TICKERS] = {"okx.tickers", TF_FX_VENUE_OKX},
    [TF_FX_EP_BYBIT_TICKERS] = {"bybit.tickers", TF_FX_VENUE_BYBIT},
};

const char *tf_fx_ep_name(enum tf_fx_ep ep)
{
    return (ep >= 0 && ep < TF_FX_EP_COUNT) ? tf_fx_eps[ep].name : "?";
}

enum tf_fx_venue tf_fx_ep_venue(enum tf_fx_ep ep)
{
    return tf_fx_eps[ep].venue;
}

const char *tf_fx_ep_host(enum tf_fx_ep ep)
{
    static const char *const hosts[] = {
        [TF_FX_VENUE_BITHUMB] = "api.bithumb.com",
        [TF_FX_VENUE_BINANCE] = "fapi.binance.com",
        [TF_FX_VENUE_DUNAMU] = "quotation-api-cdn.dunamu.com",
        [TF_FX_VENUE_ER_API] = "open.er-api.com",
        [TF_FX_VENUE_EXCHANGERATE_HOST] = "api.exchangerate.host",
        [TF_FX_VENUE_KOREAEXIM] = "oapi.koreaexim.go.kr",
        [TF_FX_VENUE_UPBIT] = "api.upbit.com",
        [TF_FX_VENUE_OKX] = "www.okx.com",
        [TF_FX_VENUE_BYBIT] = "api.bybit.com",
    };
    return hosts[tf_fx_ep_venue(ep)];
}

const char *tf_fx_ep_content_type(enum tf_fx_ep ep)
{
    /* Spellings from the *.headers.txt fixtures. */
    switch (tf_fx_ep_venue(ep)) {
    case TF_FX_VENUE_BITHUMB:
        return "application/json; charset=utf-8";
    case TF_FX_VENUE_UPBIT:
        return "application/json;charset=UTF-8";
    default:
        return "application/json";
    }
}

int tf_fx_ep_find(const char *name)
{
    if (name == NULL) {
        return -1;
    }
    for (int i = 0; i < TF_FX_EP_COUNT; i++) {
        if (strcmp(name, tf_fx_eps[i].name) == 0) {
            return i;
        }
    }
    return -1;
}

int tf_fx_ep_binance_weight(enum tf_fx_ep ep, int has_symbol)
{
    switch (ep) {
    case TF_FX_EP_BINANCE_BOOK_TICKER:
        return has_symbol ? 2 : 5;
    case TF_FX_EP_BINANCE_PREMIUM_INDEX:
        return has_symbol ? 1 : 10;
    case TF_FX_EP_BINANCE_TICKER_PRICE:
        return has_symbol ? 1 : 2;
    default:
        return 0;
    }
}
