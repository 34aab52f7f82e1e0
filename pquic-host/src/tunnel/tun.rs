//! The IP tunnel (`--tun NAME --address CIDR`, Linux): every IP packet the
//! TUN device gives us goes into the connection as one QUIC datagram under
//! the reserved flow id [`TUN_FLOW`], and every datagram of that flow is
//! written to the device. Routes are the operator's; the device gets the
//! address and its prefix route.

#![forbid(unsafe_code)]

use std::net::IpAddr;
use std::sync::Arc;

use tun_rs::{AsyncDevice, DeviceBuilder};

use super::{split, worth_logging, Counters, FlowId};
use crate::error::{Error, Result};

/// The flow id of IP packets on a TUN tunnel.
pub const TUN_FLOW: FlowId = 0;

/// An address with its prefix length, `10.99.0.1/24` or `fd99::1/64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The device's address.
    pub address: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        let (address, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("{text}: an address with a prefix length, like 10.99.0.1/24"))?;
        let address: IpAddr = address
            .parse()
            .map_err(|_| format!("{text}: {address} is not an IP address"))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("{text}: the prefix length is 0 to {max}"))?;
        Ok(Cidr { address, prefix })
    }
}

/// Creates the TUN device `name` with `address` and an MTU of `mtu`.
pub fn open(name: &str, address: Cidr, mtu: u16) -> Result<Arc<AsyncDevice>> {
    let builder = DeviceBuilder::new().name(name).mtu(mtu);
    let builder = match address.address {
        IpAddr::V4(v4) => builder.ipv4(v4, address.prefix, None),
        IpAddr::V6(v6) => builder.ipv6(v6, address.prefix),
    };
    let device = builder.build_async().map_err(|source| Error::Tun {
        name: name.to_string(),
        source,
    })?;
    Ok(Arc::new(device))
}

/// Carries IP packets between `device` and `connection` until the
/// connection closes.
pub async fn run(
    connection: quinn::Connection,
    device: Arc<AsyncDevice>,
    counters: Arc<Counters>,
) -> Result<()> {
    let peer = connection.remote_address();
    let outbound = async {
        let mut buf = vec![0u8; super::udp::MAX_UDP_PAYLOAD];
        loop {
            let len = tokio::select! {
                received = device.recv(&mut buf) => received.map_err(|source| Error::Socket {
                    addr: peer,
                    source,
                })?,
                closed = connection.closed() => return super::udp::ended(closed),
            };
            super::udp::send_framed(&connection, &counters, TUN_FLOW, &buf[..len], peer)?;
        }
    };
    let inbound = async {
        loop {
            let datagram = match connection.read_datagram().await {
                Ok(datagram) => datagram,
                Err(e) => return super::udp::ended(e),
            };
            match split(&datagram) {
                Ok((TUN_FLOW, packet)) => match device.send(packet).await {
                    Ok(_) => counters.delivered(packet.len()),
                    Err(e) => {
                        if worth_logging(counters.udp_error()) {
                            tracing::warn!("write to the TUN device: {e}");
                        }
                    }
                },
                Ok(_) => counters.unknown_flow(),
                Err(_) => counters.malformed(),
            }
        }
    };
    tokio::select! {
        outcome = outbound => outcome,
        outcome = inbound => outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_and_bad_ones_say_why() {
        assert_eq!(
            "10.99.0.1/24".parse::<Cidr>(),
            Ok(Cidr {
                address: "10.99.0.1".parse().unwrap(),
                prefix: 24
            })
        );
        assert_eq!("fd99::1/64".parse::<Cidr>().map(|c| c.prefix), Ok(64));
        assert!("10.99.0.1".parse::<Cidr>().unwrap_err().contains("prefix"));
        assert!("10.99.0.1/33"
            .parse::<Cidr>()
            .unwrap_err()
            .contains("0 to 32"));
        assert!("x/24".parse::<Cidr>().unwrap_err().contains("not an IP"));
    }
}
