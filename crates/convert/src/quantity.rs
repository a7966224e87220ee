//! Sizes and durations as nginx, HAProxy and Traefik write them, in bytes and milliseconds.

/// Splits `"10ms"` into `(10, "ms")`; the number is a non-negative integer.
fn number_unit(s: &str) -> Option<(u64, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    Some((s[..end].parse().ok()?, &s[end..]))
}

/// nginx size: `512`, `8k`, `10m`, `1g` (case-insensitive).
pub(crate) fn nginx_size(s: &str) -> Option<u64> {
    let (n, unit) = number_unit(s)?;
    let mul: u64 = match unit.to_ascii_lowercase().as_str() {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mul)
}

/// nginx time: `60`, `60s`, `500ms`, `1h 30m`, `1h30m` (no unit: seconds).
pub(crate) fn nginx_time_ms(s: &str) -> Option<u64> {
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let (n, after) = number_unit(rest)?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == ' ')
            .unwrap_or(after.len());
        let unit = &after[..unit_len];
        let mul: u64 = match unit {
            "" | "s" => 1000,
            "ms" => 1,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "M" => 2_592_000_000,
            "y" => 31_536_000_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(mul)?)?;
        rest = after[unit_len..].trim_start();
    }
    Some(total)
}

/// HAProxy time: `5000` (ms), `5s`, `100ms`, `1m`, `2h`, `1d`, `10us`.
pub(crate) fn haproxy_time_ms(s: &str) -> Option<u64> {
    let (n, unit) = number_unit(s)?;
    match unit {
        "" | "ms" => Some(n),
        "us" => Some(n.div_ceil(1000)),
        "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        _ => None,
    }
}

/// Go duration as Traefik reads it: `10s`, `1m30s`, `250ms`, `1.5s`; a bare integer is
/// seconds.
pub(crate) fn go_duration_ms(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return secs.checked_mul(1000);
    }
    let mut rest = s;
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..end].parse().ok()?;
        let after = &rest[end..];
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let mul = match &after[..unit_len] {
            "ns" => 1e-6,
            "us" | "µs" => 1e-3,
            "ms" => 1.0,
            "s" => 1000.0,
            "m" => 60_000.0,
            "h" => 3_600_000.0,
            _ => return None,
        };
        total += n * mul;
        rest = &after[unit_len..];
    }
    (total.is_finite() && (0.0..1e15).contains(&total)).then(|| total.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(nginx_size("10m"), Some(10 << 20));
        assert_eq!(nginx_size("8K"), Some(8192));
        assert_eq!(nginx_size("x"), None);
        assert_eq!(nginx_time_ms("60"), Some(60_000));
        assert_eq!(nginx_time_ms("1h 30m"), Some(5_400_000));
        assert_eq!(nginx_time_ms("500ms"), Some(500));
        assert_eq!(haproxy_time_ms("5000"), Some(5000));
        assert_eq!(haproxy_time_ms("50s"), Some(50_000));
        assert_eq!(go_duration_ms("1m30s"), Some(90_000));
        assert_eq!(go_duration_ms("1.5s"), Some(1500));
        assert_eq!(go_duration_ms("10"), Some(10_000));
        assert_eq!(go_duration_ms("abc"), None);
    }
}
