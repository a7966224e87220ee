//! Why the nginx directives Zentinel has no equivalent for are not mapped, and what to use
//! instead for the security ones (agents and filters).

use super::Node;
use crate::report::Ledger;

const SERVES_FILES: &str = "serving files from disk: Zentinel is a proxy and serves no files";
pub(super) const SECURITY: &str =
    "a security control: Zentinel runs these as agents or filters, not as proxy directives";
const PROXY_OWN: &str = "the proxy handles this itself and has no setting for it";

/// The reason a known directive is not mapped.
#[expect(clippy::too_many_lines, reason = "a lookup table")]
fn reason(name: &str) -> Option<&'static str> {
    let r = match name {
        "root"
        | "alias"
        | "index"
        | "try_files"
        | "autoindex"
        | "autoindex_exact_size"
        | "autoindex_localtime"
        | "sendfile"
        | "sendfile_max_chunk"
        | "tcp_nopush"
        | "aio"
        | "directio"
        | "open_file_cache"
        | "open_file_cache_valid"
        | "open_file_cache_errors"
        | "etag"
        | "expires"
        | "default_type"
        | "types"
        | "charset"
        | "source_charset"
        | "disable_symlinks" => SERVES_FILES,
        "internal" => {
            "an internal location is only reached by nginx's internal redirects and subrequests; it gets no route, so it stays unreachable from outside"
        }
        "gzip" | "gzip_vary" | "gzip_proxied" | "gzip_comp_level" | "gzip_buffers"
        | "gzip_http_version" | "gzip_types" | "gzip_min_length" | "gzip_disable"
        | "gzip_static" | "brotli" | "brotli_types" => {
            "response compression: Zentinel passes bodies through unchanged"
        }
        "tcp_nodelay"
        | "types_hash_max_size"
        | "types_hash_bucket_size"
        | "server_names_hash_bucket_size"
        | "server_names_hash_max_size"
        | "variables_hash_max_size"
        | "reset_timedout_connection"
        | "lingering_close"
        | "lingering_time"
        | "lingering_timeout"
        | "client_body_buffer_size"
        | "client_header_buffer_size"
        | "client_body_temp_path"
        | "proxy_temp_path"
        | "proxy_buffering"
        | "proxy_buffers"
        | "proxy_buffer_size"
        | "proxy_busy_buffers_size"
        | "proxy_max_temp_file_size"
        | "proxy_request_buffering"
        | "output_buffers"
        | "postpone_output"
        | "send_timeout"
        | "keepalive_requests"
        | "server_name_in_redirect"
        | "port_in_redirect"
        | "absolute_redirect"
        | "msie_padding"
        | "chunked_transfer_encoding"
        | "underscores_in_headers"
        | "ignore_invalid_headers"
        | "merge_slashes"
        | "proxy_ignore_client_abort" => PROXY_OWN,
        "server_tokens" => "Zentinel sends no version banner",
        "ssl_ciphers" | "ssl_ecdh_curve" | "ssl_dhparam" | "ssl_conf_command" => {
            "Zentinel offers only AEAD cipher suites with rustls' curves; they are not configurable"
        }
        "ssl_prefer_server_ciphers" => "rustls chooses the cipher suite; not configurable",
        "ssl_session_cache"
        | "ssl_session_timeout"
        | "ssl_session_tickets"
        | "ssl_session_ticket_key"
        | "ssl_buffer_size"
        | "ssl_early_data" => "TLS session handling is rustls' own; not configurable",
        "ssl_stapling"
        | "ssl_stapling_verify"
        | "ssl_trusted_certificate"
        | "ssl_stapling_file" => "OCSP stapling is not supported",
        "ssl_verify_depth" | "ssl_crl" => {
            "client certificate chains are verified with rustls' defaults"
        }
        "log_format" | "log_not_found" | "log_subrequest" | "open_log_file_cache" => {
            "Zentinel's access log has a fixed JSON/text format"
        }
        "error_page" | "recursive_error_pages" | "proxy_intercept_errors" => {
            "Zentinel serves its own error responses; custom error pages are not supported"
        }
        "rewrite" | "rewrite_log" | "set" | "break" | "uninitialized_variable_warn" => {
            "URL rewriting and variables are not supported: requests are forwarded with their path"
        }
        "return" => {
            "Zentinel has no static or redirect response: every route proxies to an upstream"
        }
        "proxy_redirect" => "Location headers of responses are passed through unchanged",
        "proxy_cookie_domain" | "proxy_cookie_path" | "proxy_cookie_flags" => {
            "cookies are passed through unchanged"
        }
        "proxy_cache"
        | "proxy_cache_path"
        | "proxy_cache_valid"
        | "proxy_cache_key"
        | "proxy_cache_bypass"
        | "proxy_no_cache"
        | "proxy_cache_use_stale"
        | "proxy_cache_lock"
        | "proxy_cache_methods"
        | "proxy_cache_min_uses"
        | "proxy_cache_revalidate"
        | "proxy_cache_background_update"
        | "add_trailer" => "Zentinel does not cache responses",
        "proxy_next_upstream" | "proxy_next_upstream_tries" | "proxy_next_upstream_timeout" => {
            "retries are configured per route in `retry { … }` with other conditions; set them by hand"
        }
        "proxy_pass_request_headers"
        | "proxy_pass_request_body"
        | "proxy_pass_header"
        | "proxy_method"
        | "proxy_set_body"
        | "proxy_store"
        | "proxy_store_access"
        | "proxy_bind"
        | "proxy_socket_keepalive"
        | "proxy_headers_hash_max_size"
        | "proxy_headers_hash_bucket_size"
        | "proxy_ignore_headers" => "no Zentinel equivalent for this proxying detail",
        "resolver" | "resolver_timeout" => {
            "Zentinel resolves host-name targets with the system resolver (`dns-refresh-ms` sets how often)"
        }
        "fastcgi_pass" | "uwsgi_pass" | "scgi_pass" | "grpc_pass" | "memcached_pass" => {
            "only HTTP upstreams are supported (no FastCGI, uwsgi, SCGI, gRPC or memcached passing)"
        }
        "fastcgi_param"
        | "fastcgi_index"
        | "fastcgi_split_path_info"
        | "uwsgi_param"
        | "scgi_param"
        | "fastcgi_read_timeout"
        | "fastcgi_buffers"
        | "fastcgi_buffer_size" => "only HTTP upstreams are supported",
        "map" | "geo" | "split_clients" | "map_hash_bucket_size" | "map_hash_max_size" => {
            "variables are not supported"
        }
        "if" => "conditional configuration (`if`) is not supported",
        "limit_except" => {
            "method restrictions belong in a route's `matches { method … }`; write them by hand"
        }
        "limit_rate" | "limit_rate_after" => "bandwidth limits are not supported",
        "real_ip_header" | "real_ip_recursive" => {
            "Zentinel reads the client address from X-Forwarded-For of `server { trusted-proxies }` peers"
        }
        "satisfy" => "access rules belong in agents; see the suggestions for auth and allow/deny",
        "ssi" | "sub_filter" | "sub_filter_once" | "sub_filter_types" | "addition_types"
        | "xslt_stylesheet" | "image_filter" => "response bodies are passed through unchanged",
        "stub_status" => "metrics are served on the admin listener (`observability { metrics }`)",
        "http2_max_concurrent_streams"
        | "http2_idle_timeout"
        | "http2_recv_timeout"
        | "http2_push"
        | "http2_push_preload" => "HTTP/2 tuning is not configurable",
        "user"
        | "pid"
        | "worker_rlimit_nofile"
        | "worker_cpu_affinity"
        | "worker_priority"
        | "daemon"
        | "master_process"
        | "lock_file"
        | "working_directory"
        | "env"
        | "timer_resolution"
        | "pcre_jit"
        | "thread_pool"
        | "worker_shutdown_timeout" => {
            "process management (user, PID file, daemon mode) belongs to the service manager"
        }
        "load_module" => "Zentinel has no dynamic modules; extensions are agents",
        "worker_connections" | "multi_accept" | "use" | "accept_mutex" | "accept_mutex_delay" => {
            "connection processing is the proxy's own; `limits { max-connections }` caps client connections"
        }
        _ => return None,
    };
    Some(r)
}

/// What to use instead of a security directive.
pub(super) fn suggestion(name: &str) -> Option<&'static str> {
    let s = match name {
        "auth_basic"
        | "auth_basic_user_file"
        | "auth_jwt"
        | "auth_jwt_key_file"
        | "auth_digest"
        | "auth_digest_user_file" => {
            "an authentication agent in `agents { … }` (events \"request-headers\"), named in the route's `filters`"
        }
        "auth_request" | "auth_request_set" => {
            "an authentication agent (events \"request-headers\") replaces the auth subrequest; name it in the route's `filters`"
        }
        "modsecurity"
        | "modsecurity_rules_file"
        | "modsecurity_rules"
        | "modsecurity_transaction_id"
        | "naxsi_rules"
        | "include_naxsi" => {
            "a WAF agent in `agents { … }` (events \"request-headers\" \"request-body\"), named in the route's `filters`"
        }
        "allow" | "deny" => {
            "the denylist agent (agents/denylist) with a `client-ip` rule, named in the route's `filters`"
        }
        "limit_req" | "limit_req_zone" => {
            "a rate-limit filter: filters { filter \"per-ip\" { type \"rate-limit\"; requests-per-second 10; burst 20; } }"
        }
        _ => return None,
    };
    Some(s)
}

/// `include`: never followed.
pub(super) fn include(ledger: &mut Ledger, n: &Node<'_>) {
    ledger.not_mapped(
        n.id,
        "`include` is not followed: the converter reads one text; paste the included file's directives in its place",
    );
}

/// A directive no mapping pass claimed: its known reason, or the generic one; a security
/// directive also gets its suggestion.
pub(super) fn generic(ledger: &mut Ledger, n: &Node<'_>) {
    if n.name() == "include" {
        include(ledger, n);
        return;
    }
    if let Some(s) = suggestion(n.name()) {
        ledger.not_mapped(n.id, SECURITY);
        ledger.suggest(n.id, s);
    } else if let Some(r) = reason(n.name()) {
        ledger.not_mapped(n.id, r);
    } else {
        ledger.not_mapped(n.id, "no Zentinel equivalent");
    }
    if !n.children.is_empty() {
        inside_unmapped(ledger, &n.children, n.name());
    }
}

/// Every descendant of a block that is not mapped.
pub(super) fn inside_unmapped(ledger: &mut Ledger, children: &[Node<'_>], parent: &str) {
    for c in children {
        if let Some(s) = suggestion(c.name()) {
            ledger.suggest(c.id, s);
        }
        ledger.not_mapped(c.id, format!("inside `{parent}`, which is not mapped"));
        inside_unmapped(ledger, &c.children, parent);
    }
}

/// Marks every undecided directive of a block as not mapped (after the mapping passes ran),
/// with the directive's own reason when it has one.
pub(super) fn leftovers(ledger: &mut Ledger, children: &[&Node<'_>], why: &str) {
    for c in children {
        if ledger.is_decided(c.id) {
            continue;
        }
        let own = match suggestion(c.name()) {
            Some(s) => {
                ledger.suggest(c.id, s);
                Some(SECURITY)
            }
            None => reason(c.name()),
        };
        ledger.fallback(c.id, own.unwrap_or(why));
    }
}
