//! Compute resources, prices and TEE kinds.
#![deny(clippy::arithmetic_side_effects)]

use crate::balance::Balance;
use crate::codec::BoundedString;
use crate::{codec_enum, codec_struct};
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Read, Write};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A quantity of each resource a workload needs or a worker offers.
///
/// GPUs are counted here; their model is matched separately ([`GpuModel`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Resources {
    /// CPU in thousandths of a core.
    pub cpu_millicores: u64,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// Disk in GiB.
    pub disk_gib: u64,
    /// Number of GPUs.
    pub gpus: u64,
}
codec_struct!(Resources {
    cpu_millicores,
    memory_mib,
    disk_gib,
    gpus
});

impl Resources {
    /// No resources.
    pub const ZERO: Resources = Resources {
        cpu_millicores: 0,
        memory_mib: 0,
        disk_gib: 0,
        gpus: 0,
    };

    /// Component-wise sum; `None` on overflow.
    pub fn checked_add(&self, other: &Resources) -> Option<Resources> {
        Some(Resources {
            cpu_millicores: self.cpu_millicores.checked_add(other.cpu_millicores)?,
            memory_mib: self.memory_mib.checked_add(other.memory_mib)?,
            disk_gib: self.disk_gib.checked_add(other.disk_gib)?,
            gpus: self.gpus.checked_add(other.gpus)?,
        })
    }

    /// Component-wise difference; `None` if any component would go negative.
    pub fn checked_sub(&self, other: &Resources) -> Option<Resources> {
        Some(Resources {
            cpu_millicores: self.cpu_millicores.checked_sub(other.cpu_millicores)?,
            memory_mib: self.memory_mib.checked_sub(other.memory_mib)?,
            disk_gib: self.disk_gib.checked_sub(other.disk_gib)?,
            gpus: self.gpus.checked_sub(other.gpus)?,
        })
    }

    /// Every component multiplied by `factor` (replicas); `None` on overflow.
    pub fn checked_mul(&self, factor: u64) -> Option<Resources> {
        Some(Resources {
            cpu_millicores: self.cpu_millicores.checked_mul(factor)?,
            memory_mib: self.memory_mib.checked_mul(factor)?,
            disk_gib: self.disk_gib.checked_mul(factor)?,
            gpus: self.gpus.checked_mul(factor)?,
        })
    }

    /// Whether every component of `self` is at most the same component of `limit`.
    pub fn fits_within(&self, limit: &Resources) -> bool {
        self.cpu_millicores <= limit.cpu_millicores
            && self.memory_mib <= limit.memory_mib
            && self.disk_gib <= limit.disk_gib
            && self.gpus <= limit.gpus
    }

    /// The first component of `self` that exceeds `free`, described for a person:
    /// `"4000 millicores"`.
    pub fn first_shortfall(&self, free: &Resources) -> Option<String> {
        if self.cpu_millicores > free.cpu_millicores {
            Some(format!("{} millicores", self.cpu_millicores))
        } else if self.memory_mib > free.memory_mib {
            Some(format!("{} MiB of memory", self.memory_mib))
        } else if self.disk_gib > free.disk_gib {
            Some(format!("{} GiB of disk", self.disk_gib))
        } else if self.gpus > free.gpus {
            Some(format!("{} GPUs", self.gpus))
        } else {
            None
        }
    }
}

impl fmt::Debug for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}m cpu, {} MiB, {} GiB, {} gpu",
            self.cpu_millicores, self.memory_mib, self.disk_gib, self.gpus
        )
    }
}

/// A worker's price per unit of each resource per epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Prices {
    /// Per millicore per epoch.
    pub cpu_millicore: Balance,
    /// Per MiB of memory per epoch.
    pub memory_mib: Balance,
    /// Per GiB of disk per epoch.
    pub disk_gib: Balance,
    /// Per GPU per epoch.
    pub gpu: Balance,
}
codec_struct!(Prices {
    cpu_millicore,
    memory_mib,
    disk_gib,
    gpu
});

impl Prices {
    /// The price of `resources` for one epoch; `None` on overflow.
    pub fn cost_per_epoch(&self, resources: &Resources) -> Option<Balance> {
        let parts = [
            (self.cpu_millicore, resources.cpu_millicores),
            (self.memory_mib, resources.memory_mib),
            (self.disk_gib, resources.disk_gib),
            (self.gpu, resources.gpus),
        ];
        parts
            .iter()
            .try_fold(Balance::ZERO, |total, (price, amount)| {
                total.checked_add(price.checked_mul(u128::from(*amount))?)
            })
    }
}

/// A kind of trusted execution environment.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum TeeKind {
    /// Intel SGX enclaves (Gramine).
    #[serde(rename = "sgx")]
    Sgx,
    /// Intel TDX confidential VMs.
    #[serde(rename = "tdx")]
    Tdx,
    /// AMD SEV-SNP confidential VMs.
    #[serde(rename = "sev-snp")]
    SevSnp,
    /// No TEE: signed by a development CA. Accepted only where the chain's
    /// `allow_simulated_tee` parameter is true (dev chains).
    #[serde(rename = "simulated")]
    Simulated,
}
codec_enum!(TeeKind {
    0 => Sgx,
    1 => Tdx,
    2 => SevSnp,
    3 => Simulated,
});

impl TeeKind {
    /// Every kind, in tag order.
    pub const ALL: [TeeKind; 4] = [
        TeeKind::Sgx,
        TeeKind::Tdx,
        TeeKind::SevSnp,
        TeeKind::Simulated,
    ];

    /// The name used in manifests and messages.
    pub fn name(self) -> &'static str {
        match self {
            TeeKind::Sgx => "sgx",
            TeeKind::Tdx => "tdx",
            TeeKind::SevSnp => "sev-snp",
            TeeKind::Simulated => "simulated",
        }
    }

    fn bit(self) -> u8 {
        match self {
            TeeKind::Sgx => 1,
            TeeKind::Tdx => 2,
            TeeKind::SevSnp => 4,
            TeeKind::Simulated => 8,
        }
    }
}

impl fmt::Display for TeeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Messages read "no worker with TDX", so upper-case the hardware names.
        match self {
            TeeKind::Sgx => f.write_str("SGX"),
            TeeKind::Tdx => f.write_str("TDX"),
            TeeKind::SevSnp => f.write_str("SEV-SNP"),
            TeeKind::Simulated => f.write_str("simulated TEE"),
        }
    }
}

impl fmt::Debug for TeeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TeeKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "sgx" => Ok(TeeKind::Sgx),
            "tdx" => Ok(TeeKind::Tdx),
            "sev-snp" | "snp" | "sevsnp" => Ok(TeeKind::SevSnp),
            "simulated" => Ok(TeeKind::Simulated),
            _ => Err(format!(
                "unknown TEE kind `{s}`: expected sgx, tdx, sev-snp or simulated"
            )),
        }
    }
}

/// A set of TEE kinds, encoded as one byte whose unknown bits are rejected.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TeeKinds(u8);

impl TeeKinds {
    const KNOWN: u8 = 0b1111;

    /// The empty set.
    pub const EMPTY: TeeKinds = TeeKinds(0);

    /// The set of `kinds`.
    pub fn of(kinds: &[TeeKind]) -> TeeKinds {
        TeeKinds(kinds.iter().fold(0, |bits, kind| bits | kind.bit()))
    }

    /// Whether `kind` is in the set.
    pub fn contains(self, kind: TeeKind) -> bool {
        self.0 & kind.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kinds in the set, in tag order.
    pub fn iter(self) -> impl Iterator<Item = TeeKind> {
        TeeKind::ALL.into_iter().filter(move |k| self.contains(*k))
    }
}

impl fmt::Debug for TeeKinds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl Write for TeeKinds {
    fn write(&self, buf: &mut impl BufMut) {
        self.0.write(buf);
    }
}

impl EncodeSize for TeeKinds {
    fn encode_size(&self) -> usize {
        1
    }
}

impl Read for TeeKinds {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, commonware_codec::Error> {
        let bits: u8 = crate::codec::read(buf)?;
        if bits & !Self::KNOWN != 0 {
            return Err(commonware_codec::Error::Invalid(
                "TeeKinds",
                "unknown TEE kind bit",
            ));
        }
        Ok(TeeKinds(bits))
    }
}

impl Serialize for TeeKinds {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for TeeKinds {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let kinds = Vec::<TeeKind>::deserialize(deserializer)?;
        Ok(TeeKinds::of(&kinds))
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for TeeKinds {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(TeeKinds(u8::arbitrary(u)? & Self::KNOWN))
    }
}

/// A GPU model name such as `nvidia-h100`, compared exactly.
pub type GpuModel = BoundedString<64>;

/// A region label such as `eu` or `us-east`, compared exactly.
pub type Region = BoundedString<32>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode, encode};

    #[test]
    fn resources_arithmetic_is_checked() {
        let a = Resources {
            cpu_millicores: 1000,
            memory_mib: 512,
            disk_gib: 1,
            gpus: 0,
        };
        let b = a.checked_mul(3).unwrap();
        assert_eq!(b.cpu_millicores, 3000);
        assert!(a.fits_within(&b));
        assert!(!b.fits_within(&a));
        assert_eq!(a.checked_sub(&b), None);
        assert_eq!(b.checked_sub(&a).unwrap().memory_mib, 1024);
        assert!(a.checked_mul(u64::MAX).is_none());
        assert_eq!(b.first_shortfall(&a).unwrap(), "3000 millicores");
    }

    #[test]
    fn price_of_resources_is_the_sum_of_unit_prices() {
        let prices = Prices {
            cpu_millicore: Balance(2),
            memory_mib: Balance(1),
            disk_gib: Balance(10),
            gpu: Balance(1000),
        };
        let need = Resources {
            cpu_millicores: 500,
            memory_mib: 256,
            disk_gib: 2,
            gpus: 1,
        };
        assert_eq!(
            prices.cost_per_epoch(&need),
            Some(Balance(1000 + 256 + 20 + 1000))
        );
        let huge = Prices {
            cpu_millicore: Balance(u128::MAX),
            ..prices
        };
        assert_eq!(huge.cost_per_epoch(&need), None);
    }

    #[test]
    fn tee_kind_sets_reject_unknown_bits() {
        let set = TeeKinds::of(&[TeeKind::Tdx, TeeKind::SevSnp]);
        assert!(set.contains(TeeKind::Tdx) && !set.contains(TeeKind::Sgx));
        assert_eq!(decode::<TeeKinds>(&encode(&set)).unwrap(), set);
        assert!(decode::<TeeKinds>(&[0b1_0000]).is_err());
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            vec![TeeKind::Tdx, TeeKind::SevSnp]
        );
    }

    #[test]
    fn tee_kind_names_parse() {
        for kind in TeeKind::ALL {
            assert_eq!(kind.name().parse::<TeeKind>().unwrap(), kind);
        }
        assert!("none".parse::<TeeKind>().is_err());
    }
}
