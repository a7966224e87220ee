//! `limit_req_zone` / `limit_req` → rate-limit filters, `limit_conn` → the per-client
//! connection limit.

use std::collections::HashMap;

use crate::model::RateLimit;
use crate::nginx::directives;
use crate::nginx::{Cx, Node};
use crate::report::ItemId;

/// One `limit_req_zone`.
#[derive(Debug)]
struct Zone {
    id: ItemId,
    line: usize,
    /// What the bucket is kept per, or why it cannot be.
    key: Result<Vec<String>, String>,
    /// Requests per second, or why it cannot be.
    rate: Result<u64, String>,
}

/// The zones of the `http` context and the filters made from them.
#[derive(Debug, Default)]
pub(crate) struct Zones {
    zones: HashMap<String, Zone>,
    /// (zone, burst, delay) → filter ID.
    filters: HashMap<(String, u64, bool), String>,
    /// Filters per zone, to warn when one zone becomes several buckets.
    per_zone: HashMap<String, usize>,
}

fn key(k: &str) -> Result<Vec<String>, String> {
    match k {
        "$binary_remote_addr" | "$remote_addr" => Ok(vec!["client-ip".to_owned()]),
        k => {
            if let Some(h) = k.strip_prefix("$http_")
                && !h.contains('$')
            {
                return Ok(vec![format!("header:{}", h.replace('_', "-"))]);
            }
            if let Some(c) = k.strip_prefix("$cookie_")
                && !c.contains('$')
            {
                return Ok(vec![format!("cookie:{c}")]);
            }
            Err(format!(
                "Zentinel keys buckets on the client address, a header or a cookie, not `{k}`"
            ))
        }
    }
}

fn rate(r: &str) -> Result<u64, String> {
    let bad = || format!("`rate={r}` is not N r/s or N r/m");
    if let Some(n) = r.strip_suffix("r/s") {
        return n.parse::<u64>().ok().filter(|n| *n >= 1).ok_or_else(bad);
    }
    if let Some(n) = r.strip_suffix("r/m") {
        let n = n.parse::<u64>().map_err(|_| bad())?;
        if n % 60 == 0 && n > 0 {
            return Ok(n / 60);
        }
        return Err(format!(
            "`rate={r}` is not a whole number of requests per second, which is what Zentinel counts"
        ));
    }
    Err(bad())
}

impl Zones {
    pub(crate) fn collect(cx: &mut Cx<'_>, nodes: &[&Node<'_>]) -> Self {
        let mut out = Zones::default();
        for n in nodes.iter().filter(|n| n.name() == "limit_req_zone") {
            let mut name = None;
            let mut r = Err("no `rate=`".to_owned());
            for a in n.d.args.iter().skip(1).map(|a| a.text.as_str()) {
                if let Some(z) = a.strip_prefix("zone=") {
                    name = z.split(':').next().map(str::to_owned);
                } else if let Some(v) = a.strip_prefix("rate=") {
                    r = rate(v);
                }
            }
            let Some(name) = name else {
                cx.ledger.not_mapped(n.id, "no `zone=`");
                continue;
            };
            let k = n.arg(0).map_or(Err("no key".to_owned()), key);
            out.zones.insert(
                name,
                Zone {
                    id: n.id,
                    line: n.d.line,
                    key: k,
                    rate: r,
                },
            );
            cx.ledger
                .fallback(n.id, "no `limit_req` of a proxied location uses this zone");
        }
        out
    }

    /// The filter for one `limit_req` in a route, or why there is none.
    #[expect(
        clippy::too_many_lines,
        reason = "one limit_req: its zone, bucket and caveats; to be split"
    )]
    pub(crate) fn filter(
        &mut self,
        cx: &mut Cx<'_>,
        n: &Node<'_>,
        status: Option<&str>,
    ) -> Option<String> {
        let mut zone = None;
        let mut burst = 0u64;
        let mut nodelay = false;
        let mut two_stage = false;
        for a in n.d.args.iter().map(|a| a.text.as_str()) {
            if let Some(z) = a.strip_prefix("zone=") {
                zone = Some(z.to_owned());
            } else if let Some(b) = a.strip_prefix("burst=") {
                burst = b.parse().unwrap_or(0);
            } else if a == "nodelay" {
                nodelay = true;
            } else if a.starts_with("delay=") {
                two_stage = true;
            }
        }
        let Some(zname) = zone else {
            cx.ledger.not_mapped(n.id, "no `zone=`");
            return None;
        };
        let Some(z) = self.zones.get(&zname) else {
            cx.ledger.not_mapped(
                n.id,
                format!("zone \"{zname}\" is not defined by a `limit_req_zone`"),
            );
            return None;
        };
        let (zid, zline) = (z.id, z.line);
        let (keys, rps) = match (&z.key, &z.rate) {
            (Ok(k), Ok(r)) => (k.clone(), *r),
            (Err(why), _) | (_, Err(why)) => {
                let why = why.clone();
                cx.ledger.not_mapped(zid, why.clone());
                cx.ledger
                    .not_mapped(n.id, format!("its zone cannot be converted: {why}"));
                if let Some(s) = directives::suggestion("limit_req") {
                    cx.ledger.suggest(n.id, s);
                    cx.ledger.suggest(zid, s);
                }
                return None;
            }
        };
        // nginx's burst counts requests beyond the first; Zentinel's bucket holds them all.
        let bucket = burst.saturating_add(1).min(10_000_000);
        let delay = !nodelay;
        let key = (zname.clone(), bucket, delay);
        let id = match self.filters.get(&key) {
            Some(id) => id.clone(),
            None => {
                let id = cx.ids.fresh(&zname);
                cx.draft.filters.push(RateLimit {
                    id: id.clone(),
                    origin: format!(
                        "nginx: limit_req_zone {zname} (line {zline}), burst={burst}{}",
                        if nodelay { " nodelay" } else { "" }
                    ),
                    requests_per_second: rps.min(10_000_000),
                    burst: bucket,
                    key: keys,
                    delay,
                });
                self.filters.insert(key, id.clone());
                *self.per_zone.entry(zname.clone()).or_default() += 1;
                id
            }
        };
        let mut caveats = Vec::new();
        if delay {
            caveats.push("without `nodelay`: `on-limit \"delay\"` waits up to 1 s for a token instead of queueing `burst` requests");
        }
        if two_stage {
            caveats.push("`delay=` two-stage limiting is not supported");
        }
        if status != Some("429") {
            caveats.push("rejected requests get 429 with Retry-After (nginx's default is 503)");
        }
        if caveats.is_empty() {
            cx.ledger.mapped(n.id);
        } else {
            cx.ledger.caveat(n.id, caveats.join("; "));
        }
        if self.per_zone.get(&zname).copied().unwrap_or(0) > 1 {
            cx.ledger.caveat(
                zid,
                "used with several bursts: each becomes its own filter with its own buckets",
            );
        } else {
            cx.ledger.caveat(
                zid,
                "a rate-limit filter; the zone size is replaced by `max-keys` (100000 buckets)",
            );
        }
        Some(id)
    }

    pub(crate) fn finish(&self, _cx: &mut Cx<'_>) {}
}

/// `limit_conn ZONE N` with a zone keyed on the client address → per-client connection cap.
pub(crate) fn limit_conn(cx: &mut Cx<'_>, n: &Node<'_>) {
    match n.arg(1).and_then(|v| v.parse::<u64>().ok()) {
        Some(k) if (1..=1_000_000).contains(&k) => {
            cx.draft.limits.max_connections_per_client = Some(k);
            cx.ledger.caveat(
                n.id,
                "limits { max-connections-per-client }: open connections per client address, for all listeners (check that its `limit_conn_zone` keys on $binary_remote_addr)",
            );
        }
        _ => cx
            .ledger
            .not_mapped(n.id, "not a connection count in 1..=1000000"),
    }
}
