//! The I/O half of the lb core: read VPP's lb state into an [`ActualState`] and send
//! [`LbOp`]s, choosing per lb API generation the call that works (docs/vpp-wire.md §3.5), and
//! counting every call.

use std::collections::BTreeMap;
use std::net::IpAddr;

use tracing::warn;

use super::client::{Client, LbApiGeneration, VppError};
use super::counters::VppCounters;
use super::lb::{
    ActualState, LbConfValues, LbOp, ReadError, VipKey, WeightMode, parse_show_lb_vips_verbose,
    protocol_name,
};
use super::messages::lb::{
    DEFAULT_FLOWS_TABLE_LENGTH, LbAddDelAs, LbAddDelAsV2, LbAddDelVipV2, LbAsSetWeight, LbConf,
};
use super::wire::EncapType;

const SHOW_VIPS: &str = "show lb vips verbose";

/// Why VPP's state could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReadStateError {
    #[error(transparent)]
    Vpp(#[from] VppError),
    #[error(transparent)]
    Parse(#[from] ReadError),
    #[error("VPP has no usable lb plugin API (not loaded, or older than 23.02)")]
    NoLbPlugin,
}

/// Counts the outcome of one call.
async fn counted<T>(
    counters: &VppCounters,
    msg: &'static str,
    call: impl std::future::Future<Output = Result<T, VppError>>,
) -> Result<T, VppError> {
    let r = call.await;
    counters.api(msg, &r);
    r
}

/// The weight mode of the connected VPP, or an error when it has no lb API.
pub fn weight_mode(client: &Client) -> Result<WeightMode, ReadStateError> {
    match client.generation() {
        LbApiGeneration::Absent => Err(ReadStateError::NoLbPlugin),
        g => Ok(WeightMode::of(g)),
    }
}

/// Reads conf, VIPs, ASes and the CLI listing. `known_conf` stands in for `lb_conf_get`
/// on lb API 1.1.0 (the conf this connection last pushed, if any).
pub async fn read_actual(
    client: &Client,
    counters: &VppCounters,
    known_conf: Option<LbConfValues>,
) -> Result<ActualState, ReadStateError> {
    match weight_mode(client)? {
        WeightMode::Weighted => {
            let conf = counted(counters, "lb_conf_get", client.lb_conf_get()).await?;
            let vips = counted(counters, "lb_vip_dump", client.lb_vip_dump()).await?;
            let ases = counted(counters, "lb_as_v2_dump", client.lb_as_entries()).await?;
            // Only src-ip-sticky and the pool index come from the text: without it the
            // sync still works (it just cannot see a stickiness change).
            let text = counted(counters, "cli_inband", client.cli_inband(SHOW_VIPS)).await;
            let cli = match text.map_err(ReadStateError::from).and_then(|t| {
                parse_show_lb_vips_verbose(&t).map_err(|e| ReadStateError::Parse(e.into()))
            }) {
                Ok(cli) => Some(cli),
                Err(e) => {
                    warn!(error = %e, "cannot read `{SHOW_VIPS}`: src-ip-sticky unknown");
                    None
                }
            };
            Ok(ActualState::from_weighted(
                (&conf).into(),
                &vips,
                &ases,
                cli.as_deref(),
            ))
        }
        WeightMode::Legacy => {
            let vips = counted(counters, "lb_vip_dump", client.lb_vip_dump()).await?;
            let text = counted(counters, "cli_inband", client.cli_inband(SHOW_VIPS)).await?;
            let cli = parse_show_lb_vips_verbose(&text).map_err(ReadError::from)?;
            Ok(ActualState::from_legacy(known_conf, &vips, &cli)?)
        }
    }
}

/// The pool index of every live VIP, from `show lb vips verbose` alone: the only place
/// VPP tells it, so the counters need neither the conf nor the dumps.
pub async fn read_pool_indexes(
    client: &Client,
    counters: &VppCounters,
) -> Result<BTreeMap<VipKey, u32>, ReadStateError> {
    weight_mode(client)?;
    let text = counted(counters, "cli_inband", client.cli_inband(SHOW_VIPS)).await?;
    let cli = parse_show_lb_vips_verbose(&text).map_err(ReadError::from)?;
    Ok(cli
        .iter()
        .filter(|c| !c.removed)
        .map(|c| (c.key(), c.index))
        .collect())
}

/// Sends one op. Returns the VPP message used.
pub async fn apply(
    client: &Client,
    counters: &VppCounters,
    op: &LbOp,
    mode: WeightMode,
) -> Result<&'static str, VppError> {
    let (msg, result) = match op {
        LbOp::SetConf(c) => {
            let msg = LbConf {
                ip4_src_address: c.ip4_src_address,
                ip6_src_address: c.ip6_src_address,
                sticky_buckets_per_core: c.sticky_buckets_per_core,
                flow_timeout: c.flow_timeout,
            };
            ("lb_conf", client.lb_conf(&msg).await)
        }
        LbOp::AddVip {
            key,
            encap,
            src_ip_sticky,
        } if mode == WeightMode::Legacy && *encap != EncapType::GRE4 => {
            // 1.1.0 reads the encap without byte-swapping: only gre4 works over the API.
            let cmd = legacy_add_vip_cli(key, *encap, *src_ip_sticky)?;
            ("cli_inband", client.cli_inband(&cmd).await.map(drop))
        }
        LbOp::AddVip {
            key,
            encap,
            src_ip_sticky,
        } => {
            let mut msg = LbAddDelVipV2::add(key.prefix, key.protocol, key.port, *encap);
            msg.src_ip_sticky = *src_ip_sticky;
            ("lb_add_del_vip_v2", client.lb_add_del_vip_v2(&msg).await)
        }
        LbOp::DelVip { key } => {
            let msg = LbAddDelVipV2::delete(key.prefix, key.protocol, key.port);
            ("lb_add_del_vip_v2", client.lb_add_del_vip_v2(&msg).await)
        }
        LbOp::AddAs {
            key,
            address,
            weight,
        } => match mode {
            WeightMode::Weighted => {
                let msg = as_v2(key, *address, *weight, false, false);
                ("lb_add_del_as_v2", client.lb_add_del_as_v2(&msg).await)
            }
            WeightMode::Legacy => {
                let msg = as_v1(key, *address, false, false);
                ("lb_add_del_as", client.lb_add_del_as(&msg).await)
            }
        },
        LbOp::SetWeight {
            key,
            address,
            weight,
            flush,
        } => {
            let msg = LbAsSetWeight {
                pfx: key.prefix,
                protocol: key.protocol,
                port: key.port,
                as_address: *address,
                weight: *weight,
                is_flush: *flush,
            };
            ("lb_as_set_weight", client.lb_as_set_weight(&msg).await)
        }
        LbOp::DelAs {
            key,
            address,
            flush,
        } => match mode {
            WeightMode::Weighted => {
                let msg = as_v2(key, *address, 0, true, *flush);
                ("lb_add_del_as_v2", client.lb_add_del_as_v2(&msg).await)
            }
            WeightMode::Legacy => {
                let msg = as_v1(key, *address, true, *flush);
                ("lb_add_del_as", client.lb_add_del_as(&msg).await)
            }
        },
    };
    counters.api(msg, &result);
    result.map(|()| msg)
}

fn as_v2(key: &VipKey, address: IpAddr, weight: u8, is_del: bool, is_flush: bool) -> LbAddDelAsV2 {
    LbAddDelAsV2 {
        pfx: key.prefix,
        protocol: key.protocol,
        port: key.port,
        as_address: address,
        weight,
        is_del,
        is_flush,
    }
}

fn as_v1(key: &VipKey, address: IpAddr, is_del: bool, is_flush: bool) -> LbAddDelAs {
    LbAddDelAs {
        pfx: key.prefix,
        protocol: key.protocol,
        port: key.port,
        as_address: address,
        is_del,
        is_flush,
    }
}

/// `lb vip <prefix> [protocol tcp|udp port <n>] encap <e> new_len 1024 [src_ip_sticky]`
/// (docs/vpp-wire.md §3.6). The CLI takes the plain prefix (it adds the ip46 96 itself).
pub fn legacy_add_vip_cli(
    key: &VipKey,
    encap: EncapType,
    src_ip_sticky: bool,
) -> Result<String, VppError> {
    let encap = match encap {
        EncapType::GRE4 => "gre4",
        EncapType::GRE6 => "gre6",
        other => {
            return Err(VppError::Invalid(format!(
                "encap {} is not programmed by maglev",
                other.0
            )));
        }
    };
    let mut cmd = format!("lb vip {}", key.prefix);
    if key.port != 0 {
        match key.protocol {
            6 | 17 => cmd.push_str(&format!(
                " protocol {} port {}",
                protocol_name(key.protocol),
                key.port
            )),
            p => {
                return Err(VppError::Invalid(format!(
                    "VPP's CLI cannot create a per-port VIP for protocol {}",
                    protocol_name(p)
                )));
            }
        }
    }
    cmd.push_str(&format!(
        " encap {encap} new_len {DEFAULT_FLOWS_TABLE_LENGTH}"
    ));
    if src_ip_sticky {
        cmd.push_str(" src_ip_sticky");
    }
    Ok(cmd)
}

/// How many VIPs [`apply_all`] writes at once on lb API 1.2.0.
pub const WRITE_WINDOW: usize = 16;

/// The outcome of each op of [`apply_all`], by index into its `ops`: `None` = skipped
/// (an earlier op of the same VIP failed).
pub type Applied = Vec<Option<Result<&'static str, VppError>>>;

/// Sends `ops`: first those without a VIP (the conf), in order; then each VIP's ops in
/// their order, up to `window` VIPs at a time (several requests in flight, replies matched
/// by context) instead of one round trip after another. After a failed write the rest of
/// that VIP's ops are skipped (they would fail too, or act on a half-built VIP). Legacy
/// mode (lb 1.1.0) always goes one op at a time.
pub async fn apply_all(
    client: &Client,
    counters: &VppCounters,
    ops: &[LbOp],
    mode: WeightMode,
    window: usize,
) -> Applied {
    apply_all_until(client, counters, ops, mode, window, || false).await
}

/// [`apply_all`] that starts no further VIP once `stop()` says so (shutdown): the VIPs in
/// flight finish their ops (a re-create is never cut between its delete and its add), the
/// others are left as they are (`None`).
pub async fn apply_all_until(
    client: &Client,
    counters: &VppCounters,
    ops: &[LbOp],
    mode: WeightMode,
    window: usize,
    stop: impl Fn() -> bool,
) -> Applied {
    use futures_util::StreamExt;

    let mut out: Applied = (0..ops.len()).map(|_| None).collect();
    let mut chains: Vec<(VipKey, Vec<usize>)> = Vec::new();
    let mut index_of: std::collections::HashMap<VipKey, usize> = Default::default();
    for (i, op) in ops.iter().enumerate() {
        match op.vip() {
            None => out[i] = Some(apply(client, counters, op, mode).await),
            Some(key) => {
                let c = *index_of.entry(key).or_insert_with(|| {
                    chains.push((key, Vec::new()));
                    chains.len() - 1
                });
                chains[c].1.push(i);
            }
        }
    }
    let window = if mode == WeightMode::Legacy {
        1
    } else {
        window.max(1)
    };
    let chain = |indices: Vec<usize>| async move {
        let mut done = Vec::with_capacity(indices.len());
        for i in indices {
            let r = apply(client, counters, &ops[i], mode).await;
            let failed = r.is_err();
            done.push((i, r));
            if failed {
                break;
            }
        }
        done
    };
    // Lazily pulled by `buffer_unordered`: `stop` is asked before each VIP starts.
    let started = chains
        .into_iter()
        .take_while(|_| !stop())
        .map(|(_, c)| chain(c));
    let mut results = futures_util::stream::iter(started).buffer_unordered(window);
    while let Some(done) = results.next().await {
        for (i, r) in done {
            out[i] = Some(r);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vpp::wire::Prefix;

    fn key(addr: &str, len: u8, protocol: u8, port: u16) -> VipKey {
        VipKey::new(Prefix::new(addr.parse().unwrap(), len), protocol, port)
    }

    #[test]
    fn legacy_cli_commands() {
        assert_eq!(
            legacy_add_vip_cli(&key("2001:db8::1", 128, 6, 443), EncapType::GRE6, true).unwrap(),
            "lb vip 2001:db8::1/128 protocol tcp port 443 encap gre6 new_len 1024 src_ip_sticky"
        );
        assert_eq!(
            legacy_add_vip_cli(&key("192.0.2.1", 32, 17, 0), EncapType::GRE6, false).unwrap(),
            "lb vip 192.0.2.1/32 encap gre6 new_len 1024"
        );
        assert!(
            legacy_add_vip_cli(&key("192.0.2.1", 32, 255, 80), EncapType::GRE6, false).is_err()
        );
        assert!(legacy_add_vip_cli(&key("192.0.2.1", 32, 6, 80), EncapType::NAT4, false).is_err());
    }
}
